"""Accuracy metrics over a set of slots: all are totals over the set, not means of ratios."""
from __future__ import annotations

import numpy as np


def _arrays(*values) -> list[np.ndarray]:
    return [np.asarray(v, dtype="float64") for v in values]


def wape(actual, forecast) -> float:
    """Weighted absolute percentage error: sum |forecast - actual| / sum actual."""
    actual, forecast = _arrays(actual, forecast)
    total = actual.sum()
    return float(np.abs(forecast - actual).sum() / total) if total > 0 else float("nan")


def bias(actual, forecast) -> float:
    """sum (forecast - actual) / sum actual: positive means over-forecasting."""
    actual, forecast = _arrays(actual, forecast)
    total = actual.sum()
    return float((forecast - actual).sum() / total) if total > 0 else float("nan")


def mase(actual, forecast, naive_mae: float) -> float:
    """Mean absolute error scaled by the in-sample MAE of the weekly seasonal naive."""
    actual, forecast = _arrays(actual, forecast)
    return float(np.abs(forecast - actual).mean() / naive_mae) if naive_mae > 0 else float("nan")


def pinball(actual, quantile_forecasts: np.ndarray, quantiles) -> float:
    """Mean pinball (quantile) loss over slots and quantile levels, in orders."""
    actual = np.asarray(actual, dtype="float64")[:, None]
    q = np.asarray(quantiles, dtype="float64")[None, :]
    diff = actual - np.asarray(quantile_forecasts, dtype="float64")
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def coverage(actual, lower, upper) -> float:
    """Share of actuals inside [lower, upper]."""
    actual, lower, upper = _arrays(actual, lower, upper)
    return float(np.mean((actual >= lower) & (actual <= upper)))
