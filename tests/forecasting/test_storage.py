"""Outputs: atomic file writes, and the database tables with vintages, the same on SQLite and
on a real PostgreSQL server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from uuid import uuid4

import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.retention import prune_vintages
from forecasting.staffing_outputs import write_staffing_db
from forecasting.storage import (
    atomic_write_parquet,
    default_db_url,
    read_table_db,
    write_forecasts_db,
    write_selection_db,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A new, empty forecast database: SQLite in a file, or a database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return default_db_url(tmp_path)
    return request.getfixturevalue("postgres").create_database(f"store_{uuid4().hex[:12]}")


def instants(values: pd.Series) -> list[str]:
    """Timestamps read back (ISO text from SQLite, timestamptz from PostgreSQL) as ISO text."""
    return [stamp.isoformat() for stamp in pd.to_datetime(values, utc=True, format="ISO8601")]


def forecast_rows(as_of: str, value: float, regions=("a", "b")) -> pd.DataFrame:
    frames = []
    for region in regions:
        ts = pd.date_range(as_of, periods=3, freq="30min")
        frames.append(pd.DataFrame({"region": region, "ts": ts, "local_start": [t.isoformat() for t in ts],
                                    "as_of": pd.Timestamp(as_of), "forecast": value,
                                    "model": "xgboost", "fallback": False, "run_id": "run-1",
                                    "created_at": pd.Timestamp("2026-01-01T00:00Z")}))
    return pd.concat(frames, ignore_index=True)


def test_same_as_of_replaces_other_as_of_is_kept(db_url):
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 1.0), db_url)
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 2.0), db_url)
    table = read_table_db(db_url)
    assert len(table) == 6 and set(table["forecast"]) == {2.0}
    write_forecasts_db(forecast_rows("2026-01-02T00:00Z", 3.0, regions=("a",)), db_url)
    table = read_table_db(db_url)
    assert len(table) == 9
    assert table.loc[pd.to_datetime(table["as_of"], utc=True, format="ISO8601")
                     == pd.Timestamp("2026-01-01T00:00Z"), "forecast"].eq(2.0).all()
    assert instants(table["ts"])[0] == "2026-01-01T00:00:00+00:00"


def test_timestamps_are_text_with_offset_on_sqlite_and_timestamptz_on_postgresql(db_url):
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 1.0), db_url)
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        columns = {column["name"]: column["type"] for column in sa.inspect(connection).get_columns("forecasts")}
        kinds = {name: str(kind) for name, kind in columns.items()}
        first = connection.execute(sa.text("SELECT ts, created_at FROM forecasts ORDER BY ts LIMIT 1")).one()
    engine.dispose()
    if db_url.startswith("sqlite"):
        assert kinds["ts"] == kinds["as_of"] == "VARCHAR(32)"
        assert tuple(first) == ("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.000000+00:00")
    else:
        assert kinds["ts"] == kinds["as_of"] == kinds["created_at"] == "TIMESTAMP"
        assert columns["ts"].timezone and columns["as_of"].timezone and columns["created_at"].timezone
        assert first.ts == pd.Timestamp("2026-01-01T00:00Z") and first.ts.tzinfo is not None
    assert kinds["local_start"] == "VARCHAR(32)"  # a local wall-clock time with its offset stays text


def test_new_quantile_columns_are_added_and_older_vintages_keep_theirs(db_url):
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 1.0).assign(p10=0.5, p90=1.5), db_url)
    write_forecasts_db(forecast_rows("2026-01-02T00:00Z", 2.0).assign(p5=1.0, p10=1.2, p95=3.0), db_url)
    table = read_table_db(db_url)
    assert {"p5", "p10", "p90", "p95"} <= set(table.columns) and len(table) == 12
    older = pd.to_datetime(table["as_of"], utc=True, format="ISO8601") == pd.Timestamp("2026-01-01T00:00Z")
    assert table.loc[older, "p5"].isna().all() and table.loc[older, "p90"].eq(1.5).all()
    assert table.loc[~older, "p90"].isna().all() and table.loc[~older, "p95"].eq(3.0).all()


def test_a_failed_database_write_rolls_back_whole(db_url):
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 1.0), db_url)
    broken = forecast_rows("2026-01-01T00:00Z", 5.0)
    with pytest.raises(Exception, match="UNIQUE|unique"):
        write_forecasts_db(pd.concat([broken, broken]), db_url)  # duplicate keys fail the insert
    table = read_table_db(db_url)
    assert len(table) == 6 and set(table["forecast"]) == {1.0}  # the delete was rolled back too


def test_staffing_rows_and_shifts_replace_their_vintage_and_old_vintages_are_pruned(db_url):
    ts = pd.date_range("2026-01-01T00:00Z", periods=2, freq="30min")

    def plan(as_of: str, drivers: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows = pd.DataFrame({"region": "a", "ts": ts, "local_start": [t.isoformat() for t in ts],
                             "expected_orders": 10.0, "orders_at_service_level": 12.0, "service_level": 0.8,
                             "drivers": drivers, "scheduled_drivers": drivers, "as_of": pd.Timestamp(as_of),
                             "run_id": "run-1"})
        shifts = pd.DataFrame({"region": ["a"], "as_of": [pd.Timestamp(as_of)],
                               "shift_start": ["2026-01-01T01:00:00+01:00"],
                               "shift_end": ["2026-01-01T02:00:00+01:00"], "published": [False],
                               "drivers": [drivers], "run_id": ["run-1"]})
        return rows, shifts

    write_forecasts_db(forecast_rows("2025-12-01T00:00Z", 1.0, regions=("a",)), db_url)
    write_forecasts_db(forecast_rows("2026-01-01T00:00Z", 1.0, regions=("a",)), db_url)
    write_staffing_db(*plan("2025-12-01T00:00Z", 2), db_url)
    write_staffing_db(*plan("2026-01-01T00:00Z", 3), db_url)
    write_staffing_db(*plan("2026-01-01T00:00Z", 4), db_url)  # the same vintage again: replaced
    staffing, shifts = read_table_db(db_url, "staffing"), read_table_db(db_url, "shifts")
    assert len(staffing) == 4 and sorted(staffing["drivers"]) == [2, 2, 4, 4] and sorted(shifts["drivers"]) == [2, 4]

    counts = prune_vintages(db_url, pd.Timestamp("2025-12-15T00:00Z"), dry_run=False)
    assert counts == {"forecasts": 3, "staffing": 2, "shifts": 1}
    assert set(read_table_db(db_url, "staffing")["drivers"]) == {4}
    assert instants(read_table_db(db_url)["as_of"]) == ["2026-01-01T00:00:00+00:00"] * 3


def test_the_space_of_pruned_vintages_is_reused_by_the_next_ones(db_url):
    def vintage(day: int) -> pd.DataFrame:
        rows = forecast_rows(f"2026-01-{day:02d}T00:00Z", float(day), regions=("a",))
        return pd.concat([rows.assign(region=f"r{index:03d}") for index in range(300)], ignore_index=True)

    def store_size() -> int:
        if db_url.startswith("sqlite"):
            return Path(db_url.removeprefix("sqlite:///")).stat().st_size
        engine = sa.create_engine(db_url)
        with engine.connect() as connection:
            size = connection.execute(sa.text("SELECT pg_total_relation_size('forecasts')")).scalar()
        engine.dispose()
        return int(size)

    for day in range(1, 5):
        write_forecasts_db(vintage(day), db_url)
    prune_vintages(db_url, pd.Timestamp("2026-01-04T00:00Z"), dry_run=False)  # 3 of 4 vintages go
    pruned = store_size()
    for day in range(5, 7):
        write_forecasts_db(vintage(day), db_url)
        prune_vintages(db_url, pd.Timestamp(f"2026-01-{day - 1:02d}T00:00Z"), dry_run=False)
    assert len(read_table_db(db_url)) == 2 * 900
    assert store_size() <= pruned  # new vintages filled the freed space instead of growing the store


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


def test_a_retried_selection_write_replaces_its_own_rows_and_keeps_other_backtests(db_url):
    url = db_url

    def selection(run_id: str, model: str) -> pd.DataFrame:
        return pd.DataFrame({"region": ["a", "b"], "model": model, "wape": 0.3, "backtest_run_id": run_id,
                             "slot": "30min", "horizon_days": 21, "created_at": "2026-01-01T00:00:00+00:00"})

    write_selection_db(selection("bt-1", "xgboost"), url)
    write_selection_db(selection("bt-2", "ensemble"), url)
    write_selection_db(selection("bt-2", "ensemble"), url)  # the task is retried after its write
    table = read_table_db(url, "model_selection")
    assert sorted(zip(table["backtest_run_id"], table["region"])) == [("bt-1", "a"), ("bt-1", "b"),
                                                                        ("bt-2", "a"), ("bt-2", "b")]


def test_writers_at_once_on_a_new_postgresql_database_neither_collide_nor_lose_rows(postgres):
    """Creating the table and adding quantile columns race without the write lock: each writer
    would find no table (or column) and create it."""
    import threading

    url = postgres.create_database(f"race_{uuid4().hex[:12]}")
    start = threading.Barrier(4)
    errors, waits = [], []

    def write(index: int) -> None:
        rows = forecast_rows("2026-01-01T00:00Z", float(index), regions=(f"r{index}",)).assign(**{f"p{index + 1}": 1.0})
        start.wait()
        try:
            waits.append(write_forecasts_db(rows, url))
        except Exception as error:  # noqa: BLE001 - collected, then asserted empty
            errors.append(error)

    threads = [threading.Thread(target=write, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(waits) == 4
    table = read_table_db(url)
    assert table.groupby("region").size().to_dict() == {f"r{index}": 3 for index in range(4)}
    assert {"p1", "p2", "p3", "p4"} <= set(table.columns)
