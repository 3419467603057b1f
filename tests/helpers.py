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


def task_runs_since(api_url: str, run_id: str, since, count: int, timeout: float = 60.0) -> dict[str, str]:
    """Name and state of the task runs of a flow run created at or after `since` (a retry's),
    once `count` of them are recorded in a final state (or after `timeout` seconds)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            runs = settled(
                lambda: [run for run in client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))) if run.created >= since],
                lambda runs: sum(bool(run.state and run.state.is_final()) for run in runs) >= count, timeout)
    return {run.name: run.state.name for run in runs}


def flow_run_logs(api_url: str, run_id: str) -> str:
    """Every log line the Prefect server keeps for a flow run and its task runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    return "\n".join(log.message for log in logs)


def start_run(api_url: str, name: str, parameters: dict) -> str:
    """Start a run of deployment `name` ("flow/deployment") without waiting; returns its id."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return str(run_deployment(name, parameters=parameters, timeout=0).id)


def stop_schedules(api_url: str, pool: str) -> None:
    """Turn off the schedules of the pool's deployments and delete the runs they scheduled, so
    that a `worker --run-once` runs only what the test started: a deployment registered with
    the default '0 5 * * *' would otherwise add its own run when a test happens to run at 05:00."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                FlowRunFilterState, FlowRunFilterStateType, WorkPoolFilter,
                                                WorkPoolFilterName)
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            deployments = client.read_deployments(
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))
            for deployment in deployments:
                for schedule in deployment.schedules:
                    client.update_deployment_schedule(deployment.id, schedule.id, active=False)
            if not deployments:
                return
            scheduled = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id for d in deployments])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))
            for run in scheduled:
                if run.auto_scheduled:
                    client.delete_flow_run(run.id)
            assert not any(schedule.active for deployment in client.read_deployments(
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool]))) for schedule in deployment.schedules)


def ui_retry_drill(data: Path, api_url: str, tmp_path: Path, pool: str, cluster_file: Path | None = None,
                   umask: int | None = None, with_cli: bool = False) -> None:
    """A scheduled run of a market deployment fails in berlin-mitte; the UI's Retry (the flow run
    set to AwaitingRetry) and a worker run it again under its own id: only that region trains,
    the others come back Cached from their stored results, and every region is written once.
    `with_cli`: `ordercast retry RUN_ID` instead of the UI's state change.

    With `cluster_file` (a remote cluster), the fault reaches the workers through the file's
    worker environment, for the first run only."""
    from datetime import datetime, timezone

    import pandas as pd
    import yaml
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import State

    from forecasting.storage import read_table_db

    env = {"ORDERCAST_HOME": str(tmp_path / "home")}
    deployed = run_cli("deploy", "--pool", pool, "--orders", str(data / "orders.csv"),
                       "--weather", str(data / "weather.csv"), "--regions", str(data / "regions.csv"),
                       "--name", "retry-drill", "--timezone", "UTC", "--horizon-days", "7",
                       "--out", str(tmp_path / "scheduled"),
                       *(("--cluster", str(cluster_file)) if cluster_file else ()), env=env)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    stop_schedules(api_url, pool)
    run_id = start_run(api_url, "forecast/retry-drill", {})
    fault = {"ORDERCAST_FAULTS": "train:berlin-mitte"}
    original = cluster_file.read_text() if cluster_file else None
    if cluster_file:
        config = yaml.safe_load(original)
        config.setdefault("worker_options", {}).setdefault("env", {}).update(fault)
        cluster_file.write_text(yaml.safe_dump(config))
    try:
        first = run_cli("worker", "--pool", pool, "--run-once", env={**env, **fault}, umask=umask)
    finally:
        if cluster_file:
            cluster_file.write_text(original)
    assert first.returncode == 2, first.stderr[-3000:]

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            failed = client.read_flow_run(run_id).state
            assert failed.type == StateType.FAILED and "press Retry on this run in the Prefect UI" in failed.message
            retried_at = datetime.now(timezone.utc)
            if not with_cli:
                answer = client.set_flow_run_state(run_id, State(type=StateType.SCHEDULED, name="AwaitingRetry",
                                                                 message="Retry from the UI"))
                assert answer.status.value == "ACCEPT", answer.details
    if with_cli:
        retried = run_cli("retry", run_id, env=env)
        assert retried.returncode == 0 and f"a worker of work pool '{pool}'" in retried.stdout, retried.stderr
    second = run_cli("worker", "--pool", pool, "--run-once", env=env, umask=umask)
    assert second.returncode == 0, second.stderr[-3000:]

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run_id).state.type == StateType.COMPLETED
    again = task_runs_since(api_url, run_id, retried_at, 8)
    assert again.pop("train-berlin-mitte") == "Completed" and again.pop("predict-berlin-mitte") == "Completed"
    assert again.pop("write-outputs") == "Completed"
    assert again == {"load-inputs": "Cached", "train-london-soho": "Cached", "train-nyc-midtown": "Cached",
                     "predict-london-soho": "Cached", "predict-nyc-midtown": "Cached"}

    out = tmp_path / "scheduled" / "retry-drill" / "forecast"
    run = read_run(out)
    assert run["run_id"] == run_id and {s["status"] for s in run["regions"]} == {"ok"}
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    assert forecasts.groupby("region").size().to_dict() == {r: 7 * 48 for r in
                                                           ("berlin-mitte", "london-soho", "nyc-midtown")}
    assert not forecasts["fallback"].any()
    table = read_table_db(run["configuration"]["db"])
    assert len(table) == 3 * 7 * 48 and not table.duplicated(["region", "ts", "as_of"]).any()
