"""The backtest job's stages as plain functions: one per region, then collecting the outputs."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.backtest import STAFFING_METRICS, BacktestOptions, backtest_region, split_cutoffs
from forecasting.faults import maybe_fail
from forecasting.intervals import bucket_names, day_bucket, horizon_day, quantile_column
from forecasting.metrics import coverage, wape
from forecasting.models import FALLBACK_MODEL, SHORT_HISTORY_MODEL
from forecasting.paths import region_key
from forecasting.pipeline import package_versions, read_partition
from forecasting.plots import backtest_error_plot, backtest_region_plot
from forecasting.selection_store import save_selection
from forecasting.staffing import load_staffing
from forecasting.storage import (
    SELECTION_COLUMNS,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    write_selection_db,
)

PLOTTED_REGIONS = 4


def run_region_backtest(entry: dict[str, Any], options: BacktestOptions, cutoffs: list[str],
                        run_dir: Path, pooled_path: str | None = None) -> dict[str, Any]:
    """Backtest one region and write its predictions and metrics into the run folder;
    `pooled_path` holds the pooled candidate's forecasts of the region, if it ran."""
    started = time.perf_counter()
    region = entry["region"]
    maybe_fail("backtest", region, run_dir.name)
    staffing = load_staffing(options.staffing).get(region) if options.staffing else None
    pooled = pd.read_parquet(pooled_path) if pooled_path else None
    result = backtest_region(read_partition(entry), [pd.Timestamp(c) for c in cutoffs], options, staffing, pooled)
    folder = run_dir / "backtest" / region_key(region)
    atomic_write_parquet(folder / "predictions.parquet", result.predictions)
    atomic_write_parquet(folder / "metrics.parquet", result.metrics)
    return {
        "region": region,
        "timezone": entry["timezone"],
        "selection": result.selection,
        "calibration": result.calibration,
        "notes": result.notes,
        "predictions_path": str(folder / "predictions.parquet"),
        "metrics_path": str(folder / "metrics.parquet"),
        "cutoffs_used": int(result.predictions["cutoff"].nunique()) if len(result.predictions) else 0,
        "seconds": round(time.perf_counter() - started, 3),
    }


def collect_backtest(records: list[dict[str, Any]], options: BacktestOptions, out_dir: Path, db_url: str,
                     run_id: str, selection_store: Path, run_info: dict[str, Any]) -> dict[str, Any]:
    """Merge region outputs into OUT, store the selections, and summarise held-out accuracy."""
    records = sorted(records, key=lambda r: r["region"])
    predictions = pd.concat([pd.read_parquet(r["predictions_path"]) for r in records], ignore_index=True)
    days = horizon_day(predictions["ts"], predictions["origin"],
                       predictions["region"].map({r["region"]: r["timezone"] for r in records}))
    metrics = pd.concat([pd.read_parquet(r["metrics_path"]) for r in records], ignore_index=True)
    created_at = pd.Timestamp.now(tz="UTC").isoformat()
    selection = pd.DataFrame([{**{k: r["selection"][k] for k in ("region", "model", "wape")},
                               "backtest_run_id": run_id} for r in records])[SELECTION_COLUMNS]
    summary = held_out_summary(predictions, selection, options)

    out_dir.mkdir(parents=True, exist_ok=True)
    waited = write_selection_db(selection.assign(slot=options.slot, horizon_days=options.horizon_days,
                                                 created_at=created_at), db_url)
    atomic_write_parquet(out_dir / "predictions.parquet", predictions)
    atomic_write_parquet(out_dir / "metrics.parquet", metrics)
    atomic_write_parquet(out_dir / "selection.parquet", selection)
    for record in records:
        save_selection(selection_store, {
            **record["selection"], "backtest_run_id": run_id, "slot": options.slot,
            "horizon_days": options.horizon_days, "calibration": record["calibration"], "created_at": created_at,
        })
    plots = _write_plots(predictions, days, selection, out_dir / "plots", options)
    atomic_write_json(out_dir / "run.json", {
        **run_info, "run_id": run_id, "created_at": created_at, "packages": package_versions(),
        "summary": summary,
        "regions": [{"region": r["region"], "status": "ok", "model": r["selection"]["model"],
                     "held_out_wape": r["selection"]["wape"], "selection_wape": r["selection"]["selection_wape"],
                     "cutoffs_used": r["cutoffs_used"], "seconds": r["seconds"], "notes": r["notes"]}
                    for r in records],
    })
    wape_table = wape_by_model_and_bucket(predictions, days, options.horizon_days) if len(predictions) \
        else pd.DataFrame()
    return {**summary, "plots": plots, "db_url": db_url, "db_lock_wait_seconds": round(waited, 3),
            "wape_by_bucket": {model: {b: finite(v) for b, v in row.items()} for model, row in wape_table.iterrows()}}


def held_out_summary(predictions: pd.DataFrame, selection: pd.DataFrame, options: BacktestOptions) -> dict[str, Any]:
    """Held-out WAPE of the per-region selection and of each single model, and coverage.

    A single model is scored as a policy: that model in every region, and the short-history
    model where it cannot run (too little history), as production would do. Scoring each model only
    on the regions it can run would compare different sets of regions.
    """
    if predictions.empty:
        return {"held_out_cutoffs": [], "selection_wape": None, "model_wape": {}, "coverage": None}
    _, holdout = split_cutoffs(sorted(predictions["cutoff"].unique()), options.holdout_cutoffs)
    held = predictions.loc[predictions["cutoff"].isin(holdout)]
    chosen = held.merge(selection[["region", "model"]], on=["region", "model"])
    keys = ["region", "ts", "cutoff"]
    stand_in = SHORT_HISTORY_MODEL if (held["model"] == SHORT_HISTORY_MODEL).any() else FALLBACK_MODEL
    staffed = "staffing_cost" in held.columns
    base = held.loc[held["model"] == stand_in, [*keys, "actual", "forecast", *(["staffing_cost"] if staffed else [])]]
    model_wape, model_cost = {}, {}
    for model, rows in held.groupby("model"):
        policy = base.merge(rows[[*keys, "forecast", *(["staffing_cost"] if staffed else [])]], on=keys, how="left",
                            suffixes=("_fallback", ""))
        policy["forecast"] = policy["forecast"].fillna(policy["forecast_fallback"])
        model_wape[model] = wape(policy["actual"], policy["forecast"])
        if staffed:
            model_cost[model] = float(policy["staffing_cost"].fillna(policy["staffing_cost_fallback"]).sum())
    lower, upper = quantile_column(options.quantiles[0]), quantile_column(options.quantiles[-1])
    both = chosen.dropna(subset=[lower, upper])
    staffing = {"staffing": {"selection": {column: float(chosen[column].sum()) for column in STAFFING_METRICS},
                             "model_cost": model_cost, "select_by": options.select_by}} if staffed else {}
    return {
        **staffing,
        "held_out_cutoffs": [pd.Timestamp(c).isoformat() for c in holdout],
        "selection_wape": wape(chosen["actual"], chosen["forecast"]) if len(chosen) else None,
        "model_wape": model_wape,
        "coverage": coverage(both["actual"], both[lower], both[upper]) if len(both) else None,
        "nominal_coverage": round(options.quantiles[-1] - options.quantiles[0], 4) if len(options.quantiles) > 1 else None,
    }


def wape_by_model_and_bucket(predictions: pd.DataFrame, days: np.ndarray, horizon_days: int) -> pd.DataFrame:
    """Pooled WAPE per model (rows) and horizon bucket (columns) over every cutoff; `days`: each
    row's day of the horizon (`horizon_day`)."""
    frame = predictions.assign(bucket=day_bucket(days, horizon_days))
    table = frame.groupby(["model", "bucket"]).apply(lambda g: wape(g["actual"], g["forecast"]),
                                                     include_groups=False).unstack()
    return table[[b for b in bucket_names(horizon_days) if b in table.columns]]


def _write_plots(predictions: pd.DataFrame, days: np.ndarray, selection: pd.DataFrame, folder: Path,
                 options: BacktestOptions) -> list[str]:
    if predictions.empty:
        return []
    day = np.minimum(days, options.horizon_days)
    by_day = predictions.assign(day=day).groupby(["model", "day"]).apply(
        lambda g: wape(g["actual"], g["forecast"]), include_groups=False).unstack("model")
    paths = [folder / "error_by_horizon.png"]
    atomic_write_bytes(paths[0], backtest_error_plot(by_day))
    last_cutoff = predictions["cutoff"].max()
    chosen = dict(zip(selection["region"], selection["model"]))
    for region in sorted(chosen)[:PLOTTED_REGIONS]:
        rows = predictions.loc[(predictions["region"] == region) & (predictions["cutoff"] == last_cutoff)
                               & (predictions["model"] == chosen[region])]
        if rows.empty:
            continue
        path = folder / f"forecast_vs_actual_{region_key(region)}.png"
        atomic_write_bytes(path, backtest_region_plot(region, chosen[region], rows, options.quantiles))
        paths.append(path)
    return [str(p) for p in paths]


def finite(value: float | None) -> float | None:
    """JSON-friendly: NaN becomes None."""
    return None if value is None or not np.isfinite(value) else float(value)
