"""The terminal summary after a forecast: per region the numbers a planner wants first."""
from __future__ import annotations

from typing import Any

import pandas as pd

from forecasting.models import MODELS
from forecasting.pipeline import HELD_OUT_WEEKS

SHOWN_IN_FULL = 20
SHOWN_PER_GROUP = 10
WEEK = pd.Timedelta(days=7)
MODEL_WIDTH = max(len(name) for name in MODELS)  # every model name in full


def region_lines(forecasts: pd.DataFrame, statuses: list[dict[str, Any]], daily: bool = False) -> list[str]:
    """One line per region: status, model, expected WAPE (its backtest's held-out WAPE; without a
    backtest of its model, `~` and the WAPE over the weeks held out to calibrate its intervals),
    orders forecast for the next 7 days and the busiest slot in local time (with `daily`, `1D`
    slots, the busiest day); then the total.
    Above `SHOWN_IN_FULL` regions: the 10 worst, the 10 largest, and a count of the rest."""
    rows = []
    for status in statuses:
        mine = forecasts.loc[forecasts["region"] == status["region"]]
        week = mine.loc[mine["ts"] < mine["as_of"] + WEEK] if len(mine) else mine
        busiest = week.loc[week["forecast"].idxmax()] if len(week) else None
        rows.append({
            "region": status["region"], "status": status["status"], "model": status.get("model") or "-",
            "expected": status.get("expected_wape"), "rough": status.get("expected_from") == HELD_OUT_WEEKS,
            "week": float(week["forecast"].sum()) if len(week) else None,
            "busiest": _local_slot(busiest, daily) if busiest is not None else "-",
        })
    busiest = "busiest day (local)" if daily else "busiest slot (local)"
    header = f"{'region':<22} {'status':<9} {'model':<{MODEL_WIDTH}} {'exp. WAPE':>9} {'next 7 days':>12}  {busiest}"
    lines = [header]
    if len(rows) <= SHOWN_IN_FULL:
        lines += [_line(row) for row in rows]
    else:
        worst = sorted(rows, key=_badness, reverse=True)[:SHOWN_PER_GROUP]
        largest = sorted((r for r in rows if r not in worst), key=lambda r: r["week"] or 0, reverse=True)
        largest = largest[:SHOWN_PER_GROUP]
        lines += ["-- worst (failed or fell back first, then the highest expected WAPE):"]
        lines += [_line(row) for row in worst]
        lines += ["-- largest (orders in the next 7 days):"] + [_line(row) for row in largest]
        lines += [f"-- and {len(rows) - len(worst) - len(largest)} more regions (OUT/run.json, forecasts.parquet)"]
    total = sum(row["week"] or 0 for row in rows)
    troubled = sum(row["status"] != "ok" for row in rows)
    lines.append(f"{'total':<22} {f'{troubled} not ok' if troubled else 'all ok':<9} {'':<{MODEL_WIDTH}} {'':>9} {total:>12,.0f}")
    return lines


def _badness(row: dict[str, Any]) -> tuple[int, float]:
    return (row["status"] != "ok", row["expected"] if row["expected"] is not None else -1.0)


def _line(row: dict[str, Any]) -> str:
    expected = f"{'~' if row['rough'] else ''}{row['expected']:.3f}" if row["expected"] is not None else "-"
    week = f"{row['week']:,.0f}" if row["week"] is not None else "-"
    return f"{row['region'][:22]:<22} {row['status']:<9} {row['model']:<{MODEL_WIDTH}} {expected:>9} {week:>12}  {row['busiest']}"


def _local_slot(row: pd.Series, daily: bool) -> str:
    """'Fri 2026-10-16 19:00 (312)': the slot's local start and its forecast ('Fri 2026-10-16
    (2,950)' for a day)."""
    local = row.get("local_start")
    start = pd.Timestamp(local) if isinstance(local, str) else row["ts"]
    return f"{start:%a %Y-%m-%d}{'' if daily else f' {start:%H:%M}'} ({row['forecast']:,.0f})"
