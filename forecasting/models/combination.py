"""The mean of several candidate models' forecasts: combinations of good models are hard to
beat, and steadier than any one of them when the per-region choice is noisy."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.models.base import ForecastModel

FILE = "members.json"


class Combination(ForecastModel):
    name = "ensemble"

    def __init__(self, members: tuple[str, ...] = ("xgboost", "weekly_profile"), n_threads: int = 1) -> None:
        self.members = tuple(members)
        self.n_threads = n_threads

    def get_params(self) -> dict[str, Any]:
        return {"members": list(self.members), "n_threads": self.n_threads}

    def fit(self, features: pd.DataFrame, target: pd.Series) -> Combination:
        from forecasting.models import create_model

        self.models_ = [create_model(name, self.n_threads).fit(features, target) for name in self.members]
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.predict_horizons([features])[0]

    def predict_horizons(self, horizons: list[pd.DataFrame]) -> list[np.ndarray]:
        self._check_fitted("models_")
        by_member = [model.predict_horizons(horizons) for model in self.models_]
        return [np.mean(forecasts, axis=0) for forecasts in zip(*by_member)]

    def save(self, folder: Path) -> None:
        self._check_fitted("models_")
        for name, model in zip(self.members, self.models_):
            (Path(folder) / name).mkdir()
            model.save(Path(folder) / name)
        (Path(folder) / FILE).write_text(json.dumps(self.get_params()))

    @classmethod
    def load(cls, folder: Path) -> Combination:
        from forecasting.models import load_named_model

        model = cls(**json.loads((Path(folder) / FILE).read_text()))
        model.models_ = [load_named_model(name, Path(folder) / name) for name in model.members]
        return model
