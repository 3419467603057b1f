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
