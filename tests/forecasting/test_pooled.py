"""The pooled candidate: trained once on every region and stored once, each region predicting
with its share (also as `--no-train` loads it); no look-ahead in its backtest; chosen only
beyond noise; kept by prune while a region's model reads it."""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from forecasting.backtest import BacktestOptions, _select, backtest_region, plan_cutoffs
from forecasting.demo_data import csv_paths, generate, write_csv
from forecasting.features import feature_columns
from forecasting.model_store import POOLED_GROUP
from forecasting.models import XGBoostModel
from forecasting.models.pooled import REGION_CODE, shared_source
from forecasting.pipeline import RunOptions, predict_region, prepare_partitions, read_partition, region_features
from forecasting.pipeline import train_region
from forecasting.pooled import backtest_pooled, train_pooled
from forecasting.retention import plan_removals
from forecasting.selection_store import save_selection
from forecasting.slots import Slot

OPTIONS = RunOptions("30min", 7)
SLOT = Slot.parse("30min")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pooled")
    write_csv(generate(regions=3, years=0.6, seed=5), folder / "data")
    return prepare_partitions(csv_paths(folder / "data"), OPTIONS, folder / "cache")


def _choose_pooled(selections, region: str) -> None:
    save_selection(selections, {"region": region, "model": "pooled", "wape": 0.3, "selection_wape": 0.3,
                                "scores": {}, "backtest_run_id": "bt-1", "slot": OPTIONS.slot,
                                "horizon_days": OPTIONS.horizon_days, "calibration": None,
                                "created_at": "2026-11-01T00:00:00+00:00"})


def test_the_pooled_model_is_stored_once_and_each_region_predicts_with_its_share(manifest, tmp_path):
    store, selections, run = tmp_path / "models", tmp_path / "selections", tmp_path / "run"
    record = train_pooled(manifest["regions"], OPTIONS, store, run)
    assert record["region_codes"] == {"berlin-mitte": 0, "london-soho": 1, "nyc-midtown": 2}
    booster = XGBoostModel.load(record["model_path"])
    for entry in manifest["regions"]:
        region = entry["region"]
        _choose_pooled(selections, region)
        trained = train_region(entry, OPTIONS, store, selections, entry["as_of"], run, pooled=record)
        assert trained["model"] == "pooled" and shared_source(trained["model_path"]) == record["model_path"]
        fresh = pd.read_parquet(predict_region(entry, OPTIONS, store, entry["as_of"], run, trained)["forecast_path"])
        stored = predict_region(entry, OPTIONS, store, entry["as_of"], tmp_path / "no-train", None)  # as --no-train
        assert stored["model_path"] == trained["model_path"]
        pdt.assert_frame_equal(fresh, pd.read_parquet(stored["forecast_path"]))
        # the share is the pooled booster with the region's code; features of other regions
        # (their countries' holidays) are missing in its rows
        frame = region_features(entry, OPTIONS, pd.Timestamp(entry["as_of"]))
        horizon = frame.loc[~frame["is_history"]].assign(**{REGION_CODE: record["region_codes"][region]})
        assert set(booster.feature_names_) > set(feature_columns(frame))
        np.testing.assert_allclose(fresh["forecast"], booster.predict(horizon.reindex(columns=booster.feature_names_)))
    assert len(list((store / POOLED_GROUP).iterdir())) == 1


def _corrupted_after(manifest: dict, cutoff: pd.Timestamp, folder) -> list[dict]:
    """The partitions with every order of a slot ending after `cutoff` overwritten, in every region."""
    entries = []
    for entry in manifest["regions"]:
        copy = folder / entry["region"]
        shutil.copytree(entry["path"], copy)
        orders = pd.read_parquet(copy / "orders.parquet")
        after = SLOT.ends(orders["ts"], entry["timezone"]) > cutoff
        orders.loc[after, "orders"] = orders.loc[after, "orders"] * 10 + 1000
        orders.to_parquet(copy / "orders.parquet")
        entries.append({**entry, "path": str(copy)})
    return entries


def test_the_pooled_backtest_never_reads_an_order_after_its_cutoff(manifest, tmp_path):
    options = BacktestOptions("30min", 7, ("pooled", "weekly_profile"), retrain_every=1, holdout_cutoffs=1)
    cutoffs, _ = plan_cutoffs(pd.Timestamp(manifest["as_of"]), SLOT, 7, 3, pd.Timedelta(days=7))
    clean = backtest_pooled(manifest["regions"], options, cutoffs, tmp_path / "clean")
    leaked = backtest_pooled(_corrupted_after(manifest, cutoffs[1], tmp_path / "corrupt"), options, cutoffs,
                             tmp_path / "leaked")
    for region in clean:
        before, after = pd.read_parquet(clean[region]), pd.read_parquet(leaked[region])
        assert len(before) == 3 * 7 * 48
        for cutoff in cutoffs[:2]:
            pdt.assert_frame_equal(before.loc[before["cutoff"] == cutoff], after.loc[after["cutoff"] == cutoff])
        last = before["cutoff"] == cutoffs[2]
        assert not np.allclose(before.loc[last, "forecast"], after.loc[last, "forecast"])

    # the region's backtest scores exactly those forecasts as the `pooled` candidate
    entry = manifest["regions"][0]
    result = backtest_region(read_partition(entry), cutoffs, options, pooled=pd.read_parquet(clean[entry["region"]]))
    scored = result.predictions.loc[result.predictions["model"] == "pooled"].reset_index(drop=True)
    expected = pd.read_parquet(clean[entry["region"]])
    np.testing.assert_allclose(scored["forecast"], expected["forecast"])
    without = backtest_region(read_partition(entry), cutoffs, options)
    assert set(without.predictions["model"]) == {"weekly_profile"}
    assert any(note.startswith("left out: pooled (no pooled forecast for this region at 3 of 3 cutoffs")
               for note in without.notes)


def test_the_pooled_backtest_starts_where_a_region_has_the_history_and_serves_a_younger_region(manifest, tmp_path):
    """No pooled booster is fitted before any region has the learned candidates' history (its
    longest lead week would have no training rows); from then on a young region gets forecasts too."""
    options = BacktestOptions("30min", 7, ("pooled", "weekly_profile"), retrain_every=1, holdout_cutoffs=1)
    assert options.spec.min_history_days_for_xgboost == 63
    start = pd.Timestamp("2026-03-28T00:00:00Z")  # the module's data start
    cutoffs = [start + pd.Timedelta(days=days) for days in (40, 80, 87)]
    young_start = start + pd.Timedelta(days=55)
    entries = []
    for entry in manifest["regions"]:
        if entry["region"] == "london-soho":
            copy = tmp_path / "young" / entry["region"]
            shutil.copytree(entry["path"], copy)
            orders = pd.read_parquet(copy / "orders.parquet")
            orders.loc[orders["ts"] >= young_start].to_parquet(copy / "orders.parquet")
            entry = {**entry, "path": str(copy)}
        entries.append(entry)
    paths = backtest_pooled(entries, options, cutoffs, tmp_path / "run")
    for region, path in paths.items():
        forecasts = pd.read_parquet(path)
        assert set(forecasts["cutoff"]) == set(cutoffs[1:]), region
        assert len(forecasts) == 2 * 7 * 48 and (forecasts["forecast"] > 0).all()


def test_pooled_is_chosen_only_when_better_beyond_noise_and_competes_with_baselines_in_a_young_region():
    def rows(errors: dict[str, list[float]]) -> pd.DataFrame:
        return pd.DataFrame([{"cutoff": cutoff, "model": model, "actual": 10.0, "forecast": 10.0 + error}
                             for model, values in errors.items() for cutoff, error in enumerate(values)])

    mature = rows({"ensemble": [2.0, 2.1, 2.0, 2.2], "pooled": [1.0, 1.1, 1.0, 1.1],
                   "seasonal_naive": [0.1, 0.1, 0.1, 0.1]})  # a baseline: never over learned or pooled
    assert _select(mature, [0, 1, 2, 3], [], "r")["model"] == "pooled"
    noisy = rows({"ensemble": [1.0, 2.0, 1.0, 2.0], "pooled": [0.5, 2.5, 0.5, 2.0]})
    assert _select(noisy, [0, 1, 2, 3], [], "r")["model"] == "ensemble"
    young = rows({"profile_ensemble": [2.0, 2.2, 2.0, 2.1], "pooled": [1.0, 1.0, 1.1, 1.0]})
    assert _select(young, [0, 1, 2, 3], [], "r")["model"] == "pooled"
    young_noisy = rows({"profile_ensemble": [1.0, 2.0, 1.0, 2.0], "pooled": [0.5, 2.5, 0.5, 2.0]})
    assert _select(young_noisy, [0, 1, 2, 3], [], "r")["model"] == "profile_ensemble"


def test_prune_keeps_a_pooled_model_while_a_kept_region_model_reads_it(tmp_path):
    def made(path, age_days: float, source=None):
        path.mkdir(parents=True)
        (path / "pooled.json" if source else path / "meta.json").write_text(
            f'{{"source": "{source}"}}' if source else "{}")
        stamp = time.time() - age_days * 86400
        os.utime(path, (stamp, stamp))
        return path

    group = tmp_path / "models" / POOLED_GROUP
    read_by_kept, unread = made(group / "p90", 90), made(group / "p80", 80)
    made(group / "p1", 1)
    made(tmp_path / "models" / "north" / "m90", 90, source=read_by_kept)  # north's only model: kept
    removed = {removal.path for removal in plan_removals(tmp_path, keep=1, cutoff=pd.Timestamp.now(tz="UTC")
                                                         - pd.Timedelta(days=30))}
    assert removed == {unread}


def test_a_moved_model_store_still_finds_its_pooled_model(manifest, tmp_path):
    store, selections, run = tmp_path / "models", tmp_path / "selections", tmp_path / "run"
    record = train_pooled(manifest["regions"], OPTIONS, store, run)
    entry = manifest["regions"][0]
    _choose_pooled(selections, entry["region"])
    trained = train_region(entry, OPTIONS, store, selections, entry["as_of"], run, pooled=record)
    before = pd.read_parquet(predict_region(entry, OPTIONS, store, entry["as_of"], run, trained)["forecast_path"])
    moved = tmp_path / "elsewhere" / "models"
    shutil.move(store, moved)
    after = predict_region(entry, OPTIONS, moved, entry["as_of"], tmp_path / "after", None)  # as --no-train
    assert shared_source(after["model_path"]).startswith(str(moved))
    pdt.assert_frame_equal(before, pd.read_parquet(after["forecast_path"]))
