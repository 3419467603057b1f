"""Feature loading: validate the inputs and partition them per region."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from forecasting.contract import InputPaths
from forecasting.pipeline import RunOptions, prepare_partitions
from tasks import run_logger, transient_retries


@task(name="load-inputs", task_run_name="load-inputs", **transient_retries())
def load_inputs(paths: InputPaths, options: RunOptions, cache_dir: str, model_store: str) -> dict[str, Any]:
    """Validate every input table and write one partition per region; returns the manifest."""
    logger = run_logger()
    manifest = prepare_partitions(paths, options, Path(cache_dir), Path(model_store))
    for note in manifest["warnings"]:
        logger.warning(note)
    logger.info("Partitioned %d regions, as_of %s", len(manifest["regions"]), manifest["as_of"])
    return manifest
