"""Backtests of every candidate model at many past cutoffs, model selection per region,
and interval calibration, for one region at a time (the `pooled` candidate's forecasts, made
across regions by `forecasting.pooled`, come in ready to score).

Leakage: features are built once from the whole history, then each cutoff's horizon rows
are seen from the region's origin there, the start of its slot that contains the cutoff
(`features.at_origin`: lead weeks chosen, and any lag or level that reads a slot ending after
the origin masked, as across a spring DST change); each model is fitted only on slots that
ended by its fit cutoff. `tests/forecasting/test_backtest.py`
corrupts every order after a cutoff and checks that the cutoff's forecasts do not change.

Honest selection: models are compared, and intervals calibrated, on the earlier cutoffs where
every candidate runs; the chosen model is then scored on the last `holdout_cutoffs` cutoffs it
never saw. That held-out score is the expected accuracy that reports quote. The choice does
not chase noise: it is made among the learned candidates where they ran (else the baselines),
and the preferred one (`ensemble`, the combined candidate) is kept unless another beats it by
more than one standard error of their per-cutoff WAPE difference.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from forecasting.errors import ConfigError
from forecasting.features import (
    TARGET,
    FeatureSpec,
    RegionInputs,
    at_origin,
    build_features,
    feature_columns,
    training_rows,
)
from forecasting.intervals import Calibration, calibrate, horizon_bucket, quantile_column
from forecasting.metrics import bias, coverage, mase, pinball, wape
from forecasting.models import (
    DEFAULT_MODEL,
    FALLBACK_MODEL,
    MODELS,
    SHORT_HISTORY_MODEL,
    ModelSpec,
    create_model,
    model_spec,
)
from forecasting.slots import Slot, localize_wall
from forecasting.staffing import RegionStaffing, outcomes_against_actual

STAFFING_METRICS = ("staffing_cost", "short_driver_hours", "idle_driver_hours")
MASE_SCALE_WEEKS = 8
MIN_HISTORY_DAYS = 7
MIN_SELECTION_CUTOFFS = 8
# with fewer cutoffs, the residuals miss the outer deciles of how a horizon's bias varies
# between origins: each cutoff's bias becomes spread instead (`intervals.calibrate`'s `origins`)
MIN_CUTOFFS_FOR_EMPIRICAL_BIAS = 10
# combined first, then simpler; the model trained on other regions last
PREFERENCE = ("ensemble", "recursive_ensemble", "recent_ensemble", "profile_ensemble", "seasonal_naive",
              "weekly_profile", "recent_profile", "xgboost", "recursive", "pooled")


@dataclass(frozen=True)
class BacktestOptions:
    slot: str = "30min"
    horizon_days: int = 21
    models: tuple[str, ...] = tuple(MODELS)
    retrain_every: int = 4
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    holdout_cutoffs: int = 12
    model_threads: int = 1
    staffing: str | None = None  # staffing table: each model's staffing is scored too
    select_by: str = "wape"  # or "cost": the staffing cost, with the same rule

    def __post_init__(self) -> None:
        if self.select_by not in ("wape", "cost"):
            raise ConfigError(f"--select-by must be wape or cost, got '{self.select_by}'")
        if self.select_by == "cost" and not self.staffing:
            raise ConfigError("--select-by cost needs --staffing FILE (the costs come from the staffing table)")
        unknown = [name for name in self.models if name not in MODELS]
        if unknown:
            raise ConfigError(f"--models: unknown model '{unknown[0]}'; known models: {', '.join(MODELS)}")
        if self.retrain_every < 1:
            raise ConfigError(f"--retrain-every must be >= 1, got {self.retrain_every}")
        if self.holdout_cutoffs < 1:
            raise ConfigError(f"--holdout-cutoffs must be >= 1, got {self.holdout_cutoffs}")

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(Slot.parse(self.slot), self.horizon_days)


def for_regions(options: BacktestOptions, regions: int) -> BacktestOptions:
    """The options for a run of `regions` regions: without `pooled` for one region (it would
    repeat `xgboost`), unless it is the only candidate asked for."""
    return options if regions > 1 else _without(options, lambda spec: spec.pooled)


def for_slot(options: BacktestOptions) -> BacktestOptions:
    """The options for the run's slot: without the sub-day models (`recursive` and its
    ensemble) for daily slots, unless nothing else was asked for."""
    return _without(options, lambda spec: spec.sub_day) if options.spec.slot.is_daily else options


def _without(options: BacktestOptions, leave_out: Callable[[ModelSpec], bool]) -> BacktestOptions:
    """`options` without the candidates that `leave_out` picks, unless none would be left."""
    kept = tuple(name for name in options.models if not leave_out(model_spec(name)))
    return replace(options, models=kept) if kept else options


def plan_cutoffs(data_end: pd.Timestamp, slot: Slot, horizon_days: int, count: int, step: pd.Timedelta,
                 dates: list[pd.Timestamp] | None = None, data_start: pd.Timestamp | None = None,
                 timezone: str | None = None) -> tuple[list[pd.Timestamp], int]:
    """Cutoffs (UTC), oldest first: the given dates, or `count` cutoffs `step` apart ending at the
    last cutoff whose whole horizon is observed before `data_end`. With daily slots, a
    `timezone` and a `step` of whole days, the cutoffs are local midnights there, stepped in
    calendar days (a UTC step would put half of them an hour off midnight under DST, and each
    of their scored days one day further ahead). Cutoffs with less than `MIN_HISTORY_DAYS` of
    data before them (from `data_start`) are dropped; returns the cutoffs and how many were dropped."""
    if dates:
        planned = sorted(set(dates))
    else:
        if count < 1:
            raise ConfigError(f"--cutoffs must be >= 1, got {count}")
        if step <= pd.Timedelta(0):
            raise ConfigError(f"--cutoff-step must be positive, got {step}")
        if slot.is_daily and timezone and step % pd.Timedelta(days=1) == pd.Timedelta(0):
            last_day = data_end.tz_convert(timezone).tz_localize(None).normalize() - pd.Timedelta(days=horizon_days)
            days = pd.Series([last_day - k * step for k in range(count)][::-1])
            planned = list(localize_wall(days, timezone))
        else:
            last = data_end - pd.Timedelta(days=horizon_days)
            if not slot.is_daily:
                last = last.floor(f"{slot.minutes}min")
            planned = [last - k * step for k in range(count)][::-1]
    if data_start is None:
        return planned, 0
    kept = [c for c in planned if c >= data_start + pd.Timedelta(days=MIN_HISTORY_DAYS)]
    return kept, len(planned) - len(kept)


def split_cutoffs(cutoffs: list[pd.Timestamp], holdout: int) -> tuple[list[pd.Timestamp], list[pd.Timestamp]]:
    """Selection cutoffs and held-out cutoffs; with too few cutoffs for `holdout` plus
    `MIN_SELECTION_CUTOFFS`, a third is held out (at least one)."""
    if len(cutoffs) == 1:
        return [], list(cutoffs)
    if len(cutoffs) < holdout + MIN_SELECTION_CUTOFFS:
        holdout = max(1, len(cutoffs) // 3)
    return cutoffs[:-holdout], cutoffs[-holdout:]


@dataclass
class RegionBacktest:
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    selection: dict[str, Any]
    calibration: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def backtest_region(inputs: RegionInputs, cutoffs: list[pd.Timestamp], options: BacktestOptions,
                    staffing: RegionStaffing | None = None, pooled: pd.DataFrame | None = None) -> RegionBacktest:
    """Every candidate model at every cutoff where all of them can run, with metrics,
    selection and intervals. Candidates that cannot run at enough cutoffs are left out,
    and the notes say why. With `staffing` (the region's row of the staffing table), each
    prediction's staffing is costed against the actual orders too (`outcomes_against_actual`).
    The `pooled` candidate's forecasts come made (`ts`, `cutoff`, `forecast`: see
    `forecasting.pooled.backtest_pooled`), since its model is trained on every region."""
    spec = options.spec
    region = inputs.info.region
    orders = inputs.orders.sort_values("ts")
    past = region_history(inputs, cutoffs, options)
    columns = feature_columns(past.frame)
    notes = past.notes
    candidates, usable = _candidates_and_cutoffs(list(past.horizons), past.history_days_at, options, notes)
    candidates = _with_pooled_forecasts(candidates, usable, pooled, notes)
    horizons: dict[pd.Timestamp, pd.DataFrame] = {}
    ahead: dict[str, dict[pd.Timestamp, np.ndarray]] = {}  # forecasts made by a model's last fit
    pieces = []
    for index, cutoff in enumerate(usable):
        rows = past.horizon_rows(cutoff, spec) if cutoff not in horizons else horizons.pop(cutoff)
        history = past.before(cutoff)
        forecasts: dict[str, np.ndarray] = {}
        for name in _fit_order(candidates):
            members = model_spec(name).members
            if members and all(m in forecasts for m in members):
                forecasts[name] = np.mean([forecasts[m] for m in members], axis=0)
                continue
            if model_spec(name).pooled:
                forecasts[name] = _pooled_at(pooled, cutoff, rows["ts"])
                continue
            if cutoff not in ahead.get(name, {}):
                # a learned model serves the cutoffs up to its next refit, predicted together
                learned = model_spec(name).learned
                rows_of = training_rows(history, past.origins[cutoff], spec.slot) if learned else history
                model = create_model(name, options.model_threads).fit(rows_of[columns], rows_of[TARGET])
                served = usable[index + 1:index + options.retrain_every] if learned else []
                for later in served:
                    if later not in horizons:
                        horizons[later] = past.horizon_rows(later, spec)
                ahead[name] = dict(zip([cutoff, *served], model.predict_horizons(
                    [rows[columns], *(horizons[later][columns] for later in served)])))
            forecasts[name] = ahead[name].pop(cutoff)
        pieces += [pd.DataFrame({"region": region, "ts": rows["ts"].to_numpy(), "cutoff": cutoff,
                                 "origin": past.origins[cutoff], "model": name,
                                 "actual": rows[TARGET].to_numpy("float64"), "forecast": forecasts[name]})
                   for name in candidates]
    if not pieces:
        notes.append(f"too little history for any cutoff: the forecast uses {SHORT_HISTORY_MODEL}")
        return RegionBacktest(_empty_predictions(options), _empty_metrics(), {
            "region": region, "model": SHORT_HISTORY_MODEL, "wape": float("nan"), "selection_wape": float("nan"),
            "scores": {}}, None, notes)
    predictions = pd.concat(pieces, ignore_index=True)
    predictions["ts"] = pd.to_datetime(predictions["ts"], utc=True)
    predictions["bucket"] = horizon_bucket(predictions["ts"], predictions["origin"], options.horizon_days,
                                           past.timezone)
    selection_cutoffs, holdout_cutoffs = split_cutoffs(usable, options.holdout_cutoffs)
    if len(selection_cutoffs) < MIN_SELECTION_CUTOFFS:
        notes.append(f"model chosen on {len(selection_cutoffs)} cutoffs (fewer than {MIN_SELECTION_CUTOFFS}): "
                     "the choice may be noisy")
    predictions = _add_intervals(predictions, selection_cutoffs, options.quantiles)
    if staffing is not None:
        predictions = predictions.join(outcomes_against_actual(predictions, predictions["actual"].to_numpy(), staffing,
                                                               spec.slot.minutes))
    elif options.select_by == "cost":
        notes.append("no row in the staffing table: the model is chosen by WAPE")
    score = "cost" if staffing is not None and options.select_by == "cost" else "wape"
    selection = _select(predictions, selection_cutoffs, holdout_cutoffs, region, score)
    chosen = predictions.loc[predictions["model"] == selection["model"]]
    calibration = _calibration(chosen).to_dict() if len(chosen) else None
    metrics = _metrics(predictions, orders, options)
    return RegionBacktest(predictions.drop(columns="bucket"), metrics, selection, calibration, notes)


@dataclass
class RegionHistory:
    """A region's history features (built once, from all its orders) and, per cutoff, its
    origin and the horizon to score: the cutoffs with a week of data before them and the whole
    horizon observed. A cutoff's origin is the start of the region's slot that contains it: with
    `1D` slots in a run across time zones, the region's own midnight of the cutoff's local date
    when the cutoff is a later region's midnight (the slot in progress is the horizon's first,
    its orders unseen)."""

    frame: pd.DataFrame
    slot_ends: pd.Series
    timezone: str
    origins: dict[pd.Timestamp, pd.Timestamp]
    history_days_at: dict[pd.Timestamp, float]
    horizons: dict[pd.Timestamp, pd.DatetimeIndex]
    notes: list[str]

    def before(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        """The slots that ended by `cutoff` and have orders: what a model fitted then may see."""
        return self.frame.loc[(self.slot_ends <= cutoff).to_numpy() & self.frame[TARGET].notna().to_numpy()]

    def horizon_rows(self, cutoff: pd.Timestamp, spec: FeatureSpec) -> pd.DataFrame:
        """The cutoff's horizon, its lags and levels seen from its origin (`at_origin`)."""
        return at_origin(self.frame.loc[self.frame["ts"].isin(self.horizons[cutoff])], self.origins[cutoff], spec,
                         self.timezone)


def region_history(inputs: RegionInputs, cutoffs: list[pd.Timestamp], options: BacktestOptions) -> RegionHistory:
    """The region's history features and scored horizons at `cutoffs` (shared with the pooled backtest)."""
    spec, tz = options.spec, inputs.info.timezone
    orders = inputs.orders.sort_values("ts")
    data_end = spec.slot.next_start(orders["ts"].iloc[-1], tz)
    frame = build_features(inputs, spec, data_end)
    frame = frame.loc[frame["is_history"]].reset_index(drop=True)
    origins = dict(zip(cutoffs, spec.slot.floor(pd.Series(cutoffs, dtype="datetime64[ns, UTC]"), tz)))
    history_days_at = {c: (origins[c] - orders["ts"].iloc[0]) / pd.Timedelta(days=1) for c in cutoffs}
    horizons, notes = _observed_horizons(frame, origins, history_days_at, options, tz)
    return RegionHistory(frame, spec.slot.ends(frame["ts"], tz), tz, origins, history_days_at, horizons, notes)


def _with_pooled_forecasts(candidates: list[str], usable: list[pd.Timestamp], pooled: pd.DataFrame | None,
                           notes: list[str]) -> list[str]:
    """The candidates, without `pooled` (and a note why) where its forecasts miss a cutoff."""
    if not any(model_spec(name).pooled for name in candidates):
        return candidates
    missing = [c for c in usable if pooled is None or not (pooled["cutoff"] == c).any()]
    if not missing:
        return candidates
    notes.append(f"left out: pooled (no pooled forecast for this region at {len(missing)} of {len(usable)} "
                 "cutoffs: too early for its training rows, or its training failed, see backtest-pooled)")
    return [name for name in candidates if not model_spec(name).pooled]


def _pooled_at(pooled: pd.DataFrame, cutoff: pd.Timestamp, starts: pd.Series) -> np.ndarray:
    """The pooled model's forecasts of this region at `cutoff`, in the order of `starts`."""
    at_cutoff = pooled.loc[pooled["cutoff"] == cutoff]
    known = pd.Series(at_cutoff["forecast"].to_numpy(), index=pd.DatetimeIndex(at_cutoff["ts"]).as_unit("ns"))
    values = known.reindex(pd.DatetimeIndex(starts).as_unit("ns")).to_numpy("float64")
    if np.isnan(values).any():
        raise RuntimeError(f"the pooled forecasts at cutoff {cutoff.isoformat()} miss "
                           f"{int(np.isnan(values).sum())} slots of the horizon")
    return values


def _observed_horizons(frame: pd.DataFrame, origins: dict[pd.Timestamp, pd.Timestamp], history_days_at: dict,
                       options: BacktestOptions, tz: str) -> tuple[dict[pd.Timestamp, pd.DatetimeIndex], list[str]]:
    """The horizon (from its origin) of each cutoff with a week of history before it and its
    whole horizon observed, oldest first; one note per reason a cutoff was skipped."""
    spec = options.spec
    skipped = {"less than a week of this region's data before it": 0,
               "horizon reaches past the end of the data": 0, "horizon has missing slots": 0}
    observed = {}
    for cutoff, origin in origins.items():
        horizon = spec.slot.horizon(origin, options.horizon_days, tz)
        values = frame.loc[frame["ts"].isin(horizon), TARGET]
        if history_days_at[cutoff] < MIN_HISTORY_DAYS:
            skipped["less than a week of this region's data before it"] += 1
        elif horizon[-1] > frame["ts"].iloc[-1]:
            skipped["horizon reaches past the end of the data"] += 1
        elif len(values) < len(horizon) or values.isna().any():
            skipped["horizon has missing slots"] += 1
        else:
            observed[cutoff] = horizon
    notes = [f"{count} cutoff(s) skipped: {reason}" for reason, count in skipped.items() if count]
    return observed, notes


def _candidates_and_cutoffs(observed: list[pd.Timestamp], history_days_at: dict, options: BacktestOptions,
                            notes: list[str]) -> tuple[list[str], list[pd.Timestamp]]:
    """The candidates to compare and the cutoffs where every one of them runs. A candidate
    that needs more history than leaves `MIN_SELECTION_CUTOFFS` selection cutoffs is left
    out, with a note, unless nothing is left without it."""
    needed = options.spec.min_history_days_for_xgboost
    candidates = list(options.models)
    learned = [name for name in candidates if model_spec(name).learned]
    with_learned = [c for c in observed if history_days_at[c] >= needed]
    selection_with_learned = len(split_cutoffs(with_learned, options.holdout_cutoffs)[0]) if with_learned else 0
    baselines = [name for name in candidates if name not in learned]
    if learned and with_learned != observed:
        if selection_with_learned >= MIN_SELECTION_CUTOFFS or not baselines:
            notes.append(f"{len(observed) - len(with_learned)} cutoff(s) skipped: less than the {needed} days of "
                         f"history that {', '.join(learned)} need")
            return candidates, with_learned
        first = f"; the region has {max(history_days_at[c] for c in observed):.0f} days before its last usable " \
                f"cutoff" if observed else ""
        notes.append(f"left out of the selection: {', '.join(learned)} (need {needed} days of history before a "
                     f"cutoff, which leaves {selection_with_learned} selection cutoff(s), fewer than "
                     f"{MIN_SELECTION_CUTOFFS}{first})")
        return baselines, observed
    return candidates, observed


def _fit_order(candidates: list[str]) -> list[str]:
    """Single models first, so a combination can average its members' forecasts."""
    return sorted(candidates, key=lambda name: bool(model_spec(name).members))


def _add_intervals(predictions: pd.DataFrame, selection_cutoffs: list, quantiles: tuple[float, ...]) -> pd.DataFrame:
    """Quantile columns per model, calibrated on that model's selection-cutoff residuals."""
    names = [quantile_column(q) for q in quantiles]
    values = np.full((len(predictions), len(quantiles)), np.nan)
    calibrating = predictions["cutoff"].isin(selection_cutoffs) if selection_cutoffs else \
        pd.Series(True, index=predictions.index)
    for model, rows in predictions.groupby("model").groups.items():
        rows = predictions.index.isin(rows)
        source = predictions.loc[rows & calibrating]
        if source.empty:
            continue
        subset = predictions.loc[rows]
        values[rows] = _calibration(source).quantiles(subset["forecast"].to_numpy(), subset["bucket"].to_numpy(),
                                                      quantiles)
    return predictions.assign(**{name: values[:, i] for i, name in enumerate(names)})


def _calibration(residuals: pd.DataFrame) -> Calibration:
    """One model's intervals from its backtest predictions; with fewer than
    `MIN_CUTOFFS_FOR_EMPIRICAL_BIAS` cutoffs, each cutoff's bias becomes spread."""
    few = residuals["cutoff"].nunique() < MIN_CUTOFFS_FOR_EMPIRICAL_BIAS
    return calibrate(residuals["forecast"], residuals["actual"], residuals["bucket"].to_numpy(),
                     origins=residuals["cutoff"].to_numpy() if few else None)


def _select(predictions: pd.DataFrame, selection_cutoffs: list, holdout_cutoffs: list, region: str,
            score: str = "wape") -> dict[str, Any]:
    """The most preferred model (`PREFERENCE`) whose selection-cutoff WAPE (or, with `score`
    "cost", staffing cost per cutoff) is within one standard error of the best one's; the error
    is that of their per-cutoff differences.

    Where a learned candidate ran, only learned and pooled candidates are chosen from: the
    baselines see no calendar, weather or events, so a quiet autumn can make the seasonal naive
    the clear winner just before the holiday weeks where it is the worst (bench/accuracy.py,
    flights set). They stay in the predictions and metrics, as members of `ensemble` and as the
    fallback. In a young region, where only the baselines and `pooled` run, all compete."""
    chosen_from = predictions.loc[predictions["cutoff"].isin(selection_cutoffs)]
    ran = [name for name in chosen_from["model"].unique() if name in MODELS]
    if any(model_spec(name).learned for name in ran):
        chosen_from = chosen_from.loc[chosen_from["model"].isin(
            [name for name in ran if model_spec(name).uses_lags])]
    scores: dict[str, float] = {}
    model = None
    if not chosen_from.empty:
        per_model = chosen_from.groupby("model")["cutoff"].apply(set)
        shared = set.intersection(*per_model.tolist())
        common = chosen_from.loc[chosen_from["cutoff"].isin(shared)]
        if score == "cost":
            per_cutoff = common.groupby(["cutoff", "model"])["staffing_cost"].sum(min_count=1).unstack("model")
            scores = {name: float(per_cutoff[name].mean()) for name in per_cutoff.columns}
        else:
            scores = {name: wape(rows["actual"], rows["forecast"]) for name, rows in common.groupby("model")}
            per_cutoff = common.groupby(["cutoff", "model"]).apply(
                lambda g: wape(g["actual"], g["forecast"]), include_groups=False).unstack("model")
        model = _within_noise_of_best(per_cutoff, scores)
    if model is None:  # no selection cutoff: the forecast's own default where it ran
        ran_anywhere = set(predictions["model"])
        model = next((name for name in (DEFAULT_MODEL, SHORT_HISTORY_MODEL) if name in ran_anywhere), FALLBACK_MODEL)
    held_out = predictions.loc[predictions["cutoff"].isin(holdout_cutoffs) & (predictions["model"] == model)]
    return {
        "region": region,
        "model": model,
        "wape": wape(held_out["actual"], held_out["forecast"]) if len(held_out) else float("nan"),
        "selection_wape": scores.get(model, float("nan")) if score == "wape" else float("nan"),
        "selected_by": score,
        "scores": scores,
    }


def _within_noise_of_best(per_cutoff: pd.DataFrame, scores: dict[str, float]) -> str | None:
    """Of the models in `per_cutoff` (cutoffs x models WAPE), the most preferred one that the
    best-scoring model does not beat by more than one standard error of the differences. On a
    single cutoff there is no such error, so nothing is shown better: the most preferred stays."""
    if not scores:
        return None
    best = min(scores, key=lambda name: (scores[name], _preference(name)))
    for name in sorted(scores, key=_preference):
        if name == best:
            return best
        difference = (per_cutoff[name] - per_cutoff[best]).dropna()
        if len(difference) < 2:
            return name
        standard_error = float(difference.std(ddof=1)) / np.sqrt(len(difference))
        if float(difference.mean()) <= standard_error:
            return name
    return best


def _preference(name: str) -> tuple[int, str]:
    return (PREFERENCE.index(name) if name in PREFERENCE else len(PREFERENCE), name)


def _metrics(predictions: pd.DataFrame, orders: pd.DataFrame, options: BacktestOptions) -> pd.DataFrame:
    """WAPE, bias, MASE, pinball loss and coverage per model, cutoff and horizon bucket."""
    names = [quantile_column(q) for q in options.quantiles]
    origins = predictions.drop_duplicates("cutoff").set_index("cutoff")["origin"]
    scales = {cutoff: _naive_mae(orders, origin) for cutoff, origin in origins.items()}
    rows = []
    for (model, cutoff, bucket), group in predictions.groupby(["model", "cutoff", "bucket"], sort=True):
        quantile_values = group[names].to_numpy()
        has_intervals = not np.isnan(quantile_values).any()
        staffing = {column: float(group[column].sum(min_count=1)) for column in STAFFING_METRICS
                    if column in group}
        rows.append({
            "region": group["region"].iloc[0], "model": model, "cutoff": cutoff, "horizon_bucket": bucket,
            "wape": wape(group["actual"], group["forecast"]), "bias": bias(group["actual"], group["forecast"]),
            "mase": mase(group["actual"], group["forecast"], scales[cutoff]),
            "pinball": pinball(group["actual"], quantile_values, options.quantiles) if has_intervals else np.nan,
            "coverage": coverage(group["actual"], quantile_values[:, 0], quantile_values[:, -1])
            if has_intervals and len(names) > 1 else np.nan,
            **staffing,
        })
    return pd.DataFrame(rows)


def _naive_mae(orders: pd.DataFrame, origin: pd.Timestamp) -> float:
    """In-sample MAE of the weekly seasonal naive over the weeks before an origin (the MASE scale)."""
    recent = orders.loc[(orders["ts"] < origin) & (orders["ts"] >= origin - pd.Timedelta(weeks=MASE_SCALE_WEEKS + 1))]
    series = recent.set_index("ts")["orders"].astype("float64")
    week_before = series.reindex(series.index - pd.Timedelta(weeks=1)).to_numpy()
    errors = np.abs(series.to_numpy() - week_before)
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")


def _empty_predictions(options: BacktestOptions) -> pd.DataFrame:
    columns = ["region", "ts", "cutoff", "origin", "model", "actual", "forecast",
               *map(quantile_column, options.quantiles)]
    return pd.DataFrame(columns=columns)


def _empty_metrics() -> pd.DataFrame:
    return pd.DataFrame(columns=["region", "model", "cutoff", "horizon_bucket", "wape", "bias", "mase", "pinball",
                                 "coverage"])
