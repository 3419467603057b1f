"""One writer per output folder and SQLite database: the second gets a clear message."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from forecasting.errors import OutputLocked
from forecasting.locks import exclusive_outputs
from tests.helpers import run_cli, table_args


@pytest.fixture()
def held_lock(tmp_path):
    """Another process holding the locks of tmp_path/out and its default database."""
    out, ready = tmp_path / "out", tmp_path / "ready"
    script = textwrap.dedent(f"""
        import pathlib, time
        from forecasting.locks import exclusive_outputs
        with exclusive_outputs(pathlib.Path({str(out)!r}), "sqlite:///{out}/forecasts.sqlite", "run-A"):
            pathlib.Path({str(ready)!r}).write_text("held")
            time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert holder.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    yield out
    holder.kill()
    holder.wait()


def test_a_second_writer_is_told_who_holds_the_output(held_lock):
    with pytest.raises(OutputLocked, match=r"output folder .*/out is being written by another run \(flow run run-A, "
                                           r"pid \d+ on .*, since 20"):
        with exclusive_outputs(held_lock, "sqlite:////elsewhere/forecasts.sqlite", "run-B"):
            pass


def test_a_second_writer_of_the_same_sqlite_database_is_stopped_and_pointed_to_postgresql(held_lock, tmp_path):
    with pytest.raises(OutputLocked, match="SQLite database .*forecasts.sqlite is being written by another run .*"
                                           "at the same time need PostgreSQL"):
        with exclusive_outputs(tmp_path / "other-out", f"sqlite:///{held_lock}/forecasts.sqlite", "run-B"):
            pass


def test_the_lock_is_free_again_after_the_run(tmp_path):
    for run in ("run-A", "run-B"):
        with exclusive_outputs(tmp_path / "out", f"sqlite:///{tmp_path}/f.sqlite", run):
            pass


def test_a_forecast_into_a_locked_folder_stops_with_exit_1(held_lock, small_demo_dir, prefect_server):
    before = sorted(p.name for p in held_lock.iterdir())
    result = run_cli("forecast", *table_args(small_demo_dir), "--out", str(held_lock), "--cluster", "serial")
    assert result.returncode == 1
    assert "is being written by another run (flow run run-A" in result.stderr
    assert sorted(p.name for p in held_lock.iterdir()) == before  # nothing written


def test_a_backtest_into_a_locked_folder_stops_with_exit_1(held_lock, small_demo_dir, prefect_server):
    before = sorted(p.name for p in held_lock.iterdir())
    result = run_cli("backtest", *table_args(small_demo_dir), "--out", str(held_lock), "--cluster", "serial",
                     "--cutoffs", "2", "--horizon-days", "7")
    assert result.returncode == 1
    assert "is being written by another run (flow run run-A" in result.stderr
    assert sorted(p.name for p in held_lock.iterdir()) == before  # nothing written
