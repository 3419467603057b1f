"""The model interface: fit returns self, unfitted models refuse, models round-trip without pickle."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.contract import RegionInfo
from forecasting.features import FeatureSpec, RegionInputs, build_features, feature_columns
from forecasting.models import (
    MODELS,
    RecentProfile,
    RecursiveXGBoost,
    SeasonalNaive,
    WeeklyProfile,
    XGBoostModel,
    create_model,
    load_named_model,
)
from forecasting.models.base import NotFittedError
from forecasting.slots import Slot


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


def region_frames(weeks: int, growth_per_week: float = 0.0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Hourly orders with a daily peak, growing by `growth_per_week`, built into features:
    history rows, the 7-day horizon rows, and the horizon's actual orders."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-01-05T00:00Z", periods=(weeks + 1) * 7 * 24, freq="1h")
    hours = ts.hour.to_numpy()
    expected = (10 + 30 * np.exp(-((hours - 19) ** 2) / 4)) * (1 + growth_per_week) ** (np.arange(len(ts)) / 168)
    orders = pd.DataFrame({"ts": ts, "orders": rng.poisson(expected)})
    as_of = ts[weeks * 7 * 24]
    inputs = RegionInputs(RegionInfo("r", "UTC", None), orders)
    frame = build_features(inputs, FeatureSpec(Slot.parse("1h"), horizon_days=7), as_of)
    history = frame.loc[frame["is_history"]]
    horizon = frame.loc[~frame["is_history"]]
    return history, horizon, orders.loc[orders["ts"] >= as_of, "orders"].to_numpy("float64")


def quick(name: str):
    """The named model, with few trees where it has trees, to keep tests fast."""
    model = create_model(name)
    if isinstance(model, (XGBoostModel, RecursiveXGBoost)):
        model.n_estimators = 20
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_returns_self_and_unfitted_models_refuse(name, tmp_path):
    history, horizon, _ = region_frames(5)
    features, target = history[feature_columns(history)], history["orders"]
    model = quick(name)
    with pytest.raises(NotFittedError):
        model.predict(features)
    with pytest.raises(NotFittedError):
        model.save(tmp_path)
    assert model.fit(features, target) is model
    assert all(key.endswith("_") for key in vars(model) if key not in model.get_params() and key != "name")
    prediction = model.predict(horizon[features.columns])
    assert prediction.shape == (len(horizon),) and (prediction >= 0).all()


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
    history, horizon, _ = region_frames(6)
    columns = feature_columns(history)
    model = quick(name)
    model.fit(history[columns], history["orders"]).save(tmp_path)
    loaded = load_named_model(name, tmp_path)
    assert loaded.name == name and loaded.get_params() == model.get_params()
    np.testing.assert_allclose(loaded.predict(horizon[columns]), model.predict(horizon[columns]), rtol=1e-6)
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    for file in files:
        assert not file.read_bytes().startswith(b"\x80"), f"{file.name} looks pickled"
    assert {f.suffix for f in files} <= {".json", ".ubj"}


def test_xgboost_thread_count_is_a_setting_and_it_follows_a_trend():
    """Orders growing 4% a week: the level-scaled model carries the growth into the horizon,
    where the weekly profile (the mean of 4 past weeks) stays behind."""
    history, horizon, actual = region_frames(12, growth_per_week=0.04)
    columns = feature_columns(history)
    model = XGBoostModel(n_threads=1).fit(history[columns], history["orders"])
    assert model.get_params()["n_threads"] == 1
    profile = WeeklyProfile().fit(history[columns], history["orders"]).predict(horizon[columns])
    xgboost_error = np.abs(model.predict(horizon[columns]) - actual).sum() / actual.sum()
    profile_error = np.abs(profile - actual).sum() / actual.sum()
    print(f"WAPE xgboost {xgboost_error:.3f}, weekly profile {profile_error:.3f}")
    assert xgboost_error < profile_error


def test_xgboost_reads_the_year_change_once_a_region_has_a_year_behind_it(tmp_path):
    """Trained in a region's first year, the boosters leave the (all missing) `year_change` out;
    trained later, they read it, and a stored model predicts as before."""
    days = pd.date_range("2024-01-01", "2025-07-01", freq="D", tz="UTC")
    seasonal = 80 + 20 * np.sin(2 * np.pi * days.dayofyear.to_numpy() / 365)
    orders = pd.DataFrame({"ts": days, "orders": np.random.default_rng(0).poisson(seasonal)})
    inputs = RegionInputs(RegionInfo("r", "UTC", None), orders)
    spec = FeatureSpec(Slot.parse("1D"), horizon_days=14)
    for as_of, reads_it in (("2024-09-02", False), ("2025-05-19", True)):
        frame = build_features(inputs, spec, pd.Timestamp(as_of, tz="UTC"))
        history, horizon = frame.loc[frame["is_history"]], frame.loc[~frame["is_history"]]
        columns = feature_columns(frame)
        model = quick("xgboost").fit(history[columns], history["orders"])
        assert all(("year_change" in booster.feature_names) == reads_it for booster in model.boosters_.values())
    for folder in ("now", "older"):
        (tmp_path / folder).mkdir()
    model.save(tmp_path / "now")
    np.testing.assert_allclose(load_named_model("xgboost", tmp_path / "now").predict(horizon[columns]),
                               model.predict(horizon[columns]), rtol=1e-6)
    older = [c for c in columns if not c.startswith("year_change")]  # a model stored before the feature
    quick("xgboost").fit(history[older], history["orders"]).save(tmp_path / "older")
    assert np.isfinite(load_named_model("xgboost", tmp_path / "older").predict(horizon[columns])).all()


def test_xgboost_predicts_with_a_lead_week_that_had_no_training_rows():
    """Three weeks of hourly history and a 21-day horizon: the third lead week has no row with
    its level known, so its booster learns from none (the pooled candidate meets this in young
    regions) and still predicts, from the level alone."""
    history, horizon, _ = region_frames(3)
    spec = FeatureSpec(Slot.parse("1h"), horizon_days=21)
    orders = pd.concat([history[["ts", "orders"]], horizon[["ts"]].assign(orders=0.0)])
    frame = build_features(RegionInputs(RegionInfo("r", "UTC", None), orders), spec, horizon["ts"].iloc[0])
    history, horizon = frame.loc[frame["is_history"]], frame.loc[~frame["is_history"]]
    columns = feature_columns(frame)
    assert history["level28d_3w"].isna().all()
    forecast = quick("xgboost").fit(history[columns], history["orders"]).predict(horizon[columns])
    assert np.isfinite(forecast).all() and len(forecast) == len(horizon)


def test_xgboost_forecasts_every_day_from_an_origin_after_local_midnight():
    """Daily slots, `as_of` at 01:00 local time: the day that contains it is partial (neither
    history nor horizon), so the 14th day of the horizon lies past the two lead weeks' lags. It
    is read one week further back instead of as a region without orders."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2025-01-01", "2026-01-31", freq="D", tz="America/New_York")
    weekday = days.dayofweek.to_numpy()
    orders = pd.DataFrame({"ts": days.tz_convert("UTC"), "orders": rng.poisson(np.where(weekday < 5, 1000, 600))})
    spec = FeatureSpec(Slot.parse("1D"), horizon_days=14)
    as_of = pd.Timestamp("2025-07-10T01:00", tz="America/New_York")
    frame = build_features(RegionInputs(RegionInfo("r", "America/New_York", "US"), orders), spec, as_of)
    history, horizon = frame.loc[frame["is_history"]], frame.loc[~frame["is_history"]]
    columns = feature_columns(frame)
    forecast = quick("xgboost").fit(history[columns], history["orders"]).predict(horizon[columns])
    actual = orders.set_index("ts")["orders"].reindex(horizon["ts"]).to_numpy("float64")
    assert len(forecast) == 14 and forecast.min() > 0.75 * actual.min()
    assert forecast[-1] == pytest.approx(forecast[-8], rel=0.1)  # the same weekday a week earlier


def test_recursive_model_starts_from_the_latest_orders_and_carries_its_forecasts_on():
    """Orders double a week before the origin and stay there: the recursive model starts
    the horizon at the new level (the 4-week profile is far below it), a fitted model predicts
    from the origin's own lags, and each forecast feeds the next slot."""
    history, horizon, actual = region_frames(6)
    doubled = history["ts"] >= history["ts"].iloc[-1] - pd.Timedelta(days=7)
    orders = history["orders"].where(~doubled, history["orders"] * 2)
    frame = build_features(RegionInputs(RegionInfo("r", "UTC", None), pd.DataFrame(
        {"ts": pd.concat([history["ts"], horizon["ts"]]), "orders": np.concatenate([orders, actual * 2])})),
        FeatureSpec(Slot.parse("1h"), horizon_days=7), horizon["ts"].iloc[0])
    past, future = frame.loc[frame["is_history"]], frame.loc[~frame["is_history"]]
    columns = feature_columns(past)
    model = RecursiveXGBoost(n_estimators=100).fit(past[columns], past["orders"])
    first_day = slice(0, 24)
    recursive = model.predict(future[columns])
    profile = WeeklyProfile().fit(past[columns], past["orders"]).predict(future[columns])
    truth = actual * 2
    def level(forecast):
        return forecast[first_day].sum() / truth[first_day].sum()
    print(f"first day, forecast / actual orders: recursive {level(recursive):.2f}, weekly profile {level(profile):.2f}")
    assert 0.85 < level(recursive) < 1.15 and level(profile) < 0.75
    lower_start = future[columns].copy()
    lower_start.iloc[0, lower_start.columns.get_loc("lag_1s")] /= 4
    changed = model.predict(lower_start) != recursive
    assert changed[0] and changed[1:].any()


def test_weekly_profile_is_the_mean_of_the_last_weeks():
    features, target = week_frame(6)
    model = WeeklyProfile(weeks=4).fit(features, target)
    expected = target.to_numpy().reshape(6, 28)[-4:].mean(axis=0)
    future, _ = week_frame(1, seed=2)
    np.testing.assert_allclose(model.predict(future), expected)


def test_the_profiles_leave_public_holidays_out():
    """US orders flat at 10 an hour, but at 2 on Memorial Day (Monday 2026-05-25). A week later the
    weekly profile's Mondays are the four ordinary ones before it, not 8 (the holiday among them),
    and on the day after the holiday the recent profile takes its level from the days before."""
    ts = pd.date_range("2026-03-02T04:00Z", "2026-06-30T04:00Z", freq="1h", inclusive="left")
    local_day = ts.tz_convert("America/New_York").normalize().tz_localize(None)
    orders = pd.DataFrame({"ts": ts, "orders": np.where(local_day == pd.Timestamp("2026-05-25"), 2.0, 10.0)})
    inputs = RegionInputs(RegionInfo("r", "America/New_York", "US"), orders)
    spec = FeatureSpec(Slot.parse("1h"), horizon_days=7)
    for as_of, profile in (("2026-06-01T04:00Z", WeeklyProfile()), ("2026-05-26T04:00Z", RecentProfile())):
        frame = build_features(inputs, spec, pd.Timestamp(as_of))
        history, horizon = frame.loc[frame["is_history"]], frame.loc[~frame["is_history"]]
        holidays = history.filter(like="holiday_memorial").sum().sum()
        assert holidays == 24  # the calendar knows the day
        columns = feature_columns(frame)
        np.testing.assert_allclose(profile.fit(history[columns], history["orders"]).predict(horizon[columns]), 10.0)


def test_recent_profile_scales_the_weekly_shape_to_the_last_days_level():
    """Six weeks of a fixed weekly shape, the last day at 1.5 times the usual level: the
    recent profile keeps the shape and moves to the new level, where the weekly profile stays."""
    features, _ = week_frame(6, per_day=8)
    shape = 5.0 + 10.0 * (features["slot_of_day"] == 2) + features["day_of_week"]
    level = np.where(np.arange(len(features)) >= len(features) - 8, 1.5, 1.0)
    target = pd.Series(shape * level, name="orders")
    model = RecentProfile(weeks=4).fit(features, target)
    profile = WeeklyProfile(weeks=4).fit(features, target)
    # the last day's profile holds one week of 1.5 among four: 1.125 times the shape
    assert model.level_ratio_ == pytest.approx(1.5 / 1.125)
    future, _ = week_frame(1, per_day=8, seed=3)
    np.testing.assert_allclose(model.predict(future), profile.predict(future) * 1.5 / 1.125)
    monday = future["day_of_week"] == 0
    future_shape = (5.0 + 10.0 * (future["slot_of_day"] == 2) + future["day_of_week"]).to_numpy()
    np.testing.assert_allclose(profile.predict(future)[monday], future_shape[monday])


def test_recent_profile_takes_a_daily_slots_level_from_the_last_week_not_one_day():
    """Daily slots, six weeks of a weekday shape; the last week at 1.2 times it and its last day
    at 2. The level is that of the last 7 days, not the last day's count alone (2 / 1.25 = 1.6)."""
    features, _ = week_frame(6, per_day=1)
    shape = (10.0 + features["day_of_week"]).to_numpy()
    factor = np.ones(len(features))
    factor[-7:], factor[-1] = 1.2, 2.0
    model = RecentProfile(weeks=4).fit(features, pd.Series(shape * factor, name="orders"))
    last_week = slice(len(features) - 7, None)
    profile = shape[last_week] * (3.0 + factor[last_week]) / 4.0  # each weekday's mean over 4 weeks
    assert model.level_ratio_ == pytest.approx((shape * factor)[last_week].sum() / profile.sum())
    assert model.level_ratio_ < 1.3


def test_recent_profile_reaches_back_over_closed_hours():
    """Closed on the last day (Sunday, no orders expected): the level comes from the last open day."""
    features, _ = week_frame(5)
    open_days = features["day_of_week"] < 6
    target = pd.Series(np.where(open_days, 10.0, 0.0), name="orders")
    target.iloc[-8:-4] = 20.0  # Saturday, the last open day, at twice the level
    model = RecentProfile(weeks=4).fit(features, target)
    assert model.level_ratio_ > 1.5
    assert np.isfinite(model.predict(features.iloc[:28])).all()
