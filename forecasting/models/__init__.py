"""Forecast models: one interface, several implementations and configurations, by name.

A name is a model class plus fixed parameters: `ensemble` is the mean of `xgboost` and
`weekly_profile`, `recent_ensemble` of `xgboost` and `recent_profile`, `recursive_ensemble` of
`xgboost` and `recursive`, `profile_ensemble` the mean of the two profiles. Learned models need
enough of the region's own history for their lag features; baselines do not, and neither does
`pooled`, which is trained once per run on every region's rows (`forecasting.pooled`).
`recursive` and its ensemble run on slots shorter than a day only: with daily slots the slot
before is yesterday, which `xgboost` reads already.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forecasting.models.base import ForecastModel
from forecasting.models.combination import Combination
from forecasting.models.pooled import PooledModel
from forecasting.models.recent_profile import RecentProfile
from forecasting.models.recursive import RecursiveXGBoost
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.models.weekly_profile import WeeklyProfile
from forecasting.models.xgboost import XGBoostModel


@dataclass(frozen=True)
class ModelSpec:
    cls: type[ForecastModel]
    params: dict[str, Any] = field(default_factory=dict)
    learned: bool = False  # trains on the region's own lag features; refit every few backtest cutoffs
    pooled: bool = False  # trained once per run on every region's rows, not per region
    sub_day: bool = False  # a backtest with daily slots leaves it out

    @property
    def uses_lags(self) -> bool:
        """Trained on lag features (the region's own, or every region's): on recent weeks only."""
        return self.learned or self.pooled

    @property
    def members(self) -> tuple[str, ...]:
        """The models a combination averages (none for a single model)."""
        return tuple(self.params.get("members", ()))


MODELS: dict[str, ModelSpec] = {
    "xgboost": ModelSpec(XGBoostModel, learned=True),
    "recursive": ModelSpec(RecursiveXGBoost, learned=True, sub_day=True),
    "seasonal_naive": ModelSpec(SeasonalNaive),
    "weekly_profile": ModelSpec(WeeklyProfile, {"weeks": 4}),
    "recent_profile": ModelSpec(RecentProfile, {"weeks": 4, "recent_days": 1.0}),
    "ensemble": ModelSpec(Combination, {"members": ("xgboost", "weekly_profile")}, learned=True),
    "recent_ensemble": ModelSpec(Combination, {"members": ("xgboost", "recent_profile")}, learned=True),
    "recursive_ensemble": ModelSpec(Combination, {"members": ("xgboost", "recursive")}, learned=True, sub_day=True),
    "profile_ensemble": ModelSpec(Combination, {"members": ("weekly_profile", "recent_profile")}),
    "pooled": ModelSpec(PooledModel, pooled=True),
}
DEFAULT_MODEL = "ensemble"
SHORT_HISTORY_MODEL = "profile_ensemble"  # where a region's history is too short for the learned models
FALLBACK_MODEL = "seasonal_naive"  # where a region's own model failed


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; known models: {', '.join(MODELS)}") from None


def create_model(name: str, n_threads: int = 1) -> ForecastModel:
    """A new, unfitted model of the named configuration."""
    spec = model_spec(name)
    params = dict(spec.params)
    if spec.cls in (XGBoostModel, RecursiveXGBoost, Combination, PooledModel):
        params["n_threads"] = n_threads
    model = spec.cls(**params)
    model.name = name
    return model


def load_named_model(name: str, folder) -> ForecastModel:
    model = model_spec(name).cls.load(folder)
    model.name = name
    return model


__all__ = ["DEFAULT_MODEL", "FALLBACK_MODEL", "MODELS", "SHORT_HISTORY_MODEL", "Combination", "ForecastModel",
           "ModelSpec", "PooledModel", "RecentProfile", "RecursiveXGBoost", "SeasonalNaive", "WeeklyProfile",
           "XGBoostModel", "create_model", "load_named_model", "model_spec"]
