"""The daily forecast flow: load -> (pooled model) -> train per region -> predict per region -> write.

Each region's prediction starts as soon as its own training completes. A region whose
training or prediction fails gets the seasonal naive forecast instead (`fallback`), so
scheduling always has numbers; the flow then ends Failed, naming every such region.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.outcomes import cluster_info, error_of, ui_retry_hint
from flows.staffing import plan_regions, write_staffing
from forecasting.contract import InputPaths
from forecasting.locks import exclusive_outputs
from forecasting.models import FALLBACK_MODEL, model_spec
from forecasting.pipeline import RunOptions, options_dict, planned_model
from forecasting.settings import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_SLOT,
    PROGRESS,
    default_model_store,
    default_selection_store,
    run_dir,
)
from forecasting.slots import Slot
from forecasting.staffing import DEFAULT_NOTICE_HOURS, DEFAULT_TIME_LIMIT, SERVICE_LEVELS
from forecasting.storage import default_db_url
from tasks import region as region_tasks
from tasks import with_stored_results
from tasks.collect import write_outputs
from tasks.load import check_models, load_snapshot, restrict_regions
from tasks.retention import prune


@flow(name="forecast")
def forecast(
    orders: str,
    out: str,
    weather: str | None = None,
    events: str | None = None,
    promotions: str | None = None,
    regions: str | None = None,
    slot: str = DEFAULT_SLOT,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    as_of: str | None = None,
    no_train: bool = False,
    missing_as_zero: bool = False,
    db: str | None = None,
    model_threads: int = 1,
    quantiles: list[float] | None = None,
    model_store: str | None = None,
    region_timeout: float | None = None,
    skip_invalid_regions: bool = False,
    region_subset: list[str] | None = None,
    staffing: str | None = None,
    published: str | None = None,
    notice_hours: float = DEFAULT_NOTICE_HOURS,
    prune_older_than: str | None = None,
    prune_vintages: bool = False,
) -> dict[str, Any]:
    """Forecast orders per region and slot for the next `horizon_days` days.

    `region_subset` limits the run to those regions of the inputs (one market of a shared
    extract). `staffing` (a staffing table) adds each region's drivers per slot and shift plan
    (see flows/staffing.py), with the quantiles 0.05 to 0.95 it reads. `prune_older_than` (an
    age such as 30D): once every region is written, remove what is older, as `ordercast prune`
    does (with `prune_vintages`, old vintages in the database too).

    A retry of a failed run (Retry in the Prefect UI, `ordercast retry`) runs this flow again under
    the same flow run id: the regions' task runs that completed come back Cached from their
    stored results, so only the failed regions train again, and every region is written once."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id())
    cluster = cluster_info()
    paths = InputPaths(orders, weather, events, promotions, regions)
    quantiles = tuple(quantiles or (0.1, 0.5, 0.9))
    if staffing:
        quantiles = tuple(sorted(set(quantiles) | set(SERVICE_LEVELS)))
    options = RunOptions(slot, horizon_days, as_of, missing_as_zero, no_train, model_threads, quantiles,
                         region_timeout, skip_invalid_regions)
    store = model_store or str(default_model_store())
    scratch = run_dir(run_id)
    db_url = db or default_db_url(out)

    with exclusive_outputs(Path(out), db_url, run_id):
        manifest = restrict_regions(load_snapshot(paths, options), region_subset)
        if no_train:
            check_models(manifest, options, store)
        entries = {entry["region"]: entry for entry in manifest["regions"]}
        outcomes = _run_regions(entries, options, store, str(scratch))
        statuses = _region_statuses(entries, outcomes, manifest["as_of"], manifest["invalid_regions"])
        summary: dict[str, Any] = {"forecast_rows": 0}
        predictions = [outcome["prediction"] for outcome in outcomes.values() if outcome.get("prediction")]
        if predictions:
            run_info = {
                "flow": "forecast",
                "configuration": {**options_dict(options), "as_of": manifest["as_of"], "out": out, "db": db_url,
                                  "inputs": paths.as_dict(), "model_store": store, "region_subset": region_subset},
                "input_hashes": manifest["input_hashes"],
                "warnings": manifest["warnings"],
                "cluster": cluster,
                "regions": statuses,
            }
            summary = write_outputs(predictions, out, db_url, run_id, run_info)
        if staffing and predictions:
            partitions = {p["region"]: p["forecast_path"] for p in predictions}
            planned = plan_regions(partitions, staffing, published, Slot.parse(slot).minutes,
                                   notice_hours, DEFAULT_TIME_LIMIT, run_id, str(scratch))
            summary["staffing"] = write_staffing(planned, Path(out), db_url, run_id)
        _publish_artifacts(statuses, summary.get("plots", []), cluster, _repair_hint(run_id))
    troubled = [status for status in statuses if status["status"] != "ok"]
    unstaffed = summary.get("staffing", {}).get("failed", {})
    # a failed run keeps its scratch folder: a retry of it reuses the regions' outputs in it
    if unstaffed and not troubled:
        detail = "; ".join(f"{region}: {error}" for region, error in unstaffed.items())
        return Failed(message=f"forecasts written; staffing failed in {len(unstaffed)} regions: {detail}. Repair: fix "
                              f"the cause, then `ordercast staff --forecasts {out} --staffing {staffing} --out {out}`")
    if troubled:
        detail = "; ".join(f"{s['region']} ({s['status']}): {s['error']}" for s in troubled)
        return Failed(message=f"{len(troubled)} of {len(statuses)} regions failed: {detail}. {_repair_hint(run_id)}")
    shutil.rmtree(scratch, ignore_errors=True)
    logger.info("Forecast written for %s", "the one region" if len(entries) == 1 else f"all {len(entries)} regions")
    if prune_older_than:
        summary["pruned"] = prune(prune_older_than, db_url if prune_vintages else None)
    return {**summary, "regions": statuses}


def _run_regions(entries: dict[str, dict[str, Any]], options: RunOptions, store: str,
                 scratch: str) -> dict[str, dict[str, Any]]:
    """Train, predict and, where either fails, fall back, per region from its own `as_of`;
    returns each region's outcome: `trained`, `prediction`, and `failure` (step, error, task
    run id) if any. When a region's selection is `pooled`, the pooled model is trained first, once
    (`train-pooled`), while the other regions train; a retry finds it Cached, as any completed step."""
    logger = get_run_logger()
    outcomes: dict[str, dict[str, Any]] = {region: {} for region in entries}
    common = dict(options=options, model_store=store, run_dir=scratch)
    train, train_pooled, predict, fallback = with_stored_results(region_tasks.train, region_tasks.train_pooled,
                                                                 region_tasks.predict, region_tasks.fallback)
    predicting: dict[str, PrefectFuture] = {}

    def submit_prediction(region: str, trained: dict[str, Any] | None) -> None:
        with tags(f"model:{(trained or {}).get('model', 'stored')}"):
            predicting[region] = predict.submit(region=region, entry=entries[region], trained=trained,
                                               as_of=entries[region]["as_of"], **common)

    if options.no_train:
        for region in entries:
            submit_prediction(region, None)
    else:
        selections = str(default_selection_store())
        planned = {region: planned_model(entry, options, Path(selections))[0] for region, entry in entries.items()}
        pooling = [region for region, model in planned.items() if model_spec(model).pooled]
        pooled_future = train_pooled.submit(entries=list(entries.values()), **common) if pooling else None
        training = {}

        def submit_training(region: str, pooled: dict[str, Any] | None = None) -> None:
            with tags(f"model:{planned[region]}"):
                training[region] = train.submit(region=region, entry=entries[region], selection_store=selections,
                                                as_of=entries[region]["as_of"], pooled=pooled, **common)

        for region in entries:
            if region not in pooling:
                submit_training(region)
        if pooled_future is not None:
            error = error_of(pooled_future)
            for region in pooling:
                if error:
                    outcomes[region]["failure"] = {"step": "train", "error": f"pooled model: {error}",
                                                   "task_run_id": str(pooled_future.task_run_id)}
                else:
                    submit_training(region, pooled_future.result())
        region_of = {future.task_run_id: region for region, future in training.items()}
        for done, future in enumerate(as_completed(list(training.values())), start=1):
            region = region_of[future.task_run_id]
            _settle(outcomes[region], "train", future, "trained")
            if "trained" in outcomes[region]:
                submit_prediction(region, outcomes[region]["trained"])
            logger.info("Training: %d/%d regions done", done, len(training), extra={PROGRESS: True})

    falling_back: dict[str, PrefectFuture] = {}
    for region, future in predicting.items():
        _settle(outcomes[region], "predict", future, "prediction")
    for region, outcome in outcomes.items():
        if "failure" in outcome:
            reason = f"{outcome['failure']['step']} failed: {outcome['failure']['error']}"
            with tags(f"model:{FALLBACK_MODEL}", "fallback"):
                falling_back[region] = fallback.submit(region=region, entry=entries[region], reason=reason,
                                                        as_of=entries[region]["as_of"], **common)
    for region, future in falling_back.items():
        _settle(outcomes[region], "fallback", future, "prediction")
    return outcomes


def _settle(outcome: dict[str, Any], step: str, future: PrefectFuture, key: str) -> None:
    """Record a finished task run in the region's outcome (its result, or its failure)."""
    error = error_of(future)
    if error is None:
        outcome[key] = future.result()
    elif step == "fallback":
        outcome["fallback_failure"] = {"error": error, "task_run_id": str(future.task_run_id)}
    else:
        outcome["failure"] = {"step": step, "error": error, "task_run_id": str(future.task_run_id)}


def _region_statuses(entries: dict[str, Any], outcomes: dict[str, dict[str, Any]], as_of: str,
                     invalid: dict[str, str]) -> list[dict]:
    """One row per region: `ok`, `fallback` (seasonal naive written after an error), `failed`
    (no forecast) or `invalid` (skipped for bad inputs), with the error and the task run that raised it."""
    rows = [{"region": region, "status": "invalid", "as_of": as_of, "model": None, "fallback": False, "rows": 0,
             "train_seconds": None, "note": None, "intervals": None, "expected_wape": None,
             "expected_from": None, "error": f"invalid input: {error}",
             "task_run_id": None} for region, error in invalid.items()]
    for region in sorted(entries):
        outcome = outcomes[region]
        record, prediction = outcome.get("trained") or {}, outcome.get("prediction") or {}
        failure = outcome.get("failure") or {}
        error = f"{failure['step']}: {failure['error']}" if failure else None
        status = "ok"
        if failure:
            status = "fallback" if prediction else "failed"
        if "fallback_failure" in outcome:
            error = f"{error}; fallback: {outcome['fallback_failure']['error']}"
        rows.append({
            "region": region,
            "status": status,
            "as_of": entries[region]["as_of"],
            "model": prediction.get("model") or record.get("model"),
            "fallback": bool(prediction.get("fallback")),
            "rows": prediction.get("rows", 0),
            "train_seconds": record.get("train_seconds"),
            "note": record.get("note"),
            "intervals": record.get("intervals"),
            "expected_wape": record.get("expected_wape"),
            "expected_from": record.get("expected_from"),
            "error": error,
            "task_run_id": failure.get("task_run_id"),
        })
    return sorted(rows, key=lambda row: row["region"])


def _repair_hint(run_id: str) -> str:
    """How to redo only the troubled regions once their cause is fixed: Retry in the UI for a
    deployment run (only failed task runs run again), `ordercast retry` for an ad-hoc run."""
    return ui_retry_hint(run_id) or f"Repair: fix the cause, then run `ordercast retry {run_id}`"


def _publish_artifacts(statuses: list[dict[str, Any]], plots: list[str], cluster: dict[str, Any],
                       repair: str) -> None:
    columns = ("region", "status", "model", "fallback", "expected_wape", "expected_from", "rows", "train_seconds",
               "error", "task_run_id", "as_of")
    create_table_artifact(
        key="forecast-regions",
        table=[{column: status[column] for column in columns} for status in statuses],
        description="Per-region forecast: status (ok, fallback, failed), model used, its expected WAPE (from "
                    "the backtest, or from the weeks held out for its intervals), rows written, training "
                    "time, and for troubled regions the error and the task run that raised it",
    )
    listing = "\n".join(f"- `{plot}`" for plot in plots)
    troubled = [status for status in statuses if status["status"] != "ok"]
    create_markdown_artifact(
        key="forecast-plots",
        markdown=f"# Forecast run\n\nCluster: **{cluster['kind']}**, {cluster['workers']} workers, dashboard "
                 f"{cluster['dashboard'] or 'none'}\n\n"
                 + (f"**{len(troubled)} regions failed or fell back**: "
                    f"{', '.join(s['region'] for s in troubled)}. {repair}.\n\n" if troubled else "")
                 + f"## Plots\n\n{listing}\n",
        description="Cluster of the run, and the history tail and forecast plot per region")
