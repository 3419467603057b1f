"""The model interface, in the scikit-learn habit.

The constructor only stores parameters; `fit` learns from history rows and returns self,
keeping learned state in attributes ending in `_`; `predict` refuses to run unfitted.
Models persist in a folder through `save`/`load` in a plain format (JSON or XGBoost's
own UBJ), never pickled, so a stored model cannot run code when it is read.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd


class NotFittedError(RuntimeError):
    """`predict` or `save` called before `fit`."""


class ForecastModel(ABC):
    name: ClassVar[str]

    @abstractmethod
    def fit(self, features: pd.DataFrame, target: pd.Series) -> ForecastModel:
        """Learn from history rows; `features` holds feature columns, `target` the orders."""

    @abstractmethod
    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Non-negative expected orders for each row of `features`."""

    def predict_horizons(self, horizons: list[pd.DataFrame]) -> list[np.ndarray]:
        """`predict` for several horizons (a backtest's cutoffs between two refits)."""
        return [self.predict(rows) for rows in horizons]

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the fitted model into an existing, empty folder."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path) -> ForecastModel:
        """Read a model written by `save`."""

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, for metadata and reproducibility."""

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit() first")
