"""A forecast's outputs commit as one unit: a crash at any point of the write leaves OUT and the
database holding the previous complete run or the new complete run, never a mix."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from forecasting.demo_data import csv_paths
from forecasting.errors import InjectedFault
from forecasting.outputs import STAGING, recover_outputs
from forecasting.pipeline import RunOptions
from forecasting.storage import read_table_db
from tasks.collect import write_outputs
from tasks.load import load_inputs
from tasks.region import fallback

AS_OF = "2026-10-12T00:00:00+00:00"
OPTIONS = RunOptions(as_of=AS_OF, horizon_days=7)


@pytest.fixture()
def predictions(small_demo_dir, tmp_path):
    """Seasonal-naive predictions of two regions (fast, and enough to write)."""
    manifest = load_inputs.fn(csv_paths(small_demo_dir), OPTIONS, "snapshot", str(tmp_path / "cache"))
    entries = [entry for entry in manifest["regions"] if entry["region"] in ("berlin-mitte", "london-soho")]
    return [fallback.fn(entry["region"], entry, OPTIONS, str(tmp_path / "models"), AS_OF, str(tmp_path / "run"),
                        "for the test") for entry in entries]


def _state(out, db_url) -> tuple[str, set[str], set[str]]:
    """The run id of run.json, the run ids in forecasts.parquet and in the database."""
    record = json.loads((out / "run.json").read_text())
    return (record["run_id"], set(pd.read_parquet(out / "forecasts.parquet")["run_id"]),
            set(read_table_db(db_url)["run_id"]))


@pytest.mark.parametrize("point, expected_after_recovery", [
    ("staged", "run-1"),  # nothing committed: the previous run stays
    ("committed", "run-2"),  # the database has the new run: recovery publishes its files
    ("published-parquet", "run-2"),  # half published: recovery finishes it
])
def test_a_crash_at_each_write_step_leaves_one_complete_run(predictions, tmp_path, monkeypatch, point,
                                                              expected_after_recovery):
    out, db_url = tmp_path / "out", f"sqlite:///{tmp_path}/out/forecasts.sqlite"
    write_outputs.fn(predictions, str(out), db_url, "run-1", {"flow": "forecast", "configuration": {"db": db_url}})
    assert _state(out, db_url) == ("run-1", {"run-1"}, {"run-1"}) and not (out / STAGING / "run-1").exists()

    monkeypatch.setenv("ORDERCAST_FAULTS", f"write:{point}")
    with pytest.raises(InjectedFault):
        write_outputs.fn(predictions, str(out), db_url, "run-2", {"flow": "forecast", "configuration": {"db": db_url}})
    monkeypatch.delenv("ORDERCAST_FAULTS")
    assert (out / STAGING / "run-2").is_dir()  # what the crash left behind

    published = recover_outputs(out)
    assert published == ([] if expected_after_recovery == "run-1" else ["run-2"])
    expected = expected_after_recovery
    assert _state(out, db_url) == (expected, {expected}, {expected})
    assert not (out / STAGING / "run-2").exists()
    plots = sorted(path.name for path in (out / "plots").iterdir())
    assert plots == ["berlin-mitte.png", "london-soho.png"]


def test_the_next_write_completes_a_crashed_commit_first(predictions, tmp_path, monkeypatch):
    out, db_url = tmp_path / "out", f"sqlite:///{tmp_path}/out/forecasts.sqlite"
    monkeypatch.setenv("ORDERCAST_FAULTS", "write:committed")
    with pytest.raises(InjectedFault):
        write_outputs.fn(predictions, str(out), db_url, "run-1", {"flow": "forecast", "configuration": {"db": db_url}})
    monkeypatch.delenv("ORDERCAST_FAULTS")
    assert not (out / "run.json").exists()
    write_outputs.fn(predictions[:1], str(out), db_url, "run-2", {"flow": "forecast", "configuration": {"db": db_url}})
    assert _state(out, db_url) == ("run-2", {"run-2"}, {"run-1", "run-2"})  # run-1 was published, then replaced
    assert not any((out / STAGING).iterdir())


def test_a_retry_that_crashes_before_its_commit_leaves_the_first_attempt(predictions, tmp_path, monkeypatch):
    """A retry runs under the same run id, whose rows the database already holds from the first
    attempt: its stage is told apart by its creation time, so it is discarded, not published."""
    out, db_url = tmp_path / "out", f"sqlite:///{tmp_path}/out/forecasts.sqlite"
    info = {"flow": "forecast", "configuration": {"db": db_url}}
    write_outputs.fn(predictions, str(out), db_url, "run-1", info)
    first = json.loads((out / "run.json").read_text())["created_at"]
    monkeypatch.setenv("ORDERCAST_FAULTS", "write:staged")
    with pytest.raises(InjectedFault):
        write_outputs.fn(predictions, str(out), db_url, "run-1", info)
    monkeypatch.delenv("ORDERCAST_FAULTS")
    assert recover_outputs(out) == [] and not (out / STAGING / "run-1").exists()
    assert json.loads((out / "run.json").read_text())["created_at"] == first

    monkeypatch.setenv("ORDERCAST_FAULTS", "write:committed")  # committed this time: recovery publishes it
    with pytest.raises(InjectedFault):
        write_outputs.fn(predictions, str(out), db_url, "run-1", info)
    monkeypatch.delenv("ORDERCAST_FAULTS")
    assert recover_outputs(out) == ["run-1"]
    second = json.loads((out / "run.json").read_text())["created_at"]
    assert second > first and _state(out, db_url) == ("run-1", {"run-1"}, {"run-1"})
    assert len(read_table_db(db_url)) == len(pd.read_parquet(out / "forecasts.parquet"))
