"""Accuracy metrics."""
from __future__ import annotations

import numpy as np


def wape(actual, forecast) -> float:
    """Weighted absolute percentage error: sum |forecast - actual| / sum actual."""
    actual = np.asarray(actual, dtype="float64")
    forecast = np.asarray(forecast, dtype="float64")
    total = actual.sum()
    if total <= 0:
        return float("nan")
    return float(np.abs(forecast - actual).sum() / total)
