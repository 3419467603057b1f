"""`--as-of per-region`: extracts cut at each region's local midnight, so their data end at
different UTC instants; each region is forecast from its own end, and `retry` and `--no-train`
keep those origins (`--no-train` predicts with the stored models: the same numbers again)."""
from __future__ import annotations

import shutil

import pandas as pd

from tests.helpers import read_run, run_cli, table_args

CUT_DAY = "2026-10-19"  # local midnight of this day ends each region's orders


def test_each_region_is_forecast_from_the_end_of_its_own_orders(small_demo_dir, prefect_server, tmp_path):
    data, cuts = _cut_at_local_midnight(small_demo_dir, tmp_path / "data")
    assert len(set(cuts.values())) == 3  # Berlin, London and New York midnights: three UTC instants

    out = tmp_path / "out"
    first = run_cli("forecast", *table_args(data), "--horizon-days", "7", "--as-of", "per-region",
                    "--out", str(out), env={"ORDERCAST_FAULTS": "train:berlin-mitte"})
    assert first.returncode == 2, first.stderr[-3000:]
    assert "ending before as_of" not in first.stderr
    failed_run = read_run(out)["run_id"]
    _assert_origins(out, cuts)
    record = read_run(out)
    assert record["configuration"]["as_of"] == "per-region"
    assert {s["region"]: pd.Timestamp(s["as_of"]) for s in record["regions"]} == cuts

    retry = run_cli("retry", failed_run)
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert "troubled regions: berlin-mitte" in retry.stderr
    after = pd.read_parquet(out / "forecasts.parquet")
    assert not after["fallback"].any() and (after["run_id"] == failed_run).all()
    assert read_run(out)["configuration"]["as_of"] == "per-region"
    _assert_origins(out, cuts)

    stored = run_cli("forecast", *table_args(data), "--horizon-days", "7", "--as-of", "per-region", "--no-train",
                     "--out", str(tmp_path / "stored"))
    assert stored.returncode == 0, stored.stderr[-3000:]
    _assert_origins(tmp_path / "stored", cuts)
    reused = pd.read_parquet(tmp_path / "stored" / "forecasts.parquet")
    pd.testing.assert_frame_equal(after.drop(columns=["run_id", "created_at"]),
                                  reused.drop(columns=["run_id", "created_at"]))  # the very models of the retried run


def _cut_at_local_midnight(source, folder):
    """A copy of the demo tables whose orders end at each region's local midnight of CUT_DAY;
    returns the folder and each region's end (UTC)."""
    shutil.copytree(source, folder)
    zones = pd.read_csv(folder / "regions.csv").set_index("region")["timezone"]
    orders = pd.read_csv(folder / "orders.csv")
    starts = pd.to_datetime(orders["ts"], utc=True)
    cuts = {region: pd.Timestamp(CUT_DAY).tz_localize(zone).tz_convert("UTC") for region, zone in zones.items()}
    orders.loc[(starts < orders["region"].map(cuts)).to_numpy()].to_csv(folder / "orders.csv", index=False)
    return folder, cuts


def _assert_origins(out, cuts):
    forecasts = pd.read_parquet(out / "forecasts.parquet")
    first = forecasts.groupby("region").agg(start=("ts", "min"), as_of=("as_of", "first"), rows=("ts", "size"))
    assert first["start"].to_dict() == cuts and first["as_of"].to_dict() == cuts
    assert (first["rows"] == 7 * 48).all()
