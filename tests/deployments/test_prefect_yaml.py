"""prefect.yaml against a real local Prefect server: every deployment registers with its
schedule, parameters and cluster, and one runs end to end through a worker; Retry in the UI
of a failed forecast or backtest run reruns only its failed regions."""
from __future__ import annotations

import pandas as pd

from forecasting.storage import read_table_db
from tests.helpers import (prefect_records, read_run, run_cli, start_run, stop_schedules, task_runs_since,
                           ui_retry_drill)

POOL = "ordercast-test"


def read_deployments(api_url: str, pool: str = POOL) -> dict:
    """The pool's deployments by full name (flow/deployment), as `prefect deployment run` takes it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            found = client.read_deployments(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))
            return {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in found}


def test_deploy_registers_every_deployment_and_a_worker_runs_one(small_demo_dir, prefect_server, tmp_path):
    env = {"ORDERCAST_HOME": str(tmp_path / "home")}
    deployed = run_cli("deploy", "--pool", POOL, "--data", str(small_demo_dir), "--out", str(tmp_path / "out"),
                       env=env)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert f"Created process work pool '{POOL}'" in deployed.stdout

    deployments = {name.split("/")[1]: d for name, d in read_deployments(prefect_server.api_url).items()}
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
    assert forecast.parameters["staffing"] == str(small_demo_dir / "staffing.csv")  # written by deploy if missing
    assert deployments["weekly-backtest"].parameters["cutoffs"] == 52

    stop_schedules(prefect_server.api_url, POOL)
    run_id = start_run(prefect_server.api_url, "forecast/daily-forecast", {"horizon_days": 7})
    worker = run_cli("worker", "--pool", POOL, "--run-once", env=env)
    assert worker.returncode == 0, worker.stderr[-3000:]
    out = tmp_path / "out" / "forecast"
    assert (out / "run.json").exists(), worker.stdout[-6000:] + worker.stderr[-6000:]
    assert read_run(out)["run_id"] == run_id
    assert read_run(out)["cluster"]["kind"] == "local"
    assert pd.read_parquet(out / "forecasts.parquet").groupby("region").size().eq(7 * 48).all()
    assert pd.read_parquet(out / "staffing.parquet").groupby("region").size().eq(7 * 48).all()


def test_deploy_own_tables_as_one_market_and_a_failed_scheduled_run_fails_the_worker(
        small_demo_dir, prefect_server, tmp_path):
    """Own file names, optional tables left out, one market of the extract (its own time zone by
    default); then a scheduled run that fails makes `worker --run-once` exit non-zero."""
    import shutil

    pool, env = "ordercast-market-test", {"ORDERCAST_HOME": str(tmp_path / "home")}
    mine = tmp_path / "extract"
    mine.mkdir()
    for source, target in (("orders", "order_counts.csv"), ("weather", "wx.csv"), ("regions", "zones.csv")):
        shutil.copy(small_demo_dir / f"{source}.csv", mine / target)
    tables = ["--orders", str(mine / "order_counts.csv"), "--weather", str(mine / "wx.csv"),
              "--regions", str(mine / "zones.csv")]

    typo = run_cli("deploy", "--pool", pool, "--orders", str(mine / "orders.csv"), "--name", "us", env=env)
    assert typo.returncode == 1 and "orders file not found" in typo.stderr
    unknown = run_cli("deploy", "--pool", pool, *tables, "--name", "us", "--only-regions", "nyc-uptown", env=env)
    assert unknown.returncode == 1 and "--only-regions: not in" in unknown.stderr and "nyc-uptown" in unknown.stderr
    mixed = run_cli("deploy", "--pool", pool, *tables, "--name", "all", env=env)
    assert mixed.returncode == 1 and "--timezone" in mixed.stderr  # three regions, three time zones
    bad_cron = run_cli("deploy", "--pool", pool, *tables, "--name", "us", "--only-regions", "nyc-midtown",
                       "--cron", "0 25 * * *", env=env)
    assert bad_cron.returncode == 1 and "--cron: '0 25 * * *' is not a cron expression" in bad_cron.stderr
    assert read_deployments(prefect_server.api_url, pool) == {}  # nothing registered by any of them

    shared_db = f"sqlite:///{tmp_path / 'shared' / 'forecasts.sqlite'}"  # one database for the three flows
    staffing = mine / "drivers.csv"
    staffing.write_text("region,orders_per_driver_hour,driver_hour_cost,late_order_cost\nnyc-midtown,2.5,18,9\n")
    deployed = run_cli("deploy", "--pool", pool, *tables, "--name", "us", "--only-regions", "nyc-midtown",
                       "--horizon-days", "7", "--staffing", str(staffing), "--out", str(tmp_path / "scheduled"),
                       "--db", shared_db, "--prune-older-than", "30D", "--prune-vintages", env=env)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    deployments = read_deployments(prefect_server.api_url, pool)
    assert set(deployments) == {"forecast/us", "backtest/us", "accuracy/us"}
    forecast = deployments["forecast/us"]
    assert [(s.schedule.cron, s.schedule.timezone) for s in forecast.schedules] == [("0 5 * * *", "America/New_York")]
    assert forecast.parameters["orders"] == str(mine / "order_counts.csv")
    assert "promotions" not in forecast.parameters and "events" not in forecast.parameters
    assert forecast.parameters["region_subset"] == ["nyc-midtown"] and forecast.parameters["horizon_days"] == 7
    assert forecast.parameters["staffing"] == str(staffing) and "staffing" not in deployments["backtest/us"].parameters
    assert deployments["backtest/us"].parameters["region_subset"] == ["nyc-midtown"]
    assert [s.schedule.cron for s in deployments["accuracy/us"].schedules] == ["30 4 * * *"]
    assert {deployment.parameters["db"] for deployment in deployments.values()} == {shared_db}
    assert forecast.parameters["prune_older_than"] == "30D" and forecast.parameters["prune_vintages"] is True

    stop_schedules(prefect_server.api_url, pool)
    run_id = start_run(prefect_server.api_url, "forecast/us", {})
    worker = run_cli("worker", "--pool", pool, "--run-once", env=env)
    assert worker.returncode == 0, worker.stderr[-3000:]
    out = tmp_path / "scheduled" / "us" / "forecast"
    assert read_run(out)["run_id"] == run_id
    assert set(pd.read_parquet(out / "forecasts.parquet")["region"]) == {"nyc-midtown"}
    assert set(pd.read_parquet(out / "staffing.parquet")["region"]) == {"nyc-midtown"}
    assert len(read_table_db(shared_db)) == 7 * 48 and not (out / "forecasts.sqlite").exists()
    _, task_runs, _ = prefect_records(prefect_server.api_url, run_id, ["prune"])
    assert {task.name: task.state.name for task in task_runs}["prune"] == "Completed"  # after the forecast

    (mine / "wx.csv").unlink()  # the extract job stopped writing the weather file
    failing = start_run(prefect_server.api_url, "forecast/us", {})
    worker = run_cli("worker", "--pool", pool, "--run-once", env=env)
    assert worker.returncode == 2, worker.stderr[-3000:]
    assert f"ordercast failures {failing}" in worker.stderr and "weather file not found" in worker.stderr


def test_retry_from_the_ui_reruns_only_the_failed_region(small_demo_dir, prefect_server, tmp_path):
    """A scheduled run fails in one region; the UI's Retry (the flow run set to AwaitingRetry)
    and a worker run it again under its own id: only that region trains, the others come back
    Cached from their stored results, and every region is written once."""
    ui_retry_drill(small_demo_dir, prefect_server.api_url, tmp_path, pool="ordercast-retry-test")


def test_no_module_beside_the_entrypoints_shadows_the_standard_library():
    """Prefect puts the entrypoint's folder (deployments/) first on sys.path of the flow-run
    process and of the Dask workers it spawns: a `deployments/secrets.py` broke numpy's
    `from secrets import randbits` there, and every worker failed to start."""
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "deployments"
    names = {path.stem for path in folder.glob("*.py")} | {path.name for path in folder.iterdir() if path.is_dir()}
    assert not names & set(sys.stdlib_module_names)


def test_retry_of_a_backtest_run_from_the_ui_reruns_only_the_failed_region(small_demo_dir, prefect_server, tmp_path):
    """The weekly backtest is the heaviest flow: a Retry of a run that failed in one region
    (`ordercast retry`, which sets it to AwaitingRetry as the UI's button does) backtests that
    region alone; the pooled candidate and the other regions come back Cached."""
    from datetime import datetime, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    pool, env = "ordercast-backtest-retry-test", {"ORDERCAST_HOME": str(tmp_path / "home")}
    deployed = run_cli("deploy", "--pool", pool, "--orders", str(small_demo_dir / "orders.csv"),
                       "--regions", str(small_demo_dir / "regions.csv"), "--name", "bt-drill", "--timezone", "UTC",
                       "--horizon-days", "7", "--out", str(tmp_path / "scheduled"), env=env)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    stop_schedules(prefect_server.api_url, pool)
    run_id = start_run(prefect_server.api_url, "backtest/bt-drill", {"cutoffs": 6})
    first = run_cli("worker", "--pool", pool, "--run-once", env={**env, "ORDERCAST_FAULTS": "backtest:berlin-mitte"})
    assert first.returncode == 2, first.stderr[-3000:]
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        with get_client(sync_client=True) as client:
            failed = client.read_flow_run(run_id).state
            assert failed.type == StateType.FAILED and "1 of 3 regions failed: berlin-mitte" in failed.message
            assert f"press Retry on this run in the Prefect UI (or `ordercast retry {run_id}`)" in failed.message
            retried_at = datetime.now(timezone.utc)
    listed = run_cli("failures", run_id, env=env)
    assert listed.returncode == 2 and "task run backtest-berlin-mitte (Failed" in listed.stdout
    assert f"Re-run them with: ordercast retry {run_id}" in listed.stdout
    retried = run_cli("retry", run_id, env=env)  # the UI's Retry: the run set to AwaitingRetry
    assert retried.returncode == 0 and f"a worker of work pool '{pool}'" in retried.stdout, retried.stderr
    assert "failed: backtest-berlin-mitte" in retried.stdout
    second = run_cli("worker", "--pool", pool, "--run-once", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run_id).state.type == StateType.COMPLETED
    again = task_runs_since(prefect_server.api_url, run_id, retried_at, 7)
    assert again.pop("backtest-berlin-mitte") == "Completed"
    assert again.pop("plan-cutoffs") == "Completed" and again.pop("write-backtest-outputs") == "Completed"
    assert again == {"load-inputs": "Cached", "backtest-pooled": "Cached", "backtest-london-soho": "Cached",
                     "backtest-nyc-midtown": "Cached"}
    out = tmp_path / "scheduled" / "bt-drill" / "backtest"
    assert read_run(out)["run_id"] == run_id and not read_run(out)["failed_regions"]
    selection = pd.read_parquet(out / "selection.parquet")
    assert sorted(selection["region"]) == ["berlin-mitte", "london-soho", "nyc-midtown"]
    assert set(selection["backtest_run_id"]) == {run_id}
