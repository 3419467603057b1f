"""Gradient-boosted trees with a Poisson objective, one booster per lead week.

A slot `h` weeks ahead is predicted by the booster of lead week `h` from scale-free features
(`forecasting.features.lead_view`): lags and levels divided by the region's 4-week level
known `h` weeks earlier. That level enters as the Poisson offset (`base_margin = log(level)`),
so the trees learn the slot's multiple of the recent level, and a level shift or trend
carries into the horizon instead of being clipped to the range of past targets. From a
region's second year the boosters also read how the level moved over the same weeks a year
earlier (`year_change`); a booster trained on a first year leaves that column out.

`n_threads` defaults to 1: one model per Dask worker thread keeps the cores busy without
oversubscribing them. Stored with XGBoost's own UBJ format plus a small JSON of params.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.features import LEAD, LEVEL_DAYS, lead_view, level_column
from forecasting.models.base import ForecastModel

PARAMS_FILE = "params.json"
OPTIONAL_COLUMNS = ("year_change",)  # left out of a booster whose training rows never have them (a first year)
_LEAD_LEVEL = re.compile(rf"^level{LEVEL_DAYS[0]}d_(\d+)w$")


class BoostedTrees(ForecastModel):
    """Hyper-parameters and booster settings shared by the XGBoost models (Poisson, `hist`)."""

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int = 6,
        learning_rate: float = 0.075,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 5.0,
        n_threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.n_threads = n_threads
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if not key.endswith("_") and key != "name"}

    def _booster_params(self) -> dict[str, Any]:
        return {
            "objective": "count:poisson",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "tree_method": "hist",
            "nthread": self.n_threads,
            "seed": self.seed,
        }

    def _load_booster(self, path: Path) -> Any:
        booster = _xgboost().Booster(model_file=str(path))
        booster.set_param({"nthread": self.n_threads})
        return booster


class XGBoostModel(BoostedTrees):
    name = "xgboost"

    def fit(self, features: pd.DataFrame, target: pd.Series) -> XGBoostModel:
        """One booster per lead week found in the features (`level28d_<h>w` columns)."""
        leads = sorted(int(m.group(1)) for c in features.columns if (m := _LEAD_LEVEL.match(c)))
        if not leads:
            raise ValueError("XGBoostModel needs the lead-week level features of forecasting.features")
        label = np.asarray(target, dtype="float64")
        self.boosters_, self.view_columns_ = {}, {}
        for lead in leads:
            usable = features[level_column(LEVEL_DAYS[0], lead)].notna().to_numpy() & ~np.isnan(label)
            view, scale = lead_view(features.loc[usable], lead)
            view = view.loc[:, view.notna().any().to_numpy() | ~view.columns.isin(OPTIONAL_COLUMNS)]
            self.view_columns_[lead] = list(view.columns)
            matrix = _xgboost().DMatrix(view.astype("float64"), label=label[usable], base_margin=np.log(scale),
                                     nthread=self.n_threads)
            self.boosters_[lead] = _xgboost().train(self._booster_params(), matrix, num_boost_round=self.n_estimators)
        self.feature_names_ = list(features.columns)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Each row by the booster of its `lead_week` (the last lead week where it is missing)."""
        self._check_fitted("boosters_")
        last = max(self.boosters_)
        leads = features[LEAD].fillna(last).clip(1, last).astype("int64").to_numpy() if LEAD in features \
            else np.full(len(features), last)
        result = np.zeros(len(features))
        for lead in np.unique(leads):
            rows = leads == lead
            view, scale = lead_view(features.loc[rows, self.feature_names_], int(lead))
            if int(lead) in self.view_columns_:  # absent in a model stored before year_change: it reads them all
                view = view[self.view_columns_[int(lead)]]
            matrix = _xgboost().DMatrix(view.astype("float64"), base_margin=np.log(scale), nthread=self.n_threads)
            result[rows] = self.boosters_[int(lead)].predict(matrix)
        return np.clip(result, 0.0, None)

    def save(self, folder: Path) -> None:
        self._check_fitted("boosters_")
        for lead, booster in self.boosters_.items():
            booster.save_model(str(Path(folder) / f"lead_{lead}w.ubj"))
        state = {"params": self.get_params(), "feature_names": self.feature_names_, "leads": sorted(self.boosters_),
                 "view_columns": {str(lead): columns for lead, columns in self.view_columns_.items()}}
        (Path(folder) / PARAMS_FILE).write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path) -> XGBoostModel:
        state = json.loads((Path(folder) / PARAMS_FILE).read_text())
        model = cls(**state["params"])
        model.boosters_ = {lead: model._load_booster(Path(folder) / f"lead_{lead}w.ubj") for lead in state["leads"]}
        model.feature_names_ = state["feature_names"]
        model.view_columns_ = {int(lead): columns for lead, columns in state.get("view_columns", {}).items()}
        return model


def _xgboost():
    """The xgboost package, imported on first use: the command line's help and input checks,
    which list the model names, start without it."""
    import xgboost

    return xgboost
