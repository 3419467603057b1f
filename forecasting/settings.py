"""Where ordercast keeps its state, and the few defaults shared by every layer."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SLOT = "30min"
DEFAULT_HORIZON_DAYS = 21
DEFAULT_KEEP_RUNS = 10  # prune: the newest runs, snapshots and models per region kept whatever their age


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ordercast_home() -> Path:
    """`$ORDERCAST_HOME`, default `~/.ordercast`: server database, run caches, model store."""
    return Path(os.environ.get("ORDERCAST_HOME") or Path.home() / ".ordercast").expanduser()


QUIET_ENV = "ORDERCAST_QUIET"  # set by the command line unless --verbose: workers print warnings and errors only
PROGRESS = "ordercast_progress"  # a log record's `extra` key: a progress line that a terminal rewrites in place


def work_root() -> Path:
    """Where runs keep what workers read and write: the cluster's `shared_dir` when workers may
    be on other machines (`ORDERCAST_WORK_DIR`), else `$ORDERCAST_HOME`."""
    shared = os.environ.get("ORDERCAST_WORK_DIR")
    return Path(shared) if shared else ordercast_home()


def default_model_store() -> Path:
    return work_root() / "models"


def default_selection_store() -> Path:
    return work_root() / "selections"


def run_dir(run_id: str) -> Path:
    """Scratch folder of one flow run: input partitions and per-region outputs."""
    return work_root() / "runs" / run_id
