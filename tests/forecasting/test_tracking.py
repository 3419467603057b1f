"""Accuracy over time: vintages scored on arrived orders, regions flagged against their promise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.tracking import latest_promises, score_vintages

UTC = {"good": "UTC", "bad": "UTC"}


def stored(region: str, as_of: str, error: float, days: int = 21) -> pd.DataFrame:
    ts = pd.date_range(as_of, periods=days * 24, freq="1h")
    return pd.DataFrame({"region": region, "ts": ts, "as_of": pd.Timestamp(as_of), "forecast": 10.0 + error,
                         "model": "xgboost", "p10": 10.0 + error - 2, "p90": 10.0 + error + 2})


def test_vintages_are_scored_by_age_and_regions_flagged_against_their_promise():
    forecasts = pd.concat([stored("good", "2026-01-01T00:00Z", 0.5), stored("bad", "2026-01-01T00:00Z", 5.0),
                           stored("good", "2026-01-08T00:00Z", 0.5)])
    arrived = pd.date_range("2026-01-01T00:00Z", "2026-01-20T00:00Z", freq="1h", inclusive="left")
    orders = pd.concat([pd.DataFrame({"region": r, "ts": arrived, "orders": 10}) for r in ("good", "bad")])
    promises = latest_promises(pd.DataFrame({
        "region": ["good", "bad", "bad"], "wape": [0.1, 0.9, 0.1],
        "created_at": ["2026-01-01T00:00:00+00:00", "2025-12-01T00:00:00+00:00", "2025-12-20T00:00:00+00:00"]}))
    report = score_vintages(forecasts, orders, promises, UTC, 24)
    assert set(report.by_vintage["as_of"]) == {pd.Timestamp("2026-01-01T00:00Z"), pd.Timestamp("2026-01-08T00:00Z")}
    assert set(report.by_vintage["age"]) == {"d1", "d2-7", "d8-21"}
    assert report.by_vintage["slots"].sum() == 19 * 24 * 2 + 12 * 24  # only slots whose orders arrived
    regions = report.by_region.set_index("region")
    assert regions.loc["good", "recent_wape"] == pytest.approx(0.05)
    assert regions.loc["bad", "recent_wape"] == pytest.approx(0.5) and regions.loc["bad", "promised_wape"] == 0.1
    assert regions["flagged"].to_dict() == {"bad": True, "good": False}
    assert regions.loc["good", "coverage"] == 1.0 and regions.loc["bad", "coverage"] == 0.0
    later = score_vintages(forecasts, orders, promises, UTC, 24, since=pd.Timestamp("2026-01-05T00:00Z"))
    assert set(later.by_vintage["as_of"]) == {pd.Timestamp("2026-01-08T00:00Z")} and np.isfinite(later.by_vintage["wape"]).all()


def test_a_vintage_across_a_spring_clock_change_keeps_its_ages_on_the_local_clock():
    """21 days of hourly slots from a Berlin midnight: the horizon crosses 29 March, so its last slot
    starts one clock hour into a 22nd local day; ages stay the horizon's three."""
    as_of = pd.Timestamp("2026-03-20T00:00", tz="Europe/Berlin").tz_convert("UTC")
    forecasts = stored("berlin", as_of.isoformat(), 0.0)
    orders = pd.DataFrame({"region": "berlin", "ts": forecasts["ts"], "orders": 10})
    promises = latest_promises(pd.DataFrame({"region": ["berlin"], "wape": [0.1],
                                             "created_at": ["2026-03-01T00:00:00+00:00"]}))
    report = score_vintages(forecasts, orders, promises, {"berlin": "Europe/Berlin"}, 24)
    slots = report.by_vintage.set_index("age")["slots"].to_dict()
    assert slots == {"d1": 24, "d2-7": 6 * 24, "d8-21": 14 * 24}
