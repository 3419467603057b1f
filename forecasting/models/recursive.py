"""Recursive gradient-boosted trees: one booster predicts a slot from the slot just before it,
the mean of the last day (the last week for daily slots), the same slot a day and a week
earlier and the weekly profile, plus the slot of the day and week, weather, events and
promotions (`LEFT_OUT` says which calendar columns it does without).

Over the horizon it runs slot by slot, each forecast becoming the "slot before" of the next,
so the first hours follow the latest orders and later ones the weather and the calendar
from there. The target is in orders (Poisson), not scaled by a level: it suits series whose
level is set by exogenous data (demand and temperature) more than by their own drift, which
the lead-week `xgboost` follows better; the backtest chooses between them per region.

Predict needs the rows of one horizon in time order, as `features.at_origin` gives them: the
orders before the origin come from the rows' own day and week lags, never from a stored
history, so a model fitted weeks ago predicts from today's origin as a fresh one would.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.features import (
    HOLIDAY_PREFIX,
    PREVIOUS,
    RECENT_MEAN,
    RECENT_MEAN_MIN_SLOTS,
    day_lag_column,
    exogenous_columns,
    lag_column,
    mean_of_known,
)
from forecasting.models.xgboost import BoostedTrees, _xgboost

MODEL_FILE = "recursive.ubj"
PARAMS_FILE = "params.json"
PROFILE_WEEKS = 4
# Calendar columns that take years of history to learn (the week of the year, the moon, each
# named holiday and the days to or since one): with a year or less, a tree reads them as a
# date index and a one-off, and the recursion carries such a mistake through the horizon. They
# stay with the lead-week `xgboost`; here holidays come in only as the user's events.
LEFT_OUT = ("week_of_year", "moon_phase", HOLIDAY_PREFIX, "days_to_holiday", "days_since_holiday")
DAYS_PER_WEEK = 7


class RecursiveXGBoost(BoostedTrees):
    name = "recursive"

    def __init__(self, n_estimators: int = 300, max_depth: int = 8, learning_rate: float = 0.05,
                 subsample: float = 0.8, colsample_bytree: float = 0.8, min_child_weight: float = 5.0,
                 n_threads: int = 1, seed: int = 0) -> None:
        super().__init__(n_estimators, max_depth, learning_rate, subsample, colsample_bytree, min_child_weight,
                         n_threads, seed)

    def fit(self, features: pd.DataFrame, target: pd.Series) -> RecursiveXGBoost:
        self.per_day_ = _slots_per_day(features)
        self.exogenous_ = [c for c in exogenous_columns(features.columns) if not c.startswith(LEFT_OUT)]
        label = np.asarray(target, dtype="float64")
        keep = ~np.isnan(label)
        matrix = _xgboost().DMatrix(self._design(features.loc[keep]), label=label[keep], nthread=self.n_threads)
        self.booster_ = _xgboost().train(self._booster_params(), matrix, num_boost_round=self.n_estimators)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Slot by slot through the rows (one horizon, in time order)."""
        return self.predict_horizons([features])[0]

    def predict_horizons(self, horizons: list[pd.DataFrame]) -> list[np.ndarray]:
        """Several horizons, each seen from its own origin, run in step: one booster call per
        slot position for all of them (a backtest predicts the cutoffs between refits so)."""
        self._check_fitted("booster_")
        day, week = self.per_day_, DAYS_PER_WEEK * self.per_day_
        window, back = max(day, RECENT_MEAN_MIN_SLOTS), PROFILE_WEEKS * week
        lengths = np.array([len(rows) for rows in horizons])
        names = self._design_names()
        column = {name: index for index, name in enumerate(names)}
        # orders by position: `back` slots before each origin, then its horizon, filled as predicted
        series = np.full((len(horizons), back + lengths.max(initial=0)), np.nan)
        designs = np.full((len(horizons), lengths.max(initial=0), len(names)), np.nan)
        forecasts = np.full((len(horizons), lengths.max(initial=0)), np.nan)
        for chain, rows in enumerate(horizons):
            for weeks in range(1, PROFILE_WEEKS + 1):
                _fill_from_lag(series[chain], back, rows, lag_column(weeks), weeks * week)
            for days in range(1, DAYS_PER_WEEK + 1):
                _fill_from_lag(series[chain], back, rows, day_lag_column(days), days * day)
            designs[chain, :len(rows)] = self._design(rows)
        for row in range(lengths.max(initial=0)):
            active = np.flatnonzero(lengths > row)
            position = back + row
            known = series[active]
            x = designs[active, row]
            _fill(x[:, column[PREVIOUS]], known[:, position - 1])
            _fill(x[:, column[RECENT_MEAN]], mean_of_known(known[:, position - window:position]))
            _fill(x[:, column[day_lag_column(1)]], known[:, position - day])
            _fill(x[:, column[lag_column(1)]], known[:, position - week])
            weekly = [position - k * week for k in range(1, PROFILE_WEEKS + 1)]
            x[:, column["profile"]] = mean_of_known(known[:, weekly])
            forecasts[active, row] = np.maximum(self.booster_.inplace_predict(x), 0.0)
            series[active, position] = np.where(np.isnan(known[:, position]), forecasts[active, row],
                                                known[:, position])
        return [forecasts[chain, :length] for chain, length in enumerate(lengths)]

    def _design_names(self) -> list[str]:
        return [*self.exogenous_, PREVIOUS, RECENT_MEAN, day_lag_column(1), lag_column(1), "profile"]

    def _design(self, features: pd.DataFrame) -> np.ndarray:
        """Exogenous columns, the recent lags and the mean of the weekly lags, as floats."""
        profile = mean_of_known(features[[lag_column(k) for k in range(1, PROFILE_WEEKS + 1)]].to_numpy("float64"))
        own = features[[*self.exogenous_, PREVIOUS, RECENT_MEAN, day_lag_column(1), lag_column(1)]]
        return np.column_stack([own.to_numpy("float64"), profile])

    def save(self, folder: Path) -> None:
        self._check_fitted("booster_")
        self.booster_.save_model(str(Path(folder) / MODEL_FILE))
        state = {"params": self.get_params(), "per_day": self.per_day_, "exogenous": self.exogenous_}
        (Path(folder) / PARAMS_FILE).write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path) -> RecursiveXGBoost:
        state = json.loads((Path(folder) / PARAMS_FILE).read_text())
        model = cls(**state["params"])
        model.per_day_, model.exogenous_ = state["per_day"], state["exogenous"]
        model.booster_ = model._load_booster(Path(folder) / MODEL_FILE)
        return model


def _slots_per_day(features: pd.DataFrame) -> int:
    """From the calendar columns: slot of the week = day of the week x slots per day + slot of the day."""
    later_days = features.loc[features["day_of_week"] > 0]
    if later_days.empty:
        return int(features["slot_of_day"].max()) + 1
    row = later_days.iloc[0]
    return int((row["slot_of_week"] - row["slot_of_day"]) // row["day_of_week"])


def _fill_from_lag(series: np.ndarray, back: int, features: pd.DataFrame, column: str, offset: int) -> None:
    """Known orders of a lag column, at the positions they were observed (row - offset)."""
    if column not in features:
        return
    values = features[column].to_numpy("float64")
    positions = back + np.arange(len(values)) - offset
    known = ~np.isnan(values) & (positions >= 0)
    empty = np.isnan(series[positions[known]])
    series[positions[known][empty]] = values[known][empty]


def _fill(target: np.ndarray, values: np.ndarray) -> None:
    """Where `target` (a view) is missing, take `values`."""
    missing = np.isnan(target)
    target[missing] = values[missing]
