"""Trained models on disk, with the metadata needed to reuse them safely.

Layout: STORE/<region>/<as_of>--<model>--<id>/ holding the model's own files and
`meta.json` (region, model, slot, horizon, feature list, trained-through `as_of`); the pooled
models, shared by the regions that use them, in STORE/_pooled/ (no region's folder name
starts with `_`).
A model folder appears by rename only once complete.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from forecasting.models import ForecastModel, load_named_model
from forecasting.paths import region_key

META_FILE = "meta.json"
POOLED_GROUP = "_pooled"  # the pooled models' folder: no region's folder name starts with "_"


def save_model(store: Path, model: ForecastModel, meta: dict[str, Any], group: str | None = None) -> Path:
    """Write a fitted model and its metadata into its region's folder (or `group`, such as
    the pooled models' folder); returns the model's folder."""
    stamp = pd.Timestamp(meta["as_of"]).strftime("%Y%m%dT%H%M%SZ")
    parent = group or region_key(meta["region"])
    folder = Path(store) / parent / f"{stamp}--{model.name}--{uuid.uuid4().hex[:8]}"
    staging = folder.with_name(f".{folder.name}.tmp")
    staging.mkdir(parents=True)
    model.save(staging)
    (staging / META_FILE).write_text(json.dumps({**meta, "model": model.name, "params": model.get_params()}, indent=2))
    os.replace(staging, folder)
    return folder


def read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / META_FILE).read_text())


def load_model(folder: Path) -> tuple[ForecastModel, dict[str, Any]]:
    meta = read_meta(folder)
    return load_named_model(meta["model"], Path(folder)), meta


def find_model(
    store: Path, region: str, *, slot: str, horizon_days: int, features: list[str], as_of: pd.Timestamp
) -> Path | None:
    """The most recent stored model for the region trained through `as_of` or earlier
    whose slot, horizon and feature list match; None when there is none."""
    best: tuple[pd.Timestamp, str, Path] | None = None
    region_dir = Path(store) / region_key(region)
    if not region_dir.is_dir():
        return None
    for folder in region_dir.iterdir():
        if folder.name.startswith(".") or not (folder / META_FILE).is_file():
            continue
        meta = read_meta(folder)
        trained_through = pd.Timestamp(meta["as_of"])
        fits = (
            meta["region"] == region
            and meta["slot"] == slot
            and meta["horizon_days"] == horizon_days
            and meta["features"] == features
            and trained_through <= as_of
        )
        if fits and (best is None or (trained_through, meta.get("trained_at", "")) > best[:2]):
            best = (trained_through, meta.get("trained_at", ""), folder)
    return best[2] if best else None
