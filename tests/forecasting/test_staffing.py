"""Staffing rules: the newsvendor requirement per slot, the shift plan and the input checks."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.errors import ConfigError, DataError
from forecasting.staffing import (
    SERVICE_LEVELS,
    RegionStaffing,
    check_against_slot,
    drivers_needed,
    load_published,
    load_staffing,
    plan_shifts,
    staff_region,
)

GRID_COLUMNS = [f"p{q * 100:g}" for q in SERVICE_LEVELS]


def region(**overrides) -> RegionStaffing:
    values = dict(region="north", orders_per_driver_hour=2.0, driver_hour_cost=15.0, late_order_cost=10.0)
    return RegionStaffing(**{**values, **overrides})


def forecast_frame(means: np.ndarray, *, start: str = "2024-03-04T00:00:00+00:00", tz: str = "Europe/Berlin",
                   slot_minutes: int = 30) -> pd.DataFrame:
    """One region's forecast with Poisson quantiles on the staffing grid."""
    ts = pd.date_range(start, periods=len(means), freq=f"{slot_minutes}min")
    local = ts.tz_convert(tz)
    frame = pd.DataFrame({"region": "north", "ts": ts, "as_of": ts[0], "forecast": means,
                          "local_start": [t.isoformat() for t in local]})
    for q, column in zip(SERVICE_LEVELS, GRID_COLUMNS):
        frame[column] = stats.poisson.ppf(q, np.maximum(means, 1e-9))
    return frame


@pytest.mark.parametrize("grid, tolerance", [(np.round(np.arange(0.005, 0.996, 0.005), 3), 0.005),
                                             (SERVICE_LEVELS, 0.05)])
def test_requirement_matches_a_brute_force_search_of_expected_cost(grid, tolerance):
    """For Poisson orders, the rule's drivers cost no more than the cheapest count found by trying
    every one (up to what a quantile grid can tell of the distribution's tails)."""
    capacity_per_driver = 1.5  # 3 orders per driver-hour, 30-minute slots
    orders = np.arange(0, 300)
    found = []
    for mean, late_cost, hour_cost in itertools.product((0.7, 4.0, 11.0, 30.0, 80.0), (4.0, 10.0, 40.0),
                                                        (6.0, 15.0)):
        staffing = region(orders_per_driver_hour=3.0, driver_hour_cost=hour_cost, late_order_cost=late_cost)
        weights = stats.poisson.pmf(orders, mean)

        def cost(drivers: int) -> float:
            room = drivers * capacity_per_driver
            late = np.maximum(orders - room, 0)
            idle_hours = np.maximum(room - orders, 0) / staffing.orders_per_driver_hour
            return float(np.sum(weights * (late * late_cost + idle_hours * hour_cost)))

        best = min(range(100), key=cost)
        frame = pd.DataFrame({f"p{q * 100:g}": [stats.poisson.ppf(q, mean)] for q in grid})
        at_level = stats.poisson.ppf(staffing.service_level, mean)
        rule = drivers_needed(frame, np.array([at_level]), capacity_per_driver, staffing)[0]
        assert cost(rule) <= cost(best) * (1 + tolerance), (mean, late_cost, hour_cost, rule, best)
        found.append(rule == best)
    assert np.mean(found) >= 0.9


def test_dearer_late_orders_never_lower_the_requirement():
    means = np.random.default_rng(1).uniform(0, 40, 96)
    frame = forecast_frame(means)
    previous = None
    for late_cost in (2.0, 5.0, 10.0, 20.0, 50.0, 200.0):
        plan = staff_region(frame, region(late_order_cost=late_cost), None, slot_minutes=30, notice_hours=48,
                            time_limit=10, run_id="r")
        drivers = plan.staffing["drivers"].to_numpy()
        if previous is not None:
            assert (drivers >= previous).all()
        previous = drivers
    assert previous.sum() > 0


def test_min_and_max_drivers_hold_in_the_requirement_and_the_plan():
    means = np.concatenate([np.zeros(20), np.full(20, 60.0), np.zeros(8)])
    plan = staff_region(forecast_frame(means), region(min_drivers=1, max_drivers=12), None, slot_minutes=30,
                        notice_hours=48, time_limit=10, run_id="r")
    drivers = plan.staffing["drivers"]
    assert drivers.min() == 1 and drivers.max() == 12
    assert plan.staffing["scheduled_drivers"].max() <= 12
    assert (plan.staffing["scheduled_drivers"] >= drivers).all()


def test_shifts_cover_every_slot_with_allowed_lengths_and_local_starts():
    means = np.tile(np.concatenate([np.full(22, 1.0), np.full(6, 25.0), np.full(8, 5.0), np.full(6, 35.0),
                                    np.full(6, 8.0)]), 3)
    staffing = region(min_shift_hours=2, max_shift_hours=4, shift_start_step=1.0)
    plan = staff_region(forecast_frame(means), staffing, None, slot_minutes=30, notice_hours=48,
                        time_limit=20, run_id="r")
    rows = plan.staffing
    assert (rows["scheduled_drivers"] >= rows["drivers"]).all()
    assert plan.summary["uncovered_driver_hours"] == 0
    shifts = plan.shifts
    start = pd.to_datetime(shifts["shift_start"], format="ISO8601")
    end = pd.to_datetime(shifts["shift_end"], format="ISO8601")
    hours = (end - start).dt.total_seconds() / 3600
    assert hours.between(2, 4).all()
    assert (start.dt.minute == 0).all()  # on the hour, local time (the step is one hour)
    assert shifts["shift_start"].str.endswith("+01:00").all()  # Berlin in March, before the clock change
    # The driver-slots of the shifts add up to the drivers scheduled per slot.
    assert (shifts["drivers"] * hours * 2).sum() == rows["scheduled_drivers"].sum()
    excess = ((rows["scheduled_drivers"] - rows["drivers"]).clip(lower=0).sum()) / 2
    assert plan.summary["excess_driver_hours"] == pytest.approx(excess)


def test_published_shifts_are_kept_and_nothing_is_added_inside_the_notice_period():
    means = np.full(48 * 4, 20.0)  # four days
    frame = forecast_frame(means)
    published = pd.DataFrame({"region": ["north"], "shift_start": [pd.Timestamp("2024-03-04T10:00Z")],
                              "shift_end": [pd.Timestamp("2024-03-04T14:00Z")], "drivers": [3]})
    plan = staff_region(frame, region(), published, slot_minutes=30, notice_hours=48, time_limit=20, run_id="r")
    shifts = plan.shifts
    kept = shifts[shifts["published"]]
    assert kept[["shift_start", "shift_end", "drivers"]].values.tolist() == [
        ["2024-03-04T11:00:00+01:00", "2024-03-04T15:00:00+01:00", 3]]
    added = pd.to_datetime(shifts.loc[~shifts["published"], "shift_start"], utc=True, format="ISO8601")
    assert len(added) and (added >= pd.Timestamp("2024-03-06T00:00Z")).all()
    inside = plan.staffing["ts"] < pd.Timestamp("2024-03-06T00:00Z")
    scheduled = plan.staffing.loc[inside, "scheduled_drivers"]
    assert set(scheduled.unique()) == {0, 3}  # only the published shift in the first two days
    assert plan.summary["uncovered_driver_hours"] > 0


def test_time_limit_returns_a_plan_that_still_covers_every_slot():
    rng = np.random.default_rng(3)
    requirement = rng.integers(0, 30, 48 * 7)
    allowed = np.ones(len(requirement), dtype=bool)
    plan = plan_shifts(requirement, allowed, list(range(4, 13)), np.zeros(len(requirement), dtype="int64"),
                       None, time_limit=1e-6)
    assert plan.status.startswith("time limit")
    assert (plan.cover >= requirement).all()
    assert set(plan.shifts["length"]) <= set(range(4, 13))
    optimal = plan_shifts(requirement, allowed, list(range(4, 13)), np.zeros(len(requirement), dtype="int64"),
                          None, time_limit=60)
    assert optimal.status == "optimal"
    assert optimal.cover.sum() <= plan.cover.sum()


def test_service_level_outside_the_quantiles_is_clipped_with_a_warning_naming_the_region():
    frame = forecast_frame(np.full(48, 10.0))
    plan = staff_region(frame, region(late_order_cost=1000.0), None, slot_minutes=30, notice_hours=48,
                        time_limit=10, run_id="r")
    assert plan.summary["service_level"] == 0.95
    assert plan.warnings and "'north'" in plan.warnings[0] and "0.95" in plan.warnings[0]
    flat = frame.assign(**{column: frame["forecast"] for column in GRID_COLUMNS})  # no calibrated intervals
    plan = staff_region(flat, region(), None, slot_minutes=30, notice_hours=48, time_limit=10, run_id="r")
    assert plan.warnings == ["region 'north': its forecast has no calibrated intervals (too little history): "
                             "staffed on the point forecast, without margin for uncertainty"]


def test_staffing_table_errors_name_file_row_and_value(tmp_path):
    good = "region,orders_per_driver_hour,driver_hour_cost,late_order_cost,min_drivers,max_drivers\n"
    cases = {
        "north,2.5,15,10,0,\nsouth,0,15,10,,\n": "staffing.csv: column 'orders_per_driver_hour' row 2: '0' must be > 0",
        "north,2.5,15,10,3,2\n": "column 'max_drivers' row 1: '2' is below min_drivers",
        "north,2.5,15,ten,0,\n": "column 'late_order_cost' row 1: 'ten' is not a number",
        "north,2.5,15,10,1.5,\n": "column 'min_drivers' row 1: '1.5' is not a whole number of drivers",
        "north,2.5,15,10,,\nnorth,3,15,10,,\n": "rows 1 and 2: duplicate region (region=north)",
    }
    for body, message in cases.items():
        path = tmp_path / "staffing.csv"
        path.write_text(good + body)
        with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_staffing(path)
    path.write_text("region,orders_per_driver_hour,driver_hour_cost,late_order_cost,min_shift_hours\n"
                    "north,2,15,10,1.25\n")
    with pytest.raises(DataError, match="'min_shift_hours' row 1: 1.25 is not a multiple of the 30-minute slot"):
        check_against_slot(load_staffing(path), 30)
    with pytest.raises(ConfigError, match="staffing needs slots of at most 60 minutes"):
        check_against_slot(load_staffing(path), 24 * 60)


def test_published_shifts_table_is_checked(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("region,shift_start,shift_end,drivers\nnorth,2024-03-04T10:00:00+01:00,"
                    "2024-03-04T09:00:00+01:00,2\n")
    with pytest.raises(DataError, match="column 'shift_end' row 1: .* is not after shift_start"):
        load_published(path, {"north"})
    path.write_text("region,shift_start,shift_end,drivers\nwest,2024-03-04T10:00:00+01:00,"
                    "2024-03-04T12:00:00+01:00,2\n")
    with pytest.raises(DataError, match="'west' is not a region of the staffing table"):
        load_published(path, {"north"})


def test_stored_forecasts_name_the_nearest_vintages_and_the_url_of_a_sqlite_file(tmp_path):
    from forecasting.staffing_outputs import read_stored_forecasts

    vintages = pd.to_datetime(["2026-10-20T22:00:00Z", "2026-10-23T22:00:00Z", "2026-10-25T23:00:00Z"])
    frame = pd.DataFrame({"region": "berlin", "as_of": vintages, "ts": vintages + pd.Timedelta(hours=1),
                          "forecast": [1.0, 2.0, 3.0]})
    frame.to_parquet(tmp_path / "forecasts.parquet")
    assert read_stored_forecasts(str(tmp_path), "2026-10-24T00:00:00+02:00")["forecast"].tolist() == [2.0]
    with pytest.raises(ConfigError, match=r"no forecasts with as_of 2026-10-24T22:00:00\+00:00; the nearest stored: "
                                          r"2026-10-20T22:00:00\+00:00, 2026-10-23T22:00:00\+00:00, 2026-10-25T23:00"):
        read_stored_forecasts(str(tmp_path), "2026-10-25T00:00:00+02:00")
    (tmp_path / "forecasts.sqlite").write_bytes(b"")
    with pytest.raises(ConfigError, match=f"a SQLite database is passed as its URL, sqlite:///{tmp_path}/forecasts"):
        read_stored_forecasts(str(tmp_path / "forecasts.sqlite"), None)
