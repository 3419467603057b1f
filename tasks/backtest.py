"""Backtest tasks: plan the cutoffs, the pooled candidate over all regions (when it is one),
backtest each region (all its cutoffs and models in one task run, so Prefect's per-task cost
is small next to the work), write the outputs."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task

from forecasting.backtest import BacktestOptions, plan_cutoffs
from forecasting.backtest_stages import collect_backtest, run_region_backtest
from forecasting.contract import parse_as_of
from forecasting.errors import DataError
from forecasting.pooled import backtest_pooled
from forecasting.slots import Slot
from tasks import run_logger, transient_retries


@task(name="plan-cutoffs", task_run_name="plan-cutoffs")
def plan(data_end: str, options: BacktestOptions, count: int, step: str, dates: list[str] | None,
         data_start: str, timezone: str) -> list[str]:
    """Backtest cutoffs (ISO-8601, UTC), oldest first, none before the data; daily ones at
    local midnights in `timezone`."""
    cutoffs, dropped = plan_cutoffs(pd.Timestamp(data_end), Slot.parse(options.slot), options.horizon_days, count,
                                    pd.Timedelta(step), [parse_as_of(d) for d in dates] if dates else None,
                                    pd.Timestamp(data_start), timezone)
    if not cutoffs:
        raise DataError(f"no backtest cutoff has a week of data before it: the data start at {data_start}; "
                        "give more history or later --cutoff-dates")
    before = f" ({dropped} planned cutoffs with less than a week of data before them left out)" if dropped else ""
    run_logger().info("%d cutoffs from %s to %s%s", len(cutoffs), cutoffs[0].isoformat(), cutoffs[-1].isoformat(),
                      before)
    return [c.isoformat() for c in cutoffs]


@task(name="backtest-pooled", task_run_name="backtest-pooled", **transient_retries())
def pooled(entries: list[dict[str, Any]], options: BacktestOptions, cutoffs: list[str],
           run_dir: str) -> dict[str, str]:
    """The pooled candidate, trained on every region, at every cutoff; returns each region's
    forecasts file for its backtest."""
    started = time.perf_counter()
    paths = backtest_pooled(entries, options, [pd.Timestamp(c) for c in cutoffs], Path(run_dir))
    run_logger().info("Pooled model over %d regions at %d cutoffs in %.1f s", len(entries), len(cutoffs),
                      time.perf_counter() - started)
    return paths


@task(name="backtest-region", task_run_name="backtest-{region}", **transient_retries())
def backtest(region: str, entry: dict[str, Any], options: BacktestOptions, cutoffs: list[str],
             run_dir: str, pooled_path: str | None = None) -> dict[str, Any]:
    """Every candidate model at every cutoff for one region, then its model selection."""
    record = run_region_backtest(entry, options, cutoffs, Path(run_dir), pooled_path)
    selection = record["selection"]
    run_logger().info("Backtested %s at %d cutoffs in %.1f s: chose %s (held-out WAPE %.3f)", region,
                      record["cutoffs_used"], record["seconds"], selection["model"], selection["wape"])
    return record


@task(name="write-backtest-outputs", task_run_name="write-backtest-outputs", **transient_retries())
def write_backtest_outputs(records: list[dict[str, Any]], options: BacktestOptions, out_dir: str, db_url: str,
                           run_id: str, selection_store: str, run_info: dict[str, Any]) -> dict[str, Any]:
    summary = collect_backtest(records, options, Path(out_dir), db_url, run_id, Path(selection_store), run_info)
    wape = summary["selection_wape"]
    run_logger().info("Wrote backtest outputs to %s (waited %.2f s for the database's write lock); held-out WAPE of "
                      "the selection: %s", out_dir, summary["db_lock_wait_seconds"],
                      "n/a" if wape is None else f"{wape:.3f}")
    return summary
