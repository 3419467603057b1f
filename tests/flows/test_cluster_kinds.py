"""The real forecast flow on each local kind: same forecasts whatever runs the tasks."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers import prefect_records, read_run, run_cli, table_args

ROOT_CLUSTERS = "deployments/clusters"


def forecast(small_demo_dir, out, *extra, env=None):
    result = run_cli("forecast", *table_args(small_demo_dir), "--horizon-days", "7",
                     "--as-of", "2026-10-19T00:00:00+00:00", "--out", str(out), *extra, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return pd.read_parquet(out / "forecasts.parquet").drop(columns=["run_id", "created_at"])


@pytest.fixture(scope="module")
def local_forecasts(small_demo_dir, prefect_server, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    return out, forecast(small_demo_dir, out, "--cluster", "local")


def test_serial_gives_the_same_forecasts_as_local(small_demo_dir, local_forecasts, tmp_path):
    out, local = local_forecasts
    serial = forecast(small_demo_dir, tmp_path / "out", "--cluster", "serial")
    pd.testing.assert_frame_equal(serial, local, rtol=1e-9)
    assert read_run(tmp_path / "out")["cluster"] == {"kind": "serial", "workers": 1, "dashboard": None}
    local_cluster = read_run(out)["cluster"]
    assert local_cluster["kind"] == "local" and local_cluster["workers"] == 2
    assert local_cluster["dashboard"].startswith("http://127.0.0.1:")


def test_adaptive_and_threaded_local_clusters(small_demo_dir, local_forecasts, tmp_path, prefect_server):
    _, local = local_forecasts
    adaptive = forecast(small_demo_dir, tmp_path / "adaptive", "--cluster", f"{ROOT_CLUSTERS}/local-adaptive.yaml")
    pd.testing.assert_frame_equal(adaptive, local, rtol=1e-9)
    run = read_run(tmp_path / "adaptive")
    assert run["cluster"]["kind"] == "local"
    _, _, artifacts = prefect_records(prefect_server.api_url, run["run_id"])
    summary = next(a for a in artifacts if a.key == "forecast-plots")
    assert "Cluster: **local**" in summary.data
    threads = tmp_path / "threads.yaml"
    threads.write_text("kind: local\nprocesses: false\nn_workers: 1\nthreads_per_worker: 2\n")
    threaded = forecast(small_demo_dir, tmp_path / "threads", "--cluster", str(threads))
    pd.testing.assert_frame_equal(threaded, local, rtol=1e-9)


def test_batched_and_stock_task_runs_give_the_same_forecasts_and_task_runs(small_demo_dir, local_forecasts,
                                                                          tmp_path, prefect_server):
    out, batched = local_forecasts  # batch_task_runs is true by default
    config = tmp_path / "stock.yaml"
    config.write_text("kind: local\nbatch_task_runs: false\n")
    stock = forecast(small_demo_dir, tmp_path / "out", "--cluster", str(config))
    pd.testing.assert_frame_equal(stock, batched, rtol=1e-9)

    def task_runs(folder):
        run = read_run(folder)
        expected = ["load-inputs", "write-outputs", *(f"{step}-{row['region']}" for step in ("train", "predict")
                                                      for row in run["regions"])]
        _, runs, _ = prefect_records(prefect_server.api_url, run["run_id"], expected)
        return sorted((run.name, run.state.type.value, tuple(sorted(run.tags))) for run in runs)

    assert task_runs(tmp_path / "out") == task_runs(out)


def test_ordercast_serial_overrides_the_cluster(small_demo_dir, local_forecasts, tmp_path):
    _, local = local_forecasts
    forced = forecast(small_demo_dir, tmp_path / "out", "--cluster", f"{ROOT_CLUSTERS}/local.yaml",
                      env={"ORDERCAST_SERIAL": "yes"})
    pd.testing.assert_frame_equal(forced, local, rtol=1e-9)
    assert read_run(tmp_path / "out")["cluster"]["kind"] == "serial (forced by ORDERCAST_SERIAL)"


def test_a_remote_kind_without_a_reachable_api_stops_before_running(small_demo_dir, tmp_path):
    config = tmp_path / "address.yaml"
    config.write_text(f"kind: address\naddress: tcp://127.0.0.1:9\napi_url: http://127.0.0.1:9/api\n"
                      f"shared_dir: {tmp_path}\n")
    result = run_cli("forecast", *table_args(small_demo_dir), "--out", str(tmp_path / "out"), "--cluster", str(config))
    assert result.returncode == 1
    assert result.stderr.strip().endswith("address.yaml: api_url: http://127.0.0.1:9/api does not answer from this "
                                          "machine; start the Prefect server there or fix the address")
    assert not (tmp_path / "out").exists()
