"""Lost Dask workers on a real LocalCluster: a worker killed mid-region, and regions that
exceed the worker memory limit once or every time. No region is lost or written twice, and
every task run ends in a state a person can read."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from forecasting.storage import read_table_db
from tests.helpers import prefect_records, read_run, table_args

AS_OF = "2026-10-19T00:00:00+00:00"


def start_forecast(small_demo_dir: Path, tmp_path: Path, faults: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "ORDERCAST_FAULTS": faults, "ORDERCAST_WORK_DIR": str(tmp_path / "work")}
    command = [str(Path(sys.executable).with_name("ordercast")), "forecast", *table_args(small_demo_dir),
               "--horizon-days", "7", "--as-of", AS_OF, "--out", str(tmp_path / "out"), "--workers", "2", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_file(pattern: str, folder: Path, process: subprocess.Popen, seconds: float = 180) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = list(folder.glob(pattern))
        if found:
            return found[0]
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no {pattern} under {folder} after {seconds} s")


def written_once(out: Path) -> pd.DataFrame:
    """The forecasts, checked to hold each region's horizon exactly once in the file and the database."""
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    assert forecasts.groupby("region").size().to_dict() == {"berlin-mitte": 336, "london-soho": 336,
                                                            "nyc-midtown": 336}
    assert not forecasts.duplicated(["region", "ts"]).any()
    table = read_table_db(read_run(out)["configuration"]["db"])
    assert len(table) == len(forecasts) and not table.duplicated(["region", "ts", "as_of"]).any()
    return forecasts


def test_a_worker_killed_mid_region_reruns_that_region_and_loses_nothing(small_demo_dir, prefect_server, tmp_path):
    process = start_forecast(small_demo_dir, tmp_path, "train:berlin-mitte:slow")
    pid_file = wait_for_file("drills/*/train-berlin-mitte.pid", tmp_path / "work", process)
    killed = int(pid_file.read_text())
    os.kill(killed, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert int(pid_file.read_text()) != killed  # the region ran again, on another worker process

    out = tmp_path / "out"
    written_once(out)
    run = read_run(out)
    assert {status["status"] for status in run["regions"]} == {"ok"}
    for region in ("berlin-mitte", "london-soho", "nyc-midtown"):  # one stored model each: nothing trained twice
        assert len(list((tmp_path / "work" / "models" / region).iterdir())) == 1
    expected = {"load-inputs": "COMPLETED", "write-outputs": "COMPLETED",
                **{f"{step}-{region}": "COMPLETED" for step in ("train", "predict")
                   for region in ("berlin-mitte", "london-soho", "nyc-midtown")}}
    flow_run, task_runs, artifacts = prefect_records(prefect_server.api_url, run["run_id"], expected)
    assert flow_run.state.is_completed()
    assert {task.name: task.state.type.value for task in task_runs} == expected
    summary = json.loads(next(a for a in artifacts if a.key == "forecast-regions").data)
    assert [row["status"] for row in summary] == ["ok", "ok", "ok"]


def test_memory_limit_once_recovers_and_always_falls_back(small_demo_dir, prefect_server, tmp_path):
    cluster = tmp_path / "small-memory.yaml"
    cluster.write_text("kind: local\nn_workers: 2\nthreads_per_worker: 1\nmemory_limit: 1.5GiB\n")
    process = start_forecast(small_demo_dir, tmp_path, "train:berlin-mitte:memory,train:london-soho:memory-once",
                             "--cluster", str(cluster))
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 2, stderr[-3000:]
    assert "berlin-mitte (fallback): train: MemoryLimitExceeded: exceeded the worker memory limit" in stderr

    out = tmp_path / "out"
    forecasts = written_once(out)
    fallback = forecasts.groupby("region")["fallback"].all().to_dict()
    assert fallback == {"berlin-mitte": True, "london-soho": False, "nyc-midtown": False}
    run = read_run(out)
    statuses = {status["region"]: status for status in run["regions"]}
    assert statuses["london-soho"]["status"] == "ok" and statuses["nyc-midtown"]["status"] == "ok"
    assert statuses["berlin-mitte"]["status"] == "fallback"
    assert "exceeded the worker memory limit" in statuses["berlin-mitte"]["error"]

    flow_run, task_runs, _ = prefect_records(prefect_server.api_url, run["run_id"],
                                             ["train-berlin-mitte", "train-london-soho", "fallback-berlin-mitte"])
    assert flow_run.state.is_failed()
    states = {task.name: task.state for task in task_runs}
    assert states["train-berlin-mitte"].is_failed()  # not left Running after Dask gave up on it
    assert "exceeded the worker memory limit" in states["train-berlin-mitte"].message
    assert states["train-london-soho"].is_completed() and states["fallback-berlin-mitte"].is_completed()
    assert str(next(t.id for t in task_runs if t.name == "train-berlin-mitte")) == statuses["berlin-mitte"]["task_run_id"]
