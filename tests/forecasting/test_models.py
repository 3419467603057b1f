"""The model interface: fit returns self, unfitted models refuse, models round-trip without pickle."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.models import MODELS, SeasonalNaive, WeeklyProfile, XGBoostModel, create_model, load_named_model
from forecasting.models.base import NotFittedError


def week_frame(weeks: int, per_day: int = 4, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    n = weeks * 7 * per_day
    slot_of_day = np.tile(np.arange(per_day), weeks * 7)
    day_of_week = np.repeat(np.tile(np.arange(7), weeks), per_day)
    features = pd.DataFrame({
        "slot_of_day": slot_of_day,
        "day_of_week": day_of_week,
        "slot_of_week": day_of_week * per_day + slot_of_day,
        "rain": rng.gamma(1.0, 1.0, n),
    })
    target = pd.Series(rng.poisson(5 + 10 * (slot_of_day == 2) + 3 * features["rain"]), name="orders")
    return features, target


def quick(name: str):
    """The named model, with few trees where it has trees, to keep tests fast."""
    model = create_model(name)
    if isinstance(model, XGBoostModel):
        model.n_estimators = 20
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_returns_self_and_unfitted_models_refuse(name, tmp_path):
    features, target = week_frame(4)
    model = quick(name)
    with pytest.raises(NotFittedError):
        model.predict(features)
    with pytest.raises(NotFittedError):
        model.save(tmp_path)
    assert model.fit(features, target) is model
    assert all(key.endswith("_") for key in vars(model) if key not in model.get_params() and key != "name")
    prediction = model.predict(features)
    assert prediction.shape == (len(features),) and (prediction >= 0).all()


def test_seasonal_naive_repeats_the_last_observed_week():
    features, target = week_frame(3)
    model = SeasonalNaive().fit(features, target)
    last_week = target.iloc[-28:].to_numpy()
    future, _ = week_frame(2, seed=1)
    assert np.array_equal(model.predict(future), np.tile(last_week, 2).astype(float))


def test_seasonal_naive_falls_back_for_slots_never_seen():
    features, target = week_frame(1)
    model = SeasonalNaive().fit(features.iloc[:4], target.iloc[:4])  # only Monday seen
    tuesday = features.iloc[4:8]
    assert np.array_equal(model.predict(tuesday), target.iloc[:4].to_numpy(dtype=float))


@pytest.mark.parametrize("name", list(MODELS))
def test_models_round_trip_through_their_own_format(name, tmp_path):
    features, target = week_frame(6)
    model = quick(name)
    model.fit(features, target).save(tmp_path)
    loaded = load_named_model(name, tmp_path)
    assert loaded.name == name and loaded.get_params() == model.get_params()
    np.testing.assert_allclose(loaded.predict(features), model.predict(features), rtol=1e-6)
    for file in tmp_path.iterdir():
        assert not file.read_bytes().startswith(b"\x80"), f"{file.name} looks pickled"
    assert {f.suffix for f in tmp_path.iterdir()} <= {".json", ".ubj"}


def test_xgboost_thread_count_is_a_setting_and_it_learns():
    features, target = week_frame(8)
    model = XGBoostModel(n_threads=1).fit(features, target)
    assert model.get_params()["n_threads"] == 1
    naive_error = np.abs(SeasonalNaive().fit(features, target).predict(features) - target).mean()
    assert np.abs(model.predict(features) - target).mean() < naive_error


def test_weekly_profile_is_the_mean_of_the_last_weeks():
    features, target = week_frame(6)
    model = WeeklyProfile(weeks=4).fit(features, target)
    expected = target.to_numpy().reshape(6, 28)[-4:].mean(axis=0)
    future, _ = week_frame(1, seed=2)
    np.testing.assert_allclose(model.predict(future), expected)
