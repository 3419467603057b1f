"""Thin Prefect tasks: each calls one `forecasting` function and adds names, retries and logs."""
from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger
from prefect.exceptions import MissingContextError
from prefect.tasks import exponential_backoff

from forecasting.errors import is_transient

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
