"""PNG plots of a region's recent history and its forecast."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

HISTORY_TAIL_DAYS = 14


def forecast_plot(region: str, timezone: str, history: pd.DataFrame, forecast: pd.DataFrame, model: str) -> bytes:
    """PNG bytes: the last two weeks of orders and the forecast, in the region's local time."""
    tail = history.loc[history["ts"] >= history["ts"].max() - pd.Timedelta(days=HISTORY_TAIL_DAYS)]
    figure, axes = plt.subplots(figsize=(11, 3.6), dpi=90)
    axes.plot(tail["ts"].dt.tz_convert(timezone), tail["orders"], color="#555555", lw=0.9, label="orders")
    axes.plot(forecast["ts"].dt.tz_convert(timezone), forecast["forecast"], color="#d9480f", lw=1.1,
              label=f"forecast ({model})")
    axes.axvline(forecast["ts"].min().tz_convert(timezone), color="#999999", ls="--", lw=0.8)
    axes.set_title(f"{region}: orders per slot, local time ({timezone})", fontsize=10)
    axes.set_ylabel("orders")
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
