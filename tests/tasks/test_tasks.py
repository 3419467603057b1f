"""Tasks are thin: their functions, called directly with `.fn()`, do the stage's work."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forecasting.contract import InputPaths
from forecasting.demo_data import csv_paths
from forecasting.errors import DataError, RegionTimeout
from forecasting.pipeline import RunOptions
from forecasting.selection_store import save_selection
from tasks.collect import write_outputs
from tasks.load import load_inputs
from tasks.region import fallback, predict, train, train_pooled

AS_OF = "2026-10-12T00:00:00+00:00"


def test_load_train_predict_write(small_demo_dir, tmp_path):
    options = RunOptions(as_of=AS_OF, horizon_days=7)
    manifest = load_inputs.fn(csv_paths(small_demo_dir), options, "snapshot", str(tmp_path / "cache"))
    assert manifest["as_of"] == AS_OF
    entries = {entry["region"]: entry for entry in manifest["regions"]}
    assert sorted(entries) == ["berlin-mitte", "london-soho", "nyc-midtown"]
    entry = entries["berlin-mitte"]
    assert entry["rows"]["orders"] > 0 and len(entry["hash"]) == 64
    partition = pd.read_parquet(f"{entry['path']}/orders.parquet")
    assert partition["ts"].max() < pd.Timestamp(AS_OF)  # nothing at or after as_of is partitioned

    record = train.fn("berlin-mitte", entry, options, str(tmp_path / "models"), str(tmp_path / "selections"), AS_OF,
                      str(tmp_path / "run"))
    assert record["model"] == "ensemble" and record["train_rows"] > 1000
    assert record["note"] == "default (no backtest selection)"
    prediction = predict.fn("berlin-mitte", entry, options, str(tmp_path / "models"), AS_OF, str(tmp_path / "run"),
                            record)
    assert prediction["rows"] == 7 * 48
    summary = write_outputs.fn([prediction], str(tmp_path / "out"), f"sqlite:///{tmp_path}/out/f.sqlite", "run-1",
                               {"flow": "forecast"})
    forecasts = pd.read_parquet(tmp_path / "out" / "forecasts.parquet")
    assert summary["forecast_rows"] == len(forecasts) == 7 * 48
    assert (forecasts["forecast"] >= 0).all() and set(forecasts["region"]) == {"berlin-mitte"}
    quantiles = forecasts[["p10", "p50", "p90"]].to_numpy()
    assert (quantiles >= 0).all() and (quantiles[:, 1:] >= quantiles[:, :-1]).all()
    assert (quantiles[:, 2] > quantiles[:, 0]).mean() > 0.9  # real intervals, not points


def test_load_rejects_bad_input_before_writing(tmp_path):
    (tmp_path / "orders.csv").write_text("region,ts,orders\na,2026-01-01T00:00:00+00:00,-1\n")
    with pytest.raises(DataError, match="negative"):
        load_inputs.fn(InputPaths(str(tmp_path / "orders.csv")), RunOptions(), "snapshot", str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()


@pytest.fixture()
def berlin(small_demo_dir, tmp_path):
    options = RunOptions(as_of=AS_OF, horizon_days=7)
    manifest = load_inputs.fn(csv_paths(small_demo_dir), options, "snapshot", str(tmp_path / "cache"))
    return next(entry for entry in manifest["regions"] if entry["region"] == "berlin-mitte")


def test_fallback_is_the_seasonal_naive_marked_as_such(berlin, tmp_path):
    options = RunOptions(as_of=AS_OF, horizon_days=7)
    record = fallback.fn("berlin-mitte", berlin, options, str(tmp_path / "models"), AS_OF, str(tmp_path / "run"),
                         "train failed: boom")
    assert record["model"] == "seasonal_naive" and record["fallback"] and record["rows"] == 7 * 48
    forecast = pd.read_parquet(record["forecast_path"])
    assert forecast["fallback"].all() and (forecast["model"] == "seasonal_naive").all()
    history = pd.read_parquet(f"{berlin['path']}/orders.parquet").set_index("ts")["orders"]
    last_week = forecast["ts"] - pd.Timedelta(days=7)  # Berlin has no DST change in this window
    assert (forecast["forecast"].to_numpy() == history.reindex(last_week).to_numpy()).all()


def test_region_timeout_stops_the_training_process(berlin, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERCAST_FAULTS", "train:berlin-mitte:hang")
    options = RunOptions(as_of=AS_OF, horizon_days=7, region_timeout=8)
    with pytest.raises(RegionTimeout, match="training of region 'berlin-mitte' ran past the time limit of 8 s"):
        train.fn("berlin-mitte", berlin, options, str(tmp_path / "models"), str(tmp_path / "selections"), AS_OF,
                 str(tmp_path / "run"))
    assert not (tmp_path / "models" / "berlin-mitte").exists()


def test_region_timeout_stops_the_pooled_models_training_too(berlin, tmp_path, monkeypatch):
    """The pooled fit trains every region at once, so its limit is the region limit times their number."""
    monkeypatch.setenv("ORDERCAST_FAULTS", "train:_pooled:hang")
    options = RunOptions(as_of=AS_OF, horizon_days=7, region_timeout=4)
    with pytest.raises(RegionTimeout, match=r"training of the pooled model on 2 region\(s\) ran past the time limit "
                                            r"of 8 s"):
        train_pooled.fn([berlin, berlin], options, str(tmp_path / "models"), str(tmp_path / "run"))
    assert not (tmp_path / "models").exists()

    monkeypatch.delenv("ORDERCAST_FAULTS")
    record = train_pooled.fn([berlin], RunOptions(as_of=AS_OF, horizon_days=7, region_timeout=300),
                             str(tmp_path / "models"), str(tmp_path / "run"))
    assert record["train_rows"] > 0 and (tmp_path / "models").exists()
    assert Path(record["model_path"]).is_relative_to(tmp_path / "models")


def test_training_under_a_time_limit_gives_the_same_model(berlin, tmp_path):
    bounded = RunOptions(as_of=AS_OF, horizon_days=7, region_timeout=300)
    record = train.fn("berlin-mitte", berlin, bounded, str(tmp_path / "models"), str(tmp_path / "selections"), AS_OF,
                      str(tmp_path / "bounded"))
    plain = train.fn("berlin-mitte", berlin, RunOptions(as_of=AS_OF, horizon_days=7), str(tmp_path / "models"),
                     str(tmp_path / "selections"), AS_OF, str(tmp_path / "plain"))
    first = predict.fn("berlin-mitte", berlin, bounded, str(tmp_path / "models"), AS_OF, str(tmp_path / "bounded"),
                       record)
    second = predict.fn("berlin-mitte", berlin, bounded, str(tmp_path / "models"), AS_OF, str(tmp_path / "plain"),
                        plain)
    pd.testing.assert_frame_equal(pd.read_parquet(first["forecast_path"]), pd.read_parquet(second["forecast_path"]))


@pytest.mark.parametrize("days, selected, model, intervals", [
    (80, True, "ensemble", "profile_ensemble's errors (too little history to hold out ensemble's): "),
    (80, False, "profile_ensemble", "4 weekly origins before the last horizon of history held out"),
    (100, False, "ensemble", "1 weekly origin before the last horizon of history held out"),
    (20, False, "profile_ensemble", "1 weekly origin of the region's short history"),
    (10, False, "profile_ensemble", "none: too little history")])
def test_a_young_region_gets_intervals_from_its_own_few_weeks(small_demo_dir, tmp_path, days, selected, model,
                                                              intervals):
    """Too young for held-out origins a whole horizon back: from two weeks of history on, the
    intervals come from origins in its last weeks; before that, each quantile is the forecast.
    Without a backtest, the learned default waits for 98 days of history. A backtest that chose
    it for a region old enough to train it (77 days) but not to hold out a week for it: the errors
    of `profile_ensemble`, which needs less."""
    orders = pd.read_csv(small_demo_dir / "orders.csv")
    starts = pd.to_datetime(orders["ts"], utc=True, format="ISO8601")
    young = orders.loc[(orders["region"] == "berlin-mitte")
                       & (starts >= pd.Timestamp(AS_OF) - pd.Timedelta(days=days)) & (starts < pd.Timestamp(AS_OF))]
    young.to_csv(tmp_path / "orders.csv", index=False)
    options = RunOptions(as_of=AS_OF, horizon_days=21)
    paths = InputPaths(str(tmp_path / "orders.csv"), regions=str(small_demo_dir / "regions.csv"))
    [entry] = load_inputs.fn(paths, options, "snapshot", str(tmp_path / "cache"))["regions"]
    if selected:
        save_selection(tmp_path / "selections", {"region": "berlin-mitte", "model": "ensemble", "wape": 0.4,
                                                 "selection_wape": 0.4, "scores": {}, "backtest_run_id": "bt-1",
                                                 "slot": options.slot, "horizon_days": options.horizon_days,
                                                 "calibration": None, "created_at": "2026-11-01T00:00:00+00:00"})
    record = train.fn("berlin-mitte", entry, options, str(tmp_path / "models"), str(tmp_path / "selections"), AS_OF,
                      str(tmp_path / "run"))
    assert record["model"] == model
    prediction = predict.fn("berlin-mitte", entry, options, str(tmp_path / "models"), AS_OF, str(tmp_path / "run"),
                            record)
    forecast = pd.read_parquet(prediction["forecast_path"])
    wide = (forecast["p90"] > forecast["p10"]).mean()
    assert record["intervals"].startswith(intervals)
    assert wide == 0 if intervals.startswith("none") else wide > 0.9
