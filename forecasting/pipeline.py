"""The forecast job's stages as plain functions: partition, train, predict, collect.

Prefect tasks wrap these one to one. Between stages only small records travel (a manifest
of partition paths, training and prediction records); the data stays on disk.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from forecasting.contract import InputPaths, RegionInfo, load_dataset, resolve_as_of
from forecasting.errors import DataError, NoStoredModelError
from forecasting.faults import maybe_fail
from forecasting.features import TARGET, FeatureSpec, RegionInputs, build_features, feature_columns
from forecasting.model_store import find_model, load_model, save_model
from forecasting.intervals import Calibration, calibrate, horizon_bucket, quantile_column
from forecasting.models import DEFAULT_MODEL, FALLBACK_MODEL, create_model, model_spec
from forecasting.selection_store import latest_selection
from forecasting.paths import region_key
from forecasting.plots import forecast_plot
from forecasting.slots import Slot
from forecasting.storage import (
    FORECAST_COLUMNS,
    atomic_copy,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    write_forecasts_db,
)

_TABLES = ("orders", "weather", "events", "promotions")
_PACKAGES = ("ordercast", "prefect", "prefect-dask", "dask", "distributed", "pandas", "numpy",
             "pyarrow", "xgboost-cpu", "holidays", "sqlalchemy")


@dataclass(frozen=True)
class RunOptions:
    """What a forecast run computes; travels to every task, so keep it small."""

    slot: str = "30min"
    horizon_days: int = 21
    as_of: str | None = None
    missing_as_zero: bool = False
    no_train: bool = False
    model_threads: int = 1
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(Slot.parse(self.slot), self.horizon_days)


def prepare_partitions(paths: InputPaths, options: RunOptions, cache_dir: Path, model_store: Path) -> dict[str, Any]:
    """Validate the inputs and write one Parquet partition folder per region.

    Returns the manifest: resolved `as_of`, input hashes, warnings, and per region its
    partition folder, row counts and content hash. Raises `DataError` before writing
    anything if the inputs break the contract.
    """
    slot = Slot.parse(options.slot)
    dataset = load_dataset(paths, slot, missing_as_zero=options.missing_as_zero)
    as_of = resolve_as_of(dataset, slot, options.as_of)
    notes = list(dataset.warnings)
    regions = []
    for region, info in dataset.regions.items():
        orders = dataset.orders.loc[(dataset.orders["region"] == region) & (dataset.orders["ts"] < as_of)]
        if orders.empty:
            notes.append(f"region '{region}' has no orders before as_of {as_of.isoformat()}: skipped")
            continue
        tables = {"orders": orders.drop(columns="region")}
        for name in ("weather", "events", "promotions"):
            table = getattr(dataset, name)
            if table is not None:
                tables[name] = table.loc[table["region"] == region].drop(columns="region")
        regions.append(_write_partition(cache_dir / region_key(region), info, tables, as_of))
    if not regions:
        raise DataError(f"{paths.orders}: no region has orders before as_of {as_of.isoformat()}; nothing to forecast")
    manifest = {
        "as_of": as_of.isoformat(),
        "slot": options.slot,
        "horizon_days": options.horizon_days,
        "input_hashes": dataset.hashes,
        "warnings": notes,
        "regions": regions,
    }
    if options.no_train:
        _check_stored_models(manifest, options, model_store)
    return manifest


def _write_partition(folder: Path, info: RegionInfo, tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    rows = {}
    for name, table in tables.items():
        atomic_write_parquet(folder / f"{name}.parquet", table)
        digest.update(name.encode())
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
        rows[name] = len(table)
    history = tables["orders"]["ts"]
    return {
        "region": info.region,
        "timezone": info.timezone,
        "country": info.country,
        "path": str(folder),
        "rows": rows,
        "hash": digest.hexdigest(),
        "history_days": round((as_of - history.min()) / pd.Timedelta(days=1), 2),
    }


def read_partition(entry: dict[str, Any]) -> RegionInputs:
    folder = Path(entry["path"])
    tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in _TABLES if (folder / f"{name}.parquet").exists()}
    info = RegionInfo(entry["region"], entry["timezone"], entry["country"])
    return RegionInputs(info, tables["orders"], tables.get("weather"), tables.get("events"), tables.get("promotions"))


def region_features(entry: dict[str, Any], options: RunOptions, as_of: pd.Timestamp) -> pd.DataFrame:
    return build_features(read_partition(entry), options.spec, as_of)


def _check_stored_models(manifest: dict[str, Any], options: RunOptions, store: Path) -> None:
    as_of = pd.Timestamp(manifest["as_of"])
    missing = []
    for entry in manifest["regions"]:
        features = feature_columns(region_features(entry, options, as_of))
        if find_model(store, entry["region"], slot=options.slot, horizon_days=options.horizon_days,
                      features=features, as_of=as_of) is None:
            missing.append(entry["region"])
    if missing:
        raise NoStoredModelError(
            f"--no-train: no stored model trained through {as_of.isoformat()} or earlier with slot "
            f"{options.slot}, horizon {options.horizon_days} days and matching features for "
            f"{len(missing)} region(s): {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}; "
            f"run once without --no-train (model store: {store})"
        )


def choose_model(entry: dict[str, Any], options: RunOptions, selection: dict[str, Any] | None) -> tuple[str, str]:
    """The region's backtest selection, else the default model; learned models need enough
    history for their lags plus training weeks, else the seasonal naive is used."""
    wanted = selection["model"] if selection else DEFAULT_MODEL
    reason = f"selected by backtest {selection['backtest_run_id']}" if selection else "default (no backtest selection)"
    needed = options.spec.min_history_days_for_xgboost
    if model_spec(wanted).learned and entry["history_days"] < needed:
        return FALLBACK_MODEL, f"history of {entry['history_days']:.0f} days < {needed} days needed for {wanted}"
    return wanted, reason


def train_region(entry: dict[str, Any], options: RunOptions, model_store: Path, selection_store: Path, as_of: str,
                 run_id: str) -> dict[str, Any]:
    """Build the region's features, fit its model and store it; returns a training record."""
    started = time.perf_counter()
    region = entry["region"]
    maybe_fail("train", region)
    when = pd.Timestamp(as_of)
    frame = region_features(entry, options, when)
    columns = feature_columns(frame)
    rows = frame.loc[frame["is_history"] & frame[TARGET].notna()]
    selection = latest_selection(selection_store, region, slot=options.slot, horizon_days=options.horizon_days)
    name, note = choose_model(entry, options, selection)
    if model_spec(name).learned:
        rows = rows.loc[rows[f"lag_{options.spec.lag_weeks[0]}w"].notna()]
    if selection and selection["model"] == name and selection.get("calibration"):
        calibration, intervals = selection["calibration"], f"backtest {selection['backtest_run_id']}"
    else:
        calibration = _holdout_calibration(name, rows, columns, options, when)
        intervals = ("last horizon of history held out once (run a backtest for calibrated intervals)"
                     if calibration else "none: too little history to calibrate (each quantile equals the forecast)")
    model = create_model(name, options.model_threads).fit(rows[columns], rows[TARGET])
    folder = save_model(model_store, model, {
        "region": region,
        "slot": options.slot,
        "horizon_days": options.horizon_days,
        "features": columns,
        "as_of": when.isoformat(),
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "run_id": run_id,
        "training_rows": len(rows),
        "calibration": calibration,
        "intervals": intervals,
    })
    return {
        "region": region,
        "model": model.name,
        "model_path": str(folder),
        "note": note,
        "intervals": intervals,
        "train_rows": len(rows),
        "train_seconds": round(time.perf_counter() - started, 3),
    }


def _holdout_calibration(name: str, rows: pd.DataFrame, columns: list[str], options: RunOptions,
                         as_of: pd.Timestamp) -> dict[str, Any] | None:
    """Residuals of one out-of-sample fit: trained without the last horizon of history,
    scored on it. Used for intervals when no backtest calibrated this region's model."""
    cutoff = as_of - pd.Timedelta(days=options.horizon_days)
    train, test = rows.loc[rows["ts"] < cutoff], rows.loc[rows["ts"] >= cutoff]
    if len(train) < len(test) or test.empty:
        return None
    forecast = create_model(name, options.model_threads).fit(train[columns], train[TARGET]).predict(test[columns])
    buckets = horizon_bucket(test["ts"], cutoff, options.horizon_days)
    return calibrate(forecast, test[TARGET].to_numpy(), buckets).to_dict()


def predict_region(
    entry: dict[str, Any], options: RunOptions, model_store: Path, as_of: str, run_dir: Path,
    trained: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict the region's horizon with its fresh model (or, with `--no-train`, its latest
    stored one); writes the region's forecast partition and plot into the run folder."""
    started = time.perf_counter()
    region = entry["region"]
    maybe_fail("predict", region)
    when = pd.Timestamp(as_of)
    frame = region_features(entry, options, when)
    columns = feature_columns(frame)
    if trained is not None:
        folder = Path(trained["model_path"])
    else:
        folder = find_model(model_store, region, slot=options.slot, horizon_days=options.horizon_days,
                            features=columns, as_of=when)
        if folder is None:
            raise NoStoredModelError(f"--no-train: no stored model fits region '{region}'")
    model, meta = load_model(folder)
    horizon = frame.loc[~frame["is_history"]]
    forecast = pd.DataFrame({
        "region": region,
        "ts": pd.to_datetime(horizon["ts"].to_numpy(), utc=True),
        "as_of": when,
        "forecast": model.predict(horizon[meta["features"]]),
        "model": model.name,
    })
    forecast = forecast.join(_quantile_frame(forecast, meta.get("calibration"), options, when))
    key = region_key(region)
    partition = run_dir / "forecasts" / f"{key}.parquet"
    atomic_write_parquet(partition, forecast)
    plot = run_dir / "plots" / f"{key}.png"
    history = frame.loc[frame["is_history"], ["ts", TARGET]].dropna()
    names = [quantile_column(q) for q in options.quantiles]
    band = (names[0], names[-1]) if len(names) > 1 and meta.get("calibration") else None
    atomic_write_bytes(plot, forecast_plot(region, entry["timezone"], history, forecast, model.name, band))
    return {
        "region": region,
        "model": model.name,
        "model_path": str(folder),
        "rows": len(forecast),
        "forecast_path": str(partition),
        "plot_path": str(plot),
        "predict_seconds": round(time.perf_counter() - started, 3),
    }


def _quantile_frame(forecast: pd.DataFrame, calibration: dict[str, Any] | None, options: RunOptions,
                    as_of: pd.Timestamp) -> pd.DataFrame:
    """Quantile columns (p10, p50, ...) from the model's calibration; without one, the point
    forecast for every quantile (and `run.json` says the region has no intervals)."""
    names = [quantile_column(q) for q in options.quantiles]
    if not calibration:
        return pd.DataFrame({name: forecast["forecast"] for name in names}, index=forecast.index)
    buckets = horizon_bucket(forecast["ts"], as_of, options.horizon_days)
    values = Calibration.from_dict(calibration).quantiles(forecast["forecast"].to_numpy(), buckets, options.quantiles)
    return pd.DataFrame(values, columns=names, index=forecast.index)


def collect_outputs(
    predictions: list[dict[str, Any]], out_dir: Path, db_url: str, run_id: str, run_info: dict[str, Any]
) -> dict[str, Any]:
    """Merge the region partitions into OUT (Parquet, SQL, plots, run.json), each write atomic."""
    created_at = pd.Timestamp.now(tz="UTC")
    frames = [pd.read_parquet(p["forecast_path"]) for p in sorted(predictions, key=lambda p: p["region"])]
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts["run_id"] = run_id
    forecasts["created_at"] = created_at
    forecasts = forecasts[FORECAST_COLUMNS + [c for c in forecasts.columns if c not in FORECAST_COLUMNS]]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = write_forecasts_db(forecasts, db_url)
    atomic_write_parquet(out_dir / "forecasts.parquet", forecasts)
    plots = []
    for prediction in predictions:
        target = out_dir / "plots" / Path(prediction["plot_path"]).name
        atomic_copy(prediction["plot_path"], target)
        plots.append(str(target))
    atomic_write_json(out_dir / "run.json", {**run_info, "run_id": run_id, "created_at": created_at.isoformat(),
                                             "packages": package_versions()})
    return {"forecast_rows": len(forecasts), "db_rows": rows, "db_url": db_url, "plots": sorted(plots)}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def options_dict(options: RunOptions) -> dict[str, Any]:
    return asdict(options)
