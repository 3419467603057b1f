"""Open-source peers scored on exactly the held-out windows of an ordercast backtest.

    python bench/accuracy_peers.py --data DIR --backtest OUT [--holdout 12] [--out peers.json]

A window is (region, cutoff) for each of the last `--holdout` cutoffs in OUT/predictions.parquet:
train on orders before the cutoff, predict the slots ordercast predicted. Peers:
- Nixtla statsforecast: SeasonalNaive (one-week season) and MSTL (daily and weekly seasons,
  trained on the last 8 weeks before each cutoff to keep its run time sane).
- Nixtla mlforecast: one global XGBoost over all regions with lags of 3 to 6 weeks (at least the
  horizon, so no prediction feeds on another) and hour, day-of-week and slot-of-day features.
Peers see the series in UTC and no weather, events, promotions or holidays. Needs the optional
extra: pip install -e '.[bench]'.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

SLOTS_PER_DAY = 48
WEEK = 7 * SLOTS_PER_DAY
MSTL_WEEKS = 8


def load(data: Path, backtest: Path, holdout: int) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.Timestamp]]:
    orders = pd.read_csv(data / "orders.csv")
    orders = pd.DataFrame({"unique_id": orders["region"],
                           "ds": pd.to_datetime(orders["ts"], utc=True, format="ISO8601").dt.tz_localize(None),
                           "y": orders["orders"].astype("float64")}).sort_values(["unique_id", "ds"])
    predictions = pd.read_parquet(backtest / "predictions.parquet")
    cutoffs = sorted(predictions["cutoff"].unique())[-holdout:]
    windows = predictions.loc[predictions["cutoff"].isin(cutoffs) & (predictions["model"] == "seasonal_naive"),
                              ["region", "ts", "cutoff", "actual"]]
    windows = windows.assign(ds=windows["ts"].dt.tz_convert("UTC").dt.tz_localize(None),
                             cutoff=windows["cutoff"].dt.tz_convert("UTC").dt.tz_localize(None))
    return orders, windows.rename(columns={"region": "unique_id"}), [c.tz_convert("UTC").tz_localize(None) for c in
                                                                      map(pd.Timestamp, cutoffs)]


def statsforecast_peers(orders: pd.DataFrame, windows: pd.DataFrame, cutoffs, horizon: int) -> dict[str, pd.Series]:
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, SeasonalNaive

    results: dict[str, list[pd.DataFrame]] = {"statsforecast SeasonalNaive": [], "statsforecast MSTL": []}
    for cutoff in cutoffs:
        train = orders.loc[orders["ds"] < cutoff]
        regions = windows.loc[windows["cutoff"] == cutoff, "unique_id"].unique()
        train = train.loc[train["unique_id"].isin(regions)]
        naive = StatsForecast(models=[SeasonalNaive(season_length=WEEK)], freq="30min", n_jobs=1)
        results["statsforecast SeasonalNaive"].append(
            naive.forecast(df=train, h=horizon).rename(columns={"SeasonalNaive": "forecast"}).assign(cutoff=cutoff))
        recent = train.loc[train["ds"] >= cutoff - pd.Timedelta(weeks=MSTL_WEEKS)]
        mstl = StatsForecast(models=[MSTL(season_length=[SLOTS_PER_DAY, WEEK])], freq="30min", n_jobs=1)
        results["statsforecast MSTL"].append(
            mstl.forecast(df=recent, h=horizon).rename(columns={"MSTL": "forecast"}).assign(cutoff=cutoff))
    return {name: pd.concat(frames) for name, frames in results.items()}


def slot_of_day(dates: pd.DatetimeIndex) -> np.ndarray:
    return dates.hour * 2 + dates.minute // 30


def mlforecast_peer(orders: pd.DataFrame, windows: pd.DataFrame, cutoffs, horizon: int) -> dict[str, pd.DataFrame]:
    import xgboost
    from mlforecast import MLForecast

    lags = [3 * WEEK, 4 * WEEK, 5 * WEEK, 6 * WEEK]
    frames = []
    for cutoff in cutoffs:
        train = orders.loc[orders["ds"] < cutoff]
        model = MLForecast(
            models={"xgboost": xgboost.XGBRegressor(n_estimators=300, max_depth=6, learning_rate=0.05,
                                                    objective="count:poisson", n_jobs=os.cpu_count())},
            freq="30min", lags=lags, date_features=["hour", "dayofweek", slot_of_day])
        model.fit(train, static_features=[])
        frames.append(model.predict(h=horizon).rename(columns={"xgboost": "forecast"}).assign(cutoff=cutoff))
    return {"mlforecast XGBoost (lags 3-6 weeks)": pd.concat(frames)}


def score(forecasts: pd.DataFrame, windows: pd.DataFrame) -> tuple[float, int]:
    joined = windows.merge(forecasts[["unique_id", "ds", "cutoff", "forecast"]], on=["unique_id", "ds", "cutoff"],
                           how="left")
    joined["forecast"] = joined["forecast"].clip(lower=0).fillna(0.0)
    return float(np.abs(joined["forecast"] - joined["actual"]).sum() / joined["actual"].sum()), len(joined)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="data folder (orders.csv)")
    parser.add_argument("--backtest", type=Path, required=True, help="ordercast backtest output folder")
    parser.add_argument("--holdout", type=int, default=12, help="last cutoffs to score (default 12)")
    parser.add_argument("--horizon-days", type=int, default=21)
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Found null values")  # mlforecast: lags before a series starts
    print(f"command: {' '.join(sys.argv)}\nmachine: {platform.platform()}, {os.cpu_count()} cores")
    orders, windows, cutoffs = load(args.data, args.backtest, args.holdout)
    horizon = args.horizon_days * SLOTS_PER_DAY
    results = {}
    for peer in (statsforecast_peers, mlforecast_peer):
        started = time.perf_counter()
        try:
            forecasts = peer(orders, windows, cutoffs, horizon)
        except ImportError as error:
            print(f"skipped {peer.__name__}: {error}; pip install -e '.[bench]'")
            continue
        seconds = time.perf_counter() - started
        for name, frame in forecasts.items():
            wape, rows = score(frame, windows)
            results[name] = {"wape": wape, "rows": rows, "seconds": round(seconds / len(forecasts), 1)}
            print(f"{name:<40} WAPE {wape:.3f}  ({rows} slots, {seconds / len(forecasts):.0f} s)")
    if args.out:
        args.out.write_text(json.dumps({"windows": len(cutoffs), "models": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
