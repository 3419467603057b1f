"""Prediction intervals from backtest residuals (split conformal).

Residuals (actual - forecast) from backtest cutoffs are grouped by horizon bucket (`d1`,
`d2-7`, `d8-21`) and, within a bucket, by forecast level (quintiles of the forecast, since
count noise grows with the level); each group keeps its empirical residual quantiles on a
grid of 99 levels, so any quantile can be served later. A quantile forecast is the point
forecast plus that group's residual quantile, clipped at 0 and made non-decreasing in q.

The residual quantile at level q is read at rank q(n + 1) of a group's n residuals (split
conformal's finite-sample rule), not at 1 + q(n - 1) (numpy's default), which would make the
band between levels q and 1 - q cover only (n - 1)/(n + 1) of its promise: 0.75 instead of 0.80
for a group of 30. Daily slots have such small groups (one residual per cutoff on day 1).

Residuals of one stale model at a few origins (the forecast's own calibration when no backtest
ran) also carry that model's drift since its fit, which the model fitted at `as_of` does not
have; and a backtest of fewer than 10 cutoffs cannot show how a horizon's bias varies between
origins. There, each origin's relative bias is taken out of the residuals and comes back as
spread (`origin_spread`, the root mean square of those biases, times the forecast), added to the
residual spread in quadrature instead of shifting every quantile the way the drift went.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

LEVELS = np.round(np.arange(1, 100) / 100, 2)
LEVEL_BINS = 5
MIN_RESIDUALS_PER_BIN = 30


def quantile_column(q: float) -> str:
    """Column name of a quantile: 0.1 -> p10, 0.975 -> p97.5."""
    return f"p{q * 100:g}"


def parse_quantiles(text: str) -> tuple[float, ...]:
    values = tuple(sorted({float(part) for part in text.split(",") if part.strip()}))
    if not values or any(not 0 < q < 1 for q in values):
        raise ValueError(f"quantiles must be numbers strictly between 0 and 1, got '{text}'")
    return values


def bucket_names(horizon_days: int) -> list[str]:
    names = ["d1"]
    if horizon_days >= 2:
        names.append(f"d2-{min(7, horizon_days)}" if horizon_days > 2 else "d2")
    if horizon_days >= 8:
        names.append(f"d8-{horizon_days}" if horizon_days > 8 else "d8")
    return names


def horizon_day(ts: pd.Series, origin: pd.Series | pd.Timestamp, timezone: str | pd.Series) -> np.ndarray:
    """Day of the horizon each slot falls in, 1 for the first, counted on the local clock of
    `timezone` (one zone, or one per row): day 2 starts 24 clock hours after the origin, so a
    day with a clock change is 23 or 25 hours long and every later day still starts at the
    origin's local time. A horizon of sub-day slots that crosses a spring change ends one clock
    hour into the day after its last; callers that show days cap them at the horizon."""
    starts = pd.Series(pd.to_datetime(ts, utc=True)).reset_index(drop=True)
    origins = pd.Series(pd.to_datetime(origin, utc=True), index=starts.index) if np.ndim(origin) == 0 \
        else pd.Series(pd.to_datetime(origin, utc=True)).reset_index(drop=True)
    zones = pd.Series(str(timezone), index=starts.index) if np.ndim(timezone) == 0 \
        else pd.Series(timezone).reset_index(drop=True)
    if zones.isna().any():
        raise ValueError("horizon_day: a row has no time zone")
    day = np.zeros(len(starts), dtype="int64")
    for zone, rows in zones.groupby(zones, sort=False).groups.items():
        wall = starts[rows].dt.tz_convert(zone).dt.tz_localize(None)
        wall_origin = origins[rows].dt.tz_convert(zone).dt.tz_localize(None)
        day[rows] = ((wall - wall_origin) // pd.Timedelta(days=1)).to_numpy() + 1
    return np.maximum(day, 1)  # where the clocks go back, the repeated hour is not the day before


def horizon_bucket(ts: pd.Series, origin: pd.Series | pd.Timestamp, horizon_days: int,
                   timezone: str | pd.Series) -> np.ndarray:
    """Bucket of each slot by the local day of the horizon it falls in (`horizon_day`)."""
    return day_bucket(horizon_day(ts, origin, timezone), horizon_days)


def day_bucket(day: np.ndarray, horizon_days: int) -> np.ndarray:
    """Bucket of each day of the horizon (1 for the first)."""
    names = bucket_names(horizon_days)
    index = np.where(day <= 1, 0, np.where(day <= 7, 1, 2))
    return np.asarray(names, dtype=object)[np.minimum(index, len(names) - 1)]


@dataclass
class Calibration:
    """Residual quantiles per (bucket, forecast-level bin), and the relative spread of a whole
    horizon's bias between origins (0 unless calibrated with `origins`)."""

    edges: dict[str, list[float]]
    offsets: dict[str, list[list[float]]]
    residuals: int
    origin_spread: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"edges": self.edges, "offsets": self.offsets, "residuals": self.residuals,
                "origin_spread": self.origin_spread}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Calibration:
        return cls(state["edges"], state["offsets"], state["residuals"], state.get("origin_spread", 0.0))

    def quantiles(self, forecast: np.ndarray, buckets: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
        """Array (rows x quantiles) of quantile forecasts, >= 0 and non-decreasing along q."""
        forecast = np.asarray(forecast, dtype="float64")
        result = np.full((len(forecast), len(quantiles)), np.nan)
        for bucket in np.unique(buckets):
            rows = buckets == bucket
            key = bucket if bucket in self.offsets else list(self.offsets)[-1]  # else the longest horizon seen
            edges = np.asarray(self.edges[key])
            bins = np.searchsorted(edges, forecast[rows], side="right")
            table = np.asarray(self.offsets[key])  # bins x LEVELS
            per_q = np.stack([[np.interp(q, LEVELS, table[b]) for q in quantiles] for b in range(len(table))])
            offsets = per_q[bins]
            if self.origin_spread:
                median = np.array([np.interp(0.5, LEVELS, table[b]) for b in range(len(table))])
                spread = np.outer(forecast[rows], norm.ppf(quantiles) * self.origin_spread)
                deviation = offsets - median[bins, None]
                offsets = median[bins, None] + np.sign(np.asarray(quantiles) - 0.5) * np.hypot(deviation, spread)
            result[rows] = forecast[rows, None] + offsets
        result = np.clip(result, 0.0, None)
        return np.maximum.accumulate(result, axis=1)


def calibrate(forecast: np.ndarray, actual: np.ndarray, buckets: np.ndarray,
              origins: np.ndarray | None = None) -> Calibration:
    """Residual quantiles from out-of-sample predictions of one model in one region; with
    `origins` (each prediction's forecast origin), without each origin's relative bias, which
    becomes `origin_spread` instead. A bias is capped at +-1 (orders doubled, or gone), so an
    origin whose forecasts were all about zero cannot blow the intervals up."""
    forecast = np.asarray(forecast, dtype="float64")
    residual = np.asarray(actual, dtype="float64") - forecast
    origin_spread = 0.0
    if origins is not None:
        _, origin_of = np.unique(origins, return_inverse=True)
        biases = np.clip(np.bincount(origin_of, residual) / np.maximum(np.bincount(origin_of, forecast), 1e-9),
                         -1.0, 1.0)
        residual = residual - biases[origin_of] * forecast
        origin_spread = round(float(np.sqrt(np.mean(np.square(biases)))), 6)
    edges, offsets = {}, {}
    for bucket in np.unique(buckets):
        rows = buckets == bucket
        bins = min(LEVEL_BINS, max(1, int(rows.sum()) // MIN_RESIDUALS_PER_BIN))
        inner = np.unique(np.quantile(forecast[rows], np.linspace(0, 1, bins + 1)[1:-1])) if bins > 1 else np.array([])
        index = np.searchsorted(inner, forecast[rows], side="right")
        table = []
        for b in range(len(inner) + 1):
            chosen = residual[rows][index == b]
            chosen = chosen if len(chosen) else residual[rows]
            table.append(np.quantile(chosen, LEVELS, method="weibull").round(4).tolist())
        edges[str(bucket)] = inner.round(4).tolist()
        offsets[str(bucket)] = table
    return Calibration(edges, offsets, int(len(residual)), origin_spread)
