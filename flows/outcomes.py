"""Reading the outcome of a finished task run from its future."""
from __future__ import annotations

from prefect.futures import PrefectFuture


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
