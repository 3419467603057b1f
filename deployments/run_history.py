"""What the Prefect UI shows, for the command line: recent runs, a run's failed regions, and
what a retry of those regions needs. Everything is read from the Prefect API."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from forecasting.errors import ConfigError, OrdercastError

REGIONS_ARTIFACT = "forecast-regions"
_TROUBLED = {"fallback", "failed", "invalid"}


@dataclass
class RunFailures:
    """A flow run and its troubled regions (or, without a region summary, its failed task runs)."""

    run_id: str
    run_name: str
    flow_name: str
    state: str
    message: str | None
    parameters: dict[str, Any]
    regions: list[dict[str, Any]]
    failed_task_runs: list[dict[str, Any]]
    deployment_id: str | None = None
    work_pool: str | None = None
    started: Any = None  # the flow run's start time (UTC), None when it never started
    ended: bool = True  # in a final state (Completed, Failed, Crashed, Cancelled)


def recent_runs(limit: int) -> list[dict[str, Any]]:
    """The latest flow runs, newest first: id, name, flow, state, start time and state message."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=_started(), sort=FlowRunSort.START_TIME_DESC, limit=limit)
        flows = {run.flow_id: client.read_flow(run.flow_id).name for run in runs}
    return [{
        "id": str(run.id),
        "name": run.name,
        "flow": flows[run.flow_id],
        "state": run.state.name if run.state else "unknown",
        "start": run.start_time.isoformat(timespec="seconds") if run.start_time else "",
        "message": (run.state.message or "") if run.state else "",
    } for run in runs]


def failed_pool_runs(pool: str, since) -> list[dict[str, Any]]:
    """Flow runs of a work pool that started at or after `since` and ended Failed or Crashed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterStartTime,
        WorkPoolFilter,
        WorkPoolFilterName,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
                                     work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))
        failed = [run for run in runs if run.state and (run.state.is_failed() or run.state.is_crashed())]
        flows = {run.flow_id: client.read_flow(run.flow_id).name for run in failed}
    return [{"id": str(run.id), "name": run.name, "flow": flows[run.flow_id], "state": run.state.name,
             "message": run.state.message or ""} for run in failed]


def _started():
    """Flow runs that have started: scheduled runs of deployments (no start time yet) are not "recent"."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    return FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False))


def run_failures(run_id: str | None) -> RunFailures:
    """The troubled regions of a flow run (default: the latest run), from its region summary
    artifact and its failed or crashed task runs (of its latest attempt, when it was retried)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        if run_id is None:
            latest = client.read_flow_runs(flow_run_filter=_started(), sort=FlowRunSort.START_TIME_DESC, limit=1)
            if not latest:
                raise ConfigError("no flow runs on this Prefect server yet")
            flow_run = latest[0]
        else:
            try:
                flow_run = client.read_flow_run(_uuid(run_id))
            except ObjectNotFound:
                raise ConfigError(f"no flow run {run_id} on this Prefect server (see `ordercast runs`)") from None
        flow_name = client.read_flow(flow_run.flow_id).name
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]), key=ArtifactFilterKey(any_=[REGIONS_ARTIFACT])))
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    # a retried run has the artifact and task runs of each attempt: the latest of each count
    summary = json.loads(max(artifacts, key=lambda artifact: artifact.created).data) if artifacts else []
    latest = {run.name: run for run in sorted(task_runs, key=lambda run: run.created)}
    failed = [{"name": run.name, "state": run.state.name, "message": run.state.message or "", "id": str(run.id)}
              for name, run in sorted(latest.items()) if run.state and (run.state.is_failed() or run.state.is_crashed())]
    return RunFailures(str(flow_run.id), flow_run.name, flow_name, flow_run.state.name if flow_run.state else "unknown",
                       flow_run.state.message if flow_run.state else None, dict(flow_run.parameters),
                       [row for row in summary if row.get("status") in _TROUBLED], failed,
                       str(flow_run.deployment_id) if flow_run.deployment_id else None, flow_run.work_pool_name,
                       flow_run.start_time, bool(flow_run.state and flow_run.state.is_final()))


def needs_retry(failures: RunFailures) -> bool:
    """Whether a retry of this forecast run, or of a deployment's backtest run, has anything to
    do: False for a Completed run; an error for another run or one that has not ended yet."""
    if failures.flow_name == "backtest" and not failures.deployment_id:
        raise ConfigError(f"flow run {failures.run_id} is an ad-hoc backtest run: its regions' results were not "
                          "kept, so run the same `ordercast backtest` command again")
    if failures.flow_name not in ("forecast", "backtest"):
        raise ConfigError(f"flow run {failures.run_id} is a '{failures.flow_name}' run; retry repairs forecast and "
                          "backtest runs (run it again instead)")
    if not failures.ended:
        raise ConfigError(f"flow run {failures.run_id} is {failures.state}: only a run that has ended can be retried")
    return failures.state != "Completed"


def retry_conflicts(failures: RunFailures, record: dict[str, Any] | None) -> list[str]:
    """What changed since the run, so that retrying it would overwrite newer forecasts or forecast
    from other data than it read: OUT's run.json (`record`) written by a later run, or an input
    whose content hash differs from the one the run recorded. Empty when a retry is safe."""
    from forecasting.tables import content_hash, input_files

    params, run_id = failures.parameters, failures.run_id
    if record is None or record.get("run_id") != run_id:
        written = _utc(record["created_at"]) if record and record.get("created_at") else None
        if written is not None and failures.started is not None and written > _utc(failures.started):
            return [f"{params['out']} now holds a later run, {record.get('run_id')} (as of "
                    f"{record['configuration'].get('as_of')}), whose forecasts the retry would replace"]
        return []  # the run wrote nothing to OUT: OUT holds an earlier run or nothing
    changed = []
    for table, recorded in (record.get("input_hashes") or {}).items():
        path = params.get(table)
        try:
            current = content_hash(input_files(path, table)) if path else None
        except OrdercastError:
            current = None
        if current != recorded:
            changed.append(f"the {table} input {path} changed since run {run_id}" if current else
                           f"the {table} input {path} is gone")
    return changed


def _utc(value: Any):
    """A UTC pandas Timestamp of an ISO string or datetime."""
    import pandas as pd

    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def schedule_retry(run_id: str, message: str) -> None:
    """Set an ended flow run to AwaitingRetry, as Retry in the Prefect UI and `prefect flow-run
    retry` do (forced, as the latter: the server refuses to reschedule a run of no deployment
    otherwise); a worker (for a deployment run) or the caller (`run_again`) then runs it again
    under its own id."""
    from prefect.client.orchestration import get_client
    from prefect.states import AwaitingRetry

    with get_client(sync_client=True) as client:
        answer = client.set_flow_run_state(_uuid(run_id), AwaitingRetry(message=message), force=True)
    if answer.status.value != "ACCEPT":
        reason = getattr(answer.details, "reason", None) or answer.status.value
        raise ConfigError(f"the Prefect server did not let flow run {run_id} be retried: {reason}")


def run_again(run_id: str, flow: Any) -> Any:
    """Run an AwaitingRetry flow run again in this process, under its own id, with the parameters
    it was started with (so its stored task results are found: they are keyed by them); returns
    its final state."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(_uuid(run_id))
    return run_flow(flow=flow, flow_run=flow_run, parameters=dict(flow_run.parameters), return_type="state")


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ConfigError(f"'{text}' is not a flow run id (a UUID, as `ordercast runs` prints)") from None
