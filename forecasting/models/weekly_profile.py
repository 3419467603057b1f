"""Weekly profile: each slot gets the mean of the same local slot of the week over the last
`weeks` weeks. A strong simple baseline for delivery orders, steadier than one week alone.
Slots never observed fall back to the mean of the same slot of day, then the overall mean.

It is the profile of an ordinary week: the public holidays of the region's country are left
out (the mean reaches one week further back instead), else one holiday Monday would pull every
Monday of the next `weeks` weeks down. A holiday ahead is forecast as an ordinary day."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.features import on_a_holiday
from forecasting.models.base import ForecastModel

FILE = "profile.json"


class WeeklyProfile(ForecastModel):
    name = "weekly_profile"

    def __init__(self, weeks: int = 4) -> None:
        self.weeks = weeks

    def get_params(self) -> dict[str, Any]:
        return {"weeks": self.weeks}

    def fit(self, features: pd.DataFrame, target: pd.Series) -> WeeklyProfile:
        rows = pd.DataFrame({
            "slot_of_week": features["slot_of_week"].to_numpy(),
            "slot_of_day": features["slot_of_day"].to_numpy(),
            "orders": ordinary_orders(features, target),
        }).dropna(subset=["orders"])
        recent = rows.groupby("slot_of_week", sort=False).tail(self.weeks)
        self.profile_ = _means(recent, "slot_of_week")
        self.slot_of_day_mean_ = _means(recent, "slot_of_day")
        self.overall_mean_ = float(recent["orders"].mean()) if len(recent) else 0.0
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        self._check_fitted("profile_")
        by_week = features["slot_of_week"].map(self.profile_)
        by_day = features["slot_of_day"].map(self.slot_of_day_mean_)
        return np.clip(by_week.fillna(by_day).fillna(self.overall_mean_).to_numpy("float64"), 0.0, None)

    def save(self, folder: Path) -> None:
        self._check_fitted("profile_")
        (Path(folder) / FILE).write_text(json.dumps(self._state()))

    @classmethod
    def load(cls, folder: Path) -> WeeklyProfile:
        state = json.loads((Path(folder) / FILE).read_text())
        model = cls(**state["params"])
        model._restore(state)
        return model

    def _state(self) -> dict[str, Any]:
        return {"params": self.get_params(), "profile": self.profile_, "slot_of_day_mean": self.slot_of_day_mean_,
                "overall_mean": self.overall_mean_}

    def _restore(self, state: dict[str, Any]) -> None:
        self.profile_ = {int(k): v for k, v in state["profile"].items()}
        self.slot_of_day_mean_ = {int(k): v for k, v in state["slot_of_day_mean"].items()}
        self.overall_mean_ = state["overall_mean"]


def _means(rows: pd.DataFrame, key: str) -> dict[int, float]:
    return {int(k): float(v) for k, v in rows.groupby(key)["orders"].mean().items()}


def ordinary_orders(features: pd.DataFrame, target: pd.Series) -> np.ndarray:
    """The orders, with those on a public holiday as missing."""
    return np.where(on_a_holiday(features), np.nan, np.asarray(target, dtype="float64"))
