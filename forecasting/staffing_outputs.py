"""Reading stored forecasts for staffing, and writing the staffing outputs.

Outputs: `staffing.parquet` and `shifts.parquet`, the planner's week per region
(`staffing/<region>.csv`), a plot per region (`plots/staffing_<region>.png`), and the database
tables `staffing` and `shifts`. The database transaction comes first and is the commit point
(rows of the same region and `as_of` are replaced, other vintages kept); the files follow, each
written atomically.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from forecasting.contract import parse_as_of
from forecasting.errors import ConfigError
from forecasting.paths import region_key
from forecasting.storage import (
    INSTANT,
    atomic_write_bytes,
    atomic_write_parquet,
    iso_utc,
    read_table_db,
    write_transaction,
)

PLANNER_DAYS = 7


def read_stored_forecasts(source: str, as_of: str | None) -> pd.DataFrame:
    """Forecast rows from a forecast's output folder (its published `forecasts.parquet`) or a
    database URL: the vintage `as_of` if given, else each region's latest."""
    folder = Path(source)
    if "://" not in source:
        file = folder / "forecasts.parquet"
        if folder.is_file():
            raise ConfigError(f"{source}: a file, not a forecast's OUT folder; a SQLite database is passed as its URL, "
                              f"sqlite:///{folder.resolve()}")
        if not file.is_file():
            raise ConfigError(f"{source}: no forecasts.parquet here; pass a forecast's OUT folder or a database URL")
        frame = pd.read_parquet(file)
    else:
        frame = read_table_db(source)
        if frame is None:
            raise ConfigError(f"{source}: the database has no forecasts table")
    for column in ("ts", "as_of"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    if as_of:
        wanted = parse_as_of(as_of)
        stored = frame["as_of"].drop_duplicates()
        frame = frame.loc[frame["as_of"] == wanted]
        if frame.empty:
            nearest = sorted(stored.iloc[(stored - wanted).abs().argsort()[:5]])
            raise ConfigError(f"{source}: no forecasts with as_of {wanted.isoformat()}; the nearest stored: "
                              f"{', '.join(when.isoformat() for when in nearest)} (or leave out --as-of for each "
                              "region's latest)")
    else:
        latest = frame.groupby("region")["as_of"].transform("max")
        frame = frame.loc[frame["as_of"] == latest]
    return frame.sort_values(["region", "ts"]).reset_index(drop=True)


def planner_week(rows: pd.DataFrame) -> pd.DataFrame:
    """The week a planner reads: one row per local time of day, one column per local date of
    the first 7 days, drivers required in the cells (empty where a clock change skips a slot;
    the larger value where it repeats one)."""
    local = rows["local_start"].str.slice(0, 16)
    week = rows.assign(date=local.str.slice(0, 10), time=local.str.slice(11, 16))
    dates = sorted(week["date"].unique())[:PLANNER_DAYS]
    week = week.loc[week["date"].isin(dates)]
    table = week.pivot_table(index="time", columns="date", values="drivers", aggfunc="max")
    return table.astype("Int64").rename_axis(index="local_time", columns=None).reset_index()


def _staffing_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "staffing", metadata,
        sa.Column("region", sa.String, primary_key=True),
        sa.Column("ts", INSTANT, primary_key=True),
        sa.Column("local_start", sa.String(32)),
        sa.Column("expected_orders", sa.Float, nullable=False),
        sa.Column("orders_at_service_level", sa.Float, nullable=False),
        sa.Column("service_level", sa.Float, nullable=False),
        sa.Column("drivers", sa.Integer, nullable=False),
        sa.Column("scheduled_drivers", sa.Integer, nullable=False),
        sa.Column("as_of", INSTANT, primary_key=True),
        sa.Column("run_id", sa.String, nullable=False),
    )


def _shifts_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "shifts", metadata,
        sa.Column("region", sa.String, primary_key=True),
        sa.Column("as_of", INSTANT, primary_key=True),
        sa.Column("shift_start", sa.String(32), primary_key=True),
        sa.Column("shift_end", sa.String(32), primary_key=True),
        sa.Column("published", sa.Boolean, primary_key=True),
        sa.Column("drivers", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String, nullable=False),
    )


def write_staffing_db(rows: pd.DataFrame, shifts: pd.DataFrame, url: str) -> float:
    """Both tables in one transaction, replacing the rows of each written (region, as_of);
    returns the seconds waited for the write lock."""
    rows = rows.assign(ts=iso_utc(rows["ts"]), as_of=iso_utc(rows["as_of"]))
    shifts = shifts.assign(as_of=iso_utc(shifts["as_of"]))
    metadata = sa.MetaData()
    tables = ((_staffing_table(metadata), rows), (_shifts_table(metadata), shifts))
    with write_transaction(url) as (connection, waited):
        for table, frame in tables:
            table.create(connection, checkfirst=True)
            for as_of, group in rows.groupby("as_of"):
                regions = group["region"].unique().tolist()
                connection.execute(table.delete().where(table.c.as_of == as_of, table.c.region.in_(regions)))
            if len(frame):
                connection.execute(table.insert(), frame[[c.name for c in table.columns]].to_dict("records"))
    return waited


def write_staffing_files(out_dir: Path, rows: pd.DataFrame, shifts: pd.DataFrame, plots: dict[str, bytes]) -> None:
    """The Parquet tables, each region's planner week and its plot, each file written atomically."""
    atomic_write_parquet(out_dir / "staffing.parquet", rows)
    atomic_write_parquet(out_dir / "shifts.parquet", shifts)
    for region, group in rows.groupby("region"):
        atomic_write_bytes(out_dir / "staffing" / f"{region_key(region)}.csv",
                           planner_week(group).to_csv(index=False).encode())
    for region, png in plots.items():
        atomic_write_bytes(out_dir / "plots" / f"staffing_{region_key(region)}.png", png)
