"""Accuracy tracking task: score stored forecast vintages against the orders that arrived."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from forecasting.contract import InputPaths
from forecasting.tracking import track
from tasks import run_logger, transient_retries


@task(name="track-accuracy", task_run_name="track-accuracy", **transient_retries())
def track_accuracy(paths: InputPaths, slot: str, missing_as_zero: bool, db_url: str, out_dir: str,
                   since: str | None) -> dict[str, Any]:
    summary = track(paths, slot, missing_as_zero, db_url, Path(out_dir), since)
    run_logger().info("Forecast vintages scored: %d; regions clearly worse than their backtest promised: %s",
                      summary["vintages"], ", ".join(summary["flagged"]) or "none")
    return summary
