"""YARN: the skein application specification a configuration produces, and the real forecast
flow end to end through a fake skein client that runs each service's script as a local process
(tests/yarn_fake.py). No YARN ResourceManager runs here; YARN itself is not exercised."""
from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from deployments.clusters import parse_cluster
from deployments.runners import remote_environment
from deployments.yarn import SCHEDULER, WORKER, application_spec, scheduler_file
from tests.helpers import read_run, run_cli, table_args

PROJECT = Path(__file__).resolve().parents[2]


def yarn_config(tmp_path: Path, api_url: str = "http://127.0.0.1:4200/api", **extra) -> dict:
    return {"kind": "yarn", "environment": str(tmp_path / "env.tar.gz"), "name": "ordercast-test", "queue": "batch",
            "n_workers": 2, "worker": {"memory": "3 GiB", "vcores": 1}, "scheduler": {"memory": "1 GiB", "vcores": 1},
            "worker_restarts": 5, "env": {"OMP_NUM_THREADS": "1"}, "files": {"cache.sqlite": str(tmp_path / "c.db")},
            "api_url": api_url, "shared_dir": str(tmp_path / "shared"), **extra}


def test_application_spec_from_the_configuration(tmp_path):
    config = parse_cluster(yarn_config(tmp_path))
    spec = application_spec(config, "tok", remote_environment(config))
    assert spec.name == "ordercast-test" and spec.queue == "batch"
    assert list(spec.services) == [SCHEDULER, WORKER]
    scheduler, worker = spec.services[SCHEDULER], spec.services[WORKER]
    assert worker.depends == {SCHEDULER} or list(worker.depends) == [SCHEDULER]  # scheduler starts first
    assert (scheduler.instances, worker.instances) == (1, 2)
    assert worker.resources.memory == 3 * 1024 and scheduler.resources.memory == 1024 and worker.resources.vcores == 1
    assert worker.max_restarts == 5
    assert str(worker.files["environment"].type).lower().endswith("archive")
    assert worker.files["cache.sqlite"].source.endswith("c.db")
    assert worker.env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert worker.env["ORDERCAST_WORK_DIR"] == str(tmp_path / "shared") and worker.env["OMP_NUM_THREADS"] == "1"
    address_file = scheduler_file(config, "tok")
    assert "source environment/bin/activate" in scheduler.script and "source environment/bin/activate" in worker.script
    assert f"--scheduler-file {address_file}" in scheduler.script
    assert f"--scheduler-file {address_file}" in worker.script and "--nthreads 1" in worker.script
    assert "--memory-limit '3 GiB'" in worker.script


def shim_environment(path: Path) -> None:
    """A tiny stand-in for a venv-pack archive: `bin/activate` puts this test's Python first on
    PATH. A real deployment ships the packed environment itself."""
    activate = path.parent / "activate"
    activate.write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    with tarfile.open(path, "w:gz") as archive:
        archive.add(activate, arcname="bin/activate")


@pytest.mark.timeout(600)
def test_forecast_runs_on_the_generated_yarn_services(small_demo_dir, prefect_server, tmp_path):
    import yaml

    shim_environment(tmp_path / "env.tar.gz")
    (tmp_path / "c.db").write_bytes(b"cache")
    (tmp_path / "shared").mkdir()
    config = tmp_path / "yarn.yaml"
    config.write_text(yaml.safe_dump(yarn_config(tmp_path, prefect_server.api_url,
                                                 skein_client="tests.yarn_fake:FakeSkeinClient")))
    common = [*table_args(small_demo_dir), "--horizon-days", "7", "--as-of", "2026-10-19T00:00:00+00:00"]
    yarn = run_cli("forecast", *common, "--out", str(tmp_path / "yarn"), "--cluster", str(config),
                   env={"PYTHONPATH": str(PROJECT)})
    assert yarn.returncode == 0, yarn.stderr[-4000:]
    serial = run_cli("forecast", *common, "--out", str(tmp_path / "serial"), "--cluster", "serial")
    assert serial.returncode == 0, serial.stderr[-3000:]
    cluster = read_run(tmp_path / "yarn")["cluster"]
    assert cluster["kind"] == "yarn" and cluster["workers"] == 2
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "yarn" / "forecasts.parquet").drop(columns=["run_id", "created_at"]),
        pd.read_parquet(tmp_path / "serial" / "forecasts.parquet").drop(columns=["run_id", "created_at"]),
        rtol=1e-9)
    # they met through a scheduler file in shared_dir (the scheduler deletes it when it stops)
    assert [p.name for p in (tmp_path / "shared" / "dask").iterdir()]
