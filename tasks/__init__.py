"""Thin Prefect tasks: each calls one `forecasting` function and adds names, retries and logs."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.cache_policies import INPUTS, RUN_ID, TASK_SOURCE
from prefect.exceptions import MissingContextError
from prefect.filesystems import LocalFileSystem
from prefect.tasks import exponential_backoff

from forecasting.errors import is_transient
from forecasting.settings import work_root

TRANSIENT_RETRIES = 3


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The task run's logger, or a plain logger when the function is called via `.fn()`."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("ordercast")


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry I/O, network and database hiccups, nothing else."""
    try:
        state.result()
    except Exception as error:  # the task's own exception, re-raised from its state
        return is_transient(error)
    return False


def transient_retries() -> dict[str, Any]:
    """Task options for steps that touch files, the network or the database: up to three
    retries after about 2, 4 and 8 seconds (plus or minus half, at random), transient errors only."""
    return {"retries": TRANSIENT_RETRIES, "retry_delay_seconds": exponential_backoff(backoff_factor=2),
            "retry_jitter_factor": 0.5, "retry_condition_fn": retry_if_transient}


def shared_storage(folder: Path) -> LocalFileSystem:
    """Result storage in `folder`, saved as a block on the Prefect server (named after the
    folder) so that every worker, on this machine or another that shares it, can load it."""
    storage = LocalFileSystem(basepath=str(folder))
    storage.save(f"ordercast-{folder.name}-{hashlib.sha256(str(folder).encode()).hexdigest()[:12]}", overwrite=True)
    return storage


def with_stored_results(*tasks):
    """The tasks with their results persisted under `<work root>/results`, keyed by their inputs,
    their source and the flow run: when a failed flow run is retried under its own id (Retry in
    the Prefect UI), each task run that completed before comes back Cached instead of running."""
    storage = shared_storage(work_root() / "results")
    return tuple(task.with_options(persist_result=True, result_storage=storage,
                                   cache_policy=INPUTS + TASK_SOURCE + RUN_ID) for task in tasks)
