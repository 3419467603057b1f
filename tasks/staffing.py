"""Per-region staffing: drivers per slot and the shift plan, one task run per region."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task

from forecasting.faults import maybe_fail
from forecasting.paths import region_key
from forecasting.plots import staffing_plot
from forecasting.staffing import RegionStaffing, quantile_levels, staff_region
from forecasting.storage import atomic_write_bytes, atomic_write_parquet
from tasks import run_logger


@task(name="staff-region", task_run_name="staff-{region}")
def staff(region: str, forecast_path: str, staffing: RegionStaffing, published: pd.DataFrame | None,
          slot_minutes: float, notice_hours: float, time_limit: float, run_id: str, run_dir: str) -> dict[str, Any]:
    """Plan the region's drivers from its forecast partition; writes its staffing rows, shifts and
    plot under `run_dir/staffing/` and returns their paths with the region's summary."""
    maybe_fail("staff", region, run_id)
    forecast = pd.read_parquet(forecast_path).sort_values("ts").reset_index(drop=True)
    plan = staff_region(forecast, staffing, published, slot_minutes=slot_minutes, notice_hours=notice_hours,
                        time_limit=time_limit, run_id=run_id)
    for warning in plan.warnings:
        run_logger().warning(warning)
    folder, key = Path(run_dir) / "staffing", region_key(region)
    paths = {"rows_path": str(folder / f"{key}.rows.parquet"), "shifts_path": str(folder / f"{key}.shifts.parquet"),
             "plot_path": str(folder / f"staffing_{key}.png")}
    atomic_write_parquet(paths["rows_path"], plan.staffing)
    atomic_write_parquet(paths["shifts_path"], plan.shifts)
    levels = list(quantile_levels(list(forecast.columns)).values())
    band = (levels[0], levels[-1]) if len(levels) > 1 else None
    rows = plan.staffing.join(forecast[levels]) if band else plan.staffing
    atomic_write_bytes(paths["plot_path"], staffing_plot(region, rows, band))
    summary = plan.summary
    run_logger().info("Staffed %s: %.0f driver-hours in the next 7 days (service level %.2f, %s)", region,
                      summary["driver_hours_scheduled_7d"], summary["service_level"], summary["solver"])
    return {**summary, **paths, "warnings": plan.warnings}
