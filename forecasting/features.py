"""Features for one region, for its history and its forecast horizon.

History features never read an order the forecast could not know at its origin (`as_of`, or
a backtest cutoff). A slot in week `h` of the horizon (its lead week) is predicted from what
was known `h` weeks before it: weekly lags of `h` to `h + 3` weeks (the same local slot of
the week), the region's 4-week and 1-week order level at the lag-`h` slot, and how that
4-week level moved over the same weeks a year earlier (`year_change`, from the second year).
One model per lead week learns from every history row in that same arrangement, so the first
week of the horizon uses last week's orders and the level carries level shifts and trends
forward. Daily lags add recency inside a lead week: the latest same time of day known at the
origin (yesterday's, for tomorrow) and how many days back it is (`lead_view`).
The slot just before (`lag_1s`) and the mean of the slots of the last day (`recent_mean`;
the last week for daily slots) are known at the origin for the first slot of the horizon only:
`forecasting.models.recursive` fills them in, slot by slot, with its own forecasts.
A slot counts as history only when it has ended by the origin (a `1D` slot that contains the
origin is partial and is dropped), and `at_origin` masks any lag that a DST change (or, for
`year_change`, a horizon of almost a year) would otherwise push past the origin.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import holidays
import numpy as np
import pandas as pd

from forecasting.contract import RegionInfo, holiday_area
from forecasting.slots import Slot, localize_wall

HOLIDAY_WINDOW_DAYS = 7
TRAINING_WEEKS_BEYOND_LEADS = 8
DEFAULT_TRAINING_WEEKS = 11  # without a backtest's evidence, the learned default waits for more
LAGS_PER_LEAD = 4
TRAINING_WEEKS = 52
TRAINING_WEEKS_DAILY = 260
LEVEL_DAYS = (28, 7)
LEVEL_FLOOR = 0.01  # orders per slot: the scale of a region that had no orders for weeks
_NEW_MOON = pd.Timestamp("2000-01-06T18:14:00Z")
_SYNODIC_MONTH_DAYS = 29.530588853
TARGET = "orders"
LEAD = "lead_week"
DAYS_AHEAD = "days_ahead"
PREVIOUS = "lag_1s"
RECENT_MEAN = "recent_mean"
RECENT_MEAN_MIN_SLOTS = 7  # daily slots: the mean of the last week, not of one day
HOLIDAY_PREFIX = "holiday_"
META_COLUMNS = ("ts", TARGET, "is_history")
YEAR_WEEKS = 52
# A 4-week level that ends this long before a slot is centred on the same slot a year earlier.
YEAR_BACK = pd.Timedelta(weeks=YEAR_WEEKS) - pd.Timedelta(days=LEVEL_DAYS[0] / 2)
_HISTORY_COLUMN = re.compile(rf"^(lag_\d+[wds]|level\d+d_\d+w|year_change_\d+w|{DAYS_AHEAD}|{RECENT_MEAN})$")


@dataclass(frozen=True)
class FeatureSpec:
    slot: Slot
    horizon_days: int

    @property
    def lead_weeks(self) -> int:
        """Weeks the horizon spans: a slot in week h is predicted from lags of at least h weeks."""
        return max(1, math.ceil(self.horizon_days / 7))

    @property
    def lag_weeks(self) -> list[int]:
        return list(range(1, self.lead_weeks + LAGS_PER_LEAD))

    @property
    def day_lags(self) -> list[int]:
        """Daily lags of the same local slot of the day, 1 day up to the horizon's last lead week."""
        return list(range(1, 7 * self.lead_weeks + 1))

    @property
    def min_history_days_for_xgboost(self) -> int:
        """Enough history for the lead-week lags and levels plus some weeks of training rows."""
        return 7 * (self.lead_weeks + TRAINING_WEEKS_BEYOND_LEADS)

    @property
    def min_history_days_for_default(self) -> int:
        """History from which the learned default is used without a backtest: the lead weeks plus
        11 weeks of training rows (98 days for a 21-day horizon), and with daily slots (one row a
        day) a year. Shorter, `profile_ensemble` forecast better than `ensemble` on most of the
        real sets of `bench/accuracy.py` (BENCHMARKS.md, "A young region"); a backtest decides
        from its own cutoffs instead."""
        days = 7 * (self.lead_weeks + DEFAULT_TRAINING_WEEKS)
        return max(days, 7 * YEAR_WEEKS) if self.slot.is_daily else days


def training_rows(history: pd.DataFrame, origin: pd.Timestamp, slot: Slot) -> pd.DataFrame:
    """The history rows a learned model trains on: the last `TRAINING_WEEKS` before `origin`
    (sub-day slots) or `TRAINING_WEEKS_DAILY` (1D). Level scaling carries older levels anyway,
    and it halves the fit of a 2-year region with no loss of accuracy on the demo."""
    weeks = TRAINING_WEEKS_DAILY if slot.is_daily else TRAINING_WEEKS
    return history.loc[history["ts"] >= origin - pd.Timedelta(weeks=weeks)]


def lag_column(weeks: int) -> str:
    return f"lag_{weeks}w"


def day_lag_column(days: int) -> str:
    return f"lag_{days}d"


def level_column(days: int, lead: int) -> str:
    return f"level{days}d_{lead}w"


def year_change_column(lead: int) -> str:
    return f"year_change_{lead}w"


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

    Columns: `ts` (UTC), `orders` (NaN in the horizon), `is_history`, then the features;
    `lead_week` is set on horizon rows only.
    """
    tz = inputs.info.timezone
    as_of = pd.Timestamp(as_of).tz_convert("UTC").as_unit("ns")
    inputs = _in_nanoseconds(inputs)
    orders = inputs.orders.sort_values("ts")
    horizon = spec.slot.horizon(as_of, spec.horizon_days, tz)
    known = orders.loc[orders["ts"] < as_of, "ts"]
    first = known.iloc[0] if len(known) else horizon[0]
    grid = spec.slot.grid(first, horizon[-1] + pd.Timedelta(seconds=1), tz)
    frame = pd.DataFrame({"ts": grid})
    frame["is_history"] = (spec.slot.ends(frame["ts"], tz) <= as_of).to_numpy()
    frame = frame.loc[frame["is_history"] | frame["ts"].isin(horizon)].reset_index(drop=True)
    frame = frame.merge(orders[["ts", TARGET]], on="ts", how="left")
    frame[TARGET] = frame[TARGET].astype("float64").where(frame["is_history"])
    frame = frame[["ts", TARGET, "is_history"]]

    local = frame["ts"].dt.tz_convert(tz)
    _add_calendar(frame, local, spec.slot)
    _add_holidays(frame, local, inputs.info.country)
    _add_weather(frame, inputs.weather, spec.slot, tz)
    _add_events(frame, inputs.events, spec.slot)
    _add_promotions(frame, inputs.promotions, spec.slot)
    _add_history(frame, local, spec, tz)
    frame[LEAD] = np.nan
    future = ~frame["is_history"]
    return pd.concat([frame.loc[~future], at_origin(frame.loc[future], as_of, spec, tz)])


def at_origin(rows: pd.DataFrame, origin: pd.Timestamp, spec: FeatureSpec, tz: str) -> pd.DataFrame:
    """Rows to predict from `origin`: each gets its lead week (the first whose lag slot had
    ended by then) and its days ahead (the fewest days back to a slot of the same time of day
    that had ended by then), and lags or levels read from a slot that had not are masked.

    A row whose lag slot had not ended even at the last lead week (`_past_the_last_lead_week`)
    is read one week further back."""
    rows = rows.sort_values("ts")
    wall = rows["ts"].dt.tz_convert(tz).dt.tz_localize(None)
    lead = pd.Series(np.nan, index=rows.index, dtype="float64")
    for weeks in reversed(spec.lag_weeks):
        source = localize_wall(wall - pd.Timedelta(weeks=weeks), tz)
        unknown = (spec.slot.ends(source, tz) > origin).to_numpy()
        rows.loc[unknown, lag_column(weeks)] = np.nan
        if weeks <= spec.lead_weeks:
            rows.loc[unknown, [level_column(days, weeks) for days in LEVEL_DAYS]] = np.nan
            lead[~unknown] = weeks
    _past_the_last_lead_week(rows, lead.isna().to_numpy(), spec.lead_weeks)
    rows[LEAD] = lead.fillna(spec.lead_weeks)
    year_back = localize_wall(wall - YEAR_BACK, tz)
    rows.loc[(spec.slot.ends(year_back, tz) > origin).to_numpy(),  # a horizon of almost a year
             [year_change_column(weeks) for weeks in range(1, spec.lead_weeks + 1)]] = np.nan
    after_first = (rows["ts"] > origin).to_numpy()  # the slot before it had not ended by the origin
    rows.loc[after_first, [PREVIOUS, RECENT_MEAN]] = np.nan
    days_ahead = pd.Series(np.nan, index=rows.index, dtype="float64")
    for days in reversed(spec.day_lags):
        source = localize_wall(wall - pd.Timedelta(days=days), tz)
        unknown = (spec.slot.ends(source, tz) > origin).to_numpy()
        rows.loc[unknown, day_lag_column(days)] = np.nan
        days_ahead[~unknown] = days
    rows[DAYS_AHEAD] = days_ahead
    return rows


def _past_the_last_lead_week(rows: pd.DataFrame, past: np.ndarray, last: int) -> None:
    """Fill in the last lead week's lags and levels of `past` rows (sorted by time) from one
    week further back, in place.

    The horizon can reach past what its lead weeks cover: with daily slots, by the day that
    contains an origin after local midnight (it is partial, so neither history nor horizon);
    across a spring clock change, by the hour the local clock skipped. Such a slot's lag at
    the last lead week had not ended by the origin; left masked, the booster would read the level
    floor and forecast no orders. Its lags move one week back instead, and its levels are the
    latest known at the origin (those of the slot before it)."""
    if not past.any():
        return
    lags = [lag_column(weeks) for weeks in range(last, last + LAGS_PER_LEAD)]
    rows.loc[past, lags] = rows.loc[past, lags[1:] + lags[:1]].to_numpy()
    rows.loc[past, lags[-1]] = np.nan
    for column in [level_column(days, last) for days in LEVEL_DAYS]:
        rows[column] = rows[column].where(~past, rows[column].ffill())


def lead_view(features: pd.DataFrame, lead: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The features of slots predicted `lead` weeks ahead, scale-free: lags divided by the
    4-week level known then (returned as the second value, the scale to multiply back).

    Recency inside the lead week: `recent_day` is the latest same time of day known at the
    origin, `days_ahead` days back. Rows to predict have their days ahead from `at_origin`; a
    training row is seen from one origin drawn at random in its lead week (a fixed seed), so
    the booster learns how much yesterday's orders tell about today and about next Sunday."""
    view = features[exogenous_columns(features.columns)].copy()
    levels = features[[c for c in features.columns if c.startswith(f"level{LEVEL_DAYS[0]}d_")]]
    level = features[level_column(LEVEL_DAYS[0], lead)].fillna(levels.mean(axis=1))
    scale = np.maximum(level.to_numpy("float64"), LEVEL_FLOOR)
    scale = np.where(np.isfinite(scale), scale, LEVEL_FLOOR)
    lags = np.column_stack([features[lag_column(lead + k)].to_numpy("float64") for k in range(LAGS_PER_LEAD)])
    lags = lags / scale[:, None]
    for k in range(LAGS_PER_LEAD):
        view[f"lag_{k}"] = lags[:, k]
    view["profile"] = mean_of_known(lags)
    view["recent_level"] = features[level_column(LEVEL_DAYS[1], lead)].to_numpy("float64") / scale
    view["log_level"] = np.log(scale)
    if year_change_column(lead) in features:  # not in the inputs of a model stored before it existed
        view["year_change"] = features[year_change_column(lead)].to_numpy("float64")
    first, last = 7 * (lead - 1) + 1, 7 * lead
    if day_lag_column(last) in features:
        given = features[DAYS_AHEAD].to_numpy("float64")  # made with the daily lags, NaN on history rows
        drawn = np.random.default_rng(lead).integers(first, last + 1, len(features))
        ahead = np.clip(np.where(np.isnan(given), drawn, given), first, last).astype("int64")
        day_lags = np.column_stack([features[day_lag_column(d)].to_numpy("float64") for d in range(first, last + 1)])
        view["recent_day"] = np.take_along_axis(day_lags, (ahead - first)[:, None], axis=1)[:, 0] / scale
        view[DAYS_AHEAD] = ahead
    return view, scale


def exogenous_columns(columns) -> list[str]:
    """The feature columns known for any slot at any origin: calendar, holidays, weather,
    events and promotions (not the lags, levels and lead week)."""
    return [c for c in columns if c != LEAD and not _HISTORY_COLUMN.match(c)]


def mean_of_known(values: np.ndarray) -> np.ndarray:
    """Row means of the known (non-NaN) values; NaN where a row has none, without a warning."""
    counts = np.sum(~np.isnan(values), axis=1)
    return np.where(counts > 0, np.nansum(values, axis=1) / np.maximum(counts, 1), np.nan)


def on_a_holiday(features: pd.DataFrame) -> np.ndarray:
    """True for the slots on a public holiday of the region's country (any `holiday_<name>` set)."""
    columns = [c for c in features.columns if c.startswith(HOLIDAY_PREFIX)]
    if not columns:
        return np.zeros(len(features), dtype=bool)
    return features[columns].to_numpy().any(axis=1)


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
    """One indicator per named holiday (`holiday_<name>`), so a holiday the history never saw
    is not taken for one it did (a bank closed on Labor Day may be open on Columbus Day), and
    the days to the next and since the last holiday of any name, not counting the day itself
    (else these two would again mark every holiday alike)."""
    days = local.dt.tz_localize(None).dt.normalize()
    day_numbers = (days - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)
    values = day_numbers.to_numpy("int64")
    calendar = {}
    if country:
        calendar = _holiday_calendar(country, range(days.dt.year.min() - 1, days.dt.year.max() + 2))
    numbers = {(pd.Timestamp(day) - pd.Timestamp("1970-01-01")).days: name for day, name in calendar.items()}
    for name in sorted(set(numbers.values())):
        days_of_name = np.array([number for number, other in numbers.items() if other == name], dtype="int64")
        frame[f"{HOLIDAY_PREFIX}{_slug(name)}"] = np.isin(values, days_of_name).astype("int64")
    holiday_numbers = np.sort(np.array(list(numbers), dtype="int64"))
    if len(holiday_numbers) == 0:
        frame["days_to_holiday"] = HOLIDAY_WINDOW_DAYS
        frame["days_since_holiday"] = HOLIDAY_WINDOW_DAYS
        return
    after = np.searchsorted(holiday_numbers, values, side="right")
    next_day = holiday_numbers[np.minimum(after, len(holiday_numbers) - 1)]
    to_next = np.where(after < len(holiday_numbers), next_day - values, HOLIDAY_WINDOW_DAYS)
    before = np.searchsorted(holiday_numbers, values, side="left") - 1
    last_day = holiday_numbers[np.maximum(before, 0)]
    since_last = np.where(before >= 0, values - last_day, HOLIDAY_WINDOW_DAYS)
    frame["days_to_holiday"] = np.clip(to_next, 0, HOLIDAY_WINDOW_DAYS)
    frame["days_since_holiday"] = np.clip(since_last, 0, HOLIDAY_WINDOW_DAYS)


def _holiday_calendar(country: str, years: range) -> holidays.HolidayBase:
    """The country's holidays (and its subdivision's, for `DE-BY`) named in US English where the
    package has it, else in the country's own language: never in the language of the machine's
    locale, which would give the same region other feature columns on another machine (an SSH
    worker, say)."""
    nation, subdivision = holiday_area(country)
    languages = holidays.country_holidays(nation)  # no years: only its language attributes are read
    language = "en_US" if "en_US" in languages.supported_languages else languages.default_language
    return holidays.country_holidays(nation, subdiv=subdivision, years=years, language=language)


def _add_weather(frame: pd.DataFrame, weather: pd.DataFrame | None, slot: Slot, tz: str) -> None:
    """Each weather value is carried forward until the next weather timestamp, within its step;
    with sub-day slots also its mean and maximum over the local day (a hot afternoon shapes the
    whole day's orders)."""
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
    day = frame["ts"].dt.tz_convert(tz).dt.date.to_numpy() if not slot.is_daily else None
    for column in columns:
        values = joined[column].astype("float64")
        frame[f"weather_{column}"] = values.to_numpy()
        if day is not None:
            by_day = values.groupby(day)
            frame[f"weather_{column}_day_mean"] = by_day.transform("mean").to_numpy()
            frame[f"weather_{column}_day_max"] = by_day.transform("max").to_numpy()


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


def _add_history(frame: pd.DataFrame, local: pd.Series, spec: FeatureSpec, tz: str) -> None:
    """Weekly lags in local wall time (the same slot of the week across DST changes) and the
    4-week and 1-week order levels at the slot each lead week reads."""
    wall = local.dt.tz_localize(None)
    history = frame[TARGET].where(frame["is_history"])
    by_wall = history.groupby(wall.to_numpy()).mean()
    for weeks in spec.lag_weeks:
        frame[lag_column(weeks)] = by_wall.reindex(wall - pd.Timedelta(weeks=weeks)).to_numpy("float64")
    for days in spec.day_lags:
        frame[day_lag_column(days)] = by_wall.reindex(wall - pd.Timedelta(days=days)).to_numpy("float64")
    frame[DAYS_AHEAD] = np.nan  # set by `at_origin` on the rows to predict
    frame[PREVIOUS] = history.shift(1).to_numpy("float64")
    window = max(spec.slot.per_day, RECENT_MEAN_MIN_SLOTS)
    frame[RECENT_MEAN] = history.rolling(window, min_periods=1).mean().shift(1).to_numpy("float64")
    series = pd.Series(history.to_numpy(), index=pd.DatetimeIndex(frame["ts"]).as_unit("ns"))
    for days in LEVEL_DAYS:
        level = series.rolling(f"{days}D", min_periods=max(1, spec.slot.per_day * min(days, 7) // 2)).mean()
        for lead in range(1, spec.lead_weeks + 1):
            source = localize_wall(wall - pd.Timedelta(weeks=lead), tz).dt.as_unit("ns")
            frame[level_column(days, lead)] = level.reindex(pd.DatetimeIndex(source)).to_numpy("float64")
        if days == LEVEL_DAYS[0]:
            _add_year_change(frame, wall, level, spec, tz)


def _add_year_change(frame: pd.DataFrame, wall: pd.Series, level: pd.Series, spec: FeatureSpec, tz: str) -> None:
    """How the 4-week level moved a year earlier, from the lead week's origin to the slot: the
    level centred on the same slot a year back (`YEAR_BACK`) over the level at the lead-week lag
    slot a year back. It carries seasons longer than a week (a spring decline, a summer dip) to
    a model that has seen them only once or twice; missing in a region's first year."""
    def level_at(offset: pd.Timedelta) -> np.ndarray:
        source = localize_wall(wall - offset, tz).dt.as_unit("ns")
        return level.reindex(pd.DatetimeIndex(source)).to_numpy("float64")

    around = level_at(YEAR_BACK)
    for lead in range(1, spec.lead_weeks + 1):
        before = level_at(pd.Timedelta(weeks=YEAR_WEEKS + lead))
        with np.errstate(divide="ignore", invalid="ignore"):
            frame[year_change_column(lead)] = np.where(before > LEVEL_FLOOR, around / before, np.nan)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_") or "other"
