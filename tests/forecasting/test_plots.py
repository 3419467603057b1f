"""The forecast plot a planner reads: day ticks with weekday, date and the day's total."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.plots import forecast_figure, forecast_plot


def _forecast(as_of: str, days: int, timezone: str = "Europe/Berlin") -> pd.DataFrame:
    ts = pd.date_range(as_of, periods=days * 48, freq="30min", tz="UTC")
    local_hour = ts.tz_convert(timezone).hour
    return pd.DataFrame({"ts": ts, "forecast": np.where((local_hour >= 11) & (local_hour < 14), 10.0, 1.0),
                         "p10": 0.0, "p90": 20.0})


def test_each_day_tick_names_the_local_weekday_date_and_total():
    forecast = _forecast("2026-10-22T22:00:00Z", 21)  # local midnight in Berlin; the clocks change on the 25th
    history = pd.DataFrame({"ts": forecast["ts"] - pd.Timedelta(days=21), "orders": 5.0})
    figure = forecast_figure("berlin-mitte", "Europe/Berlin", history, forecast, "xgboost", ("p10", "p90"))
    overview, week, heat = figure.axes[:3]
    labels = [tick.get_text() for tick in week.get_xticklabels()]
    assert len(labels) == 7
    assert labels[0] == "Fri 23 Oct\n102 orders"  # 6 lunch slots of 10 and 42 other slots of 1
    assert labels[2] == "Sun 25 Oct\n104 orders"  # the 25-hour day the clocks go back
    assert labels[6] == "Thu 29 Oct\n102 orders"
    rows = [tick.get_text() for tick in heat.get_yticklabels()]
    assert rows[0] == "Fri 23 Oct" and len(rows) == 21
    assert heat.images[0].get_array()[0, 11] == 20.0  # 11:00-12:00 local on the first day: 2 slots of 10
    assert overview.get_title() == "berlin-mitte: orders per slot, local time (Europe/Berlin)"
    png = forecast_plot("berlin-mitte", "Europe/Berlin", history, forecast, "xgboost", ("p10", "p90"))
    assert png[:4] == b"\x89PNG"


def test_a_day_the_horizon_enters_after_midnight_says_from_when():
    forecast = _forecast("2026-11-02T06:00:00Z", 8)  # 07:00 in Berlin: 34 slots, 6 of them lunch (10)
    history = pd.DataFrame({"ts": forecast["ts"] - pd.Timedelta(days=8), "orders": 5.0})
    week = forecast_figure("berlin-mitte", "Europe/Berlin", history, forecast, "xgboost").axes[1]
    labels = [tick.get_text() for tick in week.get_xticklabels()]
    assert labels[0] == "Mon 02 Nov\n88 orders\nfrom 07:00" and labels[1] == "Tue 03 Nov\n102 orders"

