"""Gradient-boosted trees with a Poisson objective, for order counts.

`n_threads` defaults to 1: one model per Dask worker thread keeps the cores busy without
oversubscribing them. Stored with XGBoost's own UBJ format plus a small JSON of params.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost

from forecasting.models.base import ForecastModel

BOOSTER_FILE = "model.ubj"
PARAMS_FILE = "params.json"


class XGBoostModel(ForecastModel):
    name = "xgboost"

    def __init__(
        self,
        n_estimators: int = 300,
        max_depth: int = 6,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 5.0,
        objective: str = "count:poisson",
        tweedie_variance_power: float = 1.5,
        n_threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.objective = objective
        self.tweedie_variance_power = tweedie_variance_power
        self.n_threads = n_threads
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if not key.endswith("_") and key != "name"}

    def _booster_params(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "tree_method": "hist",
            **({"tweedie_variance_power": self.tweedie_variance_power} if self.objective == "reg:tweedie" else {}),
            "nthread": self.n_threads,
            "seed": self.seed,
        }

    def fit(self, features: pd.DataFrame, target: pd.Series) -> XGBoostModel:
        matrix = xgboost.DMatrix(features.astype("float64"), label=np.asarray(target, dtype="float64"),
                                 nthread=self.n_threads)
        self.booster_ = xgboost.train(self._booster_params(), matrix, num_boost_round=self.n_estimators)
        self.feature_names_ = list(features.columns)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        self._check_fitted("booster_")
        matrix = xgboost.DMatrix(features[self.feature_names_].astype("float64"), nthread=self.n_threads)
        return np.clip(self.booster_.predict(matrix), 0.0, None)

    def save(self, folder: Path) -> None:
        self._check_fitted("booster_")
        self.booster_.save_model(str(Path(folder) / BOOSTER_FILE))
        state = {"params": self.get_params(), "feature_names": self.feature_names_}
        (Path(folder) / PARAMS_FILE).write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path) -> XGBoostModel:
        state = json.loads((Path(folder) / PARAMS_FILE).read_text())
        model = cls(**state["params"])
        model.booster_ = xgboost.Booster(model_file=str(Path(folder) / BOOSTER_FILE))
        model.booster_.set_param({"nthread": model.n_threads})
        model.feature_names_ = state["feature_names"]
        return model
