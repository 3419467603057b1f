"""A forecast run's outputs, committed as one unit.

Everything a run writes into OUT is first staged, complete, under `OUT/.staging/<run id>/`
(forecasts.parquet, plots, run.json). The database transaction is the commit point: once it
has committed, the staged files are copied over the published names (`forecasts.parquet`,
`plots/`, and `run.json` last) and the stage is removed. A crash before the commit leaves the
previous output; a crash after it is completed by the next command that writes or reads OUT
(`recover_outputs`), which publishes a stage whose rows are in the database and discards one
whose rows are not. So OUT and the database always describe the same complete run.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from forecasting.faults import maybe_fail
from forecasting.pipeline import package_versions
from forecasting.storage import (
    FORECAST_COLUMNS,
    atomic_copy,
    atomic_write_json,
    atomic_write_parquet,
    iso_utc_micro,
    write_forecasts_db,
)

STAGING = ".staging"


def collect_outputs(
    predictions: list[dict[str, Any]], out_dir: Path, db_url: str, run_id: str, run_info: dict[str, Any],
) -> dict[str, Any]:
    """Merge the region partitions into OUT (Parquet, plots, run.json) and the database, as one
    unit. The caller holds OUT's lock."""
    recover_outputs(out_dir)
    created_at = pd.Timestamp.now(tz="UTC")
    frames = [pd.read_parquet(p["forecast_path"]) for p in sorted(predictions, key=lambda p: p["region"])]
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts["run_id"] = run_id
    forecasts["created_at"] = created_at
    forecasts = forecasts[FORECAST_COLUMNS + [c for c in forecasts.columns if c not in FORECAST_COLUMNS]]

    stage = out_dir / STAGING / run_id
    shutil.rmtree(stage, ignore_errors=True)
    atomic_write_parquet(stage / "forecasts.parquet", forecasts)
    for prediction in predictions:
        atomic_copy(prediction["plot_path"], stage / "plots" / Path(prediction["plot_path"]).name)
    atomic_write_json(stage / "run.json", {**run_info, "run_id": run_id, "created_at": created_at.isoformat(),
                                           "packages": package_versions()})
    maybe_fail("write", "staged", run_id)
    waited = write_forecasts_db(forecasts, db_url)
    maybe_fail("write", "committed", run_id)
    _publish(stage, out_dir, run_id)
    plots = [str(out_dir / "plots" / Path(p["plot_path"]).name) for p in predictions]
    return {"forecast_rows": len(forecasts), "db_lock_wait_seconds": round(waited, 3), "db_url": db_url,
            "plots": sorted(plots)}


def recover_outputs(out_dir: Path, run_id: str | None = None) -> list[str]:
    """Finish or discard the stages a crashed run left in OUT (only `run_id`'s, if given);
    returns the run ids published. Call it holding OUT's lock."""
    published = []
    root = Path(out_dir) / STAGING
    stages = [root / run_id] if run_id else sorted(root.iterdir()) if root.is_dir() else []
    for stage in stages:
        if not stage.is_dir():
            continue
        try:
            record = json.loads((stage / "run.json").read_text())
        except (OSError, ValueError):
            shutil.rmtree(stage, ignore_errors=True)  # staging never finished: nothing was committed
            continue
        if _committed(record["configuration"]["db"], stage.name, record["created_at"]):
            _publish(stage, Path(out_dir), stage.name)
            published.append(stage.name)
        else:
            shutil.rmtree(stage, ignore_errors=True)
    return published


def _publish(stage: Path, out_dir: Path, run_id: str) -> None:
    """Copy a committed stage over the published names, run.json last, then drop the stage.
    Copies (not moves) keep this repeatable after a crash half-way."""
    for plot in sorted((stage / "plots").glob("*")):
        atomic_copy(plot, out_dir / "plots" / plot.name)
    atomic_copy(stage / "forecasts.parquet", out_dir / "forecasts.parquet")
    maybe_fail("write", "published-parquet", run_id)
    atomic_copy(stage / "run.json", out_dir / "run.json")
    shutil.rmtree(stage, ignore_errors=True)


def _committed(db_url: str, run_id: str, created_at: str) -> bool:
    """Whether the forecast table holds the rows of this attempt of the run (a retry runs under
    the same run id, so the attempt is told apart by its `created_at`)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("forecasts"):
                return False
            query = sa.text("SELECT 1 FROM forecasts WHERE run_id = :run_id AND created_at = :created_at LIMIT 1")
            stamp = iso_utc_micro(pd.Series([pd.Timestamp(created_at)]))[0]
            return connection.execute(query, {"run_id": run_id, "created_at": stamp}).first() is not None
    finally:
        engine.dispose()


def read_run_record(out_dir: Path, name: str = "run.json") -> dict[str, Any] | None:
    """OUT/run.json (or another JSON record of OUT), or None when there is none (or it cannot be read)."""
    try:
        return json.loads((Path(out_dir) / name).read_text())
    except (OSError, ValueError):
        return None
