"""The latest backtest selection per region: which model to use and how to calibrate its
intervals. The forecast flow reads it; the backtest flow writes it.

Layout: `$ORDERCAST_HOME/selections/<region>.json`, replaced atomically by each backtest.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forecasting.paths import region_key
from forecasting.storage import atomic_write_json


def save_selection(store: Path, record: dict[str, Any]) -> None:
    atomic_write_json(Path(store) / f"{region_key(record['region'])}.json", record)


def latest_selection(store: Path, region: str, *, slot: str, horizon_days: int) -> dict[str, Any] | None:
    """The region's latest selection if it was made for the same slot and horizon."""
    path = Path(store) / f"{region_key(region)}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("region") != region or record.get("slot") != slot or record.get("horizon_days") != horizon_days:
        return None
    return record
