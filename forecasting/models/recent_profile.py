"""Recent profile: the weekly profile (the shape of the last `weeks` weeks) scaled to the level
of the most recent orders, so a level that moved last week or yesterday carries into the
horizon instead of being averaged away.

The level is the ratio of actual to profile orders over the latest slots that hold a day's
worth of the profile's orders (the last 24 hours where every hour is open; further back across
closed nights and weekends; public holidays are skipped, as in the profile), and over at least
7 slots: with daily slots, the last week, not one day's count. On the real sets of
`bench/accuracy.py` it is the strongest baseline where the level drifts and the history is too
short for the learned models.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecasting.features import RECENT_MEAN_MIN_SLOTS
from forecasting.models.weekly_profile import WeeklyProfile, ordinary_orders

DAYS_PER_WEEK = 7


class RecentProfile(WeeklyProfile):
    name = "recent_profile"

    def __init__(self, weeks: int = 4, recent_days: float = 1.0) -> None:
        super().__init__(weeks)
        self.recent_days = recent_days

    def get_params(self) -> dict[str, Any]:
        return {"weeks": self.weeks, "recent_days": self.recent_days}

    def fit(self, features: pd.DataFrame, target: pd.Series) -> RecentProfile:
        super().fit(features, target)
        observed = ordinary_orders(features, target)
        keep = ~np.isnan(observed)
        expected = super().predict(features.loc[keep])[::-1]
        actual = observed[keep][::-1]
        wanted = sum(self.profile_.values()) * self.recent_days / DAYS_PER_WEEK
        count = max(int(np.searchsorted(np.cumsum(expected), wanted)) + 1, RECENT_MEAN_MIN_SLOTS)
        expected_sum = float(expected[:count].sum())
        self.level_ratio_ = float(actual[:count].sum()) / expected_sum if expected_sum > 0 else 1.0
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        self._check_fitted("level_ratio_")
        return super().predict(features) * self.level_ratio_

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "level_ratio": self.level_ratio_}

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        self.level_ratio_ = state["level_ratio"]
