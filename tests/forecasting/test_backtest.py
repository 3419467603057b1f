"""Backtests: cutoffs, no look-ahead, honest selection, calibrated intervals, accuracy."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from scipy.stats import norm

from forecasting.backtest import (
    MIN_CUTOFFS_FOR_EMPIRICAL_BIAS,
    BacktestOptions,
    _select,
    backtest_region,
    for_regions,
    for_slot,
    plan_cutoffs,
    split_cutoffs,
)
from forecasting.backtest_stages import held_out_summary
from forecasting.contract import load_dataset
from forecasting.demo_data import csv_paths, generate, write_csv
from forecasting.errors import ConfigError
from forecasting.features import RegionInputs
from forecasting.intervals import Calibration, bucket_names, calibrate
from forecasting.metrics import coverage
from forecasting.models import MODELS, model_spec
from forecasting.slots import Slot

SLOT = Slot.parse("30min")
BASELINES = {name for name in MODELS if not model_spec(name).learned}


def region_inputs(folder, region: str | None = None) -> list[RegionInputs]:
    paths = csv_paths(folder)
    data = load_dataset(paths, SLOT)

    def rows(table):
        return None if table is None else table.loc[table["region"] == name].drop(columns="region")

    result = []
    for name, info in data.regions.items():
        if region is None or name == region:
            result.append(RegionInputs(info, rows(data.orders), rows(data.weather), rows(data.events),
                                       rows(data.promotions)))
    return result


def test_cutoffs_end_where_the_last_horizon_is_fully_observed():
    end = pd.Timestamp("2026-11-02T06:00Z")
    cutoffs, dropped = plan_cutoffs(end, SLOT, 21, 3, pd.Timedelta(days=7))
    assert cutoffs == [pd.Timestamp("2026-09-28T06:00Z"), pd.Timestamp("2026-10-05T06:00Z"),
                       pd.Timestamp("2026-10-12T06:00Z")] and dropped == 0
    assert cutoffs[-1] + pd.Timedelta(days=21) == end
    given = [pd.Timestamp("2026-06-01T00:00Z"), pd.Timestamp("2026-05-01T00:00Z")]
    assert plan_cutoffs(end, SLOT, 21, 52, pd.Timedelta(days=7), given) == (sorted(given), 0)
    with pytest.raises(ConfigError, match="--cutoffs must be >= 1, got 0"):
        plan_cutoffs(end, SLOT, 21, 0, pd.Timedelta(days=7))


def test_daily_cutoffs_are_local_midnights_across_dst_changes():
    end = pd.Timestamp("2026-11-30T06:00Z")  # midnight in Chicago, standard time
    daily = Slot.parse("1D")
    cutoffs, _ = plan_cutoffs(end, daily, 14, 40, pd.Timedelta(days=7), timezone="America/Chicago")
    local = [c.tz_convert("America/Chicago") for c in cutoffs]
    assert all((t.hour, t.minute) == (0, 0) for t in local)
    assert {t.utcoffset() for t in local} == {pd.Timedelta(hours=-5), pd.Timedelta(hours=-6)}
    assert local[-1].date() == pd.Timestamp("2026-11-16").date() and local[0].date() == pd.Timestamp("2026-02-16").date()
    # a UTC step keeps the summer ones an hour off midnight
    utc_stepped, _ = plan_cutoffs(end, daily, 14, 40, pd.Timedelta(days=7))
    assert {c.tz_convert("America/Chicago").hour for c in utc_stepped} == {0, 1}


def test_no_cutoff_is_planned_before_the_data():
    end = pd.Timestamp("2026-11-02T06:00Z")
    start = end - pd.Timedelta(days=200)
    cutoffs, dropped = plan_cutoffs(end, SLOT, 21, 52, pd.Timedelta(days=7), data_start=start)
    assert cutoffs[0] >= start + pd.Timedelta(days=7) and cutoffs[0] - pd.Timedelta(days=7) < start + pd.Timedelta(days=7)
    assert len(cutoffs) + dropped == 52 and len(cutoffs) == 25


def test_split_holds_out_the_last_cutoffs():
    cutoffs = list(range(20))
    assert split_cutoffs(cutoffs, 12) == (list(range(8)), list(range(8, 20)))
    assert split_cutoffs(list(range(6)), 12) == ([0, 1, 2, 3], [4, 5])  # too few: a third held out


def test_pooled_runs_only_with_regions_to_pool():
    every = BacktestOptions()
    assert "pooled" in every.models and for_regions(every, 2) == every
    assert for_regions(every, 1).models == tuple(name for name in every.models if name != "pooled")
    assert for_regions(BacktestOptions(models=("pooled",)), 1).models == ("pooled",)  # asked for alone


def test_recursive_candidates_run_on_sub_day_slots_only():
    every = BacktestOptions(slot="30min")
    assert {"recursive", "recursive_ensemble"} <= set(every.models) and for_slot(every) == every
    daily = for_slot(BacktestOptions(slot="1D"))
    assert daily.models == tuple(name for name in every.models if name not in ("recursive", "recursive_ensemble"))
    assert for_slot(BacktestOptions(slot="1D", models=("recursive",))).models == ("recursive",)  # asked for alone


def test_bad_options_are_rejected():
    with pytest.raises(ConfigError, match="--models: unknown model 'prophet'"):
        BacktestOptions(models=("xgboost", "prophet"))
    with pytest.raises(ConfigError, match="--retrain-every must be >= 1, got 0"):
        BacktestOptions(retrain_every=0)


@pytest.fixture(scope="module")
def one_region(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one-region")
    write_csv(generate(regions=1, years=0.7, seed=5), folder)
    return region_inputs(folder)[0]


def assert_no_look_ahead(inputs: RegionInputs, cutoffs: list[pd.Timestamp], options: BacktestOptions) -> None:
    """Orders of every slot that ends after cutoffs[1] are corrupted: the forecasts of the first
    two cutoffs must not change, those of the last one must (so the check can fail)."""
    clean = backtest_region(inputs, cutoffs, options).predictions
    corrupted_orders = inputs.orders.copy()
    after = Slot.parse(options.slot).ends(corrupted_orders["ts"], inputs.info.timezone) > cutoffs[1]
    corrupted_orders.loc[after, "orders"] = corrupted_orders.loc[after, "orders"] * 10 + 1000
    corrupted = RegionInputs(inputs.info, corrupted_orders, inputs.weather, inputs.events, inputs.promotions)
    leaked = backtest_region(corrupted, cutoffs, options).predictions
    columns = ["region", "ts", "cutoff", "model", "forecast"]
    for cutoff in cutoffs[:2]:
        before = clean.loc[clean["cutoff"] == cutoff, columns].reset_index(drop=True)
        after_corruption = leaked.loc[leaked["cutoff"] == cutoff, columns].reset_index(drop=True)
        assert set(before["model"]) == set(for_regions(options, 1).models)  # pooled: tests/forecasting/test_pooled.py
        pdt.assert_frame_equal(before, after_corruption)
    last = clean.loc[clean["cutoff"] == cutoffs[2], "forecast"].to_numpy()
    assert not np.allclose(last, leaked.loc[leaked["cutoff"] == cutoffs[2], "forecast"].to_numpy())


def test_orders_after_a_cutoff_do_not_change_its_forecasts(one_region):
    end = one_region.orders["ts"].max() + pd.Timedelta(minutes=30)
    cutoffs, _ = plan_cutoffs(end, SLOT, 7, 3, pd.Timedelta(days=7))
    assert_no_look_ahead(one_region, cutoffs, BacktestOptions(horizon_days=7, retrain_every=1, holdout_cutoffs=1))


def test_no_look_ahead_across_a_spring_clock_change(one_region):
    """A cutoff one day before the spring change: without masking, a 2-week lag in wall time
    reads the hour after the cutoff for the last slots of the horizon."""
    spring = spring_clock_change(one_region.info.timezone, 2026)
    inputs = shifted_to_end(one_region, spring + pd.Timedelta(days=40))
    cutoffs = [spring - pd.Timedelta(days=2), spring - pd.Timedelta(days=1), spring + pd.Timedelta(days=13)]
    assert_no_look_ahead(inputs, cutoffs, BacktestOptions(horizon_days=14, retrain_every=1, holdout_cutoffs=1))


def daily_inputs(region: RegionInputs) -> RegionInputs:
    """The region with its orders summed per local day."""
    daily = Slot.parse("1D")
    local_days = region.orders.assign(ts=daily.floor(region.orders["ts"], region.info.timezone))
    orders = local_days.groupby("ts", as_index=False)["orders"].sum()
    return RegionInputs(region.info, orders, region.weather, region.events, region.promotions)


def test_no_look_ahead_with_daily_slots_and_a_cutoff_inside_a_day(one_region):
    """`1D` slots: a cutoff at noon must not use that day's total (it holds orders after noon)."""
    inputs = daily_inputs(one_region)
    last_day = inputs.orders["ts"].iloc[-1]
    cutoffs = [last_day - pd.Timedelta(days=40, hours=-11), last_day - pd.Timedelta(days=30, hours=-11),
               last_day - pd.Timedelta(days=16)]
    options = BacktestOptions(slot="1D", horizon_days=14, retrain_every=1, holdout_cutoffs=1)
    assert_no_look_ahead(inputs, cutoffs, options)


def test_a_daily_cutoff_inside_a_regions_day_starts_the_horizon_on_that_day(one_region):
    """As for a region east of the run's clock: the cutoff is a later region's midnight, five
    hours into this region's day, which is the first scored day (its orders unseen)."""
    inputs = daily_inputs(one_region)
    midnights = inputs.orders["ts"].iloc[[-60, -45, -30]].tolist()
    cutoffs = [midnight + pd.Timedelta(hours=5) for midnight in midnights]
    options = BacktestOptions(slot="1D", horizon_days=14, models=("seasonal_naive", "xgboost"), holdout_cutoffs=1)
    predictions = backtest_region(inputs, cutoffs, options).predictions
    first = predictions.groupby("cutoff").agg(origin=("origin", "first"), first_day=("ts", "min"),
                                              days=("ts", "nunique"))
    assert first["origin"].tolist() == midnights and first["first_day"].tolist() == midnights
    assert (first["days"] == 14).all()


def spring_clock_change(tz: str, year: int) -> pd.Timestamp:
    """The local midnight (UTC) of the day the clocks go forward in `tz`."""
    days = pd.date_range(f"{year}-01-01", f"{year}-07-01", freq="D").tz_localize(tz)
    offsets = np.array([day.utcoffset() for day in days])
    day = days[int(np.flatnonzero(offsets[1:] > offsets[:-1])[0])]
    return day.tz_convert("UTC")


def shifted_to_end(inputs: RegionInputs, end: pd.Timestamp) -> RegionInputs:
    """The same region with every table moved by whole weeks so its orders end near `end`."""
    weeks = pd.Timedelta(weeks=round((end - inputs.orders["ts"].max()) / pd.Timedelta(weeks=1)))

    def moved(table, columns):
        return None if table is None else table.assign(**{c: table[c] + weeks for c in columns})

    orders = moved(inputs.orders, ["ts"])
    on_grid = SLOT.on_grid(orders["ts"], inputs.info.timezone)
    return RegionInputs(inputs.info, orders.loc[on_grid], moved(inputs.weather, ["ts"]),
                        moved(inputs.events, ["start", "end"]), moved(inputs.promotions, ["start", "end"]))


def test_outputs_have_the_documented_columns_and_buckets(one_region):
    end = one_region.orders["ts"].max() + pd.Timedelta(minutes=30)
    options = BacktestOptions(horizon_days=10, models=("seasonal_naive", "weekly_profile"), holdout_cutoffs=1)
    result = backtest_region(one_region, plan_cutoffs(end, SLOT, 10, 3, pd.Timedelta(days=7))[0], options)
    assert list(result.predictions.columns) == ["region", "ts", "cutoff", "origin", "model", "actual", "forecast",
                                                "p10", "p50", "p90"]
    assert (result.predictions["origin"] == result.predictions["cutoff"]).all()  # cutoffs on the slot grid
    assert list(result.metrics.columns) == ["region", "model", "cutoff", "horizon_bucket", "wape", "bias", "mase",
                                            "pinball", "coverage"]
    assert set(result.metrics["horizon_bucket"]) == {"d1", "d2-7", "d8-10"}
    quantiles = result.predictions[["p10", "p50", "p90"]].to_numpy()
    assert (quantiles >= 0).all() and (np.diff(quantiles, axis=1) >= 0).all()
    naive = result.metrics.loc[result.metrics["model"] == "seasonal_naive", "mase"]
    assert naive.between(0.5, 2.0).all()  # the naive is scored against its own in-sample error
    assert result.selection["model"] in ("seasonal_naive", "weekly_profile")


def test_selection_looks_only_at_selection_cutoffs():
    rows = []
    for cutoff, good, bad in [(1, 1.0, 5.0), (2, 1.0, 5.0), (3, 9.0, 0.0)]:  # cutoff 3 is held out
        rows += [{"cutoff": cutoff, "model": "a", "actual": 10.0, "forecast": 10 + good},
                 {"cutoff": cutoff, "model": "b", "actual": 10.0, "forecast": 10 + bad}]
    selection = _select(pd.DataFrame(rows), [1, 2], [3], "r")
    assert selection["model"] == "a"
    assert selection["selection_wape"] == pytest.approx(0.1) and selection["wape"] == pytest.approx(0.9)


def test_bucket_names_adapt_to_the_horizon():
    assert bucket_names(21) == ["d1", "d2-7", "d8-21"]
    assert bucket_names(7) == ["d1", "d2-7"]
    assert bucket_names(1) == ["d1"]


def test_calibrated_quantiles_cover_as_asked():
    rng = np.random.default_rng(0)
    forecast = rng.uniform(1, 50, 20000)
    actual = rng.poisson(forecast)
    buckets = np.where(rng.random(20000) < 0.5, "d1", "d2-7")
    calibration = Calibration.from_dict(calibrate(forecast[:10000], actual[:10000], buckets[:10000]).to_dict())
    quantiles = calibration.quantiles(forecast[10000:], buckets[10000:], (0.1, 0.5, 0.9))
    assert coverage(actual[10000:], quantiles[:, 0], quantiles[:, 2]) == pytest.approx(0.8, abs=0.02)


def test_a_small_group_of_residuals_still_covers_as_asked():
    """With 20 residuals (a daily day-1 bucket after 20 cutoffs), the P10-P90 band must cover
    0.80 of new residuals on average over many such calibrations, not (n - 1)/(n + 1) of it."""
    rng = np.random.default_rng(2)
    covered = []
    for _ in range(2000):
        forecast = np.full(20, 100.0)
        calibration = calibrate(forecast, forecast + rng.normal(0, 10, 20), np.full(20, "d1"))
        low, _, high = calibration.quantiles(np.array([100.0]), np.array(["d1"]), (0.1, 0.5, 0.9))[0]
        covered.append(norm.cdf((high - 100) / 10) - norm.cdf((low - 100) / 10))
    assert np.mean(covered) == pytest.approx(0.80, abs=0.01)


def test_a_stale_models_drift_widens_the_intervals_instead_of_shifting_them():
    """Residuals of one model fitted weeks before four origins, falling further behind at each:
    the model fitted at as_of has no such drift, so its quantiles must not move with it."""
    rng = np.random.default_rng(1)
    origins = np.repeat(np.arange(4), 2000)
    drift = np.array([0.06, 0.10, 0.14, 0.18])
    forecast = rng.uniform(20, 60, len(origins))
    actual = rng.poisson(forecast * (1 + drift[origins]))
    buckets = np.full(len(origins), "d1")
    shifted = calibrate(forecast, actual, buckets)
    state = calibrate(forecast, actual, buckets, origins=origins).to_dict()
    assert state["origin_spread"] == pytest.approx(np.sqrt(np.mean(drift ** 2)), abs=0.005)
    spread = Calibration.from_dict(state)
    fresh = rng.uniform(20, 60, 5000)
    truth = rng.poisson(fresh)
    levels = (0.1, 0.5, 0.9)
    before = shifted.quantiles(fresh, buckets[:5000], levels)
    after = spread.quantiles(fresh, buckets[:5000], levels)
    assert np.median(before[:, 1] - fresh) > 3  # the old intervals moved with the drift
    assert abs(np.median(after[:, 1] - fresh)) < 1
    assert (after[:, 2] - after[:, 0] > before[:, 2] - before[:, 0]).all()
    assert coverage(truth, after[:, 0], after[:, 2]) > max(0.8, coverage(truth, before[:, 0], before[:, 2]))
    stored_before = {key: value for key, value in state.items() if key != "origin_spread"}  # older model meta
    assert Calibration.from_dict(stored_before).origin_spread == 0.0
    closed = calibrate(np.r_[np.zeros(50), forecast[:50]], np.r_[np.ones(50), actual[:50]], buckets[:100],
                       origins=np.repeat([0, 1], 50))  # an origin forecast at zero that had orders
    assert 0.7 < closed.origin_spread <= np.sqrt((1 + 0.06 ** 2) / 2) + 0.01


def test_a_short_backtest_turns_each_cutoffs_bias_into_spread(one_region):
    """With fewer than MIN_CUTOFFS_FOR_EMPIRICAL_BIAS cutoffs, the residuals cannot show how a
    horizon's bias varies between origins: it is measured per cutoff and becomes spread."""
    end = one_region.orders["ts"].max() + pd.Timedelta(minutes=30)
    options = BacktestOptions(horizon_days=7, models=("weekly_profile",), holdout_cutoffs=1)
    spreads = {}
    for count in (MIN_CUTOFFS_FOR_EMPIRICAL_BIAS - 1, MIN_CUTOFFS_FOR_EMPIRICAL_BIAS):
        cutoffs, _ = plan_cutoffs(end, SLOT, 7, count, pd.Timedelta(days=7))
        spreads[count] = backtest_region(one_region, cutoffs, options).calibration["origin_spread"]
    assert spreads[MIN_CUTOFFS_FOR_EMPIRICAL_BIAS - 1] > 0.005
    assert spreads[MIN_CUTOFFS_FOR_EMPIRICAL_BIAS] == 0.0


@pytest.mark.parametrize("profile", ["city", "suburb"])
def test_held_out_selection_beats_the_naive_with_calibrated_intervals(profile, tmp_path):
    """Three regions, 24 weekly cutoffs: selection on 12, scored on the last 12 it never saw."""
    write_csv(generate(regions=3, years=1.2, seed=11, profile=profile), tmp_path)
    regions = region_inputs(tmp_path)
    end = max(r.orders["ts"].max() for r in regions) + pd.Timedelta(minutes=30)
    cutoffs, _ = plan_cutoffs(end, SLOT, 21, 24, pd.Timedelta(days=7))
    options = BacktestOptions(holdout_cutoffs=12)
    results = [backtest_region(region, cutoffs, options) for region in regions]
    predictions = pd.concat([r.predictions for r in results], ignore_index=True)
    selection = pd.DataFrame([r.selection for r in results])
    summary = held_out_summary(predictions, selection, options)
    single = summary["model_wape"]
    print(profile, round(summary["selection_wape"], 4), {m: round(v, 4) for m, v in single.items()})
    assert len(summary["held_out_cutoffs"]) == 12
    assert summary["selection_wape"] < single["seasonal_naive"]
    # "no worse than the best single model", where "best" is picked in hindsight on these very
    # cutoffs; the xgboost configurations differ by less than that pick's own noise, hence 1%.
    assert summary["selection_wape"] <= min(single.values()) * 1.01
    assert summary["coverage"] == pytest.approx(0.8, abs=0.05)


@pytest.mark.parametrize("history_days, kept, cutoffs_used, note", [
    (500, set(MODELS), 52, None),
    # 200 days (the new user): xgboost needs 77 days, which leaves 18 cutoffs, 12 of them to choose on
    (200, set(MODELS), 18, "cutoff(s) skipped: less than the 77 days"),
    # 120 days: only 7 cutoffs where the learned candidates run, too few to choose on
    (120, BASELINES, 17, "left out of the selection: xgboost, recursive, ensemble, recent_ensemble, recursive_ensemble "
                         "(need 77 days"),
])
def test_every_candidate_runs_at_the_same_cutoffs_or_is_left_out_with_a_reason(history_days, kept, cutoffs_used,
                                                                             note):
    from forecasting.backtest import _candidates_and_cutoffs

    end = pd.Timestamp("2026-11-02T00:00Z")
    cutoffs = [end - pd.Timedelta(weeks=k) for k in range(52)][::-1]
    start = end - pd.Timedelta(days=history_days)
    history_days_at = {c: (c - start) / pd.Timedelta(days=1) for c in cutoffs}
    observed = [c for c in cutoffs if history_days_at[c] >= 7]
    notes: list[str] = []
    candidates, usable = _candidates_and_cutoffs(observed, history_days_at, BacktestOptions(), notes)
    assert set(candidates) == kept and len(usable) == cutoffs_used
    assert (note is None and not notes) or any(note in n for n in notes), notes


def test_the_ensemble_in_a_backtest_is_the_mean_of_its_members_as_the_model_itself_predicts(one_region):
    from forecasting.features import at_origin, build_features, feature_columns
    from forecasting.models import create_model

    end = one_region.orders["ts"].max() + pd.Timedelta(minutes=30)
    cutoff = plan_cutoffs(end, SLOT, 7, 1, pd.Timedelta(days=7))[0][0]
    options = BacktestOptions(horizon_days=7, models=("xgboost", "weekly_profile", "ensemble"), holdout_cutoffs=1)
    predictions = backtest_region(one_region, [cutoff], options).predictions
    wide = predictions.pivot(index="ts", columns="model", values="forecast")
    np.testing.assert_allclose(wide["ensemble"], (wide["xgboost"] + wide["weekly_profile"]) / 2)
    frame = build_features(one_region, options.spec, end)
    columns = feature_columns(frame)
    history = frame.loc[frame["ts"] < cutoff]
    horizon = at_origin(frame.loc[frame["ts"].isin(wide.index)], cutoff, options.spec, one_region.info.timezone)
    direct = create_model("ensemble").fit(history[columns], history["orders"]).predict(horizon[columns])
    np.testing.assert_allclose(direct, wide["ensemble"].to_numpy(), rtol=1e-6)


def test_selection_keeps_the_ensemble_unless_beaten_beyond_noise_and_never_picks_a_baseline_over_learned():
    def rows(errors: dict[str, list[float]]) -> pd.DataFrame:
        return pd.DataFrame([{"cutoff": cutoff, "model": model, "actual": 10.0, "forecast": 10.0 + error}
                             for model, values in errors.items() for cutoff, error in enumerate(values)])

    noisy = rows({"ensemble": [1.0, 2.0, 1.0, 2.0], "xgboost": [0.5, 2.5, 0.5, 2.0],  # 0.1 better on average
                  "seasonal_naive": [0.1, 0.1, 0.1, 0.1]})  # clearly best, but a baseline
    assert _select(noisy, [0, 1, 2, 3], [], "r")["model"] == "ensemble"
    clear = rows({"ensemble": [2.0, 2.1, 2.0, 2.2], "xgboost": [1.0, 1.1, 1.0, 1.1]})
    assert _select(clear, [0, 1, 2, 3], [], "r")["model"] == "xgboost"
    baselines_only = rows({"seasonal_naive": [1.0, 1.0, 1.0], "weekly_profile": [3.0, 3.0, 3.0]})
    assert _select(baselines_only, [0, 1, 2], [], "r")["model"] == "seasonal_naive"
    # a young region's one selection cutoff: a better score there is not beyond any noise
    one_cutoff = rows({"profile_ensemble": [2.0], "seasonal_naive": [1.0], "weekly_profile": [1.0]})
    assert _select(one_cutoff, [0], [], "r")["model"] == "profile_ensemble"
    # no selection cutoff at all: the forecast's default for a short history, not the fallback
    assert _select(one_cutoff, [], [0], "r")["model"] == "profile_ensemble"


def test_staffing_is_costed_per_model_and_cost_selection_follows_the_same_rule(one_region):
    from forecasting.staffing import SERVICE_LEVELS, RegionStaffing

    staffing = RegionStaffing(one_region.info.region, orders_per_driver_hour=2.5, driver_hour_cost=15.0,
                              late_order_cost=10.0, min_drivers=1)
    end = one_region.orders["ts"].max() + pd.Timedelta(minutes=30)
    cutoffs = plan_cutoffs(end, SLOT, 7, 4, pd.Timedelta(days=7))[0]
    options = BacktestOptions(horizon_days=7, models=("seasonal_naive", "weekly_profile"), holdout_cutoffs=1,
                              quantiles=SERVICE_LEVELS, staffing="staffing.csv", select_by="cost")
    result = backtest_region(one_region, cutoffs, options, staffing)
    predictions = result.predictions
    assert (predictions["drivers"] >= 1).all()
    # The costs are those of the requirement against the orders that came.
    capacity = 2.5 * 0.5
    room = predictions["drivers"] * capacity
    expected = ((predictions["actual"] - room).clip(lower=0) * 10.0
                + (room - predictions["actual"]).clip(lower=0) / 2.5 * 15.0)
    np.testing.assert_allclose(predictions["staffing_cost"], expected)
    assert {"staffing_cost", "short_driver_hours", "idle_driver_hours"} <= set(result.metrics.columns)
    selection = result.selection
    assert selection["selected_by"] == "cost" and set(selection["scores"]) == {"seasonal_naive", "weekly_profile"}
    selecting = predictions.loc[predictions["cutoff"].isin(cutoffs[:-1])]
    mean_cost = selecting.groupby("model")["staffing_cost"].sum() / len(cutoffs[:-1])
    assert selection["scores"] == pytest.approx(mean_cost.to_dict())
    summary = held_out_summary(predictions, pd.DataFrame([{"region": staffing.region, "model": selection["model"]}]),
                               options)
    held = predictions.loc[(predictions["cutoff"] == cutoffs[-1]) & (predictions["model"] == selection["model"])]
    assert summary["staffing"]["selection"]["staffing_cost"] == pytest.approx(held["staffing_cost"].sum())


def test_cost_selection_needs_a_staffing_table():
    with pytest.raises(ConfigError, match="--select-by cost needs --staffing FILE"):
        BacktestOptions(select_by="cost")
