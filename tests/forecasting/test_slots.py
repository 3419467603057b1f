"""Slots are aligned to each region's local midnight, across DST changes."""
from __future__ import annotations

import pandas as pd
import pytest

from forecasting.errors import ConfigError
from forecasting.slots import Slot


def test_unknown_slot_lists_the_choices():
    with pytest.raises(ConfigError, match="'45min' is not a supported slot; choose one of 5min"):
        Slot.parse("45min")


def test_hour_aliases_and_slots_per_day():
    assert Slot.parse("1h") == Slot("1h", 60)
    assert Slot.parse("60min").per_day == 24
    assert Slot.parse("30min").per_day == 48
    assert Slot.parse("1D").per_day == 1


def test_floor_and_grid_in_local_time():
    ts = pd.Series(pd.to_datetime(["2025-06-01T10:47:00+02:00"], utc=True))
    assert Slot.parse("20min").floor(ts, "Europe/Berlin").iloc[0] == pd.Timestamp("2025-06-01T10:40:00+02:00")
    # Kathmandu is UTC+05:45: its 30-minute slots are not aligned with UTC's.
    floored = Slot.parse("30min").floor(ts, "Asia/Kathmandu").iloc[0]
    assert floored.tz_convert("Asia/Kathmandu").minute in (0, 30)


def test_a_slot_start_is_never_after_its_timestamp_where_midnight_repeats():
    """Havana's clocks go back from 01:00 to 00:00: New York's midnight (04:00 UTC) falls in the
    first of Havana's two midnights, still inside 31 October, whose day (as the grid has it)
    ends at the second. A backtest origin there must not be 1 November, not yet started."""
    daily = Slot.parse("1D")
    cutoff = pd.Timestamp("2026-11-01T04:00:00Z")
    assert daily.floor(pd.Series([cutoff]), "America/Havana").iloc[0] == pd.Timestamp("2026-10-31T04:00:00Z")
    assert daily.first_start_at_or_after(cutoff, "America/Havana") == pd.Timestamp("2026-11-01T05:00:00Z")
    assert daily.floor(pd.Series([cutoff]), "America/New_York").iloc[0] == cutoff
    half_hour = Slot.parse("30min")
    assert half_hour.floor(pd.Series([cutoff + pd.Timedelta(minutes=10)]), "America/New_York").iloc[0] == cutoff


def test_sub_day_grid_keeps_alignment_across_dst():
    slot = Slot.parse("30min")
    grid = slot.grid(pd.Timestamp("2025-03-30T00:00:00+01:00"), pd.Timestamp("2025-03-31T00:00:00+02:00"), "Europe/Berlin")
    assert len(grid) == 46  # a 23-hour local day
    assert all(ts.tz_convert("Europe/Berlin").minute in (0, 30) for ts in grid)


def test_daily_slot_is_a_local_calendar_day():
    slot = Slot.parse("1D")
    grid = slot.grid(pd.Timestamp("2025-10-25T00:00:00+02:00"), pd.Timestamp("2025-10-28T00:00:00+01:00"), "Europe/Berlin")
    lengths = grid.to_series().diff().dropna().tolist()
    assert lengths == [pd.Timedelta(hours=24), pd.Timedelta(hours=25)]  # summer time ends on 2025-10-26
    assert all(ts.tz_convert("Europe/Berlin").hour == 0 for ts in grid)


def test_horizon_has_horizon_days_times_slots_per_day():
    slot = Slot.parse("30min")
    horizon = slot.horizon(pd.Timestamp("2025-03-28T00:00:00+01:00"), 3, "Europe/Berlin")
    assert len(horizon) == 3 * 48
    assert horizon[0] == pd.Timestamp("2025-03-28T00:00:00+01:00")
    at_midnight = Slot.parse("1D").horizon(pd.Timestamp("2025-03-28T04:00:00+00:00"), 3, "America/New_York")
    assert [ts.tz_convert("America/New_York").day for ts in at_midnight] == [28, 29, 30]
    # a daily horizon starts at the region's first local midnight at or after as_of
    later = Slot.parse("1D").horizon(pd.Timestamp("2025-03-28T05:00:00+00:00"), 3, "America/New_York")
    assert [ts.tz_convert("America/New_York").day for ts in later] == [29, 30, 31]
