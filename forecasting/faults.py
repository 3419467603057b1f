"""Failure drills: make a named step misbehave for a named region on purpose.

`ORDERCAST_FAULTS` is a comma-separated list of `step:region[:kind]`; steps are `train`,
`predict`, `backtest` and `staff`. Step `write` takes a point of the output commit instead of a region
(`staged`, `committed`, `published-parquet`; see forecasting/outputs.py), to rehearse a crash
there. The region `_pooled` names the pooled model (`train:_pooled` fails `train-pooled`,
`backtest:_pooled` fails `backtest-pooled`). Kinds:

- `error` (default): raise `InjectedFault`, a model error that is not retried.
- `transient`: raise `TransientFault` (an I/O error) on the first attempt of each run only.
- `memory`: allocate memory until the worker is killed for exceeding its limit, every attempt.
- `memory-once`: the same, on the first attempt of each run only.
- `hang`: sleep for an hour (what `--region-timeout` is for).
- `slow`: sleep 20 seconds after writing the process id to `<work root>/drills/<run>/<step>-<region>.pid`,
  so a drill (or test) can kill the worker that runs the region.

Used by the test suite and by on-call drills to rehearse recovery. "Once" is tracked by marker
files under `<work root>/drills/<run id>/`, so the attempt after a retry or a lost worker passes.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from forecasting.errors import InjectedFault, TransientFault
from forecasting.settings import work_root

KINDS = ("error", "transient", "memory", "memory-once", "hang", "slow")
SLOW_SECONDS = 20
HANG_SECONDS = 3600
_MEMORY_CHUNK = 64 * 2**20
_MEMORY_CAP = 16 * 2**30


def planned_faults() -> dict[tuple[str, str], str]:
    """(step, region) -> kind, from `ORDERCAST_FAULTS`."""
    faults = {}
    for item in os.environ.get("ORDERCAST_FAULTS", "").split(","):
        parts = item.strip().split(":")
        if len(parts) < 2 or not parts[0]:
            continue
        kind = parts[2] if len(parts) > 2 else "error"
        faults[(parts[0], parts[1])] = kind if kind in KINDS else "error"
    return faults


def maybe_fail(step: str, region: str, run_id: str = "adhoc") -> None:
    """Misbehave as `ORDERCAST_FAULTS` asks for this step and region; otherwise return."""
    kind = planned_faults().get((step, region))
    if kind is None:
        return
    drills = work_root() / "drills" / run_id
    if kind.endswith("-once") or kind == "transient":
        marker = drills / f"{step}-{region}-{kind}.done"
        if marker.exists():
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
    if kind == "transient":
        raise TransientFault(f"{step} of region '{region}' hit a transient I/O error: injected by ORDERCAST_FAULTS")
    if kind.startswith("memory"):
        _exhaust_memory()
    if kind == "hang":
        time.sleep(HANG_SECONDS)
    if kind == "slow":
        _write_pid(drills / f"{step}-{region}.pid")
        time.sleep(SLOW_SECONDS)
        return
    raise InjectedFault(f"{step} failed for region '{region}': injected by ORDERCAST_FAULTS")


def _exhaust_memory() -> None:
    """Grow by 64 MiB every 20 ms (touching every page) until the worker's nanny kills the
    process; without a memory limit (serial runs), give up with MemoryError at 16 GiB."""
    held = []
    while len(held) * _MEMORY_CHUNK < _MEMORY_CAP:
        chunk = bytearray(_MEMORY_CHUNK)
        chunk[::4096] = b"\1" * (len(chunk) // 4096)
        held.append(chunk)
        time.sleep(0.02)
    raise MemoryError("memory drill reached 16 GiB without being stopped by a worker memory limit")


def _write_pid(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(str(os.getpid()))
    temporary.replace(path)
