"""The model store returns the latest fitting model, never one trained past as_of."""
from __future__ import annotations

import pandas as pd

from forecasting.model_store import find_model, load_model, read_meta, save_model
from forecasting.models import SeasonalNaive


def store_model(store, as_of: str, *, slot="30min", horizon=21, features=("slot_of_week", "slot_of_day")):
    frame = pd.DataFrame({"slot_of_week": [0, 1], "slot_of_day": [0, 1]})
    model = SeasonalNaive().fit(frame, pd.Series([3.0, 4.0]))
    return save_model(store, model, {"region": "nyc midtown/5th", "slot": slot, "horizon_days": horizon,
                                     "features": list(features), "as_of": as_of,
                                     "trained_at": pd.Timestamp.now(tz="UTC").isoformat()})


def test_latest_model_trained_through_as_of_with_matching_setup(tmp_path):
    store_model(tmp_path, "2026-01-01T00:00:00+00:00")
    wanted = store_model(tmp_path, "2026-02-01T00:00:00+00:00")
    store_model(tmp_path, "2026-03-01T00:00:00+00:00")  # trained past as_of: never used
    store_model(tmp_path, "2026-02-10T00:00:00+00:00", slot="1h")
    store_model(tmp_path, "2026-02-10T00:00:00+00:00", horizon=14)
    store_model(tmp_path, "2026-02-10T00:00:00+00:00", features=("slot_of_week",))
    found = find_model(tmp_path, "nyc midtown/5th", slot="30min", horizon_days=21,
                       features=["slot_of_week", "slot_of_day"], as_of=pd.Timestamp("2026-02-15T00:00Z"))
    assert found == wanted
    model, meta = load_model(found)
    assert meta["model"] == "seasonal_naive" and meta["region"] == "nyc midtown/5th"
    assert "/" not in found.parent.name  # region names are made safe for file names


def test_no_fitting_model_is_none(tmp_path):
    store_model(tmp_path, "2026-03-01T00:00:00+00:00")
    assert find_model(tmp_path, "nyc midtown/5th", slot="30min", horizon_days=21,
                      features=["slot_of_week", "slot_of_day"], as_of=pd.Timestamp("2026-02-15T00:00Z")) is None
    assert find_model(tmp_path, "elsewhere", slot="30min", horizon_days=21, features=[],
                      as_of=pd.Timestamp("2026-02-15T00:00Z")) is None


def test_metadata_records_what_the_model_needs(tmp_path):
    meta = read_meta(store_model(tmp_path, "2026-01-01T00:00:00+00:00"))
    assert {"region", "model", "slot", "horizon_days", "features", "as_of", "trained_at", "params"} <= set(meta)
