"""Run a function in a child process that can really be stopped.

A thread cannot interrupt native code (an XGBoost fit), so a time limit on a region's
training is enforced by running it in a child Python process and killing that process when
the limit passes. Arguments, result and any exception travel as pickles through temporary files.
"""
from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from forecasting.errors import RegionTimeout


def call_with_time_limit(function: Callable[..., Any], seconds: float, what: str, **kwargs: Any) -> Any:
    """`function(**kwargs)` in a child process, killed after `seconds` (then `RegionTimeout`)."""
    with tempfile.TemporaryDirectory(prefix="ordercast-isolated-") as folder:
        request, response = Path(folder) / "request.pickle", Path(folder) / "response.pickle"
        request.write_bytes(pickle.dumps((function.__module__, function.__qualname__, kwargs)))
        child = subprocess.Popen([sys.executable, "-m", "forecasting.isolation", str(request), str(response)])
        try:
            child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise RegionTimeout(f"{what} ran past the time limit of {seconds:g} s and was stopped") from None
        if not response.exists():
            raise ChildProcessError(f"{what}: its process ended with exit code {child.returncode} and no result")
        ok, value = pickle.loads(response.read_bytes())
    if ok:
        return value
    raise value


def _serve(request: Path, response: Path) -> None:
    module, name, kwargs = pickle.loads(request.read_bytes())
    function = getattr(importlib.import_module(module), name)
    try:
        outcome = (True, function(**kwargs))
    except Exception as error:  # handed to the parent, which re-raises it
        outcome = (False, error)
    response.write_bytes(pickle.dumps(outcome))


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), Path(sys.argv[2]))
