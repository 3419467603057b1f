"""Where ordercast keeps its state, and the few defaults shared by every layer."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SLOT = "30min"
DEFAULT_HORIZON_DAYS = 21


def ordercast_home() -> Path:
    """`$ORDERCAST_HOME`, default `~/.ordercast`: server database, run caches, model store."""
    return Path(os.environ.get("ORDERCAST_HOME") or Path.home() / ".ordercast").expanduser()


def default_model_store() -> Path:
    return ordercast_home() / "models"


def default_selection_store() -> Path:
    return ordercast_home() / "selections"


def run_dir(run_id: str) -> Path:
    """Scratch folder of one flow run: input partitions and per-region outputs."""
    return ordercast_home() / "runs" / run_id
