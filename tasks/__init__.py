"""Thin Prefect tasks: each calls one `forecasting` function and adds names, retries and logs."""
from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The task run's logger, or a plain logger when the function is called via `.fn()`."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("ordercast")
