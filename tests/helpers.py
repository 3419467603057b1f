"""Helpers shared by tests: running the real `ordercast` command and reading its outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def table_args(folder: Path) -> list[str]:
    """CLI options for every table of a demo data folder."""
    args = []
    for name in ("orders", "weather", "events", "promotions", "regions"):
        args += [f"--{name}", str(folder / f"{name}.csv")]
    return args


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed `ordercast` console script and capture its output."""
    command = [str(Path(sys.executable).with_name("ordercast")), *args]
    return subprocess.run(command, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def read_run(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())
