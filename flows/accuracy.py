"""The accuracy flow: score stored forecast vintages against the orders that have arrived,
write the tables and plot, and publish the per-region summary as a Prefect artifact."""
from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from forecasting.contract import InputPaths
from forecasting.settings import DEFAULT_SLOT
from forecasting.storage import default_db_url
from tasks.tracking import track_accuracy


@flow(name="accuracy")
def accuracy_flow(orders: str, out: str, regions: str | None = None, slot: str = DEFAULT_SLOT,
                  missing_as_zero: bool = False, db: str | None = None, since: str | None = None) -> dict[str, Any]:
    """How accurate the stored forecasts were, per region, model and vintage age."""
    paths = InputPaths(orders, None, None, None, regions)
    summary = track_accuracy(paths, slot, missing_as_zero, db or default_db_url(out), out, since)
    create_table_artifact(
        key="forecast-accuracy",
        table=[{key: _round(row[key]) for key in ("region", "model", "recent_wape", "promised_wape", "coverage",
                                                    "flagged")} for row in summary["regions"]],
        description=f"WAPE of the stored forecasts over the orders since {summary['recent_since']}, against "
                    "each region's backtest promise (flagged: clearly worse)",
    )
    return summary


def _round(value):
    return round(value, 4) if isinstance(value, float) else value
