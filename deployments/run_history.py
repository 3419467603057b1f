"""What the Prefect UI shows, for the command line: recent runs, a run's failed regions, and
what a retry of those regions needs. Everything is read from the Prefect API."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from forecasting.contract import PER_REGION
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
    has_summary: bool


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


def prune_flow_runs(before, dry_run: bool) -> int:
    """Flow runs that ended (completed, failed, crashed, cancelled) and were due before `before`,
    with their task runs and logs: how many; deleted through the API unless `dry_run`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    ended = FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(before_=before),
                          state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[
                              StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED])))
    with get_client(sync_client=True) as client:
        if dry_run:
            return client.count_flow_runs(flow_run_filter=ended)
        deleted = 0
        while runs := client.read_flow_runs(flow_run_filter=ended, limit=200):
            for run in runs:
                client.delete_flow_run(run.id)
            deleted += len(runs)
    return deleted


def _started():
    """Flow runs that have started: scheduled runs of deployments (no start time yet) are not "recent"."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    return FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False))


def run_failures(run_id: str | None) -> RunFailures:
    """The troubled regions of a flow run (default: the latest run), from its region summary
    artifact and its failed or crashed task runs."""
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
    summary = json.loads(artifacts[0].data) if artifacts else []
    failed = [{"name": run.name, "state": run.state.name, "message": run.state.message or "", "id": str(run.id)}
              for run in sorted(task_runs, key=lambda run: run.name)
              if run.state and (run.state.is_failed() or run.state.is_crashed())]
    return RunFailures(str(flow_run.id), flow_run.name, flow_name, flow_run.state.name if flow_run.state else "unknown",
                       flow_run.state.message if flow_run.state else None, dict(flow_run.parameters),
                       [row for row in summary if row.get("status") in _TROUBLED], failed, bool(artifacts))


def retry_parameters(failures: RunFailures) -> dict[str, Any] | None:
    """Parameters of a forecast run limited to the troubled regions, with the same inputs and
    `as_of` (the run's resolved one, or `per-region` again: the same inputs give each region the
    same origin); None when there is nothing to retry."""
    if failures.flow_name != "forecast":
        raise ConfigError(f"flow run {failures.run_id} is a '{failures.flow_name}' run; retry repairs forecast runs "
                          "(run the backtest again instead)")
    if not failures.has_summary:
        raise ConfigError(f"flow run {failures.run_id} ({failures.state}) stopped before its per-region summary, so "
                          f"no region was written: fix the cause ({failures.message}) and run the forecast again")
    if not failures.regions:
        return None
    as_of = PER_REGION if failures.parameters.get("as_of") == PER_REGION else failures.regions[0]["as_of"]
    return {**failures.parameters, "as_of": as_of, "only_regions": [row["region"] for row in failures.regions],
            "retry_of": failures.run_id}


def retry_conflicts(run_id: str, params: dict[str, Any], record: dict[str, Any] | None) -> list[str]:
    """What changed since run `run_id`, so that retrying it would mix vintages or inputs: OUT's
    run.json (`record`) no longer from that run or its retries, or an input whose content hash
    differs from the one the run recorded. Empty when a retry is safe."""
    from forecasting.tables import content_hash, input_files

    if record is None:
        return [f"{params['out']} holds no run.json (the outputs of run {run_id} are gone)"]
    lineage = record.get("lineage") or [record.get("run_id")]
    if run_id not in lineage:
        return [f"{params['out']} now holds run {record.get('run_id')} (as of {record['configuration'].get('as_of')}), "
                f"not run {run_id} (as of {params['as_of']}) or a retry of it"]
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


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ConfigError(f"'{text}' is not a flow run id (a UUID, as `ordercast runs` prints)") from None
