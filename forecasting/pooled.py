"""The pooled candidate: one booster over every region of a run, trained once, not per region.

Forecast: `train_pooled` fits it on every region's training rows (each through its own
`as_of`) and stores it once under STORE/_pooled/; each region that chose it then stores its
share (`forecasting.models.pooled`). Backtest: `backtest_pooled` fits it at every
`retrain_every`-th cutoff on every region's slots that ended by that cutoff, and writes each
region's forecasts at each of its cutoffs, which that region's backtest reads as the `pooled`
candidate (`forecasting.backtest.backtest_region`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from forecasting.backtest import BacktestOptions, RegionHistory, region_history
from forecasting.faults import maybe_fail
from forecasting.features import TARGET, feature_columns, training_rows
from forecasting.model_store import POOLED_GROUP, save_model
from forecasting.models.pooled import REGION_CODE
from forecasting.models.xgboost import XGBoostModel
from forecasting.paths import region_key
from forecasting.pipeline import RunOptions, read_partition, region_features
from forecasting.settings import usable_cores
from forecasting.storage import atomic_write_parquet


def region_codes(regions) -> dict[str, int]:
    """Each region's code, the pooled model's region feature: its place in name order."""
    return {region: code for code, region in enumerate(sorted(regions))}


def _fit(parts: list[pd.DataFrame], threads: int) -> XGBoostModel | None:
    """The pooled booster on the regions' training rows (each with its region code); a feature
    some regions lack is missing in their rows. None without rows."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return None
    table = pd.concat(parts, ignore_index=True)
    columns = feature_columns(table)
    return XGBoostModel(n_threads=threads).fit(table[columns], table[TARGET])


def train_pooled(entries: list[dict[str, Any]], options: RunOptions, model_store: Path,
                 run_dir: Path) -> dict[str, Any]:
    """Fit the pooled model on every region of the run and store it once; returns its record
    (`model_path`, `region_codes`, training rows and seconds)."""
    started = time.perf_counter()
    maybe_fail("train", POOLED_GROUP, run_dir.name)
    codes = region_codes(entry["region"] for entry in entries)
    parts = []
    for entry in entries:
        as_of = pd.Timestamp(entry["as_of"])
        frame = region_features(entry, options, as_of)
        history = frame.loc[frame["is_history"] & frame[TARGET].notna()]
        parts.append(training_rows(history, as_of, options.spec.slot).assign(**{REGION_CODE: codes[entry["region"]]}))
    # the threads of every fit in a forecast: the other regions train meanwhile, and more threads
    # than cores slow every fit down (41 s against 47 s for the demo forecast with all cores here)
    model = _fit(parts, options.model_threads)
    if model is None:
        raise ValueError("no region has history to train the pooled model on")
    rows = sum(len(part) for part in parts)
    folder = save_model(model_store, model, {
        "region": POOLED_GROUP,
        "regions": codes,
        "slot": options.slot,
        "horizon_days": options.horizon_days,
        "features": model.feature_names_,
        "as_of": max(pd.Timestamp(entry["as_of"]) for entry in entries).isoformat(),
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "run_id": run_dir.name,
        "training_rows": rows,
    }, group=POOLED_GROUP)
    return {"model_path": str(folder), "region_codes": codes, "train_rows": rows,
            "train_seconds": round(time.perf_counter() - started, 3)}


def _has_learned_history(past: RegionHistory, cutoff: pd.Timestamp, options: BacktestOptions) -> bool:
    """Whether the region had, at `cutoff`, the history the learned candidates need: without one
    such region the pooled booster of the longest lead week would have no training rows."""
    return past.history_days_at.get(cutoff, 0.0) >= options.spec.min_history_days_for_xgboost


def backtest_pooled(entries: list[dict[str, Any]], options: BacktestOptions, cutoffs: list[pd.Timestamp],
                    run_dir: Path) -> dict[str, str]:
    """The pooled model's forecasts of every region at every cutoff where the region's horizon
    is scored and some region has the history the learned candidates need (a young region
    learns from the older ones), refit every `retrain_every` cutoffs on what every region had
    by then; one Parquet file per region (`ts`, `cutoff`, `forecast`). Returns each region's file."""
    maybe_fail("backtest", POOLED_GROUP, run_dir.name)
    spec = options.spec
    codes = region_codes(entry["region"] for entry in entries)
    pasts = {entry["region"]: region_history(read_partition(entry), cutoffs, options) for entry in entries}
    pieces: dict[str, list[pd.DataFrame]] = {region: [] for region in pasts}
    model = None
    for index, cutoff in enumerate(cutoffs):
        if not any(_has_learned_history(past, cutoff, options) for past in pasts.values()):
            continue
        if model is None or index % options.retrain_every == 0:  # on every core: the regions wait for it
            model = _fit([training_rows(past.before(cutoff), past.origins[cutoff], spec.slot)
                          .assign(**{REGION_CODE: codes[region]})
                          for region, past in pasts.items()], usable_cores()) or model
        if model is None:
            continue
        for region, past in pasts.items():
            if cutoff not in past.horizons:
                continue
            rows = past.horizon_rows(cutoff, spec).assign(**{REGION_CODE: codes[region]})
            forecast = model.predict(rows.reindex(columns=model.feature_names_))
            pieces[region].append(pd.DataFrame({"ts": rows["ts"].reset_index(drop=True), "cutoff": cutoff,
                                                 "forecast": forecast}))
    paths = {}
    for region, frames in pieces.items():
        path = run_dir / "pooled" / f"{region_key(region)}.parquet"
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            {"ts": pd.Series(dtype="datetime64[ns, UTC]"), "cutoff": pd.Series(dtype="datetime64[ns, UTC]"),
             "forecast": pd.Series(dtype="float64")})
        atomic_write_parquet(path, table)
        paths[region] = str(path)
    return paths
