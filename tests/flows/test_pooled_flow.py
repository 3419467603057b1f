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


def test_the_pooled_model_trains_once_and_a_retried_region_reuses_it(small_demo_dir, prefect_server, tmp_path):
    home = tmp_path / "home"
    for region in POOLING:  # as a backtest with `--models ...,pooled` would have chosen
        save_selection(home / "selections", {
            "region": region, "model": "pooled", "wape": 0.3, "selection_wape": 0.3, "scores": {},
            "backtest_run_id": "bt-1", "slot": "30min", "horizon_days": 7, "calibration": None,
            "created_at": "2026-10-18T00:00:00+00:00"})
    env = {"ORDERCAST_HOME": str(home)}
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
