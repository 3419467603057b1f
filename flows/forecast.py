"""The daily forecast flow: load -> train per region -> predict per region -> write.

Each region's prediction starts as soon as its own training completes. A region that fails
does not stop the others; the flow then ends Failed, naming every failed region.
"""
from __future__ import annotations

import shutil
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.outcomes import cluster_info, error_of
from forecasting.contract import InputPaths
from forecasting.pipeline import RunOptions, options_dict
from forecasting.settings import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_SLOT,
    default_model_store,
    default_selection_store,
    run_dir,
)
from forecasting.storage import default_db_url
from tasks.collect import write_outputs
from tasks.load import load_inputs
from tasks.region import predict, train


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
) -> dict[str, Any]:
    """Forecast orders per region and slot for the next `horizon_days` days."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id())
    cluster = cluster_info()
    paths = InputPaths(orders, weather, events, promotions, regions)
    options = RunOptions(slot, horizon_days, as_of, missing_as_zero, no_train, model_threads,
                         tuple(quantiles or (0.1, 0.5, 0.9)))
    store = model_store or str(default_model_store())
    scratch = run_dir(run_id)
    db_url = db or default_db_url(out)

    manifest = load_inputs(paths, options, str(scratch / "partitions"), store)
    entries = {entry["region"]: entry for entry in manifest["regions"]}
    shared = dict(options=unmapped(options), model_store=unmapped(store), as_of=unmapped(manifest["as_of"]))

    trained: dict[str, dict[str, Any] | None] = {}
    failures: dict[str, dict[str, str]] = {}
    predict_futures: dict[str, PrefectFuture] = {}

    def submit_prediction(region: str, record: dict[str, Any] | None) -> None:
        predict_futures[region] = predict.submit(
            region=region, entry=entries[region], options=options, model_store=store,
            as_of=manifest["as_of"], run_dir=str(scratch), trained=record,
        )

    if no_train:
        for region in entries:
            trained[region] = None
            submit_prediction(region, None)
    else:
        train_futures = train.map(region=list(entries), entry=list(entries.values()), run_id=unmapped(run_id),
                                  selection_store=unmapped(str(default_selection_store())), **shared)
        region_of = {future.task_run_id: region for future, region in zip(train_futures, entries)}
        for done, future in enumerate(as_completed(train_futures), start=1):
            region = region_of[future.task_run_id]
            error = error_of(future)
            if error:
                failures[region] = {"step": "train", "error": error, "task_run_id": str(future.task_run_id)}
            else:
                trained[region] = future.result()
                submit_prediction(region, trained[region])
            logger.info("Training: %d/%d regions done (%d failed)", done, len(entries), len(failures))

    predictions = {}
    for region, future in predict_futures.items():
        error = error_of(future)
        if error:
            failures[region] = {"step": "predict", "error": error, "task_run_id": str(future.task_run_id)}
        else:
            predictions[region] = future.result()

    statuses = _region_statuses(entries, trained, predictions, failures)
    summary: dict[str, Any] = {"forecast_rows": 0}
    if predictions:
        run_info = {
            "flow": "forecast",
            "configuration": {**options_dict(options), "as_of": manifest["as_of"], "out": out, "db": db_url,
                              "inputs": paths.as_dict(), "model_store": store},
            "input_hashes": manifest["input_hashes"],
            "warnings": manifest["warnings"],
            "cluster": cluster,
            "regions": statuses,
        }
        summary = write_outputs(list(predictions.values()), out, db_url, run_id, run_info)
        _publish_artifacts(statuses, summary["plots"], cluster)
    shutil.rmtree(scratch, ignore_errors=True)

    if failures:
        detail = "; ".join(f"{region} ({f['step']}): {f['error']}" for region, f in sorted(failures.items()))
        return Failed(message=f"{len(failures)} of {len(entries)} regions failed: {detail}")
    logger.info("Forecast written for all %d regions", len(entries))
    return {**summary, "regions": statuses}


def _region_statuses(entries, trained, predictions, failures) -> list[dict[str, Any]]:
    rows = []
    for region in sorted(entries):
        record = trained.get(region) or {}
        prediction = predictions.get(region, {})
        failure = failures.get(region)
        rows.append({
            "region": region,
            "status": "failed" if failure else "ok",
            "model": prediction.get("model") or record.get("model"),
            "rows": prediction.get("rows", 0),
            "train_seconds": record.get("train_seconds"),
            "note": record.get("note"),
            "intervals": record.get("intervals"),
            "error": f"{failure['step']}: {failure['error']}" if failure else None,
            "task_run_id": failure["task_run_id"] if failure else None,
        })
    return rows


def _publish_artifacts(statuses: list[dict[str, Any]], plots: list[str], cluster: dict[str, Any]) -> None:
    columns = ("region", "status", "model", "rows", "train_seconds", "error")
    create_table_artifact(
        key="forecast-regions",
        table=[{column: status[column] for column in columns} for status in statuses],
        description="Per-region forecast: model, rows written, training time and status",
    )
    listing = "\n".join(f"- `{plot}`" for plot in plots)
    create_markdown_artifact(
        key="forecast-plots",
        markdown=f"# Forecast run\n\nCluster: **{cluster['kind']}**, {cluster['workers']} workers, dashboard "
                 f"{cluster['dashboard'] or 'none'}\n\n## Plots\n\n{listing}\n",
        description="Cluster of the run, and the history tail and forecast plot per region")
