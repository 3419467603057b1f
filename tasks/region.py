"""Per-region training, prediction and fallback, one task run per region and step (and the
pooled model's training, once per run, when a region chose it).

Arguments are small records (partition paths, options); each task reads its region's
partition from disk, so no DataFrame travels through Prefect or Dask. Transient errors
(I/O, network, database) are retried with backoff; data and model errors fail at once.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import task

from forecasting import pooled as pooled_model
from forecasting.isolation import call_with_time_limit
from forecasting.pipeline import RunOptions, predict_region, train_region
from tasks import run_logger, transient_retries


@task(name="train-pooled", task_run_name="train-pooled", **transient_retries())
def train_pooled(entries: list[dict[str, Any]], options: RunOptions, model_store: str, run_dir: str) -> dict[str, Any]:
    """Fit and store the pooled model once, on every region of the run; returns its record.
    With `options.region_timeout`, the fit runs in a child process killed after that limit
    times the number of regions it learns from (it does the training of all of them at once)."""
    limit = options.region_timeout * len(entries) if options.region_timeout else None
    record = _within(limit, pooled_model.train_pooled, f"training of the pooled model on {len(entries)} region(s)",
                     entries=entries, options=options, model_store=Path(model_store), run_dir=Path(run_dir))
    run_logger().info("Trained the pooled model on %d regions, %d rows, in %.1f s", len(entries),
                      record["train_rows"], record["train_seconds"])
    return record


@task(name="train-region", task_run_name="train-{region}", **transient_retries())
def train(region: str, entry: dict[str, Any], options: RunOptions, model_store: str, selection_store: str,
          as_of: str, run_dir: str, pooled: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit and store the region's model (its backtest selection, if any); returns its training record.
    A region that chose the pooled model gets its share of `pooled` (from `train_pooled`).
    With `options.region_timeout`, the fit runs in a child process that is killed at the limit."""
    record = _within(options.region_timeout, train_region, f"training of region '{region}'", entry=entry,
                     options=options, model_store=Path(model_store), selection_store=Path(selection_store),
                     as_of=as_of, run_dir=Path(run_dir), pooled=pooled)
    run_logger().info("Trained %s for %s on %d rows in %.1f s (%s)", record["model"], region,
                      record["train_rows"], record["train_seconds"], record["note"])
    return record


def _within(seconds: float | None, function: Callable[..., Any], what: str, **arguments: Any) -> Any:
    """`function(**arguments)`; with a time limit, in a child process stopped after `seconds`."""
    return call_with_time_limit(function, seconds, what, **arguments) if seconds else function(**arguments)


@task(name="predict-region", task_run_name="predict-{region}", **transient_retries())
def predict(region: str, entry: dict[str, Any], options: RunOptions, model_store: str, as_of: str,
            run_dir: str, trained: dict[str, Any] | None) -> dict[str, Any]:
    """Predict the region's horizon and write its forecast partition and plot."""
    record = predict_region(entry, options, Path(model_store), as_of, Path(run_dir), trained)
    run_logger().info("Predicted %d slots for %s with %s", record["rows"], region, record["model"])
    return record


@task(name="fallback-region", task_run_name="fallback-{region}", **transient_retries())
def fallback(region: str, entry: dict[str, Any], options: RunOptions, model_store: str, as_of: str,
             run_dir: str, reason: str) -> dict[str, Any]:
    """The seasonal naive forecast for a region whose own model failed, marked `fallback`."""
    run_logger().warning("Region %s falls back to the seasonal naive: %s", region, reason)
    trained = train_region(entry, options, Path(model_store), None, as_of, Path(run_dir),
                           fallback_reason=reason)
    return predict_region(entry, options, Path(model_store), as_of, Path(run_dir), trained)
