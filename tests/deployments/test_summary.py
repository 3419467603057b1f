"""The terminal summary after a forecast."""
from __future__ import annotations

import pandas as pd

from deployments.summary import region_lines

AS_OF = pd.Timestamp("2026-10-12T00:00:00Z")


def _forecasts(regions: dict[str, float], timezone: str = "Europe/Berlin") -> pd.DataFrame:
    """Two weeks of hourly slots per region; each region's busiest slot is its 50th, twice its level."""
    frames = []
    for region, level in regions.items():
        ts = pd.date_range(AS_OF, periods=14 * 24, freq="1h")
        values = [level] * len(ts)
        values[50] = 2 * level
        frames.append(pd.DataFrame({"region": region, "ts": ts, "as_of": AS_OF, "forecast": values,
                                    "local_start": [t.tz_convert(timezone).isoformat() for t in ts]}))
    return pd.concat(frames, ignore_index=True)


def test_one_line_per_region_with_the_week_total_and_the_busiest_local_slot():
    statuses = [{"region": "a", "status": "ok", "model": "xgboost", "expected_wape": 0.1234},
                {"region": "b", "status": "fallback", "model": "seasonal_naive", "expected_wape": None}]
    lines = region_lines(_forecasts({"a": 10.0, "b": 1.0}), statuses)
    assert len(lines) == 4 and lines[0].startswith("region")
    short = region_lines(_forecasts({"c": 1.0}), [{"region": "c", "status": "ok", "model": "profile_ensemble",
                                                   "expected_wape": None}])
    assert short[1].split()[:3] == ["c", "ok", "profile_ensemble"]  # the longest model name, whole
    a = lines[1].split()
    assert a[:4] == ["a", "ok", "xgboost", "0.123"] and a[4] == f"{10 * 7 * 24 + 10:,}"  # 7 days, busiest doubled
    assert lines[1].endswith("Wed 2026-10-14 04:00 (20)")  # 50 h after 00:00 UTC: 02:00 UTC, 04:00 in Berlin
    assert lines[2].split()[:4] == ["b", "fallback", "seasonal_naive", "-"]
    rough = region_lines(_forecasts({"c": 1.0}), [{"region": "c", "status": "ok", "model": "ensemble",
                                                   "expected_wape": 0.25, "expected_from": "held-out weeks"}])
    assert rough[1].split()[3] == "~0.250"  # no backtest of its model: from its intervals' held-out weeks
    assert lines[3].split()[:4] == ["total", "1", "not", "ok"] and lines[3].endswith(f"{11 * 7 * 24 + 11:,}")


def test_many_regions_show_the_worst_and_the_largest_then_a_count():
    levels = {f"r{i:02d}": float(i + 1) for i in range(30)}
    statuses = [{"region": r, "status": "failed" if r == "r00" else "ok", "model": "ensemble",
                 "expected_wape": i / 100} for i, r in enumerate(levels)]
    lines = region_lines(_forecasts(levels), statuses)
    worst = lines[2:12]
    assert worst[0].startswith("r00 ") and worst[1].startswith("r29 ")  # failed first, then the highest WAPE
    largest = lines[13:23]
    assert [line.split()[0] for line in largest] == [f"r{i:02d}" for i in range(20, 10, -1)]
    assert lines[23] == "-- and 10 more regions (OUT/run.json, forecasts.parquet)"


def test_daily_slots_show_the_busiest_day():
    days = pd.date_range("2026-10-12T05:00:00Z", periods=14, freq="1D")  # local midnights in Chicago (CDT)
    forecasts = pd.DataFrame({"region": "loop", "ts": days, "as_of": days[0],
                              "forecast": [100.0] * 2 + [250.0] + [100.0] * 11,
                              "local_start": [t.tz_convert("America/Chicago").isoformat() for t in days]})
    lines = region_lines(forecasts, [{"region": "loop", "status": "ok", "model": "xgboost", "expected_wape": None}],
                         daily=True)
    assert lines[0].endswith("busiest day (local)") and lines[1].endswith("Wed 2026-10-14 (250)")
