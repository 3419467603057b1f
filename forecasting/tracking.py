"""Accuracy over time: stored forecast vintages scored against the orders that have arrived.

Every forecast run adds a vintage (`as_of`) to the forecasts table. Once orders for its slots
arrive, each vintage can be scored: WAPE, bias and interval coverage per region, model,
vintage and vintage age (the day of the horizon a slot was in). A region is flagged when its
WAPE over the latest `RECENT_DAYS` of arrived orders is clearly worse than its backtest
promised (the held-out WAPE of its latest selection): above `FLAG_RATIO` times that promise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.contract import InputPaths, load_dataset, parse_as_of
from forecasting.errors import DataError
from forecasting.intervals import bucket_names, horizon_bucket
from forecasting.metrics import bias, coverage, wape
from forecasting.plots import accuracy_plot
from forecasting.slots import Slot
from forecasting.storage import atomic_write_bytes, atomic_write_parquet, read_table_db

RECENT_DAYS = 14
FLAG_RATIO = 1.25
_KEYS = ["region", "model", "as_of", "age"]


@dataclass
class AccuracyReport:
    by_vintage: pd.DataFrame  # region, model, as_of, age, slots, orders, wape, bias, coverage
    by_region: pd.DataFrame   # region, model, recent_wape, promised_wape, coverage, slots, flagged
    recent_since: pd.Timestamp | None
    ages: list[str]           # the age buckets, first day of the horizon first


def score_vintages(forecasts: pd.DataFrame, orders: pd.DataFrame, promises: pd.DataFrame,
                   timezones: dict[str, str], slots_per_day: int, since: pd.Timestamp | None = None) -> AccuracyReport:
    """Score every stored vintage (as_of >= `since`) on the slots whose orders have arrived.

    `forecasts`: the forecasts table (UTC timestamps); `orders`: region, ts, orders (UTC);
    `promises`: region, wape (the latest backtest selection per region; may be empty);
    `timezones`: each region's clock, on which a vintage's age is counted in days;
    `slots_per_day`: of the forecasts' slot (a vintage's slots make its horizon).
    """
    if since is not None:
        forecasts = forecasts.loc[forecasts["as_of"] >= since]
    joined = forecasts.merge(orders[["region", "ts", "orders"]], on=["region", "ts"], how="inner")
    if joined.empty:
        empty = pd.DataFrame(columns=[*_KEYS, "slots", "orders", "wape", "bias", "coverage"])
        return AccuracyReport(empty, pd.DataFrame(columns=_REGION_COLUMNS), None, [])
    horizon_days = -(-int(forecasts.groupby(["region", "as_of"]).size().max()) // slots_per_day)
    joined["age"] = horizon_bucket(joined["ts"], joined["as_of"], horizon_days, joined["region"].map(timezones))
    band = _interval_columns(joined)
    by_vintage = joined.groupby(_KEYS, sort=True).apply(lambda g: _scores(g, band), include_groups=False)
    by_vintage = by_vintage.reset_index()
    recent_since = joined["ts"].max() - pd.Timedelta(days=RECENT_DAYS)
    recent = joined.loc[joined["ts"] > recent_since]
    by_region = recent.groupby(["region", "model"], sort=True).apply(lambda g: _scores(g, band),
                                                                      include_groups=False).reset_index()
    by_region = by_region.rename(columns={"wape": "recent_wape"})
    promised = promises.set_index("region")["wape"] if len(promises) else pd.Series(dtype="float64")
    by_region["promised_wape"] = by_region["region"].map(promised).astype("float64")
    by_region["flagged"] = by_region["recent_wape"] > FLAG_RATIO * by_region["promised_wape"]
    return AccuracyReport(by_vintage, by_region[_REGION_COLUMNS], recent_since, bucket_names(horizon_days))


_REGION_COLUMNS = ["region", "model", "slots", "orders", "recent_wape", "promised_wape", "bias", "coverage",
                   "flagged"]


def latest_promises(selections: pd.DataFrame | None) -> pd.DataFrame:
    """region, wape of each region's latest backtest selection (the model_selection table)."""
    if selections is None or selections.empty:
        return pd.DataFrame(columns=["region", "wape"])
    latest = selections.sort_values("created_at").groupby("region", as_index=False).last()
    return latest[["region", "wape"]]


def _interval_columns(frame: pd.DataFrame) -> tuple[str, str] | None:
    """The outermost quantile columns (p10, p90 ...) present in every row, if any."""
    quantiles = sorted((float(c[1:]), c) for c in frame.columns
                       if c.startswith("p") and c[1:].replace(".", "", 1).isdigit() and frame[c].notna().all())
    return (quantiles[0][1], quantiles[-1][1]) if len(quantiles) > 1 else None


def _scores(group: pd.DataFrame, band: tuple[str, str] | None) -> pd.Series:
    actual, forecast = group["orders"].to_numpy("float64"), group["forecast"].to_numpy("float64")
    return pd.Series({
        "slots": len(group),
        "orders": float(actual.sum()),
        "wape": wape(actual, forecast),
        "bias": bias(actual, forecast),
        "coverage": coverage(actual, group[band[0]], group[band[1]]) if band else np.nan,
    })


def track(paths: InputPaths, slot: str, missing_as_zero: bool, db_url: str, out_dir: Path,
          since: str | None) -> dict[str, Any]:
    """Score the vintages stored in `db_url` against the orders in `paths`; writes
    OUT/accuracy.parquet (per vintage), OUT/accuracy_regions.parquet and OUT/plots/accuracy.png."""
    parsed_slot = Slot.parse(slot)
    dataset = load_dataset(paths, parsed_slot, missing_as_zero=missing_as_zero)
    forecasts = read_table_db(db_url, "forecasts")
    if forecasts is None:
        raise DataError(f"{db_url}: no forecasts table yet; run `ordercast forecast` first")
    for column in ("ts", "as_of"):
        forecasts[column] = pd.to_datetime(forecasts[column], utc=True, format="ISO8601")
    selections = read_table_db(db_url, "model_selection")
    report = score_vintages(forecasts, dataset.orders, latest_promises(selections),
                            {region: info.timezone for region, info in dataset.regions.items()}, parsed_slot.per_day,
                            parse_as_of(since) if since else None)
    atomic_write_parquet(out_dir / "accuracy.parquet", report.by_vintage)
    atomic_write_parquet(out_dir / "accuracy_regions.parquet", report.by_region)
    plot = out_dir / "plots" / "accuracy.png"
    if len(report.by_vintage):
        atomic_write_bytes(plot, accuracy_plot(report.by_vintage, report.by_region, report.ages))
    return {
        "vintages": int(report.by_vintage["as_of"].nunique()) if len(report.by_vintage) else 0,
        "recent_since": report.recent_since.isoformat() if report.recent_since is not None else None,
        "regions": report.by_region.replace({np.nan: None}).to_dict("records"),
        "flagged": sorted(report.by_region.loc[report.by_region["flagged"], "region"].unique().tolist()),
        "plot": str(plot) if len(report.by_vintage) else None,
    }
