"""Features for one region, for its history and its forecast horizon.

History features must stay valid across the whole horizon without knowing any order at or
after `as_of`. The choice here: weekly lags of at least the horizon, rounded up to whole
weeks (so each lag is the same local slot of the week), their mean as a seasonal profile,
and the 7-day level seen that many weeks ago. One model then predicts every horizon slot
directly. Orders at or after `as_of` are masked before any feature is computed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import holidays
import numpy as np
import pandas as pd

from forecasting.contract import RegionInfo
from forecasting.slots import Slot

HOLIDAY_WINDOW_DAYS = 7
TRAINING_WEEKS_BEYOND_LAGS = 8
_NEW_MOON = pd.Timestamp("2000-01-06T18:14:00Z")
_SYNODIC_MONTH_DAYS = 29.530588853
TARGET = "orders"
META_COLUMNS = ("ts", TARGET, "is_history")


@dataclass(frozen=True)
class FeatureSpec:
    slot: Slot
    horizon_days: int

    @property
    def lag_weeks(self) -> list[int]:
        first = max(1, math.ceil(self.horizon_days / 7))
        return [first, first + 1, first + 2, first + 3]

    @property
    def min_history_days_for_xgboost(self) -> int:
        """Enough history for every lag plus some weeks of training rows."""
        return 7 * (self.lag_weeks[-1] + TRAINING_WEEKS_BEYOND_LAGS)


@dataclass
class RegionInputs:
    """One region's validated inputs, as stored in its partition."""

    info: RegionInfo
    orders: pd.DataFrame
    weather: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    promotions: pd.DataFrame | None = None


def build_features(inputs: RegionInputs, spec: FeatureSpec, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per slot from the first history slot through the end of the horizon.

    Columns: `ts` (UTC), `orders` (NaN from `as_of` on), `is_history`, then the features.
    """
    tz = inputs.info.timezone
    as_of = pd.Timestamp(as_of).tz_convert("UTC").as_unit("ns")
    inputs = _in_nanoseconds(inputs)
    orders = inputs.orders.loc[inputs.orders["ts"] < as_of].sort_values("ts")
    horizon = spec.slot.horizon(as_of, spec.horizon_days, tz)
    first = orders["ts"].iloc[0] if len(orders) else horizon[0]
    grid = spec.slot.grid(first, horizon[-1] + pd.Timedelta(seconds=1), tz)
    frame = pd.DataFrame({"ts": grid})
    frame = frame.merge(orders[["ts", TARGET]], on="ts", how="left")
    frame[TARGET] = frame[TARGET].astype("float64")
    frame["is_history"] = frame["ts"] < as_of
    frame.loc[~frame["is_history"], TARGET] = np.nan
    frame = frame.loc[frame["is_history"] | frame["ts"].isin(horizon)].reset_index(drop=True)

    local = frame["ts"].dt.tz_convert(tz)
    _add_calendar(frame, local, spec.slot)
    _add_holidays(frame, local, inputs.info.country)
    _add_weather(frame, inputs.weather, spec.slot)
    _add_events(frame, inputs.events, spec.slot)
    _add_promotions(frame, inputs.promotions, spec.slot)
    _add_history(frame, local, spec)
    return frame


def _in_nanoseconds(inputs: RegionInputs) -> RegionInputs:
    """One timestamp resolution for every table (files may store ns, us or ms)."""
    def convert(table: pd.DataFrame | None, columns: tuple[str, ...]) -> pd.DataFrame | None:
        if table is None:
            return None
        return table.assign(**{c: table[c].dt.tz_convert("UTC").dt.as_unit("ns") for c in columns})

    return RegionInputs(inputs.info, convert(inputs.orders, ("ts",)), convert(inputs.weather, ("ts",)),
                        convert(inputs.events, ("start", "end")), convert(inputs.promotions, ("start", "end")))


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in META_COLUMNS]


def _add_calendar(frame: pd.DataFrame, local: pd.Series, slot: Slot) -> None:
    minute_of_day = local.dt.hour * 60 + local.dt.minute
    frame["slot_of_day"] = (minute_of_day // slot.minutes).astype("int64")
    frame["day_of_week"] = local.dt.day_of_week.astype("int64")
    frame["slot_of_week"] = frame["day_of_week"] * slot.per_day + frame["slot_of_day"]
    frame["week_of_year"] = local.dt.isocalendar().week.astype("int64").to_numpy()
    frame["moon_phase"] = ((frame["ts"] - _NEW_MOON) / pd.Timedelta(days=1) % _SYNODIC_MONTH_DAYS) / _SYNODIC_MONTH_DAYS


def _add_holidays(frame: pd.DataFrame, local: pd.Series, country: str | None) -> None:
    days = local.dt.tz_localize(None).dt.normalize()
    day_numbers = (days - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)
    holiday_numbers = np.array([], dtype="int64")
    if country:
        years = range(days.dt.year.min() - 1, days.dt.year.max() + 2)
        calendar = holidays.country_holidays(country, years=years)
        holiday_numbers = np.sort(
            np.array([(pd.Timestamp(d) - pd.Timestamp("1970-01-01")).days for d in calendar], dtype="int64")
        )
    values = day_numbers.to_numpy("int64")
    frame["is_holiday"] = np.isin(values, holiday_numbers).astype("int64")
    if len(holiday_numbers) == 0:
        frame["days_to_holiday"] = HOLIDAY_WINDOW_DAYS
        frame["days_since_holiday"] = HOLIDAY_WINDOW_DAYS
        return
    after = np.searchsorted(holiday_numbers, values, side="left")
    next_day = holiday_numbers[np.minimum(after, len(holiday_numbers) - 1)]
    to_next = np.where(after < len(holiday_numbers), next_day - values, HOLIDAY_WINDOW_DAYS)
    before = np.searchsorted(holiday_numbers, values, side="right") - 1
    last_day = holiday_numbers[np.maximum(before, 0)]
    since_last = np.where(before >= 0, values - last_day, HOLIDAY_WINDOW_DAYS)
    frame["days_to_holiday"] = np.clip(to_next, 0, HOLIDAY_WINDOW_DAYS)
    frame["days_since_holiday"] = np.clip(since_last, 0, HOLIDAY_WINDOW_DAYS)


def _add_weather(frame: pd.DataFrame, weather: pd.DataFrame | None, slot: Slot) -> None:
    """Each weather value is carried forward until the next weather timestamp, within its step."""
    if weather is None:
        return
    columns = [c for c in weather.columns if c not in ("region", "ts")]
    rows = weather.sort_values("ts")
    steps = rows["ts"].diff().dropna()
    step = steps[steps > pd.Timedelta(0)].min() if len(steps) else slot.length
    joined = pd.merge_asof(
        frame[["ts"]], rows[["ts", *columns]], on="ts", direction="backward",
        tolerance=max(step, slot.length) - pd.Timedelta(microseconds=1),
    )
    for column in columns:
        frame[f"weather_{column}"] = joined[column].to_numpy("float64")


def _overlaps(frame: pd.DataFrame, table: pd.DataFrame, slot: Slot) -> np.ndarray:
    """Boolean matrix slots x rows: does the slot [ts, ts + slot) overlap [start, end)?"""
    starts = frame["ts"].to_numpy("datetime64[ns]")[:, None]
    ends = starts + np.timedelta64(slot.minutes, "m")
    return (starts < table["end"].to_numpy("datetime64[ns]")[None, :]) & (
        ends > table["start"].to_numpy("datetime64[ns]")[None, :]
    )


def _add_events(frame: pd.DataFrame, events: pd.DataFrame | None, slot: Slot) -> None:
    if events is None:
        return
    active = _overlaps(frame, events, slot)
    frame["event_any"] = active.any(axis=1).astype("int64")
    for kind in sorted(events["kind"].unique()):
        column = f"event_{_slug(kind)}"
        mask = (events["kind"] == kind).to_numpy()
        frame[column] = active[:, mask].any(axis=1).astype("int64")


def _add_promotions(frame: pd.DataFrame, promotions: pd.DataFrame | None, slot: Slot) -> None:
    if promotions is None:
        return
    active = _overlaps(frame, promotions, slot)
    intensity = np.where(active, promotions["intensity"].to_numpy("float64")[None, :], 0.0)
    frame["promo_intensity"] = intensity.max(axis=1) if intensity.size else 0.0


def _add_history(frame: pd.DataFrame, local: pd.Series, spec: FeatureSpec) -> None:
    """Weekly lags in local wall time (the same slot of the week across DST changes)."""
    wall = local.dt.tz_localize(None)
    history = frame[TARGET].where(frame["is_history"])
    by_wall = history.groupby(wall.to_numpy()).mean()
    daily_slots = 7 * spec.slot.per_day
    level = history.rolling(daily_slots, min_periods=daily_slots // 2).mean()
    level_by_wall = level.groupby(wall.to_numpy()).mean()
    lags = []
    for weeks in spec.lag_weeks:
        lagged = by_wall.reindex(wall - pd.Timedelta(weeks=weeks)).to_numpy("float64")
        frame[f"lag_{weeks}w"] = lagged
        lags.append(lagged)
    stacked = np.vstack(lags)
    counts = np.sum(~np.isnan(stacked), axis=0)
    sums = np.nansum(stacked, axis=0)
    frame["profile_mean"] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    first = spec.lag_weeks[0]
    frame[f"level_7d_lag_{first}w"] = level_by_wall.reindex(wall - pd.Timedelta(weeks=first)).to_numpy("float64")


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_") or "other"
