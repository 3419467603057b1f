"""The backtest flow: load -> plan cutoffs -> (pooled candidate) -> backtest per region -> write outputs.

One task run per region runs all of that region's cutoffs and models, so the work per task
is seconds to minutes while the UI still shows which region failed. The pooled candidate's and
each region's results are stored, and a deployment's failed run keeps its scratch folder: Retry
in the Prefect UI runs only the regions that failed, the others come back Cached.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import Task, flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.runtime import deployment, flow_run
from prefect.states import Failed

from flows.outcomes import cluster_info, error_of, ui_retry_hint
from forecasting.backtest import BacktestOptions, for_regions, for_slot
from forecasting.staffing import SERVICE_LEVELS
from forecasting.contract import InputPaths
from forecasting.locks import exclusive_outputs
from forecasting.models import MODELS, model_spec
from forecasting.pipeline import RunOptions
from forecasting.settings import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_SLOT,
    PROGRESS,
    default_selection_store,
    run_dir,
)
from forecasting.slots import Slot
from forecasting.storage import default_db_url
from tasks import with_stored_results
from tasks.backtest import backtest, plan, pooled, write_backtest_outputs
from tasks.load import load_snapshot, restrict_regions

DAILY = Slot.parse("1D")


@flow(name="backtest")
def backtest_flow(
    orders: str,
    out: str,
    weather: str | None = None,
    events: str | None = None,
    promotions: str | None = None,
    regions: str | None = None,
    slot: str = DEFAULT_SLOT,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    missing_as_zero: bool = False,
    db: str | None = None,
    cutoffs: int = 52,
    cutoff_step: str = "7D",
    cutoff_dates: list[str] | None = None,
    retrain_every: int = 4,
    models: list[str] | None = None,
    quantiles: list[float] | None = None,
    holdout_cutoffs: int = 12,
    model_threads: int = 1,
    region_subset: list[str] | None = None,
    staffing: str | None = None,
    select_by: str = "wape",
) -> dict[str, Any]:
    """Backtest every candidate model per region over past cutoffs and select one per region
    (of `region_subset` only, when given: one market of a shared extract). With `staffing`,
    each model's staffing is costed against the actual orders as well (with the quantiles
    0.05-0.95 it reads), and `select_by` "cost" chooses by that cost."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id())
    cluster = cluster_info()
    quantiles = tuple(quantiles or (0.1, 0.5, 0.9))
    if staffing:
        quantiles = tuple(sorted(set(quantiles) | set(SERVICE_LEVELS)))
    options = BacktestOptions(slot, horizon_days, tuple(models or MODELS), retrain_every, quantiles, holdout_cutoffs,
                              model_threads, staffing, select_by)
    paths = InputPaths(orders, weather, events, promotions, regions)
    scratch = run_dir(run_id)
    db_url = db or default_db_url(out)

    with exclusive_outputs(Path(out), db_url, run_id):
        manifest = restrict_regions(load_snapshot(paths, RunOptions(slot, horizon_days, None, missing_as_zero, False,
                                                                    model_threads)), region_subset)
        cutoff_list = plan(manifest["as_of"], options, cutoffs, cutoff_step, cutoff_dates, data_start(manifest),
                           last_ending_timezone(manifest))
        entries = {entry["region"]: entry for entry in manifest["regions"]}
        if (pooling := for_regions(options, len(entries))) != options:
            logger.info("Pooled candidate left out: the run has one region, so it would repeat xgboost")
            options = pooling
        if (daily := for_slot(options)) != options:
            logger.info("Candidates left out with daily slots: %s (the slot before is yesterday, which xgboost "
                        "reads already)", ", ".join(sorted(set(options.models) - set(daily.models))))
            options = daily
        pooled_task, backtest_region = with_stored_results(pooled, backtest)
        pooled_paths = _pooled_forecasts(pooled_task, list(entries.values()), options, cutoff_list, str(scratch))
        futures = backtest_region.map(region=list(entries), entry=list(entries.values()),
                                      options=unmapped(options), cutoffs=unmapped(cutoff_list),
                                      run_dir=unmapped(str(scratch)),
                                      pooled_path=[pooled_paths.get(region) for region in entries])
        region_of = {future.task_run_id: region for future, region in zip(futures, entries)}
        records, failures = [], {}
        for done, future in enumerate(as_completed(futures), start=1):
            region = region_of[future.task_run_id]
            error = error_of(future)
            if error:
                failures[region] = {"error": error, "task_run_id": str(future.task_run_id)}
            else:
                records.append(future.result())
            logger.info("Backtest: %d/%d regions done (%d failed)", done, len(entries), len(failures),
                        extra={PROGRESS: True})

        summary: dict[str, Any] = {}
        if records:
            run_info = {
                "flow": "backtest",
                "configuration": {**options.__dict__, "cutoffs": cutoff_list, "out": out, "db": db_url,
                                  "inputs": paths.as_dict(), "missing_as_zero": missing_as_zero,
                                  "region_subset": region_subset},
                "input_hashes": manifest["input_hashes"],
                "warnings": manifest["warnings"],
                "cluster": cluster,
                "failed_regions": failures,
            }
            summary = write_backtest_outputs(records, options, out, db_url, run_id, str(default_selection_store()),
                                             run_info)
            _publish_artifacts(records, summary, cluster)
    # a deployment's failed run keeps its scratch folder, where Retry in the UI reads the stored
    # regions' outputs; an ad-hoc run has no Retry button
    if not failures or not deployment.id:
        shutil.rmtree(scratch, ignore_errors=True)
    if failures:
        detail = "; ".join(f"{region}: {f['error']}" for region, f in sorted(failures.items()))
        return Failed(message=f"{len(failures)} of {len(entries)} regions failed: {detail}. {_repair_hint()}")
    return summary


def _repair_hint() -> str:
    """How to redo only the failed regions: Retry in the UI (or `ordercast retry`) for a deployment
    run; an ad-hoc run, whose regions' results are not kept, runs again in full."""
    hint = ui_retry_hint(str(flow_run.get_id()))
    return f"{hint}: only the failed regions run again" if hint else \
        "Repair: fix the cause, then run the same `ordercast backtest` command again"


def _pooled_forecasts(pooled_task: Task, entries: list[dict[str, Any]], options: BacktestOptions,
                      cutoffs: list[str], scratch: str) -> dict[str, str]:
    """When `pooled` is a candidate: its forecasts file per region, from one task run (of
    `pooled_task`, the `backtest-pooled` task with its result stored) over all
    regions that the regions' backtests wait for. If it fails, the regions are backtested
    without it (their notes say so) and the log names the error."""
    if not any(model_spec(name).pooled for name in options.models):
        return {}
    logger = get_run_logger()
    logger.info("Pooled candidate: one model over %d regions, refit every %d of %d cutoffs, before the regions' "
                "backtests", len(entries), options.retrain_every, len(cutoffs))
    started = time.perf_counter()
    future = pooled_task.submit(entries, options, cutoffs, scratch)
    error = error_of(future)
    if error:
        logger.warning("The pooled candidate failed, so the regions are backtested without it: %s", error)
        return {}
    logger.info("Pooled candidate done in %.0f s", time.perf_counter() - started)
    return future.result()


def data_start(manifest: dict[str, Any]) -> str:
    """The earliest first orders slot of any region (ISO-8601, UTC)."""
    return min(pd.Timestamp(entry["history_start"]) for entry in manifest["regions"]).isoformat()


def last_ending_timezone(manifest: dict[str, Any]) -> str:
    """The time zone of the region whose data end last: daily cutoffs are its local midnights. A
    region a day or more behind shares that latest `as_of`; the tie goes to a region whose
    local midnight it is."""
    def latest_own_midnight(entry: dict[str, Any]) -> tuple[pd.Timestamp, bool]:
        as_of = pd.Timestamp(entry["as_of"]).tz_convert("UTC")
        return as_of, bool(DAILY.on_grid(pd.Series([as_of]), entry["timezone"]).iloc[0])

    return max(manifest["regions"], key=latest_own_midnight)["timezone"]


def _publish_artifacts(records: list[dict[str, Any]], summary: dict[str, Any], cluster: dict[str, Any]) -> None:
    create_table_artifact(
        key="backtest-selection",
        table=[{"region": r["region"], "model": r["selection"]["model"],
                "held_out_wape": _round(r["selection"]["wape"]),
                "selection_wape": _round(r["selection"]["selection_wape"]), "cutoffs": r["cutoffs_used"]}
               for r in sorted(records, key=lambda r: r["region"])],
        description="Chosen model per region and its expected accuracy (WAPE on held-out cutoffs)",
    )
    buckets = sorted({b for row in summary["wape_by_bucket"].values() for b in row}, key=_bucket_order)
    lines = ["# Backtest WAPE per model and horizon bucket", "",
             f"Cluster: **{cluster['kind']}**, {cluster['workers']} workers, dashboard "
             f"{cluster['dashboard'] or 'none'}", "",
             f"Held-out WAPE of the per-region selection: **{_round(summary['selection_wape'])}**; "
             f"interval coverage {_round(summary['coverage'])} (nominal {summary['nominal_coverage']}).", "",
             "| model | " + " | ".join(buckets) + " |", "|---|" + "---|" * len(buckets)]
    for model, row in sorted(summary["wape_by_bucket"].items()):
        lines.append(f"| {model} | " + " | ".join(str(_round(row.get(b))) for b in buckets) + " |")
    lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in summary["plots"])]
    create_markdown_artifact(key="backtest-wape", markdown="\n".join(lines) + "\n",
                             description="WAPE per model and horizon bucket over all cutoffs")


def _round(value) -> float | None:
    return None if value is None or value != value else round(float(value), 4)


def _bucket_order(name: str) -> int:
    return int(name[1:].split("-")[0])
