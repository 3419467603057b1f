"""Reading outcomes: a finished task run's error, and the cluster a flow runs on."""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture


def cluster_info() -> dict[str, Any]:
    """Kind, worker count and dashboard of the flow run's task runner, logged once."""
    runner = FlowRunContext.get().task_runner
    describe = getattr(runner, "describe", None)
    info = describe() if describe else {"kind": type(runner).__name__, "workers": None, "dashboard": None}
    get_run_logger().info("Cluster: %s, %s workers, dashboard %s", info["kind"], info["workers"],
                          info["dashboard"] or "none")
    return info


def error_of(future: PrefectFuture) -> str | None:
    """The failure text of a finished task run, or None if it completed."""
    future.wait()
    if future.state.is_completed():
        return None
    try:
        future.result()
    except Exception as error:  # the task's own exception, re-raised by Prefect
        return f"{type(error).__name__}: {error}"
    return future.state.message or future.state.name
