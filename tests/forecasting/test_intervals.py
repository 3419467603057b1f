"""Horizon days and buckets follow the region's clock, so calibration groups and reports put a
slot in the local day it belongs to on both sides of a clock change."""
from __future__ import annotations

import pandas as pd

from forecasting.intervals import horizon_bucket, horizon_day

BERLIN = "Europe/Berlin"


def local(*stamps: str, zone: str = BERLIN) -> pd.Series:
    return pd.Series([pd.Timestamp(stamp, tz=zone).tz_convert("UTC") for stamp in stamps])


def test_daily_slots_after_a_spring_clock_change_stay_in_their_own_day():
    origin = local("2026-03-28T00:00")[0]  # the clocks go forward on 29 March
    days = local(*[f"2026-03-{day}T00:00" for day in range(28, 32)], *[f"2026-04-0{day}T00:00" for day in range(1, 8)])
    assert horizon_day(days, origin, BERLIN).tolist() == list(range(1, 12))
    assert ((days - origin) // pd.Timedelta(days=1) + 1).tolist()[:4] == [1, 2, 2, 3]  # what counting in UTC gave
    assert horizon_bucket(days, origin, 14, BERLIN).tolist() == ["d1", *["d2-7"] * 6, *["d8-14"] * 4]


def test_sub_day_slots_keep_the_local_day_boundary_in_both_clock_changes():
    spring = local("2026-03-28T00:00")[0]
    slots = local("2026-03-29T23:30", "2026-03-30T00:00", "2026-03-30T00:30")
    assert horizon_day(slots, spring, BERLIN).tolist() == [2, 3, 3]
    autumn = local("2026-10-24T00:00")[0]  # the clocks go back on 25 October
    slots = local("2026-10-25T23:00", "2026-10-25T23:30", "2026-10-26T00:00")
    assert horizon_day(slots, autumn, BERLIN).tolist() == [2, 2, 3]
    assert ((slots - autumn) // pd.Timedelta(days=1) + 1).tolist() == [3, 3, 3]


def test_each_row_is_counted_on_its_own_regions_clock():
    """Berlin's clocks go forward on 29 March, New York's on 8 March: each row crosses its own."""
    origins = pd.concat([local("2026-03-28T00:00"), local("2026-03-07T00:00", zone="America/New_York")])
    slots = pd.concat([local("2026-03-30T00:00"), local("2026-03-09T00:00", zone="America/New_York")])
    zones = pd.Series([BERLIN, "America/New_York"])
    assert horizon_day(slots, origins, zones).tolist() == [3, 3]
    assert horizon_day(slots, origins, BERLIN).tolist() == [3, 2]
