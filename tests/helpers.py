"""Helpers shared by tests: running the real `ordercast` command and reading its outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def table_args(folder: Path) -> list[str]:
    """CLI options for every table of a demo data folder."""
    args = []
    for name in ("orders", "weather", "events", "promotions", "regions"):
        args += [f"--{name}", str(folder / f"{name}.csv")]
    return args


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600,
            umask: int | None = None) -> subprocess.CompletedProcess:
    """Run the installed `ordercast` console script and capture its output."""
    command = [str(Path(sys.executable).with_name("ordercast")), *args]
    set_umask = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run(command, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=set_umask)


def read_run(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def settled(measure: Callable[[], T], good: Callable[[T], bool], seconds: float) -> T:
    """What `measure()` gives once `good` of it holds, or after `seconds` (looked at every 0.2 s)."""
    deadline = time.monotonic() + seconds
    while True:
        value = measure()
        if good(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def prefect_records(api_url: str, run_id: str, expect: Iterable[str] = (), timeout: float = 60.0):
    """What the Prefect UI shows for a flow run: the run, its task runs and its artifacts.

    The server records task runs from the events their workers send, so it can record the last
    ones a moment after the flow run has finished. With `expect` (task run names), wait up to
    `timeout` seconds until each of those is recorded in a final state; then return what is there."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    expected = set(expect)

    def all_expected_final(task_runs) -> bool:
        return expected <= {run.name for run in task_runs if run.state and run.state.is_final()}

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            task_runs = settled(
                lambda: client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))),
                all_expected_final, timeout)
            flow_run = client.read_flow_run(run_id)
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return flow_run, task_runs, artifacts


def run_id_from(output: str) -> str:
    """The flow run id from the `Flow run:` line the CLI prints."""
    for line in output.splitlines():
        if line.startswith("Flow run:"):
            return line.split("/runs/flow-run/")[1].split()[0]
    raise AssertionError(f"no 'Flow run:' line in output:\n{output}")
