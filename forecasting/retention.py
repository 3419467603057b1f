"""Retention: what `ordercast prune` removes, so a long-running installation does not fill its disk.

Under the work root (`$ORDERCAST_HOME`, or the cluster's shared folder): stored models, run
scratch folders (kept by failed runs for their retry), input snapshots (the partition cache),
stored task results (what Retry in the Prefect UI reads) and failure-drill markers. In the
forecast database, with `vintages`: old forecast vintages. On the Prefect server: old flow runs.

The rules keep what is still needed:
- nothing newer than `cutoff` is removed;
- of each region's models, the newest `keep` stay whatever their age (at least one: what a
  `--no-train` forecast loads), and so does every pooled model that one of them reads; of the
  run folders and snapshots, the newest `keep` stay (a retry of a kept run finds its scratch
  folder; a snapshot that is gone is rebuilt from the inputs);
- in the database, each region's newest vintage stays whatever its age;
- on the Prefect server, only flow runs that ended (completed, failed, crashed, cancelled).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from forecasting.errors import ConfigError
from forecasting.models.pooled import shared_source
from forecasting.model_store import POOLED_GROUP
from forecasting.storage import write_transaction

VINTAGE_TABLES = ("forecasts", "staffing", "shifts")


@dataclass(frozen=True)
class Removal:
    """One file or folder that prune removes, and why it may go."""

    kind: str
    path: Path
    bytes: int


def parse_age(text: str) -> pd.Timedelta:
    """'30D', '12h', '2W' -> a positive duration; a one-line error otherwise."""
    try:
        age = pd.Timedelta(text)
    except ValueError:
        raise ConfigError(f"--older-than: '{text}' is not a duration such as 30D or 12h") from None
    if age < pd.Timedelta(0):
        raise ConfigError(f"--older-than must not be negative, got '{text}'")
    return age


def plan_removals(root: Path, keep: int, cutoff: pd.Timestamp) -> list[Removal]:
    """What would go under `root` (the work root): see the module doc for the rules."""
    keep = max(keep, 1)
    removals = []
    pooled_group = root / "models" / POOLED_GROUP
    for region in _folders(root / "models"):
        if region != pooled_group:
            removals += _beyond(_folders(region), keep, cutoff, "models")
    removals += _unused_pooled(pooled_group, removals, keep, cutoff)
    removals += _beyond(_folders(root / "runs"), keep, cutoff, "run folders")
    snapshots = [folder for folder in _folders(root / "cache") if folder.name != "records"]
    for removal in _beyond(snapshots, keep, cutoff, "input snapshots"):
        removals.append(removal)
        record = root / "cache" / "records" / removal.path.name
        if record.exists():
            removals.append(Removal("input snapshots", record, _size(record)))
    removals += [Removal("task results", path, _size(path)) for path in _entries(root / "results")
                 if _modified(path) < cutoff]
    removals += [Removal("drill markers", path, _size(path)) for path in _folders(root / "drills")
                 if _modified(path) < cutoff]
    return removals


def _unused_pooled(group: Path, removals: list[Removal], keep: int, cutoff: pd.Timestamp) -> list[Removal]:
    """Pooled models past the newest `keep` and older than `cutoff` that no region model that
    stays still reads."""
    going = {removal.path for removal in removals}
    kept_shares = [folder for region in _folders(group.parent) if region != group
                   for folder in _folders(region) if folder not in going]
    in_use = {Path(source) for folder in kept_shares if (source := shared_source(folder))}
    return [removal for removal in _beyond(_folders(group), keep, cutoff, "models") if removal.path not in in_use]


def remove(removals: list[Removal]) -> None:
    for removal in removals:
        if removal.path.is_dir():
            shutil.rmtree(removal.path, ignore_errors=True)
        else:
            removal.path.unlink(missing_ok=True)


def prune_vintages(db_url: str, cutoff: pd.Timestamp, dry_run: bool) -> dict[str, int]:
    """Rows of forecast vintages (`as_of`) older than `cutoff`, per table, except each region's
    newest vintage; deleted in one transaction unless `dry_run`. On PostgreSQL the tables are
    then vacuumed, so the next vintages reuse the space instead of growing the database until
    autovacuum gets to them (SQLite reuses its free pages by itself)."""
    cutoff_text = cutoff.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S+00:00")
    counts = {}
    with write_transaction(db_url) as (connection, _):
        present = set(sa.inspect(connection).get_table_names())
        if "forecasts" not in present:
            raise ConfigError(f"{db_url}: no forecasts table")
        for table in (name for name in VINTAGE_TABLES if name in present):
            old = (f"FROM {table} WHERE as_of < :cutoff AND as_of < "
                   f"(SELECT MAX(newest.as_of) FROM {table} AS newest WHERE newest.region = {table}.region)")
            counts[table] = int(connection.execute(sa.text(f"SELECT COUNT(*) {old}"), {"cutoff": cutoff_text})
                                .scalar())
            if not dry_run:
                connection.execute(sa.text(f"DELETE {old}"), {"cutoff": cutoff_text})
    if not dry_run and any(counts.values()) and db_url.startswith("postgresql"):
        _vacuum(db_url, [table for table, count in counts.items() if count])
    return counts


def _vacuum(db_url: str, tables: list[str]) -> None:
    """VACUUM (ANALYZE) the tables: it cannot run inside a transaction, hence autocommit."""
    engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for table in tables:
                connection.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
    finally:
        engine.dispose()


def _beyond(folders: list[Path], keep: int, cutoff: pd.Timestamp, kind: str) -> list[Removal]:
    """Of `folders`, those past the newest `keep` (by modification time) and older than `cutoff`."""
    newest_first = sorted(folders, key=_modified, reverse=True)
    return [Removal(kind, folder, _size(folder)) for folder in newest_first[keep:] if _modified(folder) < cutoff]


def _folders(parent: Path) -> list[Path]:
    return [path for path in _entries(parent) if path.is_dir()]


def _entries(parent: Path) -> list[Path]:
    """Entries of a folder, without hidden ones (a model or stage still being written)."""
    return [path for path in parent.iterdir() if not path.name.startswith(".")] if parent.is_dir() else []


def _modified(path: Path) -> pd.Timestamp:
    return pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
