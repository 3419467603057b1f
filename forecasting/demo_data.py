"""A seeded, realistic synthetic data set in exactly the input contract.

Orders per 30-minute slot come from a demand curve with region-specific lunch and dinner
peaks, a weekly pattern, yearly season, trend, real holiday calendars, weather (rain raises
orders), sports events and promotions, multiplied by latent effects that are *not* in the
inputs (demand shocks, day-to-day drift) and drawn with negative binomial noise. Two regions
have short histories and one is small and sparse. Exogenous tables extend past the last
orders slot, as weather forecasts and planned events and promotions would.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

from forecasting.contract import InputPaths
from forecasting.slots import Slot
from forecasting.storage import atomic_write_bytes

DEMO_EXTRACTED_AT = pd.Timestamp("2026-11-02T06:00:00Z")  # orders of every region end here, as in a daily extract
FUTURE_DAYS = 35
NB_DISPERSION = 6.0


@dataclass(frozen=True)
class RegionTemplate:
    name: str
    timezone: str
    country: str
    climate_c: float  # mean temperature
    peak_orders: float  # expected orders in a typical dinner-peak slot
    sports: bool
    lunch_size: tuple[float, float] = (0.35, 0.8)  # lunch peak relative to dinner
    regime_shift: bool = False  # an unannounced change of the weekly pattern in the last months


TEMPLATES = [
    RegionTemplate("nyc-midtown", "America/New_York", "US", 13.0, 80, True),
    RegionTemplate("berlin-mitte", "Europe/Berlin", "DE", 10.0, 60, False),
    RegionTemplate("london-soho", "Europe/London", "GB", 11.0, 70, True),
    RegionTemplate("chicago-loop", "America/Chicago", "US", 10.0, 55, True),
    RegionTemplate("munich-center", "Europe/Berlin", "DE", 9.0, 45, True),
    RegionTemplate("nyc-brooklyn", "America/New_York", "US", 13.0, 50, False),
    RegionTemplate("berlin-kreuzberg", "Europe/Berlin", "DE", 10.0, 40, True),
    RegionTemplate("manchester-center", "Europe/London", "GB", 10.0, 35, True),
    RegionTemplate("hamburg-altona", "Europe/Berlin", "DE", 9.5, 30, False),
    RegionTemplate("austin-downtown", "America/Chicago", "US", 20.0, 25, True),
    RegionTemplate("boston-back-bay", "America/New_York", "US", 11.0, 30, False),
    RegionTemplate("leeds-center", "Europe/London", "GB", 9.5, 1.2, False),
]
SUBURB_TEMPLATES = [
    RegionTemplate("newark-suburbs", "America/New_York", "US", 12.0, 18, False, (0.05, 0.15), True),
    RegionTemplate("potsdam", "Europe/Berlin", "DE", 9.5, 12, False, (0.05, 0.15), False),
    RegionTemplate("croydon", "Europe/London", "GB", 10.5, 15, False, (0.1, 0.2), True),
    RegionTemplate("evanston", "America/Chicago", "US", 9.0, 10, False, (0.05, 0.15), False),
    RegionTemplate("fuerth", "Europe/Berlin", "DE", 9.5, 8, False, (0.1, 0.2), True),
    RegionTemplate("watford", "Europe/London", "GB", 10.0, 9, False, (0.05, 0.15), False),
    RegionTemplate("yonkers", "America/New_York", "US", 12.0, 14, False, (0.05, 0.15), True),
    RegionTemplate("naperville", "America/Chicago", "US", 9.0, 6, False, (0.1, 0.2), False),
]
PROFILES = {"city": TEMPLATES, "suburb": SUBURB_TEMPLATES}
SHORT_HISTORY_DAYS = {"austin-downtown": 150, "boston-back-bay": 60}


def region_templates(count: int, profile: str = "city") -> list[RegionTemplate]:
    """The first `count` regions of a profile; past its list, templates repeat with a numeric suffix."""
    templates = PROFILES[profile]
    chosen = []
    for index in range(count):
        base = templates[index % len(templates)]
        suffix = index // len(templates)
        chosen.append(base if suffix == 0 else replace(base, name=f"{base.name}-{suffix + 1}"))
    return chosen


def generate(
    regions: int = 12, years: float = 2.0, seed: int = 0, progress: Callable[[str], None] | None = None,
    profile: str = "city",
) -> dict[str, pd.DataFrame]:
    """Tables `orders`, `weather`, `events`, `promotions`, `regions` (timestamps tz-aware).

    Profile `city` (the demo): busy city regions with lunch and dinner peaks and sports
    events. Profile `suburb`: small dinner-driven regions, some of which change their weekly
    pattern without notice a few months before the end, so that different models win.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got '{profile}'")
    if regions < 1:
        raise ValueError(f"regions must be >= 1, got {regions}")
    if years <= 0:
        raise ValueError(f"years must be > 0, got {years}")
    rng = np.random.default_rng(seed)
    tables: dict[str, list[pd.DataFrame]] = {"orders": [], "weather": [], "events": [], "promotions": []}
    for template in region_templates(regions, profile):
        region_rng = np.random.default_rng(rng.integers(2**63))
        for name, frame in _region(template, years, region_rng).items():
            tables[name].append(frame)
        if progress:
            progress(template.name)
    result = {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items()}
    result["regions"] = pd.DataFrame(
        [(t.name, t.timezone, t.country) for t in region_templates(regions, profile)],
        columns=["region", "timezone", "country"]
    )
    return result


def _region(template: RegionTemplate, years: float, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    tz = template.timezone
    end = DEMO_EXTRACTED_AT
    last_day = end.tz_convert(tz).tz_localize(None).normalize()
    history_days = SHORT_HISTORY_DAYS.get(template.name, int(round(years * 365)))
    start = (last_day - pd.Timedelta(days=history_days)).tz_localize(tz).tz_convert("UTC")
    future_end = (last_day + pd.Timedelta(days=FUTURE_DAYS)).tz_localize(tz).tz_convert("UTC")
    slot = Slot.parse("30min")
    grid = slot.grid(start, future_end, tz)
    local = grid.tz_convert(tz)
    hour = np.asarray(local.hour + local.minute / 60.0)
    dow = np.asarray(local.day_of_week)
    day = np.asarray(local.tz_localize(None).normalize())

    weather = _weather(template, grid, local, rng)
    events = _events(template, start, future_end, rng)
    promotions = _promotions(template, start, future_end, rng)

    lunch_center, dinner_center = rng.uniform(11.8, 12.9), rng.uniform(18.7, 20.0)
    lunch_size, dinner_size = rng.uniform(*template.lunch_size), 1.0
    shape = (
        0.06
        + lunch_size * np.exp(-0.5 * ((hour - lunch_center) / rng.uniform(0.8, 1.3)) ** 2)
        + dinner_size * np.exp(-0.5 * ((hour - dinner_center) / rng.uniform(1.2, 1.8)) ** 2)
        + 0.12 * np.clip(hour - 21.0, 0, None)
    )
    shape = np.where((hour >= 3) & (hour < 7), shape * 0.08, shape)
    is_lunch = (hour >= 10.5) & (hour < 15)
    weekly_dinner = np.array([0.85, 0.9, 0.95, 1.0, 1.25, 1.3, 1.1]) * rng.uniform(0.95, 1.05, 7)
    weekly_lunch = np.array([1.05, 1.05, 1.05, 1.05, 1.0, 0.8, 0.9]) * rng.uniform(0.95, 1.05, 7)
    weekly = np.where(is_lunch, weekly_lunch[dow], weekly_dinner[dow])

    years_in = np.asarray((grid - grid[0]) / pd.Timedelta(days=365.25))
    trend = np.exp(rng.uniform(-0.05, 0.2) * years_in)
    season = 1 + 0.08 * np.cos(2 * np.pi * (np.asarray(local.day_of_year) - 20) / 365.25)

    calendar = holidays.country_holidays(template.country, years=range(local.year.min(), local.year.max() + 1))
    holiday_days = np.isin(day, np.array([np.datetime64(d) for d in calendar], dtype="datetime64[ns]"))
    holiday = np.where(holiday_days, np.where(is_lunch, 0.75, 1.3), 1.0)

    rain = np.clip(weather["precipitation"].to_numpy(), 0, 4)
    cold = np.clip(8.0 - weather["temperature"].to_numpy(), 0, 15)
    weather_effect = (1 + 0.09 * rain) * (1 + 0.012 * cold)

    event_lift = np.ones(len(grid))
    for row in events.itertuples():
        window = (grid >= row.start - pd.Timedelta(hours=1)) & (grid < row.end)
        event_lift[np.asarray(window)] *= 1.45 if row.kind == "home_game" else 1.25
    promo_lift = np.ones(len(grid))
    for row in promotions.itertuples():
        window = (grid >= row.start) & (grid < row.end)
        promo_lift[np.asarray(window)] *= 1 + row.intensity

    latent = _latent_effects(day, rng)
    if template.regime_shift:  # e.g. a competitor opens: weekday dinners drop, weekends grow
        shift_at = end - pd.Timedelta(days=int(rng.integers(60, 150)))
        after = np.asarray(grid >= shift_at)
        latent = latent * np.where(after & (dow < 4), 0.7, np.where(after & (dow >= 4), 1.25, 1.0))
    mean = (template.peak_orders / 1.1) * shape * weekly * trend * season * holiday
    mean = mean * weather_effect * event_lift * promo_lift * latent
    orders = rng.poisson(rng.gamma(NB_DISPERSION, mean / NB_DISPERSION))

    observed = grid < end
    return {
        "orders": pd.DataFrame({"region": template.name, "ts": grid[observed], "orders": orders[observed]}),
        "weather": weather.assign(region=template.name)[["region", "ts", "temperature", "precipitation"]]
        .iloc[::2].reset_index(drop=True),
        "events": events.assign(region=template.name)[["region", "start", "end", "kind"]],
        "promotions": promotions.assign(region=template.name)[["region", "start", "end", "intensity"]],
    }


def _weather(template: RegionTemplate, grid: pd.DatetimeIndex, local: pd.DatetimeIndex,
             rng: np.random.Generator) -> pd.DataFrame:
    """Hourly temperature and precipitation, held for both slots of each hour."""
    n = len(grid)
    hour = np.asarray(local.hour + local.minute / 60.0)
    season = -np.cos(2 * np.pi * (np.asarray(local.day_of_year) - 20) / 365.25)
    drift = _ar1(n // 48 + 2, 0.8, 2.0, rng)[np.arange(n) // 48]
    temperature = template.climate_c + 9 * season + 4 * np.sin(2 * np.pi * (hour - 9) / 24) + drift
    raining = np.zeros(n, dtype=bool)
    state = False
    draws = rng.random(n // 2 + 1)
    for hour_index in range(n // 2 + 1):
        state = draws[hour_index] < (0.82 if state else 0.035)
        raining[2 * hour_index: 2 * hour_index + 2] = state
    intensity = rng.gamma(1.5, 1.0, n // 2 + 1).repeat(2)[:n]
    precipitation = np.where(raining, intensity, 0.0)
    hourly = np.arange(n) // 2 * 2
    return pd.DataFrame({
        "ts": grid,
        "temperature": np.round(temperature[hourly], 1),
        "precipitation": np.round(precipitation[hourly], 1),
    })


def _events(template: RegionTemplate, start: pd.Timestamp, end: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    if template.sports:
        day = start.tz_convert(template.timezone).normalize()
        while day < end:
            day = (day + pd.Timedelta(days=int(rng.integers(6, 15)))).normalize()
            kick_off = day + pd.Timedelta(hours=float(rng.choice([18.5, 19.0, 19.5, 20.0])))
            kind = "home_game" if rng.random() < 0.75 else "concert"
            rows.append((kick_off.tz_convert("UTC"), (kick_off + pd.Timedelta(hours=3)).tz_convert("UTC"), kind))
    frame = _interval_frame(rows, "kind")
    return frame.loc[frame["start"] < end].reset_index(drop=True)


def _promotions(template: RegionTemplate, start: pd.Timestamp, end: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    day = start.tz_convert(template.timezone).normalize()
    while True:
        day = (day + pd.Timedelta(days=int(rng.integers(25, 60)))).normalize()
        if day >= end:
            break
        length = pd.Timedelta(days=int(rng.integers(2, 6)))
        rows.append((day.tz_convert("UTC"), (day + length).tz_convert("UTC"), round(float(rng.uniform(0.1, 0.5)), 2)))
    return _interval_frame(rows, "intensity")


def _interval_frame(rows: list[tuple], value: str) -> pd.DataFrame:
    """Typed start/end/value frame, also when there are no rows."""
    starts, ends, values = zip(*rows) if rows else ((), (), ())
    return pd.DataFrame({
        "start": pd.to_datetime(list(starts), utc=True).as_unit("ns"),
        "end": pd.to_datetime(list(ends), utc=True).as_unit("ns"),
        value: list(values),
    })


def _latent_effects(day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Day-level drift and occasional multi-day shocks that no input explains."""
    days, index = np.unique(day, return_inverse=True)
    drift = np.exp(_ar1(len(days), 0.7, 0.07, rng))
    shocks = np.ones(len(days))
    for _ in range(max(1, len(days) // 90)):
        first = int(rng.integers(0, len(days)))
        shocks[first:first + int(rng.integers(2, 5))] *= rng.choice([0.7, 1.3])
    return (drift * shocks)[index]


def _ar1(n: int, phi: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    values = np.zeros(n)
    shocks = rng.normal(0, sd * np.sqrt(1 - phi**2), n)
    for i in range(1, n):
        values[i] = phi * values[i - 1] + shocks[i]
    return values


def iso_with_offset(ts: pd.Series, tz: pd.Series) -> pd.Series:
    """ISO-8601 text in each row's local time with its UTC offset, e.g. 2026-03-01T12:30:00+01:00."""
    out = pd.Series(index=ts.index, dtype=object)
    for zone, rows in ts.groupby(tz):
        local = rows.dt.tz_convert(zone)
        offset = ((local.dt.tz_localize(None) - rows.dt.tz_localize(None)) / pd.Timedelta(minutes=1)).astype(int)
        sign = np.where(offset < 0, "-", "+")
        hours, minutes = np.abs(offset) // 60, np.abs(offset) % 60
        suffix = pd.Series(sign, index=rows.index) + pd.Series(hours, index=rows.index).map("{:02d}".format) + ":" + \
            pd.Series(minutes, index=rows.index).map("{:02d}".format)
        out.loc[rows.index] = local.dt.strftime("%Y-%m-%dT%H:%M:%S") + suffix
    return out


def csv_paths(folder: str | Path) -> InputPaths:
    """The input paths of a data set written by `write_csv` into `folder`."""
    return InputPaths(**{field.name: str(Path(folder) / f"{field.name}.csv") for field in fields(InputPaths)})


def demo_staffing(regions: list[str]) -> pd.DataFrame:
    """A staffing table for the demo regions: deliveries per driver-hour, costs and shift rules
    of a plausible city delivery service (seeded by the region names, so it is stable)."""
    rows = []
    for region in regions:
        rng = np.random.default_rng(sum(region.encode()))
        rows.append({"region": region, "orders_per_driver_hour": round(float(rng.uniform(2.2, 3.0)), 1),
                     "driver_hour_cost": round(float(rng.uniform(13, 18))), "late_order_cost": 10,
                     "min_drivers": 1, "max_drivers": "", "min_shift_hours": 2, "max_shift_hours": 6,
                     "shift_start_step": 0.5})
    return pd.DataFrame(rows)


def write_csv(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> dict[str, Path]:
    """Write the tables as CSV files with local-time ISO-8601 timestamps; returns their paths."""
    out_dir = Path(out_dir)
    zones = tables["regions"].set_index("region")["timezone"]
    written = {}
    for name, frame in tables.items():
        frame = frame.copy()
        for column in ("ts", "start", "end"):
            if column in frame:
                frame[column] = iso_with_offset(frame[column], frame["region"].map(zones))
        path = out_dir / f"{name}.csv"
        atomic_write_bytes(path, frame.to_csv(index=False).encode())
        written[name] = path
    return written
