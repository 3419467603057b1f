"""Outputs: atomic file writes and the forecasts table with vintages."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from forecasting.storage import (
    atomic_write_parquet,
    default_db_url,
    read_table_db,
    write_forecasts_db,
    write_selection_db,
)


def forecast_rows(as_of: str, value: float, regions=("a", "b")) -> pd.DataFrame:
    frames = []
    for region in regions:
        ts = pd.date_range(as_of, periods=3, freq="30min")
        frames.append(pd.DataFrame({"region": region, "ts": ts, "local_start": [t.isoformat() for t in ts],
                                    "as_of": pd.Timestamp(as_of), "forecast": value,
                                    "model": "xgboost", "fallback": False, "run_id": "run-1",
                                    "created_at": pd.Timestamp("2026-01-01T00:00Z")}))
    return pd.concat(frames, ignore_index=True)


def test_same_as_of_replaces_other_as_of_is_kept(tmp_path):
    url = default_db_url(tmp_path)
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 1.0), url)
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 2.0), url)
    table = read_table_db(url)
    assert len(table) == 6 and set(table["forecast"]) == {2.0}
    write_forecasts_db(forecast_rows("2026-01-02T00:00Z", 3.0, regions=("a",)), url)
    table = read_table_db(url)
    assert len(table) == 9
    assert table.loc[table["as_of"] == "2026-01-01T00:00:00+00:00", "forecast"].eq(2.0).all()
    assert table["ts"].iloc[0] == "2026-01-01T00:00:00+00:00"  # ISO-8601 text with offset


def test_a_failed_database_write_rolls_back_whole(tmp_path):
    url = default_db_url(tmp_path)
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 1.0), url)
    broken = forecast_rows("2026-01-01T00:00Z", 5.0)
    with pytest.raises(Exception, match="UNIQUE|unique"):
        write_forecasts_db(pd.concat([broken, broken]), url)  # duplicate keys fail the insert
    table = read_table_db(url)
    assert len(table) == 6 and set(table["forecast"]) == {1.0}  # the delete was rolled back too


def test_a_crash_between_write_and_rename_leaves_the_previous_file(tmp_path):
    target = tmp_path / "forecasts.parquet"
    atomic_write_parquet(target, pd.DataFrame({"forecast": [1.0, 2.0]}))
    script = textwrap.dedent(f"""
        import os, signal, pandas as pd
        import forecasting.storage as storage
        def die(*args):
            os.kill(os.getpid(), signal.SIGKILL)  # killed after writing the data, before the rename
        storage.os.replace = die
        storage.atomic_write_parquet({str(target)!r}, pd.DataFrame({{"forecast": [9.0] * 1000}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert pd.read_parquet(target)["forecast"].tolist() == [1.0, 2.0]
    leftovers = [p for p in os.listdir(tmp_path) if p != "forecasts.parquet"]
    assert leftovers and all(p.endswith(".tmp") for p in leftovers)  # never mistaken for output


def test_a_retried_selection_write_replaces_its_own_rows_and_keeps_other_backtests(tmp_path):
    url = default_db_url(tmp_path)

    def selection(run_id: str, model: str) -> pd.DataFrame:
        return pd.DataFrame({"region": ["a", "b"], "model": model, "wape": 0.3, "backtest_run_id": run_id,
                             "slot": "30min", "horizon_days": 21, "created_at": "2026-01-01T00:00:00+00:00"})

    write_selection_db(selection("bt-1", "xgboost"), url)
    write_selection_db(selection("bt-2", "ensemble"), url)
    write_selection_db(selection("bt-2", "ensemble"), url)  # the task is retried after its write
    table = read_table_db(url, "model_selection")
    assert sorted(zip(table["backtest_run_id"], table["region"])) == [("bt-1", "a"), ("bt-1", "b"),
                                                                        ("bt-2", "a"), ("bt-2", "b")]
