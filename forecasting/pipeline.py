"""The forecast job's stages as plain functions: partition, train, predict, collect.

Prefect tasks wrap these one to one. Between stages only small records travel (a manifest
of partition paths, training and prediction records); the data stays on disk.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from forecasting.contract import (PER_REGION, InputPaths, RegionInfo, lagging_regions, load_dataset,
                                  mid_slot_regions, region_origins)
from forecasting.errors import DataError, NoStoredModelError
from forecasting.faults import maybe_fail
from forecasting.features import (
    TARGET,
    FeatureSpec,
    RegionInputs,
    at_origin,
    build_features,
    feature_columns,
    training_rows,
)
from forecasting.model_store import find_model, load_model, save_model
from forecasting.intervals import Calibration, calibrate, horizon_bucket, quantile_column
from forecasting.metrics import wape
from forecasting.models import (
    DEFAULT_MODEL,
    FALLBACK_MODEL,
    SHORT_HISTORY_MODEL,
    PooledModel,
    create_model,
    model_spec,
)
from forecasting.selection_store import latest_selection
from forecasting.paths import region_key
from forecasting.slots import Slot
from forecasting.snapshot import snapshot_dir, snapshot_key
from forecasting.storage import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
)

_TABLES = ("orders", "weather", "events", "promotions")
MANIFEST_FILE = "manifest.json"
CALIBRATION_ORIGINS = 4
HELD_OUT_WEEKS = "held-out weeks"  # an expected WAPE from the weeks its intervals were calibrated on
_NO_INTERVALS = "none: too little history to calibrate (each quantile equals the forecast)"
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
    region_timeout: float | None = None
    skip_invalid_regions: bool = False

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(Slot.parse(self.slot), self.horizon_days)


def prepare_partitions(paths: InputPaths, options: RunOptions, cache_dir: Path) -> dict[str, Any]:
    """Validate the inputs and write one Parquet partition folder per region.

    Returns the manifest: resolved `as_of` (`per-region` when each region has its own), input
    hashes, warnings, and per region its `as_of`, partition folder, row counts and content
    hash. Raises `DataError` before writing anything if the inputs break the contract. A pure
    step: the same inputs and options give the same partitions (see `forecasting.snapshot`).
    """
    slot = Slot.parse(options.slot)
    dataset = load_dataset(paths, slot, missing_as_zero=options.missing_as_zero,
                           skip_invalid_regions=options.skip_invalid_regions)
    origins = region_origins(dataset, slot, options.as_of)
    as_of = max(origins.values())
    notes = list(dataset.warnings)
    if options.as_of is None:
        notes += lagging_regions(dataset, slot, origins)
    elif options.as_of != PER_REGION:
        notes += mid_slot_regions(dataset, slot, as_of)
    before_origin = dataset.orders["ts"] < dataset.orders["region"].astype(str).map(origins)
    present = {name: table for name, table in (("orders", dataset.orders.loc[before_origin.to_numpy()]),
                                               ("weather", dataset.weather), ("events", dataset.events),
                                               ("promotions", dataset.promotions)) if table is not None}
    by_region = {name: dict(iter(table.groupby("region", sort=False, observed=True)))
                 for name, table in present.items()}
    regions = []
    for region, info in dataset.regions.items():
        if region not in by_region["orders"]:
            notes.append(f"region '{region}' has no orders before as_of {origins[region].isoformat()}: skipped")
            continue
        tables = {name: by_region[name].get(region, table.iloc[:0]).drop(columns="region")
                  for name, table in present.items()}
        regions.append(_write_partition(cache_dir / region_key(region), info, tables, origins[region]))
    if not regions:
        raise DataError(f"{paths.orders}: no region has orders before as_of {as_of.isoformat()}; nothing to forecast")
    manifest = {
        "as_of": PER_REGION if options.as_of == PER_REGION else as_of.isoformat(),
        "slot": options.slot,
        "input_hashes": dataset.hashes,
        "warnings": notes,
        "regions": regions,
        "invalid_regions": dataset.invalid,
    }
    atomic_write_json(cache_dir / MANIFEST_FILE, manifest)
    return manifest


def prepared_partitions(cache_dir: Path) -> dict[str, Any] | None:
    """The manifest of partitions already prepared in `cache_dir` (by the command line, before
    the flow started, or by an earlier run of the same snapshot), if they are all still there."""
    try:
        manifest = json.loads((cache_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    return manifest if partitions_present(manifest) else None


def partitions_present(manifest: dict[str, Any]) -> bool:
    """Whether every region partition a manifest names is still on disk."""
    return all(Path(entry["path"]).is_dir() for entry in manifest["regions"])


def snapshot_of(paths: InputPaths, options: RunOptions) -> tuple[str, Path]:
    """The snapshot key of these inputs and options, and the folder of its partitions."""
    key = snapshot_key(paths, options.slot, options.as_of, options.missing_as_zero, options.skip_invalid_regions)
    return key, snapshot_dir(key)


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
        "as_of": as_of.isoformat(),
        "history_start": history.min().isoformat(),
        "history_days": round((as_of - history.min()) / pd.Timedelta(days=1), 2),
    }


def read_partition(entry: dict[str, Any]) -> RegionInputs:
    folder = Path(entry["path"])
    tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in _TABLES if (folder / f"{name}.parquet").exists()}
    info = RegionInfo(entry["region"], entry["timezone"], entry["country"])
    return RegionInputs(info, tables["orders"], tables.get("weather"), tables.get("events"), tables.get("promotions"))


def region_features(entry: dict[str, Any], options: RunOptions, as_of: pd.Timestamp) -> pd.DataFrame:
    return build_features(read_partition(entry), options.spec, as_of)


def check_stored_models(manifest: dict[str, Any], options: RunOptions, store: Path) -> None:
    """For `--no-train`: every region needs a stored model that fits, trained through its
    `as_of` or earlier, else `NoStoredModelError`."""
    missing = []
    for entry in manifest["regions"]:
        as_of = pd.Timestamp(entry["as_of"])
        features = feature_columns(region_features(entry, options, as_of))
        if find_model(store, entry["region"], slot=options.slot, horizon_days=options.horizon_days,
                      features=features, as_of=as_of) is None:
            missing.append(entry["region"])
    if missing:
        raise NoStoredModelError(
            f"--no-train: no stored model trained through as_of {manifest['as_of']} or earlier with slot "
            f"{options.slot}, horizon {options.horizon_days} days and matching features for "
            f"{len(missing)} region(s): {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}; "
            f"run once without --no-train (model store: {store})"
        )


def choose_model(entry: dict[str, Any], options: RunOptions, selection: dict[str, Any] | None) -> tuple[str, str]:
    """The region's backtest selection, else the default model; learned models need enough
    history for their lags plus training weeks (without a backtest, more), else the
    short-history model is used."""
    wanted = selection["model"] if selection else DEFAULT_MODEL
    reason = f"selected by backtest {selection['backtest_run_id']}" if selection else "default (no backtest selection)"
    needed = options.spec.min_history_days_for_xgboost if selection else options.spec.min_history_days_for_default
    if model_spec(wanted).learned and entry["history_days"] < needed:
        return SHORT_HISTORY_MODEL, (f"history of {entry['history_days']:.0f} days < {needed} days needed for "
                                     f"{wanted}")
    return wanted, reason


def planned_model(entry: dict[str, Any], options: RunOptions, selection_store: Path) -> tuple[str, str]:
    """The model a region will train, and why: its latest backtest selection, else the default."""
    selection = latest_selection(selection_store, entry["region"], slot=options.slot, horizon_days=options.horizon_days)
    return choose_model(entry, options, selection)


def train_region(entry: dict[str, Any], options: RunOptions, model_store: Path, selection_store: Path | None,
                 as_of: str, run_dir: Path, *, fallback_reason: str | None = None,
                 pooled: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the region's features, fit its model and store it; returns a training record.

    With `fallback_reason`, fits the fallback model (seasonal naive) instead of the region's
    choice. A region that chose `pooled` stores its share of the run's pooled model (`pooled`,
    the record of `forecasting.pooled.train_pooled`) instead of fitting one."""
    region = entry["region"]
    started = time.perf_counter()
    if not fallback_reason:
        maybe_fail("train", region, run_dir.name)
    when = pd.Timestamp(as_of)
    frame = region_features(entry, options, when)
    columns = feature_columns(frame)
    rows = frame.loc[frame["is_history"] & frame[TARGET].notna()]
    if fallback_reason:
        selection, name, note = None, FALLBACK_MODEL, f"fallback: {fallback_reason}"
    else:
        selection = latest_selection(selection_store, region, slot=options.slot, horizon_days=options.horizon_days)
        name, note = choose_model(entry, options, selection)
    selected = bool(selection and selection["model"] == name)
    expected = ExpectedError(selection["wape"], "backtest") if selected else None
    if selected and selection.get("calibration"):
        calibration, intervals = selection["calibration"], f"backtest {selection['backtest_run_id']}"
    else:
        calibration, intervals, held_out_wape = _holdout_calibration(name, frame, options, when, entry["timezone"])
        if expected is None and held_out_wape is not None:
            expected = ExpectedError(held_out_wape, HELD_OUT_WEEKS)
        if calibration is None and model_spec(name).learned:  # too young to hold out weeks for a learned model
            calibration, source, _ = _holdout_calibration(SHORT_HISTORY_MODEL, frame, options, when,
                                                          entry["timezone"])
            if calibration is not None:
                intervals = f"{SHORT_HISTORY_MODEL}'s errors (too little history to hold out {name}'s): {source}"
    if model_spec(name).uses_lags:
        rows = training_rows(rows, when, options.spec.slot)
    if model_spec(name).pooled and pooled and region in pooled["region_codes"]:
        model = PooledModel.share_of(Path(pooled["model_path"]), pooled["region_codes"][region], options.model_threads)
    else:
        model = create_model(name, options.model_threads).fit(rows[columns], rows[TARGET])
    folder = save_model(model_store, model, {
        "region": region,
        "slot": options.slot,
        "horizon_days": options.horizon_days,
        "features": columns,
        "as_of": when.isoformat(),
        "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "run_id": run_dir.name,
        "training_rows": len(rows),
        "calibration": calibration,
        "intervals": intervals,
    })
    record = {
        "region": region,
        "model": model.name,
        "model_path": str(folder),
        "note": note,
        "intervals": intervals,
        "expected_wape": expected.wape if expected else None,
        "expected_from": expected.source if expected else None,
        "fallback": bool(fallback_reason),
        "train_rows": len(rows),
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    return record


class ExpectedError(NamedTuple):
    """A region's expected WAPE and where it comes from: its backtest's held-out cutoffs, or,
    without a backtest of its model, the weeks held out to calibrate its intervals."""

    wape: float
    source: str


def _holdout_calibration(name: str, frame: pd.DataFrame, options: RunOptions, as_of: pd.Timestamp,
                         tz: str) -> tuple[dict[str, Any] | None, str, float | None]:
    """Residuals of one out-of-sample fit, where they come from, and the fit's WAPE over the
    held-out horizons (None where nothing was held out). Used when no backtest calibrated the model.

    The fit uses the slots that ended by the earliest of `CALIBRATION_ORIGINS` weekly origins
    before the last horizon of history, and is scored on the horizon of each origin seen from
    there (a model a few weeks stale, as between backtest refits: intervals err wide rather than
    narrow). Its drift since the fit is spread, not shift: each origin's bias becomes width
    (`forecasting.intervals.calibrate` with `origins`). A young region, whose history is shorter
    than that, takes its origins in the last weeks instead, scored on what of their horizons has
    happened by `as_of`."""
    spec = options.spec
    history = frame.loc[frame["is_history"] & frame[TARGET].notna()]
    if history.empty:
        return None, _NO_INTERVALS, None
    needed = pd.Timedelta(days=spec.min_history_days_for_xgboost if model_spec(name).learned else 7)

    def weekly_origins(last: pd.Timestamp, weeks: range) -> list[pd.Timestamp]:
        return [origin for k in reversed(weeks)
                if (origin := spec.slot.first_start_at_or_after(last - pd.Timedelta(weeks=k), tz))
                >= history["ts"].iloc[0] + needed]

    horizon = pd.Timedelta(days=options.horizon_days)
    origins = weekly_origins(as_of - horizon, range(CALIBRATION_ORIGINS))
    source = (f"{_weekly(origins)} before the last horizon of history held out "
              "(run a backtest for calibrated intervals)")
    if not origins:
        origins = weekly_origins(as_of, range(1, CALIBRATION_ORIGINS + 1))
        source = (f"{_weekly(origins)} of the region's short history, scored up to as_of (wide, "
                  "from a model trained on a few weeks)")
    if not origins:
        return None, _NO_INTERVALS, None
    train = history.loc[(spec.slot.ends(history["ts"], tz) <= origins[0]).to_numpy()]
    if model_spec(name).uses_lags:
        train = training_rows(train, origins[0], spec.slot)
    tests = [(origin, at_origin(history.loc[(history["ts"] >= origin) & (history["ts"] < origin + horizon)],
                                origin, spec, tz)) for origin in origins]
    tests = [(origin, test) for origin, test in tests if len(test)]
    if not tests or train.empty:
        return None, _NO_INTERVALS, None
    columns = feature_columns(frame)
    model = create_model(name, options.model_threads).fit(train[columns], train[TARGET])
    forecast = np.concatenate([model.predict(test[columns]) for _, test in tests])
    actual = np.concatenate([test[TARGET].to_numpy("float64") for _, test in tests])
    buckets = np.concatenate([horizon_bucket(test["ts"], origin, options.horizon_days, tz) for origin, test in tests])
    origin_of = np.concatenate([np.full(len(test), index) for index, (_, test) in enumerate(tests)])
    held_out_wape = wape(actual, forecast) if actual.sum() > 0 else None
    return calibrate(forecast, actual, buckets, origins=origin_of).to_dict(), source, held_out_wape


def _weekly(origins: list) -> str:
    return f"{len(origins)} weekly origin{'' if len(origins) == 1 else 's'}"


def local_iso(starts: pd.DatetimeIndex, timezone: str) -> list[str]:
    """Slot starts as ISO-8601 text in the region's local time, with its offset
    (2026-03-29T03:00:00+02:00): what a dispatcher reads, without converting from UTC."""
    return [stamp.isoformat() for stamp in starts.tz_convert(timezone)]


def predict_region(
    entry: dict[str, Any], options: RunOptions, model_store: Path, as_of: str, run_dir: Path,
    trained: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict the region's horizon with its fresh model (or, with `--no-train`, its latest
    stored one); writes the region's forecast partition and plot into the run folder.
    A fallback model's forecast is marked `fallback`."""
    region = entry["region"]
    fallback = bool(trained and trained.get("fallback"))
    started = time.perf_counter()
    if not fallback:
        maybe_fail("predict", region, run_dir.name)
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
    starts = pd.to_datetime(horizon["ts"].to_numpy(), utc=True)
    forecast = pd.DataFrame({
        "region": region,
        "ts": starts,
        "local_start": local_iso(starts, entry["timezone"]),
        "as_of": when,
        "forecast": model.predict(horizon[meta["features"]]),
        "model": model.name,
        "fallback": fallback,
    })
    forecast = forecast.join(_quantile_frame(forecast, meta.get("calibration"), options, when, entry["timezone"]))
    key = region_key(region)
    partition = run_dir / "forecasts" / f"{key}.parquet"
    atomic_write_parquet(partition, forecast)
    plot = run_dir / "plots" / f"{key}.png"
    history = frame.loc[frame["is_history"], ["ts", TARGET]].dropna()
    names = [quantile_column(q) for q in options.quantiles]
    band = (names[0], names[-1]) if len(names) > 1 and meta.get("calibration") else None
    from forecasting.plots import forecast_plot  # matplotlib: imported where a plot is drawn, not for input checks

    atomic_write_bytes(plot, forecast_plot(region, entry["timezone"], history, forecast, model.name, band))
    record = {
        "region": region,
        "model": model.name,
        "model_path": str(folder),
        "fallback": fallback,
        "rows": len(forecast),
        "forecast_path": str(partition),
        "plot_path": str(plot),
        "predict_seconds": round(time.perf_counter() - started, 3),
    }
    return record


def _quantile_frame(forecast: pd.DataFrame, calibration: dict[str, Any] | None, options: RunOptions,
                    as_of: pd.Timestamp, timezone: str) -> pd.DataFrame:
    """Quantile columns (p10, p50, ...) from the model's calibration; without one, the point
    forecast for every quantile (and `run.json` says the region has no intervals)."""
    names = [quantile_column(q) for q in options.quantiles]
    if not calibration:
        return pd.DataFrame({name: forecast["forecast"] for name in names}, index=forecast.index)
    buckets = horizon_bucket(forecast["ts"], as_of, options.horizon_days, timezone)
    values = Calibration.from_dict(calibration).quantiles(forecast["forecast"].to_numpy(), buckets, options.quantiles)
    return pd.DataFrame(values, columns=names, index=forecast.index)


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
