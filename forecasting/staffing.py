"""From forecast orders to drivers: the per-slot requirement and the shifts that cover it.

Per slot, the number of drivers is a newsvendor choice. One more driver in a slot of `h` hours
costs `driver_hour_cost * h` when idle and adds `orders_per_driver_hour * h` orders of capacity;
one order beyond capacity costs `late_order_cost`. Expected cost is lowest at the capacity that
covers the forecast's quantile at the critical fractile

    service_level = late_order_cost / (late_order_cost + driver_hour_cost / orders_per_driver_hour)

so the requirement is whichever of the two whole driver counts around that quantile's capacity has
the lower expected cost (`drivers_needed`), clipped to the region's `min_drivers` and
`max_drivers`. The forecast's stored quantiles (0.05 to 0.95 when staffing is asked for) stand
for its distribution.

Shifts: the cheapest set of shifts (allowed lengths, starts on the region's local grid) whose
drivers on the road cover the requirement in every slot, as an integer program solved by HiGHS
(`scipy.optimize.milp`) under a time limit. Published shifts are fixed; new shifts start no
earlier than the notice period after `as_of`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy import sparse
from scipy.sparse import csr_matrix

from forecasting.errors import ConfigError, DataError
from forecasting.tables import (
    ROW,
    SOURCE,
    fail_at,
    fail_duplicates,
    parse_labels,
    parse_numbers,
    parse_timestamps,
    read_table,
)

STAFFING_REQUIRED = ["region", "orders_per_driver_hour", "driver_hour_cost", "late_order_cost"]
STAFFING_OPTIONAL = ["min_drivers", "max_drivers", "min_shift_hours", "max_shift_hours", "shift_start_step"]
PUBLISHED_REQUIRED = ["region", "shift_start", "shift_end", "drivers"]
SERVICE_LEVELS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))  # the quantile grid staffing reads
DEFAULT_NOTICE_HOURS = 48.0
DEFAULT_TIME_LIMIT = 20.0
MAX_SLOT_MINUTES = 60


@dataclass(frozen=True)
class RegionStaffing:
    """One row of the staffing table: a region's productivity, costs, limits and shift rules."""

    region: str
    orders_per_driver_hour: float
    driver_hour_cost: float
    late_order_cost: float
    min_drivers: int = 0
    max_drivers: int | None = None
    min_shift_hours: float = 2.0
    max_shift_hours: float = 6.0
    shift_start_step: float | None = None  # hours; None: every slot
    source: str = ""
    row: int = 0

    @property
    def service_level(self) -> float:
        """The critical fractile: the chance of enough capacity that minimizes expected cost."""
        idle_cost_per_order = self.driver_hour_cost / self.orders_per_driver_hour
        return self.late_order_cost / (self.late_order_cost + idle_cost_per_order)


def load_staffing(path: str | Path) -> dict[str, RegionStaffing]:
    """Read and check the staffing table; one-line `DataError` naming file, row and value."""
    raw, _ = read_table(path, "staffing", STAFFING_REQUIRED)
    raw["region"] = parse_labels(raw, "region")
    fail_duplicates(raw, ["region"], "region")
    values = {column: parse_numbers(raw, column, allow_empty=column in STAFFING_OPTIONAL) if column in raw.columns
              else pd.Series(np.nan, index=raw.index) for column in STAFFING_REQUIRED[1:] + STAFFING_OPTIONAL}
    for column in STAFFING_REQUIRED[1:]:
        fail_at(raw, values[column] <= 0, column, "must be > 0")
    for column in ("min_drivers", "max_drivers"):
        fail_at(raw, values[column] < 0, column, "is negative; drivers must be >= 0")
        fail_at(raw, values[column].notna() & (values[column] != np.floor(values[column])), column,
                "is not a whole number of drivers")
    values["min_drivers"] = values["min_drivers"].fillna(0)
    fail_at(raw, values["max_drivers"] < values["min_drivers"], "max_drivers", "is below min_drivers")
    for column in ("min_shift_hours", "max_shift_hours", "shift_start_step"):
        fail_at(raw, values[column] <= 0, column, "must be > 0 hours")
    values["min_shift_hours"] = values["min_shift_hours"].fillna(2.0)
    values["max_shift_hours"] = values["max_shift_hours"].fillna(6.0)
    fail_at(raw, values["max_shift_hours"] < values["min_shift_hours"], "max_shift_hours",
            "is below min_shift_hours")
    table = {}
    for index in raw.index:
        cell = {column: values[column][index] for column in values}
        table[raw.at[index, "region"]] = RegionStaffing(
            region=raw.at[index, "region"],
            orders_per_driver_hour=float(cell["orders_per_driver_hour"]),
            driver_hour_cost=float(cell["driver_hour_cost"]),
            late_order_cost=float(cell["late_order_cost"]),
            min_drivers=int(cell["min_drivers"]),
            max_drivers=None if pd.isna(cell["max_drivers"]) else int(cell["max_drivers"]),
            min_shift_hours=float(cell["min_shift_hours"]),
            max_shift_hours=float(cell["max_shift_hours"]),
            shift_start_step=None if pd.isna(cell["shift_start_step"]) else float(cell["shift_start_step"]),
            source=str(raw.at[index, SOURCE]), row=int(raw.at[index, ROW]),
        )
    return table


def load_staffing_inputs(staffing: str | Path, slot_minutes: float, published: str | Path | None = None
                         ) -> tuple[dict[str, RegionStaffing], pd.DataFrame | None]:
    """The staffing table, checked against the slot, and the published shifts (None without a
    table of them), checked against the staffing table."""
    table = load_staffing(staffing)
    check_against_slot(table, slot_minutes)
    return table, load_published(published, set(table)) if published else None


def regions_to_staff(forecast_regions: set[str], table: dict[str, RegionStaffing]) -> list[str]:
    """The regions with both forecasts and a staffing row; an error when there are none."""
    regions = sorted(set(forecast_regions) & set(table))
    if not regions:
        raise ConfigError("no region of the forecasts is in the staffing table (forecasts: "
                          f"{', '.join(sorted(forecast_regions)[:5])}; staffing: {', '.join(sorted(table)[:5])})")
    return regions


def check_against_slot(table: dict[str, RegionStaffing], slot_minutes: float) -> None:
    """Shift lengths and start steps must be whole multiples of the slot; slots of at most an hour."""
    if slot_minutes > MAX_SLOT_MINUTES:
        raise ConfigError(f"staffing needs slots of at most {MAX_SLOT_MINUTES} minutes; these forecasts have "
                          f"{slot_minutes / 60:g}-hour slots (forecast with --slot 30min or 1h to plan drivers)")
    for staffing in table.values():
        for column in ("min_shift_hours", "max_shift_hours", "shift_start_step"):
            hours = getattr(staffing, column)
            if hours is not None and not _is_multiple(hours * 60, slot_minutes):
                raise DataError(f"{staffing.source}: column '{column}' row {staffing.row}: {hours:g} is not a "
                                f"multiple of the {slot_minutes:g}-minute slot; region {staffing.region}")


def _is_multiple(minutes: float, slot_minutes: float) -> bool:
    return abs(minutes / slot_minutes - round(minutes / slot_minutes)) < 1e-9


def load_published(path: str | Path, regions: set[str]) -> pd.DataFrame:
    """Read and check the published-shifts table: `region`, `shift_start`, `shift_end` (UTC),
    `drivers`."""
    raw, _ = read_table(path, "published shifts", PUBLISHED_REQUIRED, allow_empty=True)
    frame = pd.DataFrame({"region": parse_labels(raw, "region")})
    fail_at(raw, ~frame["region"].isin(regions), "region", "is not a region of the staffing table")
    frame["shift_start"] = parse_timestamps(raw, "shift_start")
    frame["shift_end"] = parse_timestamps(raw, "shift_end")
    fail_at(raw, frame["shift_end"] <= frame["shift_start"], "shift_end", "is not after shift_start")
    drivers = parse_numbers(raw, "drivers", allow_empty=False)
    fail_at(raw, (drivers < 1) | (drivers != np.floor(drivers)), "drivers", "is not a whole number >= 1")
    frame["drivers"] = drivers.astype("int64")
    return frame


# --- drivers per slot ------------------------------------------------------------------------

def quantile_levels(columns: list[str]) -> dict[float, str]:
    """The quantile columns of a forecast frame (p5, p10, ...) by level."""
    levels = {}
    for column in columns:
        if column.startswith("p"):
            try:
                levels[round(float(column[1:]) / 100, 6)] = column
            except ValueError:
                continue
    return dict(sorted(levels.items()))


def orders_at_level(forecast: pd.DataFrame, level: float) -> np.ndarray:
    """Each slot's forecast quantile at `level`, interpolated between the stored quantile columns
    (the caller keeps `level` inside their range)."""
    levels = quantile_levels(list(forecast.columns))
    grid = np.array(list(levels))
    values = forecast[list(levels.values())].to_numpy("float64")
    upper = int(np.clip(np.searchsorted(grid, level), 1, len(grid) - 1)) if len(grid) > 1 else 0
    if len(grid) == 1:
        return values[:, 0]
    lower = upper - 1
    weight = (level - grid[lower]) / (grid[upper] - grid[lower])
    return values[:, lower] + (values[:, upper] - values[:, lower]) * np.clip(weight, 0.0, 1.0)


def drivers_needed(forecast: pd.DataFrame, at_level: np.ndarray, capacity_per_driver: float,
                   staffing: RegionStaffing) -> np.ndarray:
    """Whole drivers per slot: of the two counts around the capacity `at_level` (the quantile at
    the service level), the one with the lower expected cost, within the region's limits.

    Expected cost is convex in the number of drivers, and its continuous minimum is the capacity
    at the service level, so the best whole count is one of its two neighbours."""
    above = np.ceil(np.round(np.asarray(at_level, dtype="float64") / capacity_per_driver, 9))
    below = np.maximum(above - 1, 0)
    cheaper = expected_cost(forecast, below, capacity_per_driver, staffing) < \
        expected_cost(forecast, above, capacity_per_driver, staffing)
    drivers = np.where(cheaper, below, above)
    drivers = np.maximum(drivers, staffing.min_drivers)
    if staffing.max_drivers is not None:
        drivers = np.minimum(drivers, staffing.max_drivers)
    return drivers.astype("int64")


def clipped_service_level(staffing: RegionStaffing, available: list[float]) -> tuple[float, str | None]:
    """The region's service level, clipped to the quantile levels the forecasts hold (and to
    0.05-0.95), with a warning naming the region when it had to be clipped."""
    low, high = max(min(available), SERVICE_LEVELS[0]), min(max(available), SERVICE_LEVELS[-1])
    level = staffing.service_level
    clipped = float(np.clip(level, low, high))
    if abs(clipped - level) < 1e-9:
        return level, None
    return clipped, (f"region '{staffing.region}': service level {level:.3f} (from its costs) is outside the "
                     f"forecast quantiles {low:g}-{high:g}; staffed at {clipped:g}")


# --- shifts ----------------------------------------------------------------------------------

@dataclass
class ShiftPlan:
    """Shifts added by the plan, drivers on the road per slot and how the solver ended."""

    shifts: pd.DataFrame  # start_index, length (slots), drivers
    cover: np.ndarray  # drivers on the road per slot, published shifts included
    status: str
    notes: list[str] = field(default_factory=list)


def plan_shifts(requirement: np.ndarray, allowed_start: np.ndarray, lengths: list[int],
                published_cover: np.ndarray, max_drivers: int | None, time_limit: float) -> ShiftPlan:
    """Cheapest shifts (fewest driver-slots) covering `requirement - published_cover` in every slot.

    `allowed_start[t]` says whether a new shift may start at slot t (local grid, notice period);
    shifts of each length in `lengths` (slots) lie inside the horizon. Shortfalls are allowed at a
    high price, so that slots no shift may reach (inside the notice period) do not make the
    program infeasible; the drivers on the road never exceed `max_drivers` where published
    shifts do not already. When the time limit ends the search without an integer plan, a greedy
    plan is returned instead."""
    slots = len(requirement)
    need = np.maximum(np.asarray(requirement) - published_cover, 0).astype("float64")
    starts = np.flatnonzero(allowed_start)
    candidates = [(s, n) for n in lengths for s in starts if s + n <= slots]
    if not candidates or not need.any():
        return ShiftPlan(_shift_frame([], []), published_cover.astype("int64"), "optimal")
    rows, cols = [], []
    for j, (start, length) in enumerate(candidates):
        rows.extend(range(start, start + length))
        cols.extend([j] * length)
    cover_matrix = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(slots, len(candidates)))
    shortfall_price = 2.0 * max(lengths)  # dearer than any shift that could cover the slot
    cost = np.concatenate([[length for _, length in candidates], np.full(slots, shortfall_price)])
    matrix = sparse.hstack([cover_matrix, sparse.identity(slots)], format="csr")
    constraints = [LinearConstraint(matrix, lb=need, ub=np.inf)]
    if max_drivers is not None:
        room = np.maximum(max_drivers - published_cover, 0).astype("float64")
        on_road = sparse.hstack([cover_matrix, csr_matrix((slots, slots))], format="csr")
        constraints.append(LinearConstraint(on_road, lb=0, ub=room))
    result = milp(cost, constraints=constraints, integrality=np.ones(len(cost)), bounds=Bounds(0, np.inf),
                  options={"time_limit": float(time_limit)})
    if result.x is not None:
        counts = np.round(result.x[:len(candidates)]).astype("int64")
        status = "optimal" if result.status == 0 else "time limit: best plan found so far"
    else:
        counts = _greedy_counts(need, candidates, max_drivers, published_cover)
        status = "time limit: no plan found by the solver, a greedy plan instead"
    chosen = [(candidates[j], int(counts[j])) for j in np.flatnonzero(counts)]
    cover = published_cover.astype("int64") + np.asarray(cover_matrix @ counts).astype("int64")
    return ShiftPlan(_shift_frame([c for c, _ in chosen], [d for _, d in chosen]), cover, status)


def _greedy_counts(need: np.ndarray, candidates: list[tuple[int, int]], max_drivers: int | None,
                   published_cover: np.ndarray) -> np.ndarray:
    """A feasible plan without the solver: walk the slots in order and cover each one's remaining
    need with the longest shift starting at the latest allowed start that reaches it."""
    counts = np.zeros(len(candidates), dtype="int64")
    added = np.zeros(len(need))
    room = np.full(len(need), np.inf) if max_drivers is None else np.maximum(max_drivers - published_cover, 0)
    by_start: dict[int, list[tuple[int, int]]] = {}
    for j, (start, length) in enumerate(candidates):
        by_start.setdefault(start, []).append((length, j))
    for t in range(len(need)):
        missing = need[t] - added[t]
        if missing <= 0:
            continue
        reaching = [(start, max(options)) for start, options in by_start.items()
                    if start <= t and start + max(options)[0] > t]
        if not reaching:
            continue
        start, (length, j) = max(reaching)
        extra = int(min(missing, np.min(room[start:start + length] - added[start:start + length])))
        if extra > 0:
            counts[j] += extra
            added[start:start + length] += extra
    return counts


def _shift_frame(candidates: list[tuple[int, int]], drivers: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"start_index": [s for s, _ in candidates], "length": [n for _, n in candidates],
                         "drivers": pd.Series(drivers, dtype="int64")})


def published_cover(published: pd.DataFrame, ts: pd.Series, slot: pd.Timedelta) -> np.ndarray:
    """Drivers on the road per slot from published shifts (a shift covers the slots it overlaps)."""
    starts = _naive_utc(ts)
    cover = np.zeros(len(starts), dtype="int64")
    for row in published.itertuples():
        overlaps = (starts < row.shift_end.to_datetime64()) & (starts + slot.to_timedelta64()
                                                                > row.shift_start.to_datetime64())
        cover[overlaps] += int(row.drivers)
    return cover


def allowed_starts(local_start: pd.Series, ts: pd.Series, step_hours: float | None, slot_minutes: float,
                   earliest: pd.Timestamp) -> np.ndarray:
    """Slots where a new shift may start: on the region's local start grid (every `step_hours`
    from local midnight), not before `earliest`."""
    clock = local_start.str.slice(11, 16)
    minutes = clock.str.slice(0, 2).astype(int) * 60 + clock.str.slice(3, 5).astype(int)
    step = (step_hours * 60) if step_hours else slot_minutes
    on_grid = (minutes % step) == 0
    return (on_grid & (ts >= earliest)).to_numpy()


def shift_lengths(staffing: RegionStaffing, slot_minutes: float) -> list[int]:
    """Allowed shift lengths in slots, from `min_shift_hours` to `max_shift_hours`."""
    shortest = math.ceil(round(staffing.min_shift_hours * 60 / slot_minutes, 9))
    longest = math.floor(round(staffing.max_shift_hours * 60 / slot_minutes, 9))
    return list(range(max(shortest, 1), max(longest, shortest, 1) + 1))


# --- expected cost ---------------------------------------------------------------------------

def expected_cost(forecast: pd.DataFrame, drivers: np.ndarray, capacity_per_driver: float,
                  staffing: RegionStaffing) -> np.ndarray:
    """Per slot, the expected cost of idle driver-hours and late orders with `drivers` on the road.

    The forecast's stored quantiles stand for its distribution: each for the levels nearer to it
    than to its neighbours (p5 for 0-0.075, p10 for 0.075-0.125, ... with the 0.05-0.95 grid)."""
    levels = quantile_levels(list(forecast.columns))
    grid = np.array(list(levels))
    edges = np.concatenate([[0.0], (grid[1:] + grid[:-1]) / 2, [1.0]])
    weights = np.diff(edges)
    orders = forecast[list(levels.values())].to_numpy("float64")
    capacity = (np.asarray(drivers, dtype="float64") * capacity_per_driver)[:, None]
    late = np.maximum(orders - capacity, 0) @ weights
    idle_hours = (np.maximum(capacity - orders, 0) @ weights) / staffing.orders_per_driver_hour
    return late * staffing.late_order_cost + idle_hours * staffing.driver_hour_cost


def outcomes_against_actual(forecast: pd.DataFrame, actual: np.ndarray, staffing: RegionStaffing,
                            slot_minutes: float) -> pd.DataFrame:
    """Per slot, the requirement from the forecast's quantiles and what it would have cost with
    the orders that came: `drivers`, `short_driver_hours` (drivers the actual orders needed beyond
    them), `idle_driver_hours` (capacity left unused) and `staffing_cost` (idle driver-hours and
    late orders, priced). Slots without quantiles get NaN."""
    slot_hours = slot_minutes / 60
    capacity = staffing.orders_per_driver_hour * slot_hours
    levels = quantile_levels(list(forecast.columns))
    level, _ = clipped_service_level(staffing, list(levels))
    known = forecast[list(levels.values())].notna().all(axis=1).to_numpy()
    drivers = np.full(len(forecast), np.nan)
    if known.any():
        rows = forecast.loc[known]
        drivers[known] = drivers_needed(rows, orders_at_level(rows, level), capacity, staffing)
    actual = np.asarray(actual, dtype="float64")
    room = drivers * capacity
    late = np.maximum(actual - room, 0)
    idle_hours = np.maximum(room - actual, 0) / staffing.orders_per_driver_hour
    needed = np.ceil(np.round(actual / capacity, 9))
    return pd.DataFrame({
        "drivers": drivers,
        "short_driver_hours": np.maximum(needed - drivers, 0) * slot_hours,
        "idle_driver_hours": idle_hours,
        "staffing_cost": late * staffing.late_order_cost + idle_hours * staffing.driver_hour_cost,
    }, index=forecast.index)


# --- one region ------------------------------------------------------------------------------

@dataclass
class RegionPlan:
    """A region's staffing rows, its shifts and the figures a planner reads first."""

    staffing: pd.DataFrame
    shifts: pd.DataFrame
    summary: dict
    warnings: list[str]


def slot_minutes_of(forecast: pd.DataFrame) -> float:
    """The slot length of stored forecasts, from the spacing of their timestamps."""
    keys = ["region", "as_of"] if "as_of" in forecast.columns else ["region"]
    steps = forecast.sort_values([*keys, "ts"]).groupby(keys)["ts"].diff().dropna()
    if steps.empty:
        raise DataError("the forecasts hold one slot per region: cannot tell the slot length")
    return steps.min() / pd.Timedelta(minutes=1)


def staff_region(forecast: pd.DataFrame, staffing: RegionStaffing, published: pd.DataFrame | None, *,
                 slot_minutes: float, notice_hours: float, time_limit: float, run_id: str) -> RegionPlan:
    """Drivers per slot and the shifts that cover them, for one region's forecast of one `as_of`
    (`published`: that region's published shifts, or None when no published table was given)."""
    forecast = forecast.sort_values("ts").reset_index(drop=True)
    as_of = pd.Timestamp(forecast["as_of"].iloc[0])
    slot_hours = slot_minutes / 60
    capacity = staffing.orders_per_driver_hour * slot_hours
    levels = quantile_levels(list(forecast.columns))
    level, warning = clipped_service_level(staffing, list(levels))
    warnings = [warning] if warning else []
    spread = forecast[list(levels.values())].to_numpy("float64")
    if np.allclose(spread.max(axis=1), spread.min(axis=1)):
        warnings.append(f"region '{staffing.region}': its forecast has no calibrated intervals (too little "
                        "history): staffed on the point forecast, without margin for uncertainty")
    at_level = orders_at_level(forecast, level)
    drivers = drivers_needed(forecast, at_level, capacity, staffing)

    ts = forecast["ts"]
    fixed = published if published is not None else pd.DataFrame(columns=PUBLISHED_REQUIRED)
    fixed_cover = published_cover(fixed, ts, pd.Timedelta(minutes=slot_minutes))
    earliest = as_of + pd.Timedelta(hours=notice_hours) if published is not None else as_of
    plan = plan_shifts(drivers, allowed_starts(forecast["local_start"], ts, staffing.shift_start_step, slot_minutes,
                                               earliest),
                       shift_lengths(staffing, slot_minutes), fixed_cover, staffing.max_drivers, time_limit)

    rows = pd.DataFrame({
        "region": staffing.region, "ts": ts, "local_start": forecast["local_start"],
        "expected_orders": forecast["forecast"].to_numpy("float64"), "orders_at_service_level": at_level,
        "service_level": round(level, 4), "drivers": drivers, "as_of": as_of, "run_id": run_id,
        "scheduled_drivers": plan.cover,
    })
    slot = pd.Timedelta(minutes=slot_minutes)
    new = pd.DataFrame({
        "region": staffing.region,
        "shift_start": _local_text(_naive_utc(ts.iloc[plan.shifts["start_index"]]), forecast),
        "shift_end": _local_text(_naive_utc(ts.iloc[plan.shifts["start_index"] + plan.shifts["length"] - 1] + slot),
                                 forecast),
        "drivers": plan.shifts["drivers"].to_numpy(), "published": False})
    kept = fixed.loc[(fixed["shift_end"] > ts.iloc[0]) & (fixed["shift_start"] < ts.iloc[-1] + slot)]
    old = pd.DataFrame({"region": staffing.region,
                        "shift_start": _local_text(_naive_utc(kept["shift_start"]), forecast),
                        "shift_end": _local_text(_naive_utc(kept["shift_end"]), forecast),
                        "drivers": kept["drivers"].to_numpy("int64"), "published": True})
    shifts = pd.concat([old, new], ignore_index=True).sort_values(["shift_start", "shift_end"], kind="stable")
    shifts["as_of"], shifts["run_id"] = as_of, run_id

    week = (ts < as_of + pd.Timedelta(days=7)).to_numpy()
    cost = expected_cost(forecast.loc[week], plan.cover[week], capacity, staffing)
    summary = {
        "region": staffing.region, "service_level": round(level, 4),
        "driver_hours_required_7d": float(drivers[week].sum() * slot_hours),
        "driver_hours_scheduled_7d": float(plan.cover[week].sum() * slot_hours),
        "expected_cost_7d": round(float(cost.sum()), 2),
        "excess_driver_hours": float(np.maximum(plan.cover - drivers, 0).sum() * slot_hours),
        "uncovered_driver_hours": float(np.maximum(drivers - plan.cover, 0).sum() * slot_hours),
        "shifts": int(len(new)), "solver": plan.status,
    }
    return RegionPlan(rows, shifts.reset_index(drop=True), summary, warnings)


def _local_text(instants: np.ndarray, forecast: pd.DataFrame) -> list[str]:
    """ISO-8601 text of UTC instants in the region's local time, with the offset in force then
    (read from the forecast's `local_start` of the slot that starts at or before the instant)."""
    starts = _naive_utc(forecast["ts"])
    offsets = forecast["local_start"].str.slice(19).to_numpy()
    texts = []
    for instant in instants:
        index = int(np.clip(np.searchsorted(starts, instant, side="right") - 1, 0, len(starts) - 1))
        offset = offsets[index] or "+00:00"
        sign = 1 if offset[0] == "+" else -1
        shift = pd.Timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
        local = pd.Timestamp(instant) + shift
        texts.append(local.strftime("%Y-%m-%dT%H:%M:%S") + offset)
    return texts


def _naive_utc(values: pd.Series) -> np.ndarray:
    """UTC instants as plain datetime64 values, for numpy comparisons."""
    return pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy("datetime64[ns]")
