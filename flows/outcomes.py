"""Reading outcomes: a finished task run's error, the cluster a flow runs on, and how to retry.

A task whose Dask worker died more often than Dask allows (`KilledWorker`) would stay
Running in Prefect; `error_of` explains it (out of memory or killed) and marks the task run
Failed with that message, so every region ends in a final state a person can read.
"""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import deployment
from prefect.states import Failed


def cluster_info() -> dict[str, Any]:
    """Kind, worker count and dashboard of the flow run's task runner, logged once."""
    runner = FlowRunContext.get().task_runner
    describe = getattr(runner, "describe", None)
    info = describe() if describe else {"kind": type(runner).__name__, "workers": None, "dashboard": None}
    get_run_logger().info("Cluster: %s, %s workers, dashboard %s", info["kind"], info["workers"],
                          info["dashboard"] or "none")
    return info


def ui_retry_hint(run_id: str) -> str | None:
    """For a deployment's run, how to redo only what failed once the cause is fixed: Retry in
    the Prefect UI (only failed task runs run again); None for an ad-hoc run, which has no Retry."""
    if deployment.id:
        return f"Repair: fix the cause, then press Retry on this run in the Prefect UI (or `ordercast retry {run_id}`)"
    return None


def error_of(future: PrefectFuture) -> str | None:
    """The failure text of a finished task run, or None if it completed."""
    future.wait()
    if future.state.is_completed():
        return None
    try:
        future.result()
    except Exception as error:  # the task's own exception, re-raised by Prefect
        if _is_killed_worker(error):
            return _settle_lost_task(future, error)
        return f"{type(error).__name__}: {error}"
    return future.state.message or future.state.name


def _is_killed_worker(error: Exception) -> bool:
    from distributed.scheduler import KilledWorker

    return isinstance(error, KilledWorker)


def _settle_lost_task(future: PrefectFuture, error) -> str:
    """Explain a task whose workers kept dying, and mark its task run Failed in Prefect."""
    attempts = error.allowed_failures + 1
    memory = _memory_restart(error.last_worker.address)
    if memory:
        limit = error.last_worker.memory_limit
        message = (f"MemoryLimitExceeded: exceeded the worker memory limit ({_gib(memory['rss'])} used of "
                   f"{_gib(limit)}) and its worker was restarted, on {attempts} attempts")
    else:
        message = (f"WorkerLost: its Dask worker process died on {attempts} attempts (killed from outside or "
                   f"crashed); see the worker logs")
    with get_client(sync_client=True) as client:
        client.set_task_run_state(future.task_run_id, Failed(message=message), force=True)
    get_run_logger().error("Task run %s: %s", future.task_run_id, message)
    return message


def _memory_restart(worker_address: str) -> dict[str, Any] | None:
    """The nanny's memory-restart event for this worker, if the scheduler logged one."""
    runner = FlowRunContext.get().task_runner
    client = getattr(runner, "client", None)
    if client is None:
        return None
    for _, event in client.get_events("worker-restart-memory"):
        if event.get("worker") == worker_address:
            return event
    return None


def _gib(size: float | None) -> str:
    return f"{size / 2**30:.2f} GiB" if size else "unknown"
