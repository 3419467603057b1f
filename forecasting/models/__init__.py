"""Forecast models: one interface, several implementations, looked up by name."""
from __future__ import annotations

from forecasting.models.base import ForecastModel
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.models.xgboost import XGBoostModel

MODELS: dict[str, type[ForecastModel]] = {
    SeasonalNaive.name: SeasonalNaive,
    XGBoostModel.name: XGBoostModel,
}


def model_class(name: str) -> type[ForecastModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; known models: {', '.join(MODELS)}") from None


__all__ = ["MODELS", "ForecastModel", "SeasonalNaive", "XGBoostModel", "model_class"]
