#!/usr/bin/env python3
"""Set up ordercast in a local virtual environment and run the demo or the test suite.

    python3 dev.py demo   # create .venv, install ordercast, run `ordercast demo`
    python3 dev.py test   # create .venv, install ordercast with test extras, run pytest

Needs only Python 3.11+. Extra arguments go to `ordercast demo` or to pytest.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".ordercast-installed"


def ensure_environment() -> None:
    """Create .venv and (re)install the project whenever pyproject.toml changes."""
    if sys.version_info < (3, 11):
        sys.exit(f"ordercast needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"Creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    print("Installing ordercast and its dependencies (first run takes a few minutes)", flush=True)
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[test,postgres]"], check=True)
    STAMP.write_text(wanted)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test"):
        print(__doc__)
        return 2
    command, extra = sys.argv[1], sys.argv[2:]
    ensure_environment()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if command == "demo":
        return subprocess.call([str(BIN / "ordercast"), "demo", *extra], env=env)
    return subprocess.call([str(BIN / "python"), "-m", "pytest", *extra], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
