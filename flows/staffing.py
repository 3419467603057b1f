"""Staffing: turn stored forecasts into drivers per slot and the shifts that cover them.

`staffing_flow` (what `ordercast staff` runs) reads a forecast's outputs or database, plans each
region as its own task run (`staff-<region>`), then writes the staffing outputs. The forecast
flow with `--staffing` uses `plan_regions` and `write_staffing` right after its predictions.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.outcomes import error_of
from forecasting.locks import exclusive_outputs
from forecasting.paths import region_key
from forecasting.settings import run_dir
from forecasting.staffing import (
    DEFAULT_NOTICE_HOURS,
    DEFAULT_TIME_LIMIT,
    load_staffing_inputs,
    regions_to_staff,
    slot_minutes_of,
)
from forecasting.staffing_outputs import read_stored_forecasts, write_staffing_db, write_staffing_files
from forecasting.storage import atomic_write_json, atomic_write_parquet, default_db_url
from tasks.staffing import staff


@flow(name="staffing")
def staffing_flow(forecasts: str, staffing: str, out: str, published: str | None = None, as_of: str | None = None,
                  notice_hours: float = DEFAULT_NOTICE_HOURS, time_limit: float = DEFAULT_TIME_LIMIT,
                  db: str | None = None) -> dict[str, Any]:
    """Drivers per slot and shifts for the stored forecasts (`forecasts`: a forecast's OUT
    folder or a database URL; the vintage `as_of`, else each region's latest)."""
    run_id = str(flow_run.get_id())
    frame = read_stored_forecasts(forecasts, as_of)
    scratch = run_dir(run_id)
    partitions = {}
    for region, rows in frame.groupby("region"):
        partitions[region] = str(scratch / "forecasts" / f"{region_key(region)}.parquet")
        atomic_write_parquet(partitions[region], rows)
    db_url = db or default_db_url(out)
    with exclusive_outputs(Path(out), db_url, run_id):
        results = plan_regions(partitions, staffing, published, slot_minutes_of(frame), notice_hours, time_limit,
                               run_id, str(scratch), name_rows_without_forecasts=True)
        summary = write_staffing(results, Path(out), db_url, run_id)
    shutil.rmtree(scratch, ignore_errors=True)
    return finish(summary)


def plan_regions(partitions: dict[str, str], staffing: str, published: str | None, slot_minutes: float,
                 notice_hours: float, time_limit: float, run_id: str, scratch: str,
                 name_rows_without_forecasts: bool = False) -> dict[str, dict[str, Any]]:
    """One `staff-<region>` task run per region that has both a forecast partition and a row in
    the staffing table (`staffing`, a path); returns each region's result or its `error`. With
    `name_rows_without_forecasts`, a warning names the table's regions that have no forecast
    (`ordercast staff`; in a forecast run the table may cover other markets' regions too)."""
    logger = get_run_logger()
    table, fixed = load_staffing_inputs(staffing, slot_minutes, published)
    regions = regions_to_staff(set(partitions), table)
    unstaffed = sorted(set(partitions) - set(table))
    if unstaffed:
        logger.warning("Not staffed (no row in the staffing table): %s", ", ".join(unstaffed))
    unforecast = sorted(set(table) - set(partitions))
    if name_rows_without_forecasts and unforecast:
        logger.warning("Not staffed (in the staffing table, but no forecast to plan from): %s", ", ".join(unforecast))
    futures = {region: staff.submit(
        region=region, forecast_path=partitions[region], staffing=table[region],
        published=None if fixed is None else fixed.loc[fixed["region"] == region].reset_index(drop=True),
        slot_minutes=slot_minutes, notice_hours=notice_hours, time_limit=time_limit, run_id=run_id,
        run_dir=scratch) for region in regions}
    results = {}
    for region, future in futures.items():
        error = error_of(future)
        results[region] = {"error": error, "task_run_id": str(future.task_run_id)} if error else future.result()
    return results


def write_staffing(results: dict[str, dict[str, Any]], out_dir: Path, db_url: str, run_id: str) -> dict[str, Any]:
    """The planned regions' outputs into the database (the commit point) and OUT, with the summary
    in OUT/staffing.json; the caller holds OUT's lock."""
    planned = {region: result for region, result in results.items() if "error" not in result}
    failed = {region: result for region, result in results.items() if "error" in result}
    regions = [{key: result.get(key) for key in ("service_level", "driver_hours_required_7d",
                                                  "driver_hours_scheduled_7d", "expected_cost_7d",
                                                  "excess_driver_hours", "uncovered_driver_hours", "solver")}
               | {"region": region} for region, result in sorted(planned.items())]
    if planned:
        rows = pd.concat([pd.read_parquet(r["rows_path"]) for r in planned.values()], ignore_index=True)
        shifts = pd.concat([pd.read_parquet(r["shifts_path"]) for r in planned.values()], ignore_index=True)
        waited = write_staffing_db(rows, shifts, db_url)
        get_run_logger().info("Wrote staffing of %d regions to %s (waited %.2f s for the database's write lock)",
                              len(planned), db_url, waited)
        plots = {region: Path(result["plot_path"]).read_bytes() for region, result in planned.items()}
        write_staffing_files(out_dir, rows, shifts, plots)
    create_table_artifact(
        key="staffing", table=regions,
        description="Next 7 days per region: driver-hours required and scheduled by the shift plan, and the "
                    "expected cost of idle driver-hours and late orders")
    summary = {"run_id": run_id, "regions": regions, "failed": {region: r["error"] for region, r in failed.items()},
               "out": str(out_dir), "db_url": db_url}
    atomic_write_json(out_dir / "staffing.json", summary)
    return summary


def finish(summary: dict[str, Any]):
    """The flow's return: the summary, or a Failed state naming the regions that could not be staffed."""
    if summary["failed"]:
        detail = "; ".join(f"{region}: {error}" for region, error in summary["failed"].items())
        return Failed(message=f"staffing failed in {len(summary['failed'])} regions: {detail}", data=summary)
    return summary
