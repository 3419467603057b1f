"""Retention: what `ordercast prune` removes, and the same as the daily forecast's last task run."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task

from forecasting.retention import Removal, parse_age, plan_removals, prune_vintages, remove
from forecasting.settings import DEFAULT_KEEP_RUNS, work_root
from tasks import run_logger


@dataclass
class Pruned:
    """What went (or, on a dry run, would go), and the cutoff it was older than."""

    cutoff: pd.Timestamp
    removals: list[Removal]
    vintages: dict[str, int]  # rows per table of the forecast database
    flow_runs: int

    @property
    def mebibytes(self) -> float:
        return sum(removal.bytes for removal in self.removals) / 2**20


def prune_installation(older_than: str, keep_runs: int, db_url: str | None, dry_run: bool) -> Pruned:
    """Remove what is older than `older_than` under the work root, in the forecast database (old
    vintages, when `db_url` is given) and on the Prefect server (ended flow runs), keeping what a
    retry or a `--no-train` forecast still needs (forecasting/retention.py has the rules)."""
    cutoff = pd.Timestamp.now(tz="UTC") - parse_age(older_than)
    removals = plan_removals(work_root(), keep_runs, cutoff)
    if not dry_run:
        remove(removals)
    vintages = prune_vintages(db_url, cutoff, dry_run) if db_url else {}
    return Pruned(cutoff, removals, vintages, prune_flow_runs(cutoff.to_pydatetime(), dry_run))


def prune_flow_runs(before, dry_run: bool) -> int:
    """Flow runs that ended (completed, failed, crashed, cancelled) and were due before `before`,
    with their task runs: how many; deleted through the API unless `dry_run`. Their logs and
    artifacts are not linked to them in Prefect's database: the server's orphan vacuum removes
    them (deployments/server.py switches it on)."""
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


@task(name="prune", task_run_name="prune")
def prune(older_than: str, db_url: str | None, keep_runs: int = DEFAULT_KEEP_RUNS) -> dict[str, object]:
    """`prune_installation` after a forecast; returns the counts."""
    pruned = prune_installation(older_than, keep_runs, db_url, dry_run=False)
    run_logger().info("Pruned what is older than %s: %d files and folders (%.1f MiB), %s, %d ended flow runs",
                      older_than, len(pruned.removals), pruned.mebibytes,
                      ", ".join(f"{rows} {table} rows" for table, rows in pruned.vintages.items()) or "no vintages",
                      pruned.flow_runs)
    return {"files": len(pruned.removals), "mebibytes": round(pruned.mebibytes, 1), "vintages": pruned.vintages,
            "flow_runs": pruned.flow_runs}
