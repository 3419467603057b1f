"""Seasonal naive: each slot gets the orders of the same local slot one week earlier.

Over a multi-week horizon this repeats the last observed week. Slots never observed fall
back to the mean of the same slot of day, then to the overall mean.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.models.base import ForecastModel

FILE = "seasonal_naive.json"


class SeasonalNaive(ForecastModel):
    name = "seasonal_naive"

    def fit(self, features: pd.DataFrame, target: pd.Series) -> SeasonalNaive:
        rows = pd.DataFrame({
            "slot_of_week": features["slot_of_week"].to_numpy(),
            "slot_of_day": features["slot_of_day"].to_numpy(),
            "orders": np.asarray(target, dtype="float64"),
        }).dropna(subset=["orders"])
        self.last_week_ = {int(k): float(v) for k, v in rows.groupby("slot_of_week")["orders"].last().items()}
        self.slot_of_day_mean_ = {int(k): float(v) for k, v in rows.groupby("slot_of_day")["orders"].mean().items()}
        self.overall_mean_ = float(rows["orders"].mean()) if len(rows) else 0.0
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        self._check_fitted("last_week_")
        by_week = features["slot_of_week"].map(self.last_week_)
        by_day = features["slot_of_day"].map(self.slot_of_day_mean_)
        values = by_week.fillna(by_day).fillna(self.overall_mean_).to_numpy("float64")
        return np.clip(values, 0.0, None)

    def save(self, folder: Path) -> None:
        self._check_fitted("last_week_")
        state = {
            "last_week": self.last_week_,
            "slot_of_day_mean": self.slot_of_day_mean_,
            "overall_mean": self.overall_mean_,
        }
        (Path(folder) / FILE).write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path) -> SeasonalNaive:
        state = json.loads((Path(folder) / FILE).read_text())
        model = cls()
        model.last_week_ = {int(k): v for k, v in state["last_week"].items()}
        model.slot_of_day_mean_ = {int(k): v for k, v in state["slot_of_day_mean"].items()}
        model.overall_mean_ = state["overall_mean"]
        return model

    def get_params(self) -> dict[str, Any]:
        return {}
