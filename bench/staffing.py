"""Staffing benchmark: what the cost rule saves against staffing at the P50 or the P90, counted
on each policy's shift plan and the orders that really came, for service levels 0.5 to 0.95.

    python bench/staffing.py --forecasts OUT[,OUT2,...] --orders orders.csv --staffing staffing.csv

OUT holds a forecast made with `--staffing` (so it has the quantiles 0.05-0.95) at an `as_of`
before the end of `orders.csv` (for example `--as-of` three weeks before the data end): the
slots of the horizon whose orders are known are scored (pooled over several OUTs, one per window). For each target service level s, every
region's `late_order_cost` is set so that its service level is s. Three per-slot requirements,
each turned into shifts by the same integer program, then costed on the actual orders (idle
driver-hours x driver_hour_cost + late orders x late_order_cost):
- cost rule: ordercast's (the quantile at s, the cheaper of the two whole counts around it);
- P50 and P90: the fewest drivers whose capacity reaches that quantile.
Also times the shift planning of every region over the first 7 days (`--timing`).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # this checkout's code, installed or not

from forecasting.staffing import (  # noqa: E402
    DEFAULT_TIME_LIMIT,
    allowed_starts,
    load_staffing,
    plan_shifts,
    shift_lengths,
    slot_minutes_of,
    staff_region,
)
from forecasting.staffing_outputs import read_stored_forecasts  # noqa: E402

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forecasts", required=True, help="forecast OUT folders (made with --staffing), comma-separated")
    parser.add_argument("--orders", required=True, help="orders CSV with the actual orders of the horizon")
    parser.add_argument("--staffing", required=True, help="staffing table")
    parser.add_argument("--timing", action="store_true", help="also time the 7-day shift planning of every region")
    args = parser.parse_args()

    forecasts = pd.concat([read_stored_forecasts(out, None) for out in args.forecasts.split(",")], ignore_index=True)
    orders = pd.read_csv(args.orders)
    orders["ts"] = pd.to_datetime(orders["ts"], utc=True, format="ISO8601")
    actual = orders.groupby(["region", "ts"])["orders"].sum()
    forecasts["actual"] = actual.reindex(pd.MultiIndex.from_frame(forecasts[["region", "ts"]])).to_numpy()
    forecasts = forecasts.dropna(subset=["actual"])
    table = load_staffing(args.staffing)
    slot_minutes = slot_minutes_of(forecasts)
    print(f"{forecasts['region'].nunique()} regions, {len(forecasts)} scored slots, as_of "
          f"{', '.join(f'{t:%Y-%m-%d %H:%M}' for t in sorted(forecasts['as_of'].unique()))} UTC; "
          f"slot {slot_minutes:g} min")
    print("service level | cost rule | P50 (x cost rule) | P90 (x cost rule)")
    for level in LEVELS:
        totals = {"cost rule": 0.0, "p50": 0.0, "p90": 0.0}
        for (region, _), rows in forecasts.groupby(["region", "as_of"]):
            if region not in table:
                continue
            staffing = at_service_level(table[region], level)
            for policy, cover in covers(rows.reset_index(drop=True), staffing, slot_minutes).items():
                totals[policy] += realized_cost(rows["actual"].to_numpy(), cover, staffing, slot_minutes)
        base = totals["cost rule"]
        print(f"{level:>13.2f} | {base:>9,.0f} | {totals['p50']:>9,.0f} ({totals['p50'] / base:.3f}) | "
              f"{totals['p90']:>9,.0f} ({totals['p90'] / base:.3f})")
    if args.timing:
        week = forecasts.loc[forecasts["ts"] < forecasts["as_of"] + pd.Timedelta(days=7)]
        started = time.perf_counter()
        for (region, _), rows in week.groupby(["region", "as_of"]):
            if region in table:
                staff_region(rows, table[region], None, slot_minutes=slot_minutes, notice_hours=48,
                             time_limit=DEFAULT_TIME_LIMIT, run_id="bench")
        print(f"Shift planning, {week.groupby(['region', 'as_of']).ngroups} region-weeks of 7 days: "
              f"{time.perf_counter() - started:.1f} s")


def at_service_level(staffing, level: float):
    """The region's row with `late_order_cost` set so that its service level is `level`."""
    idle_cost_per_order = staffing.driver_hour_cost / staffing.orders_per_driver_hour
    return dataclasses.replace(staffing, late_order_cost=level / (1 - level) * idle_cost_per_order)


def covers(rows: pd.DataFrame, staffing, slot_minutes: float) -> dict[str, np.ndarray]:
    """Drivers on the road per slot in each policy's shift plan."""
    plan = staff_region(rows, staffing, None, slot_minutes=slot_minutes, notice_hours=48,
                        time_limit=DEFAULT_TIME_LIMIT, run_id="bench")
    result = {"cost rule": plan.staffing["scheduled_drivers"].to_numpy()}
    capacity = staffing.orders_per_driver_hour * slot_minutes / 60
    starts = allowed_starts(rows["local_start"], rows["ts"], staffing.shift_start_step, slot_minutes,
                            rows["as_of"].iloc[0])
    for policy in ("p50", "p90"):
        need = np.ceil(np.round(rows[policy].to_numpy() / capacity, 9))
        need = np.maximum(need, staffing.min_drivers)
        if staffing.max_drivers is not None:
            need = np.minimum(need, staffing.max_drivers)
        result[policy] = plan_shifts(need.astype("int64"), starts, shift_lengths(staffing, slot_minutes),
                                     np.zeros(len(rows), dtype="int64"), staffing.max_drivers,
                                     DEFAULT_TIME_LIMIT).cover
    return result


def realized_cost(actual: np.ndarray, cover: np.ndarray, staffing, slot_minutes: float) -> float:
    capacity = cover * staffing.orders_per_driver_hour * slot_minutes / 60
    late = np.maximum(actual - capacity, 0).sum() * staffing.late_order_cost
    idle_hours = np.maximum(capacity - actual, 0).sum() / staffing.orders_per_driver_hour
    return float(late + idle_hours * staffing.driver_hour_cost)


if __name__ == "__main__":
    main()
