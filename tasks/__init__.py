"""Thin Prefect tasks: each calls one `forecasting` function and adds names, retries and logs."""
from __future__ import annotations

import logging
from typing import Any

import hashlib
from pathlib import Path

from prefect import get_run_logger
from prefect.cache_policies import INPUTS, RUN_ID, TASK_SOURCE
from prefect._internal.concurrency.threads import get_global_loop
from prefect.concurrency.services import ConcurrencySlotAcquisitionWithLeaseService
from prefect.context import TaskRunContext
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


def close_tag_slot_service() -> None:
    """Stop the slot-acquisition service that Prefect's task engine started for this task run's tags.

    Before a tagged task run starts, the engine asks the server for tag concurrency slots
    through a service, one per distinct set of tags in each process, that keeps a thread and
    an open API connection for the life of the process (PrefectHQ/prefect#18615). With a tag
    per region, every worker would collect one of each per region it ever ran. By the time
    the task's body runs, its slots are acquired (releasing them uses another client), so the
    service is idle and is stopped here. Call this first thing in a task whose tags name a region.
    Two task runs with the very same tags starting at once in one process could race (the later
    one would fail to get its slots); the forecast never does that, as a region's train, predict
    and fallback run one after another.
    """
    context = TaskRunContext.get()
    if context is None or not context.task_run.tags:
        return
    names = frozenset(f"tag:{tag}" for tag in context.task_run.tags)
    service = ConcurrencySlotAcquisitionWithLeaseService.instance(names)
    service.drain()
    _let_go_of(service)


def _let_go_of(service: ConcurrencySlotAcquisitionWithLeaseService) -> None:
    """Drop what Prefect still holds of a stopped service: its closed API client, and the call
    that would drain it at shutdown, whose captured context holds the task run that started it
    with that run's own API client. Each client keeps an SSL context, so together this is about
    2 MiB per tag set (see BENCHMARKS.md). Both are Prefect internals, looked up defensively:
    if they move, this does nothing and `tests/flows/test_tag_services.py` says so."""
    vars(service).pop("_client", None)
    shutdown_calls = getattr(get_global_loop(), "_on_shutdown", None)
    for call in list(shutdown_calls or ()):
        if getattr(getattr(call, "fn", None), "__self__", None) is service:
            shutdown_calls.remove(call)
