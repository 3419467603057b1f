"""Writing the results: merge region outputs into OUT and the database, atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from forecasting.outputs import collect_outputs
from tasks import run_logger, transient_retries


@task(name="write-outputs", task_run_name="write-outputs", **transient_retries())
def write_outputs(predictions: list[dict[str, Any]], out_dir: str, db_url: str, run_id: str,
                  run_info: dict[str, Any]) -> dict[str, Any]:
    """Write OUT and the database, as one unit."""
    summary = collect_outputs(predictions, Path(out_dir), db_url, run_id, run_info)
    run_logger().info("Wrote %d forecast rows to %s and %s (waited %.2f s for the database's write lock)",
                      summary["forecast_rows"], out_dir, db_url, summary["db_lock_wait_seconds"])
    return summary
