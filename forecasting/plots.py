"""PNG plots of a region's recent history and its forecast."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402

HISTORY_TAIL_DAYS = 14
FORECAST_COLOR = "#d9480f"


def forecast_plot(region: str, timezone: str, history: pd.DataFrame, forecast: pd.DataFrame, model: str,
                  band: tuple[str, str] | None = None) -> bytes:
    """PNG bytes of `forecast_figure`."""
    return _png(forecast_figure(region, timezone, history, forecast, model, band))


def forecast_figure(region: str, timezone: str, history: pd.DataFrame, forecast: pd.DataFrame, model: str,
                    band: tuple[str, str] | None = None):
    """A region's forecast as a planner reads it, in local time: the overview (the last two weeks
    of orders and the whole forecast with its interval band), the next 7 local days with one tick
    per day labelled with weekday, date and the day's forecast total, and a day x hour heat map of
    the horizon (orders per local hour)."""
    local = forecast.assign(local=forecast["ts"].dt.tz_convert(timezone))
    figure = plt.figure(figsize=(12, 9.5), dpi=80)
    grid = figure.add_gridspec(3, 1, height_ratios=[1, 1, 1.4], hspace=0.45)
    overview, week, heat = (figure.add_subplot(grid[i]) for i in range(3))

    tail = history.loc[history["ts"] >= history["ts"].max() - pd.Timedelta(days=HISTORY_TAIL_DAYS)]
    if band:
        overview.fill_between(local["local"], local[band[0]], local[band[1]], color=FORECAST_COLOR, alpha=0.18,
                              label=f"{band[0]}-{band[1]}")
    overview.plot(tail["ts"].dt.tz_convert(timezone), tail["orders"], color="#555555", lw=0.9, label="orders")
    overview.plot(local["local"], local["forecast"], color=FORECAST_COLOR, lw=1.1, label=f"forecast ({model})")
    overview.axvline(local["local"].min(), color="#999999", ls="--", lw=0.8)
    overview.set_title(f"{region}: orders per slot, local time ({timezone})", fontsize=10)
    overview.set_ylabel("orders")
    overview.legend(loc="upper left", fontsize=8)
    overview.grid(alpha=0.3)

    days = local["local"].dt.tz_localize(None).dt.normalize()
    first_week = local.loc[days < days.min() + pd.Timedelta(days=7)]
    week_days = days.loc[first_week.index]
    if band:
        week.fill_between(first_week["local"], first_week[band[0]], first_week[band[1]], color=FORECAST_COLOR,
                          alpha=0.18)
    week.plot(first_week["local"], first_week["forecast"], color=FORECAST_COLOR, lw=1.2)
    totals = first_week.groupby(week_days)["forecast"].sum()
    starts = first_week.groupby(week_days)["local"].min()
    week.set_xticks(list(starts), day_labels(totals, starts))
    week.tick_params(axis="x", labelsize=8)
    week.set_title("Next 7 days: forecast per slot; each label is the day and its total orders", fontsize=10)
    week.set_ylabel("orders per slot")
    week.grid(alpha=0.3)

    hours = local.assign(day=days, hour=local["local"].dt.hour).groupby(["day", "hour"])["forecast"].sum()
    table = hours.unstack("hour").reindex(columns=range(24))
    image = heat.imshow(table.to_numpy(), aspect="auto", cmap="Oranges")
    heat.set_yticks(range(len(table)), [f"{day:%a %d %b}" for day in table.index], fontsize=7)
    heat.set_xticks(range(24), [f"{hour:02d}" for hour in range(24)], fontsize=7)
    heat.set_xlabel("local hour")
    heat.set_title("Forecast orders per local hour, every day of the horizon", fontsize=10)
    figure.colorbar(image, ax=heat, label="orders per hour")
    return figure


def day_labels(totals: pd.Series, starts: pd.Series) -> list[str]:
    """'Mon 12 Oct\n1,234 orders' for each local day (index) and its forecast total; a day the
    horizon enters after midnight says from when ('Mon 12 Oct\n825 orders\nfrom 07:00')."""
    labels = []
    for day, total in totals.items():
        first = starts[day]
        partial = f"\nfrom {first:%H:%M}" if (first.hour, first.minute) != (0, 0) else ""
        labels.append(f"{day:%a %d %b}\n{total:,.0f} orders{partial}")
    return labels


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
        axes.fill_between(rows["ts"], rows[lower], rows[upper], color=FORECAST_COLOR, alpha=0.18,
                          label=f"{lower}-{upper}")
    axes.plot(rows["ts"], rows["actual"], color="#555555", lw=0.9, label="actual")
    axes.plot(rows["ts"], rows["forecast"], color=FORECAST_COLOR, lw=1.1, label=f"forecast ({model})")
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


def staffing_plot(region: str, rows: pd.DataFrame, band: tuple[str, str] | None, days: int = 7) -> bytes:
    """PNG bytes: a region's next `days` days in local time (the offset of each slot, as the
    planner's clock reads): orders (forecast, band, and orders at the service level) above;
    drivers required per slot as a step line and the drivers the shift plan puts on the road
    below."""
    local = pd.to_datetime(rows["local_start"].str.slice(0, 19))
    shown = (local < local.min() + pd.Timedelta(days=days)).to_numpy()
    rows, local = rows.loc[shown], local[shown]
    figure, (orders, drivers) = plt.subplots(2, 1, figsize=(12, 6.5), dpi=80, sharex=True)
    if band:
        orders.fill_between(local, rows[band[0]], rows[band[1]], step="post", color=FORECAST_COLOR, alpha=0.18,
                            label=f"{band[0]}-{band[1]}")
    orders.step(local, rows["expected_orders"], where="post", color=FORECAST_COLOR, lw=1.0, label="forecast")
    level = rows["service_level"].iloc[0]
    orders.step(local, rows["orders_at_service_level"], where="post", color="#1c7ed6", lw=0.9,
                label=f"orders at service level {level:.2f}")
    orders.set_ylabel("orders per slot")
    orders.set_title(f"{region}: the next {days} days, local time", fontsize=10)
    drivers.step(local, rows["drivers"], where="post", color="#1c7ed6", lw=1.2, label="drivers required")
    drivers.fill_between(local, 0, rows["scheduled_drivers"], step="post", color="#2f9e44", alpha=0.25,
                         label="drivers on shift (plan)")
    drivers.set_ylabel("drivers")
    drivers.set_title("Drivers required per slot and the shifts that cover them", fontsize=10)
    for axes in (orders, drivers):
        axes.legend(loc="upper left", fontsize=8)
        axes.grid(alpha=0.3)
    figure.autofmt_xdate()
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
