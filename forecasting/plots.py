"""PNG plots of a region's recent history and its forecast."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402

HISTORY_TAIL_DAYS = 14


def forecast_plot(region: str, timezone: str, history: pd.DataFrame, forecast: pd.DataFrame, model: str,
                  band: tuple[str, str] | None = None) -> bytes:
    """PNG bytes: the last two weeks of orders and the forecast (with its interval band, if
    given as two quantile columns), in the region's local time."""
    tail = history.loc[history["ts"] >= history["ts"].max() - pd.Timedelta(days=HISTORY_TAIL_DAYS)]
    figure, axes = plt.subplots(figsize=(11, 3.6), dpi=90)
    if band:
        axes.fill_between(forecast["ts"].dt.tz_convert(timezone), forecast[band[0]], forecast[band[1]],
                          color="#d9480f", alpha=0.18, label=f"{band[0]}-{band[1]}")
    axes.plot(tail["ts"].dt.tz_convert(timezone), tail["orders"], color="#555555", lw=0.9, label="orders")
    axes.plot(forecast["ts"].dt.tz_convert(timezone), forecast["forecast"], color="#d9480f", lw=1.1,
              label=f"forecast ({model})")
    axes.axvline(forecast["ts"].min().tz_convert(timezone), color="#999999", ls="--", lw=0.8)
    axes.set_title(f"{region}: orders per slot, local time ({timezone})", fontsize=10)
    return _time_series_png(figure, axes)


def backtest_error_plot(wape_by_day: pd.DataFrame) -> bytes:
    """PNG bytes: WAPE by day of the horizon, one line per model."""
    figure, axes = plt.subplots(figsize=(8, 4), dpi=90)
    for model in wape_by_day.columns:
        axes.plot(wape_by_day.index, wape_by_day[model], marker="o", ms=3, lw=1.2, label=model)
    axes.set_xlabel("day of the horizon")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("WAPE (all regions and cutoffs)")
    axes.set_title("Backtest error by horizon", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def backtest_region_plot(region: str, model: str, rows: pd.DataFrame, quantiles: tuple[float, ...]) -> bytes:
    """PNG bytes: actual orders, the forecast and its widest interval at the last cutoff."""
    rows = rows.sort_values("ts")
    figure, axes = plt.subplots(figsize=(11, 3.6), dpi=90)
    lower, upper = f"p{quantiles[0] * 100:g}", f"p{quantiles[-1] * 100:g}"
    if lower in rows and upper in rows and len(quantiles) > 1:
        axes.fill_between(rows["ts"], rows[lower], rows[upper], color="#d9480f", alpha=0.18,
                          label=f"{lower}-{upper}")
    axes.plot(rows["ts"], rows["actual"], color="#555555", lw=0.9, label="actual")
    axes.plot(rows["ts"], rows["forecast"], color="#d9480f", lw=1.1, label=f"forecast ({model})")
    axes.set_title(f"{region}: backtest at cutoff {rows['cutoff'].iloc[0]:%Y-%m-%d %H:%M} UTC", fontsize=10)
    return _time_series_png(figure, axes)


def accuracy_plot(by_vintage: pd.DataFrame, by_region: pd.DataFrame, age_order: list[str]) -> bytes:
    """PNG bytes: WAPE of the stored vintages by age (day of the horizon bucket) per model, and
    each region's recent WAPE against what its backtest promised (flagged regions in red)."""
    figure, (by_age, regions) = plt.subplots(1, 2, figsize=(12, 4.2), dpi=90,
                                             gridspec_kw={"width_ratios": [1, 2]})
    pooled = by_vintage.assign(error=by_vintage["wape"] * by_vintage["orders"]).groupby(["age", "model"])[
        ["error", "orders"]].sum()
    table = (pooled["error"] / pooled["orders"]).unstack("model").reindex([a for a in age_order if a in
                                                                           pooled.index.get_level_values(0)])
    width = 0.8 / max(1, len(table.columns))
    for index, model in enumerate(table.columns):
        by_age.bar([i + index * width for i in range(len(table))], table[model], width=width, label=model)
    by_age.set_xticks([i + 0.4 - width / 2 for i in range(len(table))], table.index)
    by_age.legend(fontsize=8)
    by_age.set_xlabel("vintage age (day of the horizon)")
    by_age.set_ylabel("WAPE (all regions)")
    by_age.set_title("Error by vintage age", fontsize=10)
    rows = by_region.sort_values("recent_wape", ascending=False).head(30)
    labels = [f"{r} ({m})" for r, m in zip(rows["region"], rows["model"])]
    colors = ["#c92a2a" if flagged else "#4c6ef5" for flagged in rows["flagged"]]
    regions.bar(labels, rows["recent_wape"], color=colors, label="recent WAPE")
    regions.plot(labels, rows["promised_wape"], color="black", marker="_", markersize=40, markeredgewidth=2.5, linestyle="none",
                 label="backtest promise")
    regions.set_title("Recent WAPE per region (red: clearly worse than promised)", fontsize=10)
    regions.tick_params(axis="x", labelrotation=60, labelsize=8)
    regions.legend(fontsize=8)
    for axes in (by_age, regions):
        axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return _png(figure)


def _time_series_png(figure, axes) -> bytes:
    """Shared finish of the orders-over-time plots."""
    axes.set_ylabel("orders")
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    return _png(figure)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
