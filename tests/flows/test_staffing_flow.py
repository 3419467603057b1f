"""Staffing through the command line, on a real Prefect server: `forecast --staffing` and a
`retry` of it, the what-if `ordercast staff` from stored forecasts, and bad staffing inputs."""
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from forecasting.demo_data import demo_staffing
from tests.helpers import read_run, run_cli, table_args


def test_forecast_with_staffing_then_a_what_if_with_dearer_late_orders(small_demo_dir, prefect_server, tmp_path):
    regions = pd.read_csv(small_demo_dir / "regions.csv")["region"].tolist()
    staffing = tmp_path / "staffing.csv"
    demo_staffing(regions).to_csv(staffing, index=False)
    out = tmp_path / "out"
    first = run_cli("forecast", *table_args(small_demo_dir), "--horizon-days", "7", "--staffing", str(staffing),
                    "--out", str(out), env={"ORDERCAST_FAULTS": f"train:{regions[0]}"})
    assert first.returncode == 2, first.stderr[-3000:]  # that region falls back, and is staffed on the fallback
    first_run = read_run(out)["run_id"]
    assert set(pd.read_parquet(out / "staffing.parquet")["region"]) == set(regions)
    staffed_on_fallback = pd.read_parquet(out / "staffing.parquet")
    result = run_cli("retry", first_run)  # the same run again: the repaired region is staffed on its new forecast
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Next 7 days: driver-hours per region" in result.stdout
    for region in regions:
        assert f"  {region}" in result.stdout
    restaffed = pd.read_parquet(out / "staffing.parquet")
    assert set(restaffed["run_id"]) == {first_run} and set(restaffed["region"]) == set(regions)
    repaired = restaffed["region"] == regions[0]
    assert not restaffed.loc[repaired, "expected_orders"].equals(
        staffed_on_fallback.loc[staffed_on_fallback["region"] == regions[0], "expected_orders"])
    pd.testing.assert_frame_equal(restaffed.loc[~repaired, ["region", "ts", "drivers"]].reset_index(drop=True),
                                  staffed_on_fallback.loc[staffed_on_fallback["region"] != regions[0],
                                                          ["region", "ts", "drivers"]].reset_index(drop=True))

    forecasts = pd.read_parquet(out / "forecasts.parquet")
    assert {"p5", "p50", "p95"} <= set(forecasts.columns)  # the quantile grid staffing reads
    rows = pd.read_parquet(out / "staffing.parquet")
    assert list(rows.columns[:9]) == ["region", "ts", "local_start", "expected_orders", "orders_at_service_level",
                                      "service_level", "drivers", "as_of", "run_id"]
    assert len(rows) == len(forecasts) and (rows["drivers"] >= 1).all()  # the demo's min_drivers is 1
    assert (rows["scheduled_drivers"] >= rows["drivers"]).all()
    shifts = pd.read_parquet(out / "shifts.parquet")
    hours = (pd.to_datetime(shifts["shift_end"], utc=True, format="ISO8601")
             - pd.to_datetime(shifts["shift_start"], utc=True, format="ISO8601")).dt.total_seconds() / 3600
    assert hours.between(2, 6).all() and not shifts["published"].any()
    week = pd.read_csv(out / "staffing" / f"{regions[0]}.csv")
    assert week.columns[0] == "local_time" and len(week.columns) == 8 and len(week) == 48
    assert (out / "plots" / f"staffing_{regions[0]}.png").stat().st_size > 10_000

    database = sa.create_engine(f"sqlite:///{out / 'forecasts.sqlite'}")
    with database.connect() as connection:
        stored = pd.read_sql_table("staffing", connection)
        assert len(stored) == len(rows)
        assert pd.read_sql_table("shifts", connection)["drivers"].sum() == shifts["drivers"].sum()

    dearer = demo_staffing([*regions, "paris-nord"]).assign(late_order_cost=40)
    dearer.to_csv(staffing, index=False)
    what_if = run_cli("staff", "--forecasts", str(out), "--staffing", str(staffing), "--out", str(tmp_path / "w"))
    assert what_if.returncode == 0, what_if.stderr[-3000:]
    assert "Not staffed (in the staffing table, but no forecast to plan from): paris-nord" in what_if.stderr
    more = pd.read_parquet(tmp_path / "w" / "staffing.parquet")
    assert (more["drivers"].to_numpy() >= rows["drivers"].to_numpy()).all()
    assert more["drivers"].sum() > rows["drivers"].sum()
    assert (more["service_level"] > rows["service_level"]).all()

    broken = run_cli("staff", "--forecasts", str(out), "--staffing", str(staffing), "--out", str(tmp_path / "b"),
                     env={"ORDERCAST_FAULTS": f"staff:{regions[0]}"})
    assert broken.returncode == 2, broken.stderr[-3000:]  # that region fails alone, the others are written
    assert f"error: {regions[0]}: InjectedFault: staff failed for region '{regions[0]}'" in broken.stderr
    written = pd.read_parquet(tmp_path / "b" / "staffing.parquet")
    assert sorted(written["region"].unique()) == sorted(regions[1:])


def test_bad_staffing_inputs_stop_before_anything_runs(small_demo_dir, tmp_path):
    staffing = tmp_path / "staffing.csv"
    staffing.write_text("region,orders_per_driver_hour,driver_hour_cost,late_order_cost\nnyc-midtown,-2,15,10\n")
    out = tmp_path / "out"
    offline = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}  # would fail if anything were contacted
    result = run_cli("forecast", *table_args(small_demo_dir), "--staffing", str(staffing), "--out", str(out),
                     env=offline)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: staffing.csv: column 'orders_per_driver_hour' row 1: '-2' must be > 0; "
        "row [region=nyc-midtown, orders_per_driver_hour=-2, driver_hour_cost=15, late_order_cost=10]")
    assert not out.exists()

    staffing.write_text("region,orders_per_driver_hour,driver_hour_cost,late_order_cost\nnyc-midtown,2,15,10\n")
    daily = run_cli("forecast", *table_args(small_demo_dir), "--slot", "1D", "--staffing", str(staffing),
                    "--out", str(out), env=offline)
    assert daily.returncode == 1
    assert "staffing needs slots of at most 60 minutes" in daily.stderr and not out.exists()

    nowhere = run_cli("staff", "--forecasts", str(tmp_path / "no-forecast"), "--staffing", str(staffing),
                      "--out", str(out), env=offline)
    assert nowhere.returncode == 1 and not out.exists()
    assert nowhere.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'no-forecast'}: no forecasts.parquet here; pass a forecast's OUT folder or a database URL"]
