"""Time slots aligned to each region's local midnight.

A sub-day slot starts a whole number of slot lengths after local midnight; a `1D` slot is
a local calendar day (23 or 25 hours long across a DST change). Every supported sub-day
length divides an hour, so DST shifts keep slots aligned. Timestamps are kept in UTC.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.errors import ConfigError

SLOT_MINUTES: dict[str, int] = {
    "5min": 5,
    "10min": 10,
    "15min": 15,
    "20min": 20,
    "30min": 30,
    "60min": 60,
    "1h": 60,
    "1D": 1440,
}
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Slot:
    """A slot length; `alias` is the pandas-style name the user gave."""

    alias: str
    minutes: int

    @classmethod
    def parse(cls, alias: str) -> Slot:
        if alias not in SLOT_MINUTES:
            choices = ", ".join(SLOT_MINUTES)
            raise ConfigError(f"--slot: '{alias}' is not a supported slot; choose one of {choices}")
        return cls(alias, SLOT_MINUTES[alias])

    @property
    def is_daily(self) -> bool:
        return self.minutes == MINUTES_PER_DAY

    @property
    def per_day(self) -> int:
        return MINUTES_PER_DAY // self.minutes

    @property
    def length(self) -> pd.Timedelta:
        """Nominal length (a daily slot may really be 23 or 25 hours)."""
        return pd.Timedelta(minutes=self.minutes)

    def floor(self, ts: pd.Series, tz: str) -> pd.Series:
        """Start (UTC) of the slot that contains each UTC timestamp."""
        local = ts.dt.tz_convert(tz)
        if self.is_daily:
            return _local_midnight(local).dt.tz_convert("UTC")
        into_slot = (
            pd.to_timedelta((local.dt.hour * 60 + local.dt.minute) % self.minutes, unit="min")
            + pd.to_timedelta(local.dt.second, unit="s")
            + pd.to_timedelta(local.dt.microsecond, unit="us")
        )
        return (ts - into_slot).dt.tz_convert("UTC")

    def ends(self, starts: pd.Series, tz: str) -> pd.Series:
        """End (UTC) of each slot starting at a UTC timestamp: the next local midnight for a
        daily slot, start plus the length otherwise."""
        if not self.is_daily:
            return starts + self.length
        next_day = starts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize() + pd.Timedelta(days=1)
        return localize_wall(next_day, tz)

    def on_grid(self, ts: pd.Series, tz: str) -> pd.Series:
        """True where a UTC timestamp starts a slot in the region's local time."""
        return self.floor(ts, tz) == ts

    def grid(self, first: pd.Timestamp, stop: pd.Timestamp, tz: str) -> pd.DatetimeIndex:
        """Slot starts (UTC, nanoseconds) from the slot containing `first` up to, excluding, `stop`.
        (pandas 3 builds a daily range in seconds, which other tables' nanoseconds would not join.)"""
        first, stop = _utc(first), _utc(stop)
        start = self.floor(pd.Series([first]), tz).iloc[0]
        if not self.is_daily:
            return pd.date_range(start, stop, freq=f"{self.minutes}min", inclusive="left", name="ts").as_unit("ns")
        days = pd.date_range(
            start.tz_convert(tz).date(), stop.tz_convert(tz).date() + pd.Timedelta(days=1), freq="D"
        )
        starts = days.tz_localize(tz, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")
        return pd.DatetimeIndex(starts[starts < stop], name="ts").as_unit("ns")

    def first_start_at_or_after(self, when: pd.Timestamp, tz: str) -> pd.Timestamp:
        when = _utc(when)
        start = self.floor(pd.Series([when]), tz).iloc[0]
        if start == when:
            return when
        return self.grid(start, when + pd.Timedelta(days=2), tz)[1]

    def horizon(self, as_of: pd.Timestamp, horizon_days: int, tz: str) -> pd.DatetimeIndex:
        """The `horizon_days` x slots-per-day slots starting at the first slot at or after `as_of`."""
        start = self.first_start_at_or_after(as_of, tz)
        count = horizon_days * self.per_day
        stop = start + pd.Timedelta(days=horizon_days + 2)
        return self.grid(start, stop, tz)[:count]

    def next_start(self, ts: pd.Timestamp, tz: str) -> pd.Timestamp:
        """Start of the slot after the one that starts at `ts`."""
        return self.grid(ts, ts + pd.Timedelta(days=2), tz)[1]


def _utc(when: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(when).tz_convert("UTC").as_unit("ns")


def localize_wall(wall: pd.Series, tz: str) -> pd.Series:
    """UTC instants of naive local wall times: a time skipped by a DST change moves forward
    to the change, and a repeated one is taken at its later occurrence (standard time)."""
    later = np.zeros(len(wall), dtype=bool)
    return wall.dt.tz_localize(tz, ambiguous=later, nonexistent="shift_forward").dt.tz_convert("UTC")


def _local_midnight(local: pd.Series) -> pd.Series:
    """The start of each tz-aware timestamp's local day, as `Slot.grid` has it: where a DST change
    skips midnight, the change; where it repeats midnight (Havana), the later one, so a time
    between the two still belongs to the day before and no start falls after its timestamp."""
    naive_midnight = local.dt.tz_localize(None).dt.normalize()
    tz = local.dt.tz
    midnight = naive_midnight.dt.tz_localize(tz, nonexistent="shift_forward", ambiguous=False)
    early = midnight > local
    if early.any():
        day_before = naive_midnight - pd.Timedelta(days=1)
        midnight = midnight.where(~early, day_before.dt.tz_localize(tz, nonexistent="shift_forward", ambiguous=False))
    return midnight
