"""Backtests of every candidate model at many past cutoffs, model selection per region,
and interval calibration, for one region at a time.

Leakage: features are built once from the whole history. That is safe because every
history feature of a slot reads orders at least a whole horizon (in weeks) earlier, so the
features of a slot in the horizon of cutoff `c` only read orders before `c`; each model is
fitted only on rows before its fit cutoff. `tests/forecasting/test_backtest.py` corrupts
every order after a cutoff and checks that the cutoff's forecasts do not change.

Honest selection: models are compared, and intervals calibrated, on the earlier cutoffs;
the chosen model is then scored on the last `holdout_cutoffs` cutoffs it never saw. That
held-out score is the expected accuracy that reports quote.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecasting.errors import ConfigError
from forecasting.features import TARGET, FeatureSpec, RegionInputs, build_features, feature_columns
from forecasting.intervals import calibrate, horizon_bucket, quantile_column
from forecasting.metrics import bias, coverage, mase, pinball, wape
from forecasting.models import DEFAULT_MODEL, FALLBACK_MODEL, MODELS, create_model, model_spec
from forecasting.slots import Slot

MASE_SCALE_WEEKS = 8


@dataclass(frozen=True)
class BacktestOptions:
    slot: str = "30min"
    horizon_days: int = 21
    models: tuple[str, ...] = tuple(MODELS)
    retrain_every: int = 4
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    holdout_cutoffs: int = 12
    model_threads: int = 1

    def __post_init__(self) -> None:
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


def plan_cutoffs(data_end: pd.Timestamp, slot: Slot, horizon_days: int, count: int, step: pd.Timedelta,
                 dates: list[pd.Timestamp] | None = None) -> list[pd.Timestamp]:
    """Cutoffs (UTC), oldest first: the given dates, or `count` cutoffs `step` apart ending at the
    last cutoff whose whole horizon is observed before `data_end`."""
    if dates:
        return sorted(set(dates))
    if count < 1:
        raise ConfigError(f"--cutoffs must be >= 1, got {count}")
    if step <= pd.Timedelta(0):
        raise ConfigError(f"--cutoff-step must be positive, got {step}")
    last = data_end - pd.Timedelta(days=horizon_days)
    if not slot.is_daily:
        last = last.floor(f"{slot.minutes}min")
    return [last - k * step for k in range(count)][::-1]


def split_cutoffs(cutoffs: list[pd.Timestamp], holdout: int) -> tuple[list[pd.Timestamp], list[pd.Timestamp]]:
    """Selection cutoffs and held-out cutoffs; with too few cutoffs, the last third is held out."""
    if len(cutoffs) <= holdout:
        holdout = max(1, len(cutoffs) // 3)
    if len(cutoffs) == 1:
        return [], list(cutoffs)
    return cutoffs[:-holdout], cutoffs[-holdout:]


@dataclass
class RegionBacktest:
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    selection: dict[str, Any]
    calibration: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def backtest_region(inputs: RegionInputs, cutoffs: list[pd.Timestamp], options: BacktestOptions) -> RegionBacktest:
    """Every candidate model at every usable cutoff, with metrics, selection and intervals."""
    spec = options.spec
    region, tz = inputs.info.region, inputs.info.timezone
    orders = inputs.orders.sort_values("ts")
    data_end = spec.slot.next_start(orders["ts"].iloc[-1], tz)
    frame = build_features(inputs, spec, data_end)
    frame = frame.loc[frame["is_history"]].reset_index(drop=True)
    columns = feature_columns(frame)
    first_lag = f"lag_{spec.lag_weeks[0]}w"
    first_ts = orders["ts"].iloc[0]
    notes: list[str] = []
    fitted: dict[str, Any] = {}
    pieces = []
    for index, cutoff in enumerate(cutoffs):
        horizon = spec.slot.horizon(cutoff, options.horizon_days, tz)
        rows = frame.loc[frame["ts"].isin(horizon)]
        if len(rows) < len(horizon) or rows[TARGET].isna().any() or horizon[-1] >= data_end:
            notes.append(f"cutoff {cutoff.isoformat()}: horizon not fully observed, skipped")
            continue
        history = frame.loc[(frame["ts"] < cutoff) & frame[TARGET].notna()]
        history_days = (cutoff - first_ts) / pd.Timedelta(days=1)
        if history_days < 7:
            continue
        for name in options.models:
            spec_of_model = model_spec(name)
            if spec_of_model.learned:
                if history_days < spec.min_history_days_for_xgboost:
                    continue
                if name not in fitted or index % options.retrain_every == 0:
                    train = history.loc[history[first_lag].notna()]
                    fitted[name] = create_model(name, options.model_threads).fit(train[columns], train[TARGET])
            else:
                fitted[name] = create_model(name).fit(history[columns], history[TARGET])
            pieces.append(pd.DataFrame({
                "region": region, "ts": rows["ts"].to_numpy(), "cutoff": cutoff, "model": name,
                "actual": rows[TARGET].to_numpy("float64"), "forecast": fitted[name].predict(rows[columns]),
            }))
    if not pieces:
        notes.append("too little history for any cutoff: the forecast uses the seasonal naive")
        return RegionBacktest(_empty_predictions(options), _empty_metrics(), {
            "region": region, "model": FALLBACK_MODEL, "wape": float("nan"), "selection_wape": float("nan"),
            "scores": {}}, None, notes)
    predictions = pd.concat(pieces, ignore_index=True)
    predictions["ts"] = pd.to_datetime(predictions["ts"], utc=True)
    predictions["bucket"] = horizon_bucket(predictions["ts"], predictions["cutoff"], options.horizon_days)
    selection_cutoffs, holdout_cutoffs = split_cutoffs(sorted(predictions["cutoff"].unique()), options.holdout_cutoffs)
    predictions = _add_intervals(predictions, selection_cutoffs, options.quantiles)
    selection = _select(predictions, selection_cutoffs, holdout_cutoffs, region)
    chosen = predictions.loc[predictions["model"] == selection["model"]]
    calibration = calibrate(chosen["forecast"], chosen["actual"], chosen["bucket"].to_numpy()).to_dict() \
        if len(chosen) else None
    metrics = _metrics(predictions, orders, options)
    return RegionBacktest(predictions.drop(columns="bucket"), metrics, selection, calibration, notes)


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
        calibration = calibrate(source["forecast"], source["actual"], source["bucket"].to_numpy())
        subset = predictions.loc[rows]
        values[rows] = calibration.quantiles(subset["forecast"].to_numpy(), subset["bucket"].to_numpy(), quantiles)
    return predictions.assign(**{name: values[:, i] for i, name in enumerate(names)})


def _select(predictions: pd.DataFrame, selection_cutoffs: list, holdout_cutoffs: list, region: str) -> dict[str, Any]:
    """The model with the lowest WAPE over the selection cutoffs they all share."""
    chosen_from = predictions.loc[predictions["cutoff"].isin(selection_cutoffs)]
    scores: dict[str, float] = {}
    if not chosen_from.empty:
        per_model = chosen_from.groupby("model")["cutoff"].apply(set)
        shared = set.intersection(*per_model.tolist())
        common = chosen_from.loc[chosen_from["cutoff"].isin(shared)]
        scores = {model: wape(rows["actual"], rows["forecast"]) for model, rows in common.groupby("model")}
    if scores:
        model = min(scores, key=lambda name: (scores[name], name != DEFAULT_MODEL, name))
    else:
        models = set(predictions["model"])
        model = DEFAULT_MODEL if DEFAULT_MODEL in models else FALLBACK_MODEL
    held_out = predictions.loc[predictions["cutoff"].isin(holdout_cutoffs) & (predictions["model"] == model)]
    return {
        "region": region,
        "model": model,
        "wape": wape(held_out["actual"], held_out["forecast"]) if len(held_out) else float("nan"),
        "selection_wape": scores.get(model, float("nan")),
        "scores": scores,
    }


def _metrics(predictions: pd.DataFrame, orders: pd.DataFrame, options: BacktestOptions) -> pd.DataFrame:
    """WAPE, bias, MASE, pinball loss and coverage per model, cutoff and horizon bucket."""
    names = [quantile_column(q) for q in options.quantiles]
    scales = {cutoff: _naive_mae(orders, cutoff) for cutoff in predictions["cutoff"].unique()}
    rows = []
    for (model, cutoff, bucket), group in predictions.groupby(["model", "cutoff", "bucket"], sort=True):
        quantile_values = group[names].to_numpy()
        has_intervals = not np.isnan(quantile_values).any()
        rows.append({
            "region": group["region"].iloc[0], "model": model, "cutoff": cutoff, "horizon_bucket": bucket,
            "wape": wape(group["actual"], group["forecast"]), "bias": bias(group["actual"], group["forecast"]),
            "mase": mase(group["actual"], group["forecast"], scales[cutoff]),
            "pinball": pinball(group["actual"], quantile_values, options.quantiles) if has_intervals else np.nan,
            "coverage": coverage(group["actual"], quantile_values[:, 0], quantile_values[:, -1])
            if has_intervals and len(names) > 1 else np.nan,
        })
    return pd.DataFrame(rows)


def _naive_mae(orders: pd.DataFrame, cutoff: pd.Timestamp) -> float:
    """In-sample MAE of the weekly seasonal naive over the weeks before a cutoff (the MASE scale)."""
    recent = orders.loc[(orders["ts"] < cutoff) & (orders["ts"] >= cutoff - pd.Timedelta(weeks=MASE_SCALE_WEEKS + 1))]
    series = recent.set_index("ts")["orders"].astype("float64")
    week_before = series.reindex(series.index - pd.Timedelta(weeks=1)).to_numpy()
    errors = np.abs(series.to_numpy() - week_before)
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")


def _empty_predictions(options: BacktestOptions) -> pd.DataFrame:
    columns = ["region", "ts", "cutoff", "model", "actual", "forecast", *map(quantile_column, options.quantiles)]
    return pd.DataFrame(columns=columns)


def _empty_metrics() -> pd.DataFrame:
    return pd.DataFrame(columns=["region", "model", "cutoff", "horizon_bucket", "wape", "bias", "mase", "pinball",
                                 "coverage"])
