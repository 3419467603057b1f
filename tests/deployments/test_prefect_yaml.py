"""prefect.yaml against a real local Prefect server: every deployment registers with its
schedule, parameters and cluster, and one runs end to end through a worker."""
from __future__ import annotations

import pandas as pd

from tests.helpers import read_run, run_cli

POOL = "ordercast-test"


def read_deployments(api_url: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            return {d.name: d for d in client.read_deployments(
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[POOL])))}


def start_run(api_url: str, name: str, parameters: dict) -> str:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return str(run_deployment(name, parameters=parameters, timeout=0).id)


def test_deploy_registers_every_deployment_and_a_worker_runs_one(small_demo_dir, prefect_server, tmp_path):
    env = {"ORDERCAST_HOME": str(tmp_path / "home")}
    deployed = run_cli("deploy", "--pool", POOL, "--data", str(small_demo_dir), "--out", str(tmp_path / "out"),
                       env=env)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert f"Created process work pool '{POOL}'" in deployed.stdout

    deployments = read_deployments(prefect_server.api_url)
    assert set(deployments) == {"daily-forecast", "daily-accuracy", "weekly-backtest", "daily-forecast-ssh",
                                "weekly-backtest-yarn"}
    clusters = {name: d.job_variables["env"]["ORDERCAST_CLUSTER"] for name, d in deployments.items()}
    assert clusters == {"daily-forecast": "deployments/clusters/local.yaml",
                        "daily-accuracy": "deployments/clusters/local.yaml",
                        "weekly-backtest": "deployments/clusters/local.yaml",
                        "daily-forecast-ssh": "deployments/clusters/ssh.yaml",
                        "weekly-backtest-yarn": "deployments/clusters/yarn.yaml"}
    schedules = {name: [(s.schedule.cron, s.schedule.timezone, s.active) for s in d.schedules]
                 for name, d in deployments.items()}
    assert schedules["daily-forecast"] == [("0 5 * * *", "Europe/Berlin", True)]
    assert schedules["weekly-backtest"] == [("0 1 * * 1", "Europe/Berlin", True)]
    assert schedules["daily-accuracy"] == [("30 4 * * *", "Europe/Berlin", True)]
    assert deployments["daily-accuracy"].parameters["out"] == str(tmp_path / "out" / "forecast")
    assert schedules["daily-forecast-ssh"][0][2] is False and schedules["weekly-backtest-yarn"][0][2] is False
    forecast = deployments["daily-forecast"]
    assert forecast.entrypoint == "deployments/entrypoints.py:forecast"
    assert forecast.parameters["orders"] == str(small_demo_dir / "orders.csv")
    assert forecast.parameters["out"] == str(tmp_path / "out" / "forecast")
    assert deployments["weekly-backtest"].parameters["cutoffs"] == 52

    run_id = start_run(prefect_server.api_url, "forecast/daily-forecast", {"horizon_days": 7})
    worker = run_cli("worker", "--pool", POOL, "--run-once", env=env)
    assert worker.returncode == 0, worker.stderr[-3000:]
    out = tmp_path / "out" / "forecast"
    assert (out / "run.json").exists(), worker.stdout[-6000:] + worker.stderr[-6000:]
    assert read_run(out)["run_id"] == run_id
    assert read_run(out)["cluster"]["kind"] == "local"
    assert pd.read_parquet(out / "forecasts.parquet").groupby("region").size().eq(7 * 48).all()
