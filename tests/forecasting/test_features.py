"""Features: calendar and holidays in local time, and no look-ahead past `as_of`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from forecasting.contract import InputPaths, RegionInfo, load_dataset
from forecasting.features import (
    DAYS_AHEAD,
    PREVIOUS,
    RECENT_MEAN,
    FeatureSpec,
    RegionInputs,
    at_origin,
    build_features,
    feature_columns,
    lead_view,
    on_a_holiday,
    year_change_column,
)
from forecasting.slots import Slot

SPEC = FeatureSpec(Slot.parse("30min"), horizon_days=21)
AS_OF = pd.Timestamp("2025-12-01T00:00:00+01:00").tz_convert("UTC")


def region_inputs(seed: int = 0) -> RegionInputs:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2025-05-31T22:00Z", "2026-01-09T23:00Z", freq="30min", inclusive="left")
    orders = pd.DataFrame({"ts": ts, "orders": rng.poisson(20, len(ts))})
    weather = pd.DataFrame({"ts": ts[::2], "temperature": rng.normal(10, 5, len(ts[::2])),
                            "precipitation": rng.gamma(1, 1, len(ts[::2]))})
    events = pd.DataFrame({"start": [pd.Timestamp("2025-12-05T18:00Z")], "end": [pd.Timestamp("2025-12-05T21:00Z")],
                           "kind": ["Home Game"]})
    promotions = pd.DataFrame({"start": [pd.Timestamp("2025-12-10T00:00Z")], "end": [pd.Timestamp("2025-12-12T00:00Z")],
                               "intensity": [0.3]})
    return RegionInputs(RegionInfo("berlin", "Europe/Berlin", "DE"), orders, weather, events, promotions)


def test_no_feature_uses_orders_at_or_after_as_of():
    inputs = region_inputs()
    clean = build_features(inputs, SPEC, AS_OF)
    corrupted = inputs.orders.copy()
    after = corrupted["ts"] >= AS_OF
    assert after.sum() > 1000
    corrupted.loc[after, "orders"] = 10**6
    leaked = build_features(RegionInputs(inputs.info, corrupted, inputs.weather, inputs.events, inputs.promotions),
                            SPEC, AS_OF)
    pdt.assert_frame_equal(clean, leaked)
    assert clean.loc[~clean["is_history"], "orders"].isna().all()


def test_a_daily_slot_that_contains_as_of_is_not_history():
    """`1D` with `as_of` at noon: that day's total holds orders after `as_of`, so it is dropped
    (neither history nor horizon), and no feature changes when orders after `as_of` do."""
    inputs = region_inputs()
    daily = FeatureSpec(Slot.parse("1D"), horizon_days=14)
    orders = daily_orders_of(inputs).orders
    noon = pd.Timestamp("2025-12-01T12:00:00+01:00").tz_convert("UTC")
    frame = build_features(RegionInputs(inputs.info, orders, inputs.weather), daily, noon)
    midnight = pd.Timestamp("2025-12-01T00:00:00+01:00").tz_convert("UTC")
    assert frame.loc[frame["is_history"], "ts"].max() == midnight - pd.Timedelta(days=1)
    assert midnight not in set(frame["ts"])
    assert frame.loc[~frame["is_history"], "ts"].iloc[0] == midnight + pd.Timedelta(days=1)
    corrupted = orders.assign(orders=orders["orders"].where(orders["ts"] < midnight, 10**6))
    leaked = build_features(RegionInputs(inputs.info, corrupted, inputs.weather), daily, noon)
    pdt.assert_frame_equal(frame, leaked)


@pytest.mark.parametrize("slot, as_of, past", [
    # daily, one hour after local midnight: the day that contains as_of is partial, so the
    # horizon's last day is 15 days after the last known one
    ("1D", "2025-12-01T01:00:00+01:00", 1),
    # 30 minutes, a week before the spring change: the horizon's last hour in UTC lies two weeks
    # after an hour of wall time that was still ahead of the origin
    ("30min", "2026-03-22T00:00:00+01:00", 2),
])
def test_a_horizon_past_its_last_lead_week_reads_one_week_further_back(slot, as_of, past):
    inputs = region_inputs() if slot != "1D" else daily_orders_of(region_inputs())
    inputs = RegionInputs(inputs.info, extend_to(inputs.orders, "2026-04-30", slot))
    spec = FeatureSpec(Slot.parse(slot), horizon_days=14)
    frame = build_features(inputs, spec, pd.Timestamp(as_of))
    horizon = frame.loc[~frame["is_history"]]
    assert len(horizon) == 14 * spec.slot.per_day
    last = spec.lead_weeks
    assert (horizon["lead_week"] <= last).all()
    # every slot has the level its lead week scales by: masked, it would read as no orders
    levels = [horizon.loc[horizon["lead_week"] == lead, f"level28d_{lead}w"] for lead in range(1, last + 1)]
    assert all(level.notna().all() for level in levels)
    tail = horizon.iloc[-past:]
    before = horizon.iloc[-past - 1]
    assert (tail[f"level28d_{last}w"] == before[f"level28d_{last}w"]).all()
    orders = inputs.orders.set_index("ts")["orders"]
    wall = tail["ts"].dt.tz_convert("Europe/Berlin").dt.tz_localize(None)
    three_weeks_back = (wall - pd.Timedelta(weeks=last + 1)).dt.tz_localize("Europe/Berlin").dt.tz_convert("UTC")
    assert tail[f"lag_{last}w"].tolist() == orders.reindex(three_weeks_back).tolist()
    assert tail[f"lag_{last + 3}w"].isna().all()


def daily_orders_of(inputs: RegionInputs) -> RegionInputs:
    """The region's orders summed into local days (no weather or events)."""
    days = Slot.parse("1D").floor(inputs.orders["ts"], "Europe/Berlin")
    return RegionInputs(inputs.info, inputs.orders.assign(ts=days).groupby("ts", as_index=False)["orders"].sum())


def extend_to(orders: pd.DataFrame, end: str, slot: str) -> pd.DataFrame:
    """The orders repeated week by week (in UTC) up to `end`, for horizons past the sample's end."""
    stop = pd.Timestamp(end, tz="UTC")
    grid = Slot.parse(slot).grid(orders["ts"].iloc[0], stop, "Europe/Berlin")
    values = np.resize(orders["orders"].to_numpy(), len(grid))
    return pd.DataFrame({"ts": grid, "orders": values})


def test_horizon_rows_and_history_rows():
    frame = build_features(region_inputs(), SPEC, AS_OF)
    horizon = frame.loc[~frame["is_history"]]
    assert len(horizon) == 21 * 48
    assert horizon["ts"].iloc[0] == AS_OF
    assert frame.loc[frame["is_history"], "ts"].max() < AS_OF
    # each horizon week reads lags of at least that many weeks, all known at as_of
    weeks_ahead = (horizon["ts"] - AS_OF) // pd.Timedelta(weeks=1) + 1
    assert (horizon["lead_week"] == weeks_ahead).all()
    for lead in (1, 2, 3):
        rows = horizon.loc[horizon["lead_week"] == lead]
        columns = [f"lag_{lead + k}w" for k in range(4)] + [f"level28d_{lead}w", f"level7d_{lead}w"]
        assert rows[columns].notna().all().all()
    assert frame.loc[frame["is_history"], "lead_week"].isna().all()


def test_weekly_lag_is_the_same_local_slot_across_dst():
    frame = build_features(region_inputs(), SPEC, AS_OF)
    orders_by_ts = region_inputs().orders.set_index("ts")["orders"]
    # 2025-11-14 19:00 Berlin (winter time); three weeks earlier is 2025-10-24 19:00 (summer time)
    row = frame.loc[frame["ts"] == pd.Timestamp("2025-11-14T19:00:00+01:00")].iloc[0]
    assert row["lag_3w"] == orders_by_ts[pd.Timestamp("2025-10-24T19:00:00+02:00")]


def test_calendar_holiday_event_and_promotion_features():
    frame = build_features(region_inputs(), SPEC, AS_OF).set_index("ts")
    unity_day = frame.loc[pd.Timestamp("2025-10-03T12:00:00+02:00")]  # German Unity Day, a Friday
    assert unity_day["holiday_german_unity_day"] == 1 and unity_day["holiday_christmas_day"] == 0
    before = frame.loc[pd.Timestamp("2025-09-30T12:00:00+02:00")]
    assert before["holiday_german_unity_day"] == 0 and before["days_to_holiday"] == 3
    after = frame.loc[pd.Timestamp("2025-10-04T12:00:00+02:00")]
    assert after["days_since_holiday"] == 1 and unity_day["days_since_holiday"] == 7  # the day itself not counted
    assert "is_holiday" not in frame  # each holiday by name: an unseen one is not taken for a seen one
    assert unity_day["slot_of_day"] == 24 and unity_day["day_of_week"] == 4
    assert frame.loc[pd.Timestamp("2025-12-05T19:00Z"), "event_home_game"] == 1
    assert frame.loc[pd.Timestamp("2025-12-05T22:00Z"), "event_any"] == 0
    assert frame.loc[pd.Timestamp("2025-12-11T00:00Z"), "promo_intensity"] == pytest.approx(0.3)
    assert 0 <= frame["moon_phase"].min() and frame["moon_phase"].max() < 1


def test_weather_is_carried_forward_within_its_step():
    inputs = region_inputs()
    frame = build_features(inputs, SPEC, AS_OF).set_index("ts")
    hourly = inputs.weather.set_index("ts")["temperature"]
    on_hour = pd.Timestamp("2025-12-03T10:00Z")
    assert frame.loc[on_hour, "weather_temperature"] == hourly[on_hour]
    assert frame.loc[on_hour + pd.Timedelta(minutes=30), "weather_temperature"] == hourly[on_hour]
    local_day = hourly.loc[pd.Timestamp("2025-12-03T00:00+01:00"):pd.Timestamp("2025-12-03T23:00+01:00")]
    assert frame.loc[on_hour, "weather_temperature_day_max"] == local_day.max()
    assert frame.loc[on_hour, "weather_temperature_day_mean"] == pytest.approx(local_day.mean())


def test_feature_columns_exclude_target_and_keys():
    columns = feature_columns(build_features(region_inputs(), SPEC, AS_OF))
    assert "orders" not in columns and "ts" not in columns and "is_history" not in columns
    assert {"slot_of_day", "weather_precipitation", "promo_intensity", "lag_1w", "lag_6w", "lead_week"} <= set(columns)


def test_lead_view_scales_lags_by_the_level_known_then():
    frame = build_features(region_inputs(), SPEC, AS_OF)
    horizon = frame.loc[frame["lead_week"] == 2]
    view, scale = lead_view(horizon, 2)
    assert np.allclose(scale, horizon["level28d_2w"])
    assert np.allclose(view["lag_0"] * scale, horizon["lag_2w"]) and np.allclose(view["lag_3"] * scale, horizon["lag_5w"])
    assert not {"lag_2w", "level28d_2w", "lead_week"} & set(view.columns)


def test_recent_day_is_the_latest_same_time_of_day_known_at_the_origin():
    """Seen from midnight, the first horizon day reads yesterday's slot, the next one the day
    before yesterday's; a training row gets a days-ahead value inside its lead week."""
    inputs = region_inputs()
    frame = build_features(inputs, SPEC, AS_OF)
    orders = inputs.orders.set_index("ts")["orders"]
    horizon = frame.loc[frame["lead_week"] == 1]
    view, scale = lead_view(horizon, 1)
    for offset, days in ((0, 1), (48 + 20, 2)):  # 00:00 of day 1, 10:00 of day 2
        row = horizon.iloc[offset]
        assert view[DAYS_AHEAD].iloc[offset] == days
        assert view["recent_day"].iloc[offset] * scale[offset] == orders[row["ts"] - pd.Timedelta(days=days)]
    training, _ = lead_view(frame.loc[frame["is_history"]].dropna(subset=["level28d_2w"]), 2)
    assert training[DAYS_AHEAD].between(8, 14).all() and training[DAYS_AHEAD].nunique() == 7


def test_the_slot_before_and_the_last_days_mean_are_known_for_the_first_horizon_slot_only():
    """History rows read the slot just before and the mean of the 48 before it; seen from an
    origin (here as a backtest sees a cutoff inside the history), only the first slot after
    it may, and no other model reads them (`lead_view` leaves them out)."""
    inputs = region_inputs()
    orders = inputs.orders.set_index("ts")["orders"].astype("float64")
    frame = build_features(inputs, SPEC, AS_OF)
    row = frame.loc[frame["is_history"]].iloc[500]
    earlier = orders.loc[:row["ts"]].iloc[:-1]
    assert row[PREVIOUS] == earlier.iloc[-1] and row[RECENT_MEAN] == pytest.approx(earlier.iloc[-48:].mean())
    horizon = frame.loc[~frame["is_history"]]
    assert horizon[PREVIOUS].iloc[0] == orders.loc[:AS_OF].iloc[-2] and horizon[PREVIOUS].iloc[1:].isna().all()
    assert horizon[RECENT_MEAN].iloc[0] == pytest.approx(orders.loc[:AS_OF].iloc[-49:-1].mean())
    cutoff = AS_OF - pd.Timedelta(weeks=3)
    seen = at_origin(frame.loc[(frame["ts"] >= cutoff) & frame["is_history"]], cutoff, SPEC, "Europe/Berlin")
    assert seen[PREVIOUS].notna().tolist()[:2] == [True, False] and seen[RECENT_MEAN].iloc[1:].isna().all()
    view, _ = lead_view(horizon, 1)
    assert not {PREVIOUS, RECENT_MEAN} & set(view.columns)


def two_years_of_daily_orders() -> RegionInputs:
    """Daily orders in Tokyo (no DST): 100 a day until May 2024, 50 from June 2024, 80 in 2025."""
    days = pd.date_range("2024-01-01", "2025-07-01", freq="D", tz="Asia/Tokyo")
    orders = np.select([days < pd.Timestamp("2024-06-01", tz="Asia/Tokyo"), days.year == 2024], [100.0, 50.0], 80.0)
    return RegionInputs(RegionInfo("tokyo", "Asia/Tokyo", None), pd.DataFrame({"ts": days.tz_convert("UTC"),
                                                                               "orders": orders}))


def test_year_change_is_how_the_level_moved_over_the_same_weeks_a_year_earlier():
    """Seen from 19 May 2025, 27 May 2025 (lead week 2) gets the 4-week level centred on 28 May
    2024 (17 days at 100, 11 at 50) over the 4-week level that ended on 14 May 2024 (100)."""
    inputs = two_years_of_daily_orders()
    as_of = pd.Timestamp("2025-05-19", tz="Asia/Tokyo").tz_convert("UTC")
    frame = build_features(inputs, FeatureSpec(Slot.parse("1D"), horizon_days=14), as_of)
    row = frame.loc[frame["ts"] == pd.Timestamp("2025-05-27", tz="Asia/Tokyo")].iloc[0]
    assert row["lead_week"] == 2
    assert row[year_change_column(2)] == pytest.approx((17 * 100 + 11 * 50) / 28 / 100)
    first_year = frame["ts"] < pd.Timestamp("2025-01-01", tz="Asia/Tokyo")
    assert frame.loc[first_year, year_change_column(1)].isna().all()
    since_february = frame["ts"] >= pd.Timestamp("2025-02-01", tz="Asia/Tokyo")  # 53 weeks and a level back
    assert frame.loc[since_february, year_change_column(1)].notna().all()


def test_year_change_is_not_read_past_the_origin_even_a_year_ahead():
    """A backtest builds the features once and views each cutoff's horizon with `at_origin`: over
    a horizon of a year, the slots whose year-back level would reach past the cutoff lose it,
    exactly as when the features are built at the cutoff."""
    steady = two_years_of_daily_orders()
    noisy = steady.orders.assign(orders=np.random.default_rng(0).poisson(80, len(steady.orders)))
    inputs = RegionInputs(steady.info, noisy)
    spec = FeatureSpec(Slot.parse("1D"), horizon_days=364)
    cutoff = pd.Timestamp("2024-07-01", tz="Asia/Tokyo").tz_convert("UTC")
    at_cutoff = build_features(inputs, spec, cutoff)
    later = build_features(inputs, spec, inputs.orders["ts"].iloc[-1])
    horizon = at_cutoff.loc[~at_cutoff["is_history"], "ts"]
    seen = at_origin(later.loc[later["ts"].isin(horizon)], cutoff, spec, "Asia/Tokyo")
    columns = [year_change_column(lead) for lead in range(1, spec.lead_weeks + 1)]
    known = at_cutoff.loc[~at_cutoff["is_history"], columns].notna().any(axis=1)
    assert 0 < known.sum() < len(known)
    pdt.assert_frame_equal(seen[columns].reset_index(drop=True),
                           at_cutoff.loc[~at_cutoff["is_history"], columns].reset_index(drop=True))


@pytest.mark.parametrize("locale", ["C", "de_DE.UTF-8"])
def test_holiday_columns_do_not_depend_on_the_machines_locale(locale, monkeypatch):
    expected = [c for c in build_features(region_inputs(), SPEC, AS_OF).columns if c.startswith("holiday_")]
    monkeypatch.setenv("LANG", locale)
    monkeypatch.setenv("LC_ALL", locale)
    columns = [c for c in build_features(region_inputs(), SPEC, AS_OF).columns if c.startswith("holiday_")]
    assert columns == expected and "holiday_german_unity_day" in columns


def test_daily_slots_join_weather_read_from_files(tmp_path):
    """Tables read from CSV files, `1D` slots and weather: every timestamp is joined at one
    resolution (pandas 3 builds the daily grid in seconds, the weather comes in nanoseconds)."""
    # a fixed -06:00 offset all year, as in a real extract: 01:00 local in summer, summed into its local day
    days = pd.date_range("2025-01-01", "2025-06-30", freq="D").strftime("%Y-%m-%dT00:00:00-06:00")
    pd.DataFrame({"region": "loop", "ts": days, "orders": 100}).to_csv(tmp_path / "orders.csv", index=False)
    pd.DataFrame({"region": "loop", "ts": days, "temperature": 20.0}).to_csv(tmp_path / "weather.csv", index=False)
    pd.DataFrame({"region": ["loop"], "timezone": ["America/Chicago"], "country": ["US"]}).to_csv(
        tmp_path / "regions.csv", index=False)
    daily = FeatureSpec(Slot.parse("1D"), horizon_days=14)
    dataset = load_dataset(InputPaths(str(tmp_path / "orders.csv"), weather=str(tmp_path / "weather.csv"),
                                      regions=str(tmp_path / "regions.csv")), daily.slot)
    inputs = RegionInputs(dataset.regions["loop"], dataset.orders.drop(columns="region"),
                          dataset.weather.drop(columns="region"))
    frame = build_features(inputs, daily, pd.Timestamp("2025-06-17T05:00:00Z"))  # the horizon ends with the data
    assert (frame["weather_temperature"] == 20.0).all()
    assert (~frame["is_history"]).sum() == 14


def test_a_country_with_its_subdivision_adds_the_regional_holidays():
    """Munich (`DE-BY`) has All Saints' Day off; Berlin (`DE`) does not."""
    berlin = region_inputs()
    munich = RegionInputs(RegionInfo("munich", "Europe/Berlin", "DE-BY"), berlin.orders, berlin.weather)
    in_berlin, in_munich = build_features(berlin, SPEC, AS_OF), build_features(munich, SPEC, AS_OF)
    assert "holiday_all_saints_day" in in_munich and "holiday_all_saints_day" not in in_berlin
    local_day = in_munich["ts"].dt.tz_convert("Europe/Berlin").dt.strftime("%m-%d")
    assert on_a_holiday(in_munich)[local_day == "11-01"].all() and not on_a_holiday(in_berlin)[local_day == "11-01"].any()
    assert on_a_holiday(in_munich)[local_day == "10-03"].all()  # the nation's holidays stay
