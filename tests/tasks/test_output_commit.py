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
    retry_info = {"flow": "forecast", "configuration": {"db": db_url}, "retry_of": "run-1",
                  "regions": [{"region": "berlin-mitte", "status": "ok"}]}
    write_outputs.fn(predictions[:1], str(out), db_url, "run-2", retry_info, replace_regions_only=True)
    record = json.loads((out / "run.json").read_text())
    assert record["run_id"] == "run-2" and record["lineage"] == ["run-1", "run-2"]
    by_region = pd.read_parquet(out / "forecasts.parquet").groupby("region")["run_id"].first().to_dict()
    assert by_region == {"berlin-mitte": "run-2", "london-soho": "run-1"}  # run-1 was published, then merged into
