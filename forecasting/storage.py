"""Atomic output writes and the SQL forecast table.

Files are written to a temporary name in the same folder, flushed and renamed over the
target, so a crash mid-write leaves the previous file intact. The database write is one
transaction that replaces the rows of the same (region, as_of) and keeps other vintages.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

FORECAST_COLUMNS = ["region", "ts", "local_start", "as_of", "forecast", "model", "fallback", "run_id", "created_at"]
SELECTION_COLUMNS = ["region", "model", "wape", "backtest_run_id"]
_TIMESTAMP_COLUMNS = ("ts", "as_of")
WRITE_LOCK_KEY = 7_283_912_044  # the PostgreSQL advisory lock every ordercast write takes
# A UTC instant: ISO-8601 text on SQLite (which has no time type), timestamptz on PostgreSQL.
INSTANT = sa.String(32).with_variant(sa.DateTime(timezone=True), "postgresql")


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    os.chmod(handle.name, 0o644)  # temporary files start private; outputs are shared files
    return handle


def _commit(handle, path: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(handle.name, path)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    handle = _atomic_target(path)
    try:
        handle.write(data)
        _commit(handle, path)
    except BaseException:
        handle.close()
        Path(handle.name).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, payload: Any) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, default=str) + "\n").encode())


def atomic_write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    path = Path(path)
    handle = _atomic_target(path)
    try:
        frame.to_parquet(handle, index=False)
        _commit(handle, path)
    except BaseException:
        handle.close()
        Path(handle.name).unlink(missing_ok=True)
        raise


def atomic_copy(source: str | Path, target: str | Path) -> None:
    target = Path(target)
    handle = _atomic_target(target)
    try:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, handle)
        _commit(handle, target)
    except BaseException:
        handle.close()
        Path(handle.name).unlink(missing_ok=True)
        raise


def default_db_url(out_dir: str | Path) -> str:
    return f"sqlite:///{Path(out_dir).resolve() / 'forecasts.sqlite'}"


def split_password(url: str) -> tuple[str, str | None]:
    """A database URL without its password, and the password (None when it has none)."""
    if "://" not in url:
        return url, None
    parsed = sa.engine.make_url(url)
    if parsed.password is None:
        return url, None
    bare = sa.engine.URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database,
                                parsed.query)
    return bare.render_as_string(), str(parsed.password)


def check_connection(url: str) -> None:
    """Connect once to a database server, so that a wrong address, password or missing driver
    fails in seconds, before any flow runs (a SQLite file needs no check)."""
    from forecasting.errors import ConfigError

    if url.startswith("sqlite"):
        return
    try:
        engine = sa.create_engine(url)
    except (ImportError, sa.exc.ArgumentError) as error:
        raise ConfigError(f"{url}: no driver for this database ({error}); for PostgreSQL: "
                          "pip install 'ordercast[postgres]'") from None
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[-1]
        raise ConfigError(f"{url}: cannot connect ({reason}). A PostgreSQL password is read from PGPASSWORD or "
                          "~/.pgpass, or from the URL") from None
    finally:
        engine.dispose()


def iso_utc(values: pd.Series) -> pd.Series:
    """ISO-8601 text with offset, e.g. 2024-06-01T09:30:00+00:00."""
    return values.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def iso_utc_micro(values: pd.Series) -> pd.Series:
    """ISO-8601 text to the microsecond, e.g. 2024-06-01T09:30:00.250000+00:00: a write's
    `created_at`, which tells two attempts of one run apart."""
    return values.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def forecasts_table(metadata: sa.MetaData, quantile_columns: list[str] = ()) -> sa.Table:
    return sa.Table(
        "forecasts",
        metadata,
        sa.Column("region", sa.String, primary_key=True),
        sa.Column("ts", INSTANT, primary_key=True),
        sa.Column("local_start", sa.String(32)),
        sa.Column("as_of", INSTANT, primary_key=True),
        sa.Column("forecast", sa.Float, nullable=False),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("fallback", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        *(sa.Column(name, sa.Float) for name in quantile_columns),
    )


def model_selection_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "model_selection",
        metadata,
        sa.Column("region", sa.String, primary_key=True),
        sa.Column("backtest_run_id", sa.String, primary_key=True),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("wape", sa.Float),
        sa.Column("slot", sa.String, nullable=False),
        sa.Column("horizon_days", sa.Integer, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
    )


def _add_missing_columns(connection: sa.Connection, table: sa.Table) -> None:
    """Columns are added to an existing table when a run asks for new quantiles, or when the
    table predates a column (`fallback`, default false)."""
    present = {column["name"] for column in sa.inspect(connection).get_columns(table.name)}
    for column in table.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=connection.dialect)
            default = " DEFAULT FALSE NOT NULL" if column.name == "fallback" else ""
            connection.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{default}'))


@contextmanager
def write_transaction(url: str) -> Iterator[tuple[sa.Connection, float]]:
    """One write transaction on the forecast database; yields the connection and the seconds
    spent waiting for the write lock.

    On PostgreSQL every ordercast write first takes one transaction-level advisory lock, so the
    writes of concurrent runs (creating a table, adding a quantile column, replacing then
    inserting a vintage) never interleave; the lock goes with the commit. SQLite needs none:
    a run holds the database's lock file from start to end (forecasting/locks.py)."""
    ensure_sqlite_folder(url)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            started = time.perf_counter()
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
            yield connection, time.perf_counter() - started
    finally:
        engine.dispose()


def write_selection_db(frame: pd.DataFrame, url: str) -> float:
    """Add one backtest's selections (earlier backtests' rows are kept as history) in one
    transaction that first removes any rows of the same backtest run, so a retried write
    replaces instead of failing on the primary key. Returns the seconds waited for the write lock."""
    table = model_selection_table(sa.MetaData())
    with write_transaction(url) as (connection, waited):
        table.create(connection, checkfirst=True)
        runs = frame["backtest_run_id"].unique().tolist()
        connection.execute(table.delete().where(table.c.backtest_run_id.in_(runs)))
        connection.execute(table.insert(), frame.to_dict("records"))
    return waited


def ensure_sqlite_folder(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def write_forecasts_db(frame: pd.DataFrame, url: str) -> float:
    """Replace the rows of each written (region, as_of) in one transaction; returns the seconds
    waited for the write lock."""
    quantile_columns = [c for c in frame.columns if c not in FORECAST_COLUMNS]
    rows = frame[FORECAST_COLUMNS + quantile_columns].copy()
    for column in _TIMESTAMP_COLUMNS:
        rows[column] = iso_utc(rows[column])
    rows["created_at"] = iso_utc_micro(rows["created_at"])
    table = forecasts_table(sa.MetaData(), quantile_columns)
    with write_transaction(url) as (connection, waited):
        table.create(connection, checkfirst=True)
        _add_missing_columns(connection, table)
        for as_of, group in rows.groupby("as_of"):
            connection.execute(
                table.delete().where(table.c.as_of == as_of, table.c.region.in_(group["region"].unique().tolist()))
            )
        connection.execute(table.insert(), rows.to_dict("records"))
    return waited


def read_table_db(url: str, table: str = "forecasts") -> pd.DataFrame | None:
    """The whole table, or None when the database has no such table (yet)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(table):
                return None
            return pd.read_sql_table(table, connection)
    finally:
        engine.dispose()
