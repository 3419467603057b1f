"""Open-source peers on the windows of the accuracy benchmark, for any data set in the data contract.

    python bench/accuracy_peers.py --data DIR --slot 30min --cutoffs T1,T2,... [--horizon-days 14] [--out peers.json]
    python bench/accuracy_peers.py --data DIR --slot 30min --cutoffs T --tune   # hyper-parameters on one window

A window is a cutoff (UTC): every peer trains on the orders strictly before it and predicts
`horizon-days` days of slots from it (with `1D` slots: local days from the first local midnight at
or after the cutoff), scored against the observed orders. Slots missing inside a series count as
zero orders (ordercast's --missing-as-zero). Peers:
- statsforecast SeasonalNaive (one-week season) and MSTL (daily and weekly seasons, AutoETS trend,
  trained on the last 12 weeks at sub-daily slots, the last 3 years at daily ones); on daily sets
  also AutoETS and AutoTheta (season 7, last 3 years). All with 80% intervals (P10/P90).
- mlforecast LightGBM and XGBoost, one global model per window over all regions: lags of 1 slot,
  1 day and 1 week (daily sets: 1, 7 and 14 days), the mean of the last day (week) and of the same
  slot in the last 4 weeks, local slot of day, day of week, month and a holiday flag of the
  region's country; recursive over the horizon. "+ weather" adds the weather columns, their
  future values being the observed weather (as ordercast gets them in a backtest).
Hyper-parameters were chosen with --tune on one window 14 days before the first scored one (see
MODEL_PARAMS). Needs the optional extra and lightgbm: pip install -e '.[bench]' lightgbm.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SLOTS_PER_DAY = {"30min": 48, "1h": 24, "1D": 1}
FREQ = {"30min": "30min", "1h": "h", "1D": "D"}
STEP = {slot: pd.Timedelta(days=1) / per_day for slot, per_day in SLOTS_PER_DAY.items()}
MSTL_WEEKS = 12  # MSTL's training window at sub-daily slots
STATS_DAILY_WEEKS = 156  # statsforecast's training window at daily slots (3 years)
QUANTILES = (0.1, 0.5, 0.9)
# Chosen with --tune on the window 14 days before the first scored one, on the demo city (3 regions,
# 1 year) and hyndsight_1D. WAPE, city / hyndsight: LightGBM poisson 31 leaves 0.375 / 0.196,
# poisson 63 leaves 0.375 / 0.196, l2 63 leaves 0.381 / 0.187; XGBoost poisson depth 6 0.374 / 0.177,
# poisson depth 8 0.376 / 0.147, squared error depth 8 0.383 / 0.172. Poisson is best or within
# 0.01 everywhere; the larger trees cost nothing on the sub-daily set and help on the daily one.
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "LightGBM": {"n_estimators": 500, "learning_rate": 0.05, "num_leaves": 63, "objective": "poisson",
                 "min_child_samples": 20, "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8},
    "XGBoost": {"n_estimators": 500, "learning_rate": 0.05, "max_depth": 8, "objective": "count:poisson",
                "subsample": 0.8, "colsample_bytree": 0.8, "tree_method": "hist"},
}
TUNING_GRID: dict[str, list[dict[str, Any]]] = {
    "LightGBM": [{"objective": "poisson", "num_leaves": 31}, {"objective": "poisson", "num_leaves": 63},
                 {"objective": "l2", "num_leaves": 63}],
    "XGBoost": [{"objective": "count:poisson", "max_depth": 6}, {"objective": "count:poisson", "max_depth": 8},
                {"objective": "reg:squarederror", "max_depth": 8}],
}
DATE_FEATURES = ["slot_of_day", "dayofweek", "month", "holiday"]


@dataclass(frozen=True)
class Panel:
    """A data set as regular series: `unique_id`, `ds` (naive UTC, or the local date for `1D`),
    `y`, the local date features and the weather columns, for every slot from a region's first
    order through the end of its observed orders and of its weather."""

    frame: pd.DataFrame
    slot: str
    timezones: dict[str, str]
    weather: list[str]

    @property
    def per_day(self) -> int:
        return SLOTS_PER_DAY[self.slot]

    @property
    def freq(self) -> str:
        return FREQ[self.slot]


def read_table(data: Path, name: str) -> pd.DataFrame | None:
    """A contract table from DIR/name.csv or DIR/name.parquet, or None when absent."""
    if (data / f"{name}.parquet").exists():
        return pd.read_parquet(data / f"{name}.parquet")
    if (data / f"{name}.csv").exists():
        return pd.read_csv(data / f"{name}.csv", keep_default_na=False, na_values=[""])
    return None


def _to_ds(ts: pd.Series, timezones: pd.Series, slot: str) -> pd.Series:
    """Contract timestamps as series keys: naive UTC, or the local calendar date for `1D`."""
    utc = pd.to_datetime(ts, utc=True, format="ISO8601")
    if slot != "1D":
        return utc.dt.tz_localize(None)
    out = pd.Series(pd.NaT, index=ts.index, dtype="datetime64[ns]")
    for tz in timezones.unique():
        mask = timezones == tz
        out[mask] = utc[mask].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    return out


def to_utc(ds: pd.Series, regions: pd.Series, panel: Panel) -> pd.Series:
    """Series keys back to UTC slot starts (a local day starts at its local midnight)."""
    if panel.slot != "1D":
        return ds.dt.tz_localize("UTC")
    out = pd.Series(pd.NaT, index=ds.index, dtype="datetime64[ns, UTC]")
    tzs = regions.map(panel.timezones)
    for tz in tzs.unique():
        mask = tzs == tz
        out[mask] = ds[mask].dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").dt.tz_convert("UTC")
    return out


def load_panel(data: Path, slot: str) -> Panel:
    """Orders, regions and weather of a contract folder on a regular grid, with local features."""
    import holidays

    orders = read_table(data, "orders")
    if orders is None:
        raise FileNotFoundError(f"{data}: no orders table")
    regions = read_table(data, "regions")
    names = orders["region"].astype(str).unique()
    info = regions.assign(region=regions["region"].astype(str)).set_index("region") if regions is not None else None
    timezones = {r: (str(info.at[r, "timezone"]) if info is not None else "UTC") for r in names}
    countries = {r: (info.at[r, "country"] if info is not None and isinstance(info.at[r, "country"], str) else None)
                 for r in names}
    region = orders["region"].astype(str)
    frame = pd.DataFrame({"unique_id": region, "ds": _to_ds(orders["ts"], region.map(timezones), slot),
                          "y": orders["orders"].astype("float64")})
    frame = frame.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
    weather = read_table(data, "weather")
    columns: list[str] = []
    if weather is not None:
        columns = [c for c in weather.columns if c not in ("region", "ts")]
        weather = weather.assign(region=weather["region"].astype(str))
        weather = weather.assign(ds=_to_ds(weather["ts"], weather["region"].map(timezones), slot))
    parts = []
    for name, series in frame.groupby("unique_id"):
        end = series["ds"].max()
        own = None
        if weather is not None:
            own = weather.loc[weather["region"] == name, ["ds", *columns]].sort_values("ds")
            if len(own):
                end = max(end, own["ds"].max())
        grid = pd.DataFrame({"ds": pd.date_range(series["ds"].min(), end, freq=FREQ[slot])})
        part = grid.merge(series[["ds", "y"]], on="ds", how="left")
        observed = part["ds"] <= series["ds"].max()
        part.loc[observed, "y"] = part.loc[observed, "y"].fillna(0.0)
        if own is not None and len(own):
            step = own["ds"].diff().median() if len(own) > 1 else STEP[slot]
            part = pd.merge_asof(part, own.drop_duplicates("ds"), on="ds", direction="backward",
                                 tolerance=step if pd.notna(step) else None)
        part["unique_id"] = name
        parts.append(part.assign(**_local_features(part["ds"], timezones[name], countries[name], slot, holidays)))
    frame = pd.concat(parts, ignore_index=True)
    return Panel(frame, slot, timezones, columns)


def _local_features(ds: pd.Series, tz: str, country: str | None, slot: str, holidays: Any) -> dict[str, Any]:
    """Slot of day, day of week, month and holiday flag in the region's local time."""
    local = ds if slot == "1D" else ds.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    dates = local.dt.normalize()
    flags = np.zeros(len(ds), dtype="int8")
    if country:
        nation, _, subdivision = country.partition("-")  # DE-BY: Bavaria's holidays too, as ordercast reads it
        calendar = holidays.country_holidays(nation, subdiv=subdivision or None,
                                             years=range(dates.dt.year.min(), dates.dt.year.max() + 1))
        days = pd.to_datetime(sorted(calendar.keys()))
        flags = dates.isin(days).to_numpy().astype("int8")
    minutes = local.dt.hour * 60 + local.dt.minute
    return {"slot_of_day": (minutes // (1440 // SLOTS_PER_DAY[slot])).astype("int16"),
            "dayofweek": local.dt.dayofweek.astype("int8"), "month": local.dt.month.astype("int8"),
            "holiday": flags}


def split(panel: Panel, cutoff: pd.Timestamp, horizon_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows before the cutoff and each region's horizon rows (with observed actuals)."""
    frame = panel.frame
    if panel.slot == "1D":
        starts = {r: cutoff.tz_convert(tz).tz_localize(None).ceil("D") for r, tz in panel.timezones.items()}
        start = frame["unique_id"].map(starts)
    else:
        start = pd.Series(cutoff.tz_convert("UTC").tz_localize(None), index=frame.index)
    h = horizon_days * panel.per_day
    end = start + STEP[panel.slot] * h
    train = frame.loc[(frame["ds"] < start) & frame["y"].notna()]
    horizon = frame.loc[(frame["ds"] >= start) & (frame["ds"] < end)]
    counts = horizon.groupby("unique_id")["y"].count()
    complete = counts.index[counts == h]
    trained = train["unique_id"].value_counts()
    usable = complete.intersection(trained.index[trained >= 2 * 7 * panel.per_day])
    return train.loc[train["unique_id"].isin(usable)], horizon.loc[horizon["unique_id"].isin(usable)]


def statsforecast_peers(panel: Panel, train: pd.DataFrame, h: int) -> dict[str, pd.DataFrame]:
    """SeasonalNaive and MSTL (and on daily sets AutoETS and AutoTheta) with P10/P90."""
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, AutoTheta, SeasonalNaive

    week = 7 * panel.per_day
    seasons = [7] if panel.slot == "1D" else [panel.per_day, week]
    series = train[["unique_id", "ds", "y"]]
    runs: list[tuple[str, Any, pd.DataFrame]] = [("SeasonalNaive", SeasonalNaive(season_length=week), series)]
    if panel.slot == "1D":  # years of daily history add little to ETS/Theta/MSTL and cost minutes
        series = series.loc[series["ds"] >= series["ds"].max() - pd.Timedelta(weeks=STATS_DAILY_WEEKS)]
    window_start = series["ds"].max() - pd.Timedelta(weeks=MSTL_WEEKS)
    recent = series if panel.slot == "1D" else series.loc[series["ds"] >= window_start]
    runs.append(("MSTL", MSTL(season_length=seasons, trend_forecaster=AutoETS(model="ZZN")), recent))
    if panel.slot == "1D":
        runs += [("AutoETS", AutoETS(season_length=7), series), ("AutoTheta", AutoTheta(season_length=7), series)]
    out = {}
    for name, model, frame in runs:
        result = StatsForecast(models=[model], freq=panel.freq, n_jobs=1).forecast(df=frame, h=h, level=[80])
        out[f"statsforecast {name}"] = result.rename(columns={
            name: "forecast", f"{name}-lo-80": "p10", f"{name}-hi-80": "p90"})[
            ["unique_id", "ds", "forecast", "p10", "p90"]]
    return out


def _booster(name: str, params: dict[str, Any]) -> Any:
    if name == "LightGBM":
        import lightgbm

        return lightgbm.LGBMRegressor(**params, n_jobs=2, verbosity=-1, random_state=0)
    import xgboost

    return xgboost.XGBRegressor(**params, n_jobs=2, random_state=0)


def mlforecast_peer(panel: Panel, train: pd.DataFrame, horizon: pd.DataFrame, name: str, params: dict[str, Any],
                    weather: bool) -> pd.DataFrame:
    """One global booster over all regions, recursive over the horizon."""
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, SeasonalRollingMean

    day, week = (7, 7) if panel.slot == "1D" else (panel.per_day, 7 * panel.per_day)
    lags = [1, 7, 14] if panel.slot == "1D" else [1, day, week]
    exog = DATE_FEATURES + (panel.weather if weather else [])
    model = MLForecast(models={"peer": _booster(name, params)}, freq=panel.freq, lags=lags,
                       lag_transforms={1: [RollingMean(window_size=day)],
                                       week: [SeasonalRollingMean(season_length=week, window_size=4)]})
    model.fit(train[["unique_id", "ds", "y", *exog]], static_features=[])
    future = horizon[["unique_id", "ds", *exog]]
    h = horizon.groupby("unique_id").size().max()
    return model.predict(h=int(h), X_df=future).rename(columns={"peer": "forecast"})


def run_peers(panel: Panel, cutoffs: list[pd.Timestamp], horizon_days: int,
              log: Callable[[str], None] = print, params: dict[str, dict[str, Any]] | None = None,
              ) -> dict[str, pd.DataFrame]:
    """Every peer at every cutoff: name -> `region`, `ts` (UTC), `cutoff`, `forecast`[, `p10`, `p90`]."""
    params = params or MODEL_PARAMS
    pieces: dict[str, list[pd.DataFrame]] = {}
    for cutoff in cutoffs:
        train, horizon = split(panel, cutoff, horizon_days)
        h = horizon_days * panel.per_day
        started = time.perf_counter()
        results = statsforecast_peers(panel, train, h)
        log(f"  peers {cutoff.isoformat()}: statsforecast {time.perf_counter() - started:.0f} s")
        for booster, config in params.items():
            for weather in (False, True) if panel.weather else (False,):
                started = time.perf_counter()
                label = f"mlforecast {booster}" + (" + weather" if weather else "")
                results[label] = mlforecast_peer(panel, train, horizon, booster, config, weather)
                log(f"  peers {cutoff.isoformat()}: {label} {time.perf_counter() - started:.0f} s")
        for label, frame in results.items():
            keyed = frame.merge(horizon[["unique_id", "ds"]], on=["unique_id", "ds"])
            keyed = keyed.assign(region=keyed["unique_id"], ts=to_utc(keyed["ds"], keyed["unique_id"], panel),
                                 cutoff=cutoff)
            pieces.setdefault(label, []).append(keyed.drop(columns=["unique_id", "ds"]))
    return {label: pd.concat(frames, ignore_index=True) for label, frames in pieces.items()}


def actuals(panel: Panel, cutoffs: list[pd.Timestamp], horizon_days: int) -> pd.DataFrame:
    """Observed orders of every window: `region`, `ts` (UTC), `cutoff`, `actual`."""
    frames = []
    for cutoff in cutoffs:
        _, horizon = split(panel, cutoff, horizon_days)
        frames.append(pd.DataFrame({"region": horizon["unique_id"].to_numpy(),
                                    "ts": to_utc(horizon["ds"], horizon["unique_id"], panel).to_numpy(),
                                    "cutoff": cutoff, "actual": horizon["y"].to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def score(forecasts: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float | int]:
    """WAPE pooled over windows and regions; with P10/P90, their coverage and the scaled pinball
    loss (mean over q = 0.1, 0.5, 0.9 of sum of pinball losses / sum of orders; the point forecast
    stands in for P50 where there is none). Slots a model did not predict count as 0 orders."""
    keys = ["region", "ts", "cutoff"]
    truth = truth.assign(ts=pd.to_datetime(truth["ts"], utc=True), cutoff=pd.to_datetime(truth["cutoff"], utc=True))
    forecasts = forecasts.drop(columns=["actual"], errors="ignore").assign(
        ts=pd.to_datetime(forecasts["ts"], utc=True), cutoff=pd.to_datetime(forecasts["cutoff"], utc=True))
    joined = truth.merge(forecasts, on=keys, how="left")
    missing = int(joined["forecast"].isna().sum())
    actual = joined["actual"].to_numpy("float64")
    point = joined["forecast"].fillna(0.0).clip(lower=0).to_numpy("float64")
    total = actual.sum()
    result: dict[str, float | int] = {"wape": float(np.abs(point - actual).sum() / total), "slots": len(joined),
                                      "missing": missing}
    if "p10" in joined and "p90" in joined and joined["p10"].notna().any():
        low = joined["p10"].fillna(0.0).clip(lower=0).to_numpy("float64")
        high = joined["p90"].fillna(0.0).clip(lower=0).to_numpy("float64")
        mid = joined["p50"].fillna(0.0).to_numpy("float64") if "p50" in joined else point
        result["coverage"] = float(np.mean((actual >= low) & (actual <= high)))
        losses = [np.maximum(q * (actual - f), (q - 1) * (actual - f)).sum()
                  for q, f in zip(QUANTILES, (low, mid, high))]
        result["pinball"] = float(np.mean(losses) / total)
    return result


def tune(panel: Panel, cutoff: pd.Timestamp, horizon_days: int) -> dict[str, float]:
    """WAPE of each configuration of TUNING_GRID at one validation cutoff, without weather."""
    train, horizon = split(panel, cutoff, horizon_days)
    truth = actuals(panel, [cutoff], horizon_days)
    results = {}
    for booster, grid in TUNING_GRID.items():
        for change in grid:
            started = time.perf_counter()
            frame = mlforecast_peer(panel, train, horizon, booster, {**MODEL_PARAMS[booster], **change}, False)
            frame = frame.assign(region=frame["unique_id"], ts=to_utc(frame["ds"], frame["unique_id"], panel),
                                 cutoff=cutoff)
            label = f"{booster} {change}"
            results[label] = score(frame, truth)["wape"]
            print(f"{label:<60} WAPE {results[label]:.4f}  {time.perf_counter() - started:.0f} s", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="data folder in the contract")
    parser.add_argument("--slot", choices=sorted(SLOTS_PER_DAY), default="30min")
    parser.add_argument("--cutoffs", required=True, help="window cutoffs T1,T2,... (ISO-8601 with offset)")
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument("--tune", action="store_true", help="compare TUNING_GRID at the cutoffs instead")
    parser.add_argument("--out", type=Path, help="write the scores as JSON")
    args = parser.parse_args()
    quiet()
    cutoffs = [pd.Timestamp(text.strip()).tz_convert("UTC") for text in args.cutoffs.split(",")]
    panel = load_panel(args.data, args.slot)
    if args.tune:
        results = {str(c): tune(panel, c, args.horizon_days) for c in cutoffs}
    else:
        truth = actuals(panel, cutoffs, args.horizon_days)
        results = {name: score(frame, truth) for name, frame in run_peers(panel, cutoffs, args.horizon_days).items()}
        for name, entry in results.items():
            print(f"{name:<40} WAPE {entry['wape']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


def quiet() -> None:
    """Silence the peers' expected warnings (lags before a series starts, ETS fits)."""
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


if __name__ == "__main__":
    sys.exit(main())
