"""Helpers shared by tests: running the real `ordercast` command and reading its outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path


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

    expected, deadline = set(expect), time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            while True:
                task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
                final = {run.name for run in task_runs if run.state and run.state.is_final()}
                if expected <= final or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
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
