"""`ordercast runs`, `failures` and `retry` on a run in which one region was made to fail,
all read from the real local Prefect server: the retry runs the same flow run again, and only
the failed region's task runs execute."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from forecasting.storage import read_table_db
from tests.helpers import prefect_records, read_run, run_cli, table_args, task_runs_since

AS_OF = "2026-10-19T00:00:00+00:00"


def test_failures_are_listed_and_retry_repairs_only_the_failed_region(small_demo_dir, prefect_server, tmp_path):
    out = tmp_path / "out"
    first = run_cli("forecast", *table_args(small_demo_dir), "--horizon-days", "7", "--as-of", AS_OF,
                    "--out", str(out), env={"ORDERCAST_FAULTS": "train:berlin-mitte"})
    assert first.returncode == 2, first.stderr[-3000:]
    failed_run = read_run(out)["run_id"]
    before = pd.read_parquet(out / "forecasts.parquet")

    _schedule_a_future_run()  # not started: `runs` and `failures` leave it out
    runs = run_cli("runs", "--limit", "5")
    assert runs.returncode == 0, runs.stderr
    line = next(line for line in runs.stdout.splitlines() if failed_run in line)
    assert " forecast " in line and " Failed " in line

    failures = run_cli("failures")  # the latest run
    assert failures.returncode == 2, failures.stderr
    flow_run, task_runs, artifacts = prefect_records(prefect_server.api_url, failed_run,
                                                     ["load-inputs", "train-berlin-mitte"])
    repair = f"Repair: fix the cause, then run `ordercast retry {failed_run}`"  # an ad-hoc run: no Retry button
    assert flow_run.state.message.endswith(repair)
    assert repair in next(a for a in artifacts if a.key == "forecast-plots").data
    train_id = next(str(task.id) for task in task_runs if task.name == "train-berlin-mitte")
    assert "berlin-mitte: fell back to the seasonal naive; train: InjectedFault" in failures.stdout
    assert f"(task run {train_id})" in failures.stdout
    assert f"ordercast retry {failed_run}" in failures.stdout
    assert "london-soho" not in failures.stdout

    orders = small_demo_dir / "orders.csv"
    original = orders.read_bytes()
    try:
        orders.write_bytes(original + b"\n")  # a changed input: retrying would mix two versions of the data
        refused = run_cli("retry", failed_run)
    finally:
        orders.write_bytes(original)
    assert refused.returncode == 1 and "refused: the orders input" in refused.stderr, refused.stderr[-2000:]
    assert "--force" in refused.stderr and read_run(out)["run_id"] == failed_run  # nothing was run

    retried_at = datetime.now(timezone.utc)
    retry = run_cli("retry", failed_run)
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert "Retrying flow run" in retry.stderr and "troubled regions: berlin-mitte" in retry.stderr
    run = read_run(out)
    assert run["run_id"] == failed_run and {s["status"] for s in run["regions"]} == {"ok"}  # the same run, repaired
    after = pd.read_parquet(out / "forecasts.parquet")
    berlin = after.loc[after["region"] == "berlin-mitte"]
    assert len(berlin) == 336 and not berlin["fallback"].any() and (berlin["model"] == "ensemble").all()
    assert (after["run_id"] == failed_run).all() and (after["as_of"] == pd.Timestamp(AS_OF)).all()
    others = ["london-soho", "nyc-midtown"]  # from their stored results: the same numbers as before
    columns = ["region", "ts", "forecast", "model"]
    pd.testing.assert_frame_equal(after.loc[after["region"].isin(others), columns].reset_index(drop=True),
                                  before.loc[before["region"].isin(others), columns].reset_index(drop=True))
    table = read_table_db(run["configuration"]["db"])
    assert len(table) == 3 * 336 and set(table["run_id"]) == {failed_run} and not table["fallback"].any()

    flow_run, _, _ = prefect_records(prefect_server.api_url, failed_run)
    assert flow_run.state.type.value == "COMPLETED" and flow_run.run_count == 2
    again = task_runs_since(prefect_server.api_url, failed_run, retried_at, 8)
    assert again.pop("train-berlin-mitte") == "Completed" and again.pop("predict-berlin-mitte") == "Completed"
    assert again.pop("write-outputs") == "Completed"
    assert again == {"load-inputs": "Cached", "train-london-soho": "Cached", "train-nyc-midtown": "Cached",
                     "predict-london-soho": "Cached", "predict-nyc-midtown": "Cached"}
    clean = run_cli("failures", failed_run)
    assert clean.returncode == 0 and "no failed regions or task runs" in clean.stdout
    nothing = run_cli("retry", failed_run)
    assert nothing.returncode == 0 and "nothing to retry" in nothing.stdout


def _schedule_a_future_run() -> None:
    """A flow run scheduled for tomorrow, as a deployment's schedule creates them."""
    from datetime import datetime, timedelta, timezone

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    @flow(name="scheduled-later")
    def later() -> None:
        pass

    with get_client(sync_client=True) as client:
        client.create_flow_run(later, state=Scheduled(scheduled_time=datetime.now(timezone.utc) + timedelta(days=1)))


def test_failures_of_an_unknown_run_is_a_clear_error(prefect_server):
    result = run_cli("failures", "00000000-0000-0000-0000-000000000000")
    assert result.returncode == 1
    assert "no flow run 00000000-0000-0000-0000-000000000000 on this Prefect server" in result.stderr
    result = run_cli("retry", "not-a-run")
    assert result.returncode == 1 and "'not-a-run' is not a flow run id" in result.stderr
