"""The real backtest flow through `ordercast backtest` (3 regions, 4 cutoffs, every candidate:
the pooled one as its own task run), and the forecast that follows it using the selected models
and calibrated intervals."""
from __future__ import annotations

import re
import sqlite3

import numpy as np
import pandas as pd
import pytest

from flows.backtest import last_ending_timezone
from forecasting.models import MODELS
from tests.helpers import prefect_records, read_run, run_cli, table_args


@pytest.fixture(scope="module")
def backtest_run(small_demo_dir, prefect_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("bt-home")
    out = tmp_path_factory.mktemp("bt") / "out"
    result = run_cli("backtest", *table_args(small_demo_dir), "--cutoffs", "4", "--horizon-days", "7",
                     "--out", str(out), env={"ORDERCAST_HOME": str(home)})
    assert result.returncode == 0, result.stderr[-3000:]
    return home, out, result


def test_backtest_writes_the_documented_outputs(backtest_run):
    _, out, result = backtest_run
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert list(predictions.columns) == ["region", "ts", "cutoff", "origin", "model", "actual", "forecast", "p10", "p50",
                                         "p90"]
    assert predictions["cutoff"].nunique() == 4
    assert predictions.groupby(["region", "cutoff", "model"]).size().eq(7 * 48).all()
    assert set(predictions["model"]) == set(MODELS)
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics.columns) == ["region", "model", "cutoff", "horizon_bucket", "wape", "bias", "mase",
                                     "pinball", "coverage"]
    assert set(metrics["horizon_bucket"]) == {"d1", "d2-7"}
    selection = pd.read_parquet(out / "selection.parquet")
    assert list(selection.columns) == ["region", "model", "wape", "backtest_run_id"]
    assert sorted(selection["region"]) == ["berlin-mitte", "london-soho", "nyc-midtown"]
    with sqlite3.connect(out / "forecasts.sqlite") as db:
        stored = pd.read_sql("SELECT region, model, backtest_run_id FROM model_selection", db)
    assert len(stored) == 3 and set(stored["backtest_run_id"]) == {read_run(out)["run_id"]}
    assert (out / "plots" / "error_by_horizon.png").exists()
    assert len(list((out / "plots").glob("forecast_vs_actual_*.png"))) == 3
    held_out = next(line for line in result.stdout.splitlines() if line.startswith("Held-out:   WAPE"))
    assert re.match(r"Held-out:   WAPE \d\.\d{3} with the per-region selection", held_out), held_out  # 3 decimals


def test_prefect_shows_one_task_run_per_region_and_reports(backtest_run, prefect_server):
    _, out, _ = backtest_run
    expected = {"backtest-berlin-mitte", "backtest-london-soho", "backtest-nyc-midtown", "backtest-pooled",
                "plan-cutoffs"}
    flow_run, task_runs, artifacts = prefect_records(prefect_server.api_url, read_run(out)["run_id"], expected)
    assert flow_run.state.is_completed()
    assert expected <= {task.name for task in task_runs}
    assert {artifact.key for artifact in artifacts} >= {"backtest-selection", "backtest-wape"}


def test_forecast_uses_the_selection_and_writes_intervals(backtest_run, small_demo_dir, tmp_path):
    home, bt_out, _ = backtest_run
    out = tmp_path / "forecast"
    result = run_cli("forecast", *table_args(small_demo_dir), "--horizon-days", "7", "--out", str(out),
                     env={"ORDERCAST_HOME": str(home)})
    assert result.returncode == 0, result.stderr[-3000:]
    selection = pd.read_parquet(bt_out / "selection.parquet").set_index("region")["model"]
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    used = forecasts.groupby("region")["model"].first()
    assert used.to_dict() == selection.to_dict()
    quantiles = forecasts[["p10", "p50", "p90"]].to_numpy()
    assert (quantiles >= 0).all() and (np.diff(quantiles, axis=1) >= 0).all()
    assert (quantiles[:, 2] > quantiles[:, 0]).mean() > 0.9
    regions = {r["region"]: r for r in read_run(out)["regions"]}
    backtest_id = read_run(bt_out)["run_id"]
    assert all(r["intervals"] == f"backtest {backtest_id}" for r in regions.values())
    with sqlite3.connect(out / "forecasts.sqlite") as db:
        stored = pd.read_sql("SELECT p10, p50, p90 FROM forecasts", db)
    assert len(stored) == len(forecasts) and stored.notna().all().all()


def test_daily_cutoffs_follow_the_clock_of_the_region_whose_data_end_last():
    manifest = {"regions": [{"region": "east", "as_of": "2026-11-30T05:00:00+00:00", "timezone": "America/New_York"},
                            {"region": "west", "as_of": "2026-11-30T08:00:00+00:00", "timezone": "America/Los_Angeles"},
                            {"region": "north", "as_of": "2026-11-29T06:00:00+00:00", "timezone": "America/Chicago"}]}
    assert last_ending_timezone(manifest) == "America/Los_Angeles"
    behind = {"region": "berlin", "as_of": "2026-11-30T08:00:00+00:00", "timezone": "Europe/Berlin"}  # shares it
    assert last_ending_timezone({"regions": [behind, *manifest["regions"]]}) == "America/Los_Angeles"
