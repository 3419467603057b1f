"""Forecast models: one interface, several implementations and configurations, by name.

A name is a model class plus fixed parameters: `xgboost_deep` is the XGBoost model with
deeper trees. Learned models need enough history for their lag features; baselines do not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forecasting.models.base import ForecastModel
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.models.weekly_profile import WeeklyProfile
from forecasting.models.xgboost import XGBoostModel


@dataclass(frozen=True)
class ModelSpec:
    cls: type[ForecastModel]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def learned(self) -> bool:
        """Learned models train on lag features and are refit every few backtest cutoffs."""
        return self.cls is XGBoostModel


MODELS: dict[str, ModelSpec] = {
    "xgboost": ModelSpec(XGBoostModel),
    "xgboost_deep": ModelSpec(XGBoostModel, {"max_depth": 8, "n_estimators": 400, "learning_rate": 0.04,
                                             "min_child_weight": 10.0}),
    "xgboost_tweedie": ModelSpec(XGBoostModel, {"objective": "reg:tweedie", "tweedie_variance_power": 1.3}),
    "seasonal_naive": ModelSpec(SeasonalNaive),
    "weekly_profile": ModelSpec(WeeklyProfile, {"weeks": 4}),
}
DEFAULT_MODEL = "xgboost"
FALLBACK_MODEL = "seasonal_naive"


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; known models: {', '.join(MODELS)}") from None


def create_model(name: str, n_threads: int = 1) -> ForecastModel:
    """A new, unfitted model of the named configuration."""
    spec = model_spec(name)
    params = dict(spec.params)
    if spec.cls is XGBoostModel:
        params["n_threads"] = n_threads
    model = spec.cls(**params)
    model.name = name
    return model


def load_named_model(name: str, folder) -> ForecastModel:
    model = model_spec(name).cls.load(folder)
    model.name = name
    return model


__all__ = ["DEFAULT_MODEL", "FALLBACK_MODEL", "MODELS", "ForecastModel", "ModelSpec", "SeasonalNaive",
           "WeeklyProfile", "XGBoostModel", "create_model", "load_named_model", "model_spec"]
