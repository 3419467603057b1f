"""One writer at a time per output folder and per SQLite database.

A run holds an exclusive lock on a hidden file in OUT (`.ordercast.lock`, and `.<name>.lock`
next to a SQLite database) from its start to its end; a second run aimed at the same place stops
at once with a message naming the holder. The lock files stay (removing a lock file another
process may be opening would break the exclusion); they are empty. Server databases
(PostgreSQL) rely on their transactions instead.
"""
from __future__ import annotations

import json
import os
import socket
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
from filelock import FileLock, Timeout

from forecasting.errors import OutputLocked

LOCK_NAME = ".ordercast.lock"


@contextmanager
def exclusive_outputs(out_dir: Path, db_url: str, run_id: str) -> Iterator[None]:
    """Hold the locks of `out_dir` and of a SQLite `db_url` for the duration of the block."""
    targets = {Path(out_dir) / LOCK_NAME: (f"output folder {out_dir}", "choose another --out")}
    if db_url.startswith("sqlite:///"):
        database = Path(db_url.removeprefix("sqlite:///"))
        targets[database.with_name(f".{database.name}.lock")] = (
            f"SQLite database {database}",
            "runs that write one database at the same time need PostgreSQL (docs/shared.md)")
    with ExitStack() as stack:
        for path, (what, instead) in targets.items():
            stack.enter_context(_locked(path, what, instead, run_id))
        yield


@contextmanager
def _locked(path: Path, what: str, instead: str, run_id: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = path.with_name(path.name + ".owner")
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLocked(f"{what} is being written by another run ({_describe(owner)}); wait for it to finish, "
                           f"or {instead}") from None
    try:
        owner.write_text(json.dumps({"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                                     "since": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")}))
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def _describe(owner: Path) -> str:
    try:
        info = json.loads(owner.read_text())
    except (OSError, ValueError):
        return "holder unknown"
    return f"flow run {info['run_id']}, pid {info['pid']} on {info['host']}, since {info['since']}"
