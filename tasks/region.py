"""Per-region training and prediction, mapped over regions.

Arguments are small records (partition paths, options); each task reads its region's
partition from disk, so no DataFrame travels through Prefect or Dask.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from forecasting.pipeline import RunOptions, predict_region, train_region
from tasks import run_logger


@task(name="train-region", task_run_name="train-{region}")
def train(region: str, entry: dict[str, Any], options: RunOptions, model_store: str, selection_store: str,
          as_of: str, run_id: str) -> dict[str, Any]:
    """Fit and store the region's model (its backtest selection, if any); returns its training record."""
    record = train_region(entry, options, Path(model_store), Path(selection_store), as_of, run_id)
    note = f" ({record['note']})"
    run_logger().info("Trained %s for %s on %d rows in %.1f s%s", record["model"], region,
                          record["train_rows"], record["train_seconds"], note)
    return record


@task(name="predict-region", task_run_name="predict-{region}")
def predict(region: str, entry: dict[str, Any], options: RunOptions, model_store: str, as_of: str,
            run_dir: str, trained: dict[str, Any] | None) -> dict[str, Any]:
    """Predict the region's horizon and write its forecast partition and plot."""
    record = predict_region(entry, options, Path(model_store), as_of, Path(run_dir), trained)
    run_logger().info("Predicted %d slots for %s with %s", record["rows"], region, record["model"])
    return record
