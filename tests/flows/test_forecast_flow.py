"""The real forecast flow, run through the `ordercast` command on a real LocalCluster,
reporting to a real local Prefect server."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from forecasting.metrics import wape
from forecasting.storage import read_table_db
from tests.helpers import prefect_records, read_run, run_cli, run_id_from, table_args

HOLDOUT_AS_OF = "2026-10-12T00:00:00+00:00"  # the demo's last three weeks are held out
FORECAST_COLUMNS = ["region", "ts", "local_start", "as_of", "forecast", "model", "fallback", "run_id", "created_at",
                    "p10", "p50", "p90"]


@pytest.fixture(scope="module")
def holdout(demo_dir, prefect_server, tmp_path_factory):
    out = tmp_path_factory.mktemp("holdout") / "out"
    result = run_cli("forecast", *table_args(demo_dir), "--as-of", HOLDOUT_AS_OF, "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_every_region_gets_the_whole_horizon(holdout, demo_dir):
    out, _ = holdout
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    regions = pd.read_csv(demo_dir / "regions.csv")["region"]
    assert list(forecasts.columns) == FORECAST_COLUMNS
    assert sorted(forecasts["region"].unique()) == sorted(regions)
    assert forecasts.groupby("region").size().eq(21 * 48).all()
    assert (forecasts["forecast"] >= 0).all() and forecasts["forecast"].notna().all()
    assert forecasts["as_of"].eq(pd.Timestamp(HOLDOUT_AS_OF)).all()
    assert str(forecasts["ts"].dt.tz) == "UTC" and forecasts["ts"].min() == pd.Timestamp(HOLDOUT_AS_OF)
    zones = pd.read_csv(demo_dir / "regions.csv").set_index("region")["timezone"]
    local = pd.to_datetime(forecasts["local_start"].str[:19])  # the wall clock as written, offset aside
    expected = [ts.tz_convert(zones[region]).tz_localize(None) for region, ts in zip(forecasts["region"], forecasts["ts"])]
    assert (local == pd.Series(expected)).all()
    berlin = forecasts.loc[forecasts["region"] == "berlin-mitte", "local_start"]
    assert berlin.iloc[0] == "2026-10-12T02:00:00+02:00" and berlin.str.endswith("+01:00").any()  # across the clock change
    short = forecasts.loc[forecasts["region"] == "boston-back-bay", "model"].unique().tolist()
    assert short == ["profile_ensemble"]  # too little history for xgboost
    assert set(forecasts["model"]) == {"ensemble", "profile_ensemble"}


def test_database_plots_and_run_record(holdout):
    out, _ = holdout
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    with sqlite3.connect(out / "forecasts.sqlite") as db:
        table = pd.read_sql("SELECT * FROM forecasts", db)
    assert len(table) == len(forecasts) and list(table.columns) == FORECAST_COLUMNS
    assert table["ts"].str.endswith("+00:00").all() and not table.duplicated(["region", "ts", "as_of"]).any()
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) == 12 and all(p.read_bytes()[:4] == b"\x89PNG" for p in plots)
    run = read_run(out)
    assert run["run_id"] == forecasts["run_id"].iloc[0]
    assert {r["status"] for r in run["regions"]} == {"ok"} and len(run["regions"]) == 12
    assert set(run["input_hashes"]) == {"orders", "weather", "events", "promotions", "regions"}
    assert run["configuration"]["as_of"] == HOLDOUT_AS_OF and "xgboost-cpu" in run["packages"]


def test_the_terminal_shows_progress_and_a_summary_not_every_log_line(holdout):
    _, result = holdout
    assert "Training: 12/12 regions done" in result.stderr
    assert "Task run '" not in result.stderr  # task runs' lines are in the Prefect UI
    assert " - distributed." not in result.stderr  # nor Dask's own lifecycle messages
    summary = result.stdout.splitlines()
    assert summary[0].split()[:3] == ["region", "status", "model"] and len(summary) > 13
    assert any(line.startswith("berlin-mitte ") and " ok " in line for line in summary)
    assert summary[13].startswith("total") and "all ok" in summary[13]


def test_prefect_shows_named_train_and_predict_runs(holdout, prefect_server):
    out, result = holdout
    run_id = read_run(out)["run_id"]
    assert run_id == run_id_from(result.stdout)
    regions = {r["region"] for r in read_run(out)["regions"]}
    expected = [f"{step}-{region}" for step in ("train", "predict") for region in regions]
    flow_run, task_runs, artifacts = prefect_records(prefect_server.api_url, run_id, expected)
    assert flow_run.state.is_completed()
    names = {task.name: task.state.type.value for task in task_runs}
    for region in regions:
        assert names[f"train-{region}"] == "COMPLETED" and names[f"predict-{region}"] == "COMPLETED"
    assert {"load-inputs", "write-outputs"} <= set(names)
    keys = {artifact.key for artifact in artifacts}
    assert {"forecast-regions", "forecast-plots"} <= keys


def seasonal_naive(history: pd.DataFrame, horizon: pd.DataFrame, as_of: pd.Timestamp, tz: str) -> np.ndarray:
    """Same local slot one week earlier; across a multi-week horizon, the last observed week repeated."""
    wall = history["ts"].dt.tz_convert(tz).dt.tz_localize(None)
    by_wall = pd.Series(history["orders"].to_numpy(), index=wall).groupby(level=0).last()
    target = horizon["ts"].dt.tz_convert(tz).dt.tz_localize(None)
    weeks = ((horizon["ts"] - as_of) // pd.Timedelta(days=7)) + 1
    return by_wall.reindex(target - pd.to_timedelta(weeks * 7, unit="D")).to_numpy()


def test_forecast_beats_the_seasonal_naive_on_the_held_out_weeks(holdout, demo_dir):
    out, _ = holdout
    as_of = pd.Timestamp(HOLDOUT_AS_OF)
    actual = pd.read_csv(demo_dir / "orders.csv")
    actual["ts"] = pd.to_datetime(actual["ts"], utc=True, format="ISO8601")
    zones = pd.read_csv(demo_dir / "regions.csv").set_index("region")["timezone"]
    joined = pd.read_parquet(out / "forecasts.parquet").merge(actual, on=["region", "ts"])
    naive = []
    for region, rows in joined.groupby("region"):
        history = actual.loc[(actual["region"] == region) & (actual["ts"] < as_of)]
        naive.append(pd.Series(seasonal_naive(history, rows, as_of, zones[region]), index=rows.index))
    joined["naive"] = pd.concat(naive)
    joined = joined.dropna(subset=["naive"])
    assert len(joined) > 11 * 21 * 48
    model_wape, naive_wape = wape(joined["orders"], joined["forecast"]), wape(joined["orders"], joined["naive"])
    print(f"held-out WAPE: forecast {model_wape:.3f}, seasonal naive {naive_wape:.3f}")
    assert model_wape < 0.9 * naive_wape

    # without a backtest, each region's expected WAPE is its model's error over the weeks held out
    # to calibrate its intervals, shown with `~`; it is close to what the next weeks brought
    regions = read_run(out)["regions"]
    assert {r["expected_from"] for r in regions} == {"held-out weeks"}
    expected = np.mean([r["expected_wape"] for r in regions])
    realized = np.mean([wape(rows["orders"], rows["forecast"]) for _, rows in joined.groupby("region")])
    print(f"mean WAPE per region: expected {expected:.3f}, realized {realized:.3f}")
    assert 0.75 * realized < expected < 1.33 * realized
    _, result = holdout
    berlin = next(line for line in result.stdout.splitlines() if line.startswith("berlin-mitte "))
    assert berlin.split()[3].startswith("~0.")


def test_failing_regions_fall_back_and_a_transient_error_is_retried(small_demo_dir, prefect_server, tmp_path):
    """One run: berlin-mitte fails in training, nyc-midtown in prediction (both get the seasonal
    naive), london-soho's first training attempt hits a transient error and is retried."""
    out = tmp_path / "out"
    faults = "train:berlin-mitte,predict:nyc-midtown,train:london-soho:transient"
    result = run_cli("forecast", *table_args(small_demo_dir), "--horizon-days", "7", "--out", str(out),
                     env={"ORDERCAST_FAULTS": faults})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "berlin-mitte (fallback): train: InjectedFault" in result.stderr
    assert "nyc-midtown (fallback): predict: InjectedFault" in result.stderr
    assert "(1008 rows, 3/3 regions, 2 from the seasonal naive fallback)" in result.stdout

    forecasts = pd.read_parquet(out / "forecasts.parquet")
    by_region = forecasts.groupby("region").agg(rows=("ts", "size"), fallback=("fallback", "all"),
                                                model=("model", "first"))
    assert by_region["rows"].tolist() == [336, 336, 336]
    assert by_region["fallback"].to_dict() == {"berlin-mitte": True, "london-soho": False, "nyc-midtown": True}
    assert set(by_region.loc[["berlin-mitte", "nyc-midtown"], "model"]) == {"seasonal_naive"}
    table = read_table_db(read_run(out)["configuration"]["db"])
    assert table.groupby("region")["fallback"].all().to_dict() == {
        "berlin-mitte": True, "london-soho": False, "nyc-midtown": True}

    run_id = read_run(out)["run_id"]
    expected = ["train-berlin-mitte", "fallback-berlin-mitte", "train-london-soho", "predict-london-soho",
                "train-nyc-midtown", "predict-nyc-midtown", "fallback-nyc-midtown"]
    flow_run, task_runs, artifacts = prefect_records(prefect_server.api_url, run_id, expected)
    assert flow_run.state.is_failed() and "berlin-mitte (fallback)" in flow_run.state.message
    runs = {task.name: task for task in task_runs}
    for failed in ("train-berlin-mitte", "predict-nyc-midtown"):
        assert runs[failed].state.type.value == "FAILED"
        assert runs[failed].run_count == 1  # a model error is not retried
    for region in ("berlin-mitte", "nyc-midtown"):
        assert runs[f"fallback-{region}"].state.type.value == "COMPLETED"
        assert set(runs[f"fallback-{region}"].tags) == {"model:seasonal_naive", "fallback"}
    assert "predict-berlin-mitte" not in runs  # nothing to predict with after a failed training
    assert runs["train-london-soho"].state.type.value == "COMPLETED"
    assert runs["train-london-soho"].run_count == 2  # the transient error was retried once
    assert set(runs["train-nyc-midtown"].tags) == {"model:ensemble"}  # the region is in the name
    summary = json.loads(next(a for a in artifacts if a.key == "forecast-regions").data)
    troubled = {row["region"]: (row["status"], row["task_run_id"]) for row in summary if row["status"] != "ok"}
    assert troubled == {"berlin-mitte": ("fallback", str(runs["train-berlin-mitte"].id)),
                        "nyc-midtown": ("fallback", str(runs["predict-nyc-midtown"].id))}
    assert all("InjectedFault" in row["error"] for row in summary if row["status"] != "ok")
    london = next(row for row in summary if row["region"] == "london-soho")
    assert london["expected_from"] == "held-out weeks" and 0 < london["expected_wape"] < 1


def test_invalid_input_writes_nothing_unless_invalid_regions_are_skipped(small_demo_dir, prefect_server, tmp_path):
    lines = (small_demo_dir / "orders.csv").read_text().splitlines()
    (tmp_path / "orders.csv").write_text("\n".join(lines + [lines[5]]) + "\n")  # row 5 again
    out = tmp_path / "out"
    args = table_args(small_demo_dir)
    args[args.index("--orders") + 1] = str(tmp_path / "orders.csv")
    runs_before = _flow_run_count()
    result = run_cli("forecast", *args, "--out", str(out))
    assert result.returncode == 1
    assert _flow_run_count() == runs_before  # refused before any flow run started: no Failed run in the UI
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: orders.csv: rows 5 and {len(lines)}: duplicate (region, ts) "
                           f"(region={lines[5].split(',')[0]}, ts={lines[5].split(',')[1]})"]  # as written in the file
    assert "Traceback" not in result.stderr
    assert not out.exists()  # refused before the run started: not even its lock file

    bad_region = lines[5].split(",")[0]
    result = run_cli("forecast", *args, "--out", str(out), "--horizon-days", "7", "--skip-invalid-regions",
                     "--verbose")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Task run 'train-" in result.stderr  # --verbose: every log line in the terminal too
    assert f"{bad_region} (invalid): invalid input: orders.csv: rows 5 and {len(lines)}: duplicate" in result.stderr
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    assert bad_region not in set(forecasts["region"]) and forecasts["region"].nunique() == 2
    statuses = {status["region"]: status["status"] for status in read_run(out)["regions"]}
    assert statuses[bad_region] == "invalid" and sorted(statuses.values()) == ["invalid", "ok", "ok"]
    failures = run_cli("failures", read_run(out)["run_id"])
    assert failures.returncode == 2 and f"{bad_region}: skipped, its inputs are invalid" in failures.stdout


def test_no_train_refuses_without_stored_models(small_demo_dir, prefect_server, tmp_path):
    """(`--no-train` reusing stored models is checked in test_per_region_as_of.py.)"""
    common = [*table_args(small_demo_dir), "--horizon-days", "7", "--as-of", "2026-10-19T00:00:00+00:00"]
    empty_home = run_cli("forecast", *common, "--no-train", "--out", str(tmp_path / "none"),
                         env={"ORDERCAST_HOME": str(tmp_path / "fresh-home")})
    assert empty_home.returncode == 1
    assert "--no-train: no stored model" in empty_home.stderr and "run once without --no-train" in empty_home.stderr
    assert [path.name for path in (tmp_path / "none").iterdir() if not path.name.startswith(".")] == []


def test_demo_command_writes_data_then_forecasts(prefect_server, tmp_path):
    home = tmp_path / "home"
    result = run_cli("demo", "--regions", "3", "--years", "0.5", "--horizon-days", "7",
                     env={"ORDERCAST_HOME": str(home)})
    assert result.returncode == 0, result.stderr[-3000:]
    out = home / "demo" / "out"
    assert (home / "demo" / "data" / "orders.csv").exists()
    assert f"Forecasts:  {out / 'forecasts.parquet'} (1008 rows, 3/3 regions)" in result.stdout
    assert "Flow run:   http://127.0.0.1:" in result.stdout and "Prefect UI: http://127.0.0.1:" in result.stderr
    assert len(list((out / "plots").glob("staffing_*.png"))) == 3  # the demo ships a staffing table
    assert len(list((out / "plots").glob("*.png"))) == 6
    assert "Next 7 days: driver-hours per region" in result.stdout
    assert (home / "demo" / "data" / "staffing.csv").exists() and (out / "staffing.parquet").exists()
    # a second `ordercast demo` reuses this data: test_cli.py::test_demo_reuses_its_data_and_writes_the_staffing_table_it_lacks


def test_accuracy_scores_the_stored_vintage_against_the_orders_that_arrived(holdout, demo_dir):
    out, _ = holdout
    result = run_cli("accuracy", "--orders", str(demo_dir / "orders.csv"), "--regions",
                     str(demo_dir / "regions.csv"), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Scored 1 vintage; WAPE over the orders since" in result.stdout and (out / "plots" / "accuracy.png").exists()
    by_vintage = pd.read_parquet(out / "accuracy.parquet")
    assert set(by_vintage["age"]) == {"d1", "d2-7", "d8-21"}
    assert by_vintage.groupby("region")["slots"].sum().eq(21 * 48).all()
    actual = pd.read_csv(demo_dir / "orders.csv")
    actual["ts"] = pd.to_datetime(actual["ts"], utc=True, format="ISO8601")
    joined = pd.read_parquet(out / "forecasts.parquet").merge(actual, on=["region", "ts"])
    region = joined["region"].iloc[0]
    rows = joined.loc[joined["region"] == region]
    recent = rows.loc[rows["ts"] > rows["ts"].max() - pd.Timedelta(days=14)]
    scored = pd.read_parquet(out / "accuracy_regions.parquet").set_index("region").loc[region]
    assert scored["recent_wape"] == pytest.approx(wape(recent["orders"], recent["forecast"]))
    assert pd.isna(scored["promised_wape"]) and not scored["flagged"]  # no backtest, no promise


def _flow_run_count() -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.count_flow_runs()
