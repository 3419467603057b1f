"""The pooled candidate in a real forecast run: trained once for the run as its own task run
(`train-pooled`), stored once, read by each region that chose it; a retry of the region that
failed finds `train-pooled` Cached and uses the same stored model."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd

from forecasting.model_store import POOLED_GROUP
from forecasting.models.pooled import shared_source
from forecasting.selection_store import save_selection
from tests.helpers import prefect_records, read_run, run_cli, table_args, task_runs_since

AS_OF = "2026-10-19T00:00:00+00:00"
POOLING = ("berlin-mitte", "london-soho")


def _home_where_regions_chose_pooled(tmp_path) -> dict[str, str]:
    """A home whose selections put `POOLING` on the pooled model, as a backtest would."""
    home = tmp_path / "home"
    for region in POOLING:
        save_selection(home / "selections", {
            "region": region, "model": "pooled", "wape": 0.3, "selection_wape": 0.3, "scores": {},
            "backtest_run_id": "bt-1", "slot": "30min", "horizon_days": 7, "calibration": None,
            "created_at": "2026-10-18T00:00:00+00:00"})
    return {"ORDERCAST_HOME": str(home)}


def test_the_pooled_model_trains_once_and_a_retried_region_reuses_it(small_demo_dir, prefect_server, tmp_path):
    env = _home_where_regions_chose_pooled(tmp_path)
    home = tmp_path / "home"
    out = tmp_path / "out"
    first = run_cli("forecast", *table_args(small_demo_dir), "--horizon-days", "7", "--as-of", AS_OF,
                    "--out", str(out), env={**env, "ORDERCAST_FAULTS": "train:berlin-mitte"})
    assert first.returncode == 2, first.stderr[-3000:]
    failed_run = read_run(out)["run_id"]
    _, task_runs, _ = prefect_records(prefect_server.api_url, failed_run,
                                      ["train-pooled", "train-berlin-mitte", "predict-london-soho"])
    assert [task.name for task in task_runs].count("train-pooled") == 1

    retried_at = datetime.now(timezone.utc)
    retry = run_cli("retry", failed_run, env=env)
    assert retry.returncode == 0, retry.stderr[-3000:]
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    used = forecasts.groupby("region").agg(model=("model", "first"), fallback=("fallback", "any"))
    assert used["model"].to_dict() == {"berlin-mitte": "pooled", "london-soho": "pooled", "nyc-midtown": "ensemble"}
    assert not used["fallback"].any()
    again = task_runs_since(prefect_server.api_url, failed_run, retried_at, 9)
    assert again["train-pooled"] == "Cached" and again["train-london-soho"] == "Cached"
    assert again["train-berlin-mitte"] == "Completed"

    pooled = [folder for folder in (home / "models" / POOLED_GROUP).iterdir()]
    assert len(pooled) == 1  # trained once, though its regions trained in two runs of the flow
    assert set(json.loads((pooled[0] / "meta.json").read_text())["regions"]) == {*POOLING, "nyc-midtown"}
    for region in POOLING:
        shares = list((home / "models" / region).glob("*--pooled--*"))
        assert [shared_source(share) for share in shares] == [str(pooled[0])]


def test_a_failed_pooled_model_leaves_its_regions_on_the_fallback_and_names_its_task_run(small_demo_dir,
                                                                                        prefect_server, tmp_path):
    env = _home_where_regions_chose_pooled(tmp_path)
    out = tmp_path / "out"
    result = run_cli("forecast", *table_args(small_demo_dir), "--horizon-days", "7", "--as-of", AS_OF,
                     "--out", str(out), env={**env, "ORDERCAST_FAULTS": "train:_pooled"})
    assert result.returncode == 2, result.stderr[-3000:]
    run = read_run(out)
    _, task_runs, _ = prefect_records(prefect_server.api_url, run["run_id"], ["train-pooled"])
    pooled_run = next(str(task.id) for task in task_runs if task.name == "train-pooled")
    statuses = {status["region"]: status for status in run["regions"]}
    for region in POOLING:
        assert statuses[region]["status"] == "fallback" and statuses[region]["task_run_id"] == pooled_run
        assert statuses[region]["error"].startswith("train: pooled model: InjectedFault")
        assert f"{region} (fallback): train: pooled model: InjectedFault" in result.stderr
    assert statuses["nyc-midtown"]["status"] == "ok"
    forecasts = pd.read_parquet(out / "forecasts.parquet").groupby("region")["model"].first()
    assert forecasts.to_dict() == {"berlin-mitte": "seasonal_naive", "london-soho": "seasonal_naive",
                                   "nyc-midtown": "ensemble"}


def test_a_backtest_whose_pooled_model_fails_goes_on_without_it_and_says_so(small_demo_dir, prefect_server, tmp_path):
    out = tmp_path / "bt"
    result = run_cli("backtest", *table_args(small_demo_dir), "--cutoffs", "3", "--horizon-days", "7",
                     "--models", "pooled,weekly_profile", "--out", str(out),
                     env={"ORDERCAST_HOME": str(tmp_path / "home"), "ORDERCAST_FAULTS": "backtest:_pooled"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The pooled candidate failed, so the regions are backtested without it: InjectedFault" in result.stderr
    assert set(pd.read_parquet(out / "predictions.parquet")["model"]) == {"weekly_profile"}
    for region in read_run(out)["regions"]:
        assert any(note.startswith("left out: pooled") for note in region["notes"])
