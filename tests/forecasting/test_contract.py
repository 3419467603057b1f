"""The data contract: valid inputs load; each malformed input gives one clear line."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forecasting.contract import (InputPaths, lagging_regions, load_dataset, mid_slot_regions, region_origins,
                                  resolve_as_of)
from forecasting.errors import DataError
from forecasting.slots import Slot

SLOT = Slot.parse("30min")
REGIONS_CSV = "region,timezone,country\nberlin,Europe/Berlin,DE\nnyc,America/New_York,US\n"


def orders_rows(region: str = "berlin", start: str = "2025-03-01T00:00:00+01:00", slots: int = 96,
                step: str = "30min", tz: str = "Europe/Berlin") -> list[str]:
    stamps = pd.date_range(pd.Timestamp(start), periods=slots, freq=step).tz_convert(tz)
    return [f"{region},{ts.isoformat()},{i % 7}" for i, ts in enumerate(stamps)]


def write(folder: Path, name: str, lines: list[str] | str) -> str:
    path = folder / name
    path.write_text(lines if isinstance(lines, str) else "\n".join(lines) + "\n")
    return str(path)


def load(folder: Path, orders: list[str] | str, *, missing_as_zero: bool = False, slot: Slot = SLOT, **tables):
    paths = InputPaths(
        orders=write(folder, "orders.csv", ["region,ts,orders", *orders] if isinstance(orders, list) else orders),
        regions=write(folder, "regions.csv", REGIONS_CSV),
        **{name: write(folder, f"{name}.csv", text) for name, text in tables.items()},
    )
    return load_dataset(paths, slot, missing_as_zero=missing_as_zero)


def test_valid_orders_load_in_utc_on_the_slot_grid(tmp_path):
    data = load(tmp_path, orders_rows() + orders_rows("nyc", "2025-03-01T00:00:00-05:00", tz="America/New_York"))
    assert set(data.orders["region"]) == {"berlin", "nyc"}
    assert str(data.orders["ts"].dt.tz) == "UTC"
    assert len(data.orders) == 192
    assert data.regions["nyc"].timezone == "America/New_York" and data.regions["berlin"].country == "DE"


def test_finer_input_is_summed_into_slots(tmp_path):
    rows = orders_rows(slots=8, step="15min")  # 15-minute rows, 30-minute slots
    data = load(tmp_path, rows)
    assert len(data.orders) == 4
    assert data.orders["orders"].tolist() == [0 + 1, 2 + 3, 4 + 5, 6 + 0]


def test_missing_slots_are_zero_with_missing_as_zero(tmp_path):
    rows = orders_rows(slots=6)
    del rows[2]
    data = load(tmp_path, rows, missing_as_zero=True)
    assert data.orders["orders"].tolist() == [0, 1, 0, 3, 4, 5]


def test_daily_slots_follow_local_calendar_days_across_dst(tmp_path):
    # Berlin switches to summer time on 2025-03-30: that local day lasts 23 hours.
    rows = orders_rows(start="2025-03-29T00:00:00+01:00", slots=3 * 48 - 2, step="30min")
    data = load(tmp_path, rows, slot=Slot.parse("1D"))
    local_days = data.orders["ts"].dt.tz_convert("Europe/Berlin")
    assert [ts.hour for ts in local_days] == [0, 0, 0]
    assert (data.orders["ts"].iloc[2] - data.orders["ts"].iloc[1]) == pd.Timedelta(hours=23)


def test_daily_rows_across_dst_at_a_fixed_local_hour_are_summed_into_their_days(tmp_path):
    # One row a day at 01:00 Berlin time: off the daily grid, and 23 or 25 hours apart across the change.
    stamps = pd.date_range("2025-03-28T01:00:00", periods=4, freq="D").tz_localize("Europe/Berlin")
    data = load(tmp_path, [f"berlin,{ts.isoformat()},{10 + i}" for i, ts in enumerate(stamps)], slot=Slot.parse("1D"))
    assert [ts.day for ts in data.orders["ts"].dt.tz_convert("Europe/Berlin")] == [28, 29, 30, 31]
    assert data.orders["orders"].tolist() == [10, 11, 12, 13]


@pytest.mark.parametrize("slot, stamps, region, timezone, into", [
    # hourly rows on UTC hours, for a region at UTC+05:30: each row is half in the next local slot
    ("1h", pd.date_range("2025-03-01T00:00:00Z", periods=30, freq="1h"), "mumbai", "Asia/Kolkata", "30 min"),
    # daily rows at UTC midnight, for New York: 19:00 local, so each day would count as the day before
    ("1D", pd.date_range("2025-03-01T00:00:00Z", periods=10, freq="D"), "nyc", "America/New_York", "19 h"),
])
def test_rows_a_slot_apart_half_or_more_in_the_next_slot_are_refused_not_shifted(tmp_path, slot, stamps, region,
                                                                                 timezone, into):
    paths = InputPaths(orders=write(tmp_path, "orders.csv", ["region,ts,orders"] + [
                           f"{region},{ts.isoformat()},{i % 5}" for i, ts in enumerate(stamps)]),
                       regions=write(tmp_path, "regions.csv", f"region,timezone,country\n{region},{timezone},US\n"))
    with pytest.raises(DataError, match=f"column 'ts' row 1: .* is not on the {slot} slot grid .*{timezone}.*: "
                                        f"it starts {into} into its slot, and the region's rows are whole slots"):
        load_dataset(paths, Slot.parse(slot))


def test_daily_rows_at_utc_midnight_east_of_utc_count_in_their_local_day(tmp_path):
    # 01:00 in Berlin (02:00 in summer): most of each UTC day lies in the local day it starts in
    stamps = pd.date_range("2025-03-28T00:00:00Z", periods=5, freq="D").tz_convert("Europe/Berlin")
    data = load(tmp_path, [f"berlin,{ts.isoformat()},{10 + i}" for i, ts in enumerate(stamps)], slot=Slot.parse("1D"))
    assert [ts.day for ts in data.orders["ts"].dt.tz_convert("Europe/Berlin")] == [28, 29, 30, 31, 1]
    assert data.orders["orders"].tolist() == [10, 11, 12, 13, 14]


def test_missing_regions_table_means_utc_and_a_warning(tmp_path):
    paths = InputPaths(orders=write(tmp_path, "orders.csv", ["region,ts,orders", *orders_rows(tz="UTC")]))
    data = load_dataset(paths, SLOT)
    assert data.regions["berlin"].timezone == "UTC" and data.regions["berlin"].country is None
    assert any("no regions table" in note for note in data.warnings)


def test_parquet_input_with_tz_aware_timestamps(tmp_path):
    frame = pd.DataFrame({"region": "berlin", "ts": pd.date_range("2025-03-01", periods=4, freq="30min", tz="UTC"),
                          "orders": [1, 2, 3, 4]})
    frame.to_parquet(tmp_path / "orders.parquet")
    data = load_dataset(InputPaths(orders=str(tmp_path / "orders.parquet")), SLOT)
    assert data.orders["orders"].tolist() == [1, 2, 3, 4]


def test_folder_of_files_is_one_table(tmp_path):
    folder = tmp_path / "orders"
    folder.mkdir()
    rows = orders_rows(slots=8)
    write(folder, "part-1.csv", ["region,ts,orders", *rows[:4]])
    write(folder, "part-2.csv", ["region,ts,orders", *rows[4:]])
    data = load_dataset(InputPaths(orders=str(folder), regions=write(tmp_path, "regions.csv", REGIONS_CSV)), SLOT)
    assert len(data.orders) == 8


# Malformed inputs are a corpus of files, run through the command line:
# tests/corpus/malformed/ and tests/deployments/test_malformed_corpus.py.


def test_as_of_defaults_to_one_slot_after_the_last_orders_slot(tmp_path):
    data = load(tmp_path, orders_rows(slots=4))
    assert resolve_as_of(data, SLOT, None) == pd.Timestamp("2025-03-01T02:00:00+01:00")


@pytest.mark.parametrize("as_of, problem", [
    ("2025-03-01T02:00:00", "no UTC offset"),
    ("2025-03-01T02:10:00+01:00", "not on the 30min slot grid of region 'berlin'"),
    ("yesterday", "not an ISO-8601 timestamp"),
])
def test_bad_as_of(tmp_path, as_of, problem):
    data = load(tmp_path, orders_rows(slots=4))
    with pytest.raises(DataError, match=problem):
        resolve_as_of(data, SLOT, as_of)


def test_an_as_of_inside_a_regions_local_day_is_named_with_daily_slots(tmp_path):
    rows = [f"{region},{day.isoformat()},5" for region, tz in (("berlin", "Europe/Berlin"), ("nyc", "America/New_York"))
            for day in pd.date_range("2025-03-01", periods=20, freq="D", tz=tz)]
    data = load(tmp_path, rows, slot=Slot.parse("1D"))
    berlin_midnight = pd.Timestamp("2025-03-15T00:00:00+01:00")  # 19:00 the day before in New York
    new_york_midnight = pd.Timestamp("2025-03-15T00:00:00-04:00")  # daylight saving since 9 March; 05:00 in Berlin
    [note] = mid_slot_regions(data, Slot.parse("1D"), berlin_midnight)
    assert "inside the local day of 1 region(s): nyc." in note and "--as-of per-region" in note
    [note] = mid_slot_regions(data, Slot.parse("1D"), new_york_midnight)
    assert "inside the local day of 1 region(s): berlin." in note
    [note] = mid_slot_regions(data, Slot.parse("1D"), pd.Timestamp("2025-03-15T12:00:00Z"))
    assert "inside the local day of 2 region(s): berlin, nyc." in note
    assert mid_slot_regions(data, SLOT, berlin_midnight) == []  # on the 30-minute grid of both


def test_an_as_of_on_one_clocks_grid_only_starts_the_other_regions_at_their_next_slot(tmp_path):
    """Hourly slots in Berlin and Kolkata (UTC+05:30) never share a start: an explicit --as-of
    on Berlin's grid is inside a Kolkata slot, which is named and neither history nor horizon."""
    hourly = Slot.parse("1h")
    rows = [f"{region},{ts.isoformat()},5" for region, tz in (("berlin", "Europe/Berlin"), ("kolkata", "Asia/Kolkata"))
            for ts in pd.date_range("2025-03-01", periods=24 * 20, freq="h", tz=tz)]
    regions = write(tmp_path, "regions.csv", ["region,timezone,country", "berlin,Europe/Berlin,DE",
                                              "kolkata,Asia/Kolkata,IN"])
    data = load_dataset(InputPaths(orders=write(tmp_path, "orders.csv", ["region,ts,orders", *rows]),
                                   regions=regions), hourly)
    berlin_hour = "2025-03-15T12:00:00+01:00"
    assert resolve_as_of(data, hourly, berlin_hour) == pd.Timestamp(berlin_hour)
    [note] = mid_slot_regions(data, hourly, pd.Timestamp(berlin_hour))
    assert "falls inside a 1h slot of 1 region(s): kolkata." in note and "their next slot" in note
    with pytest.raises(DataError, match="is not on the 1h slot grid of any of the 2 regions"):
        resolve_as_of(data, hourly, "2025-03-15T12:10:00+01:00")
    # both extracts cut at one instant: Kolkata's last whole hour ends half an hour before Berlin's,
    # which is not a lag; by default it starts from its own end, without a warning
    cut = pd.Timestamp("2025-03-15T12:00:00Z")
    at_cut = [row for row in rows if hourly.ends(pd.Series([pd.Timestamp(row.split(",")[1])]),
                                                 "UTC").iloc[0] <= cut]
    data = load_dataset(InputPaths(orders=write(tmp_path, "orders.csv", ["region,ts,orders", *at_cut]),
                                   regions=regions), hourly)
    origins = region_origins(data, hourly, None)
    assert origins == {"berlin": cut, "kolkata": cut - pd.Timedelta(minutes=30)}
    assert lagging_regions(data, hourly, origins) == []


def test_daily_regions_cut_at_their_own_midnights_start_there_by_default(tmp_path):
    """Berlin's and New York's days through 20 March: New York's midnight is the latest end, six
    hours into Berlin's 21 March, which is Berlin's first forecast day, without a lag warning.
    A region a whole day behind keeps the shared origin and is named."""
    daily = Slot.parse("1D")
    rows = [f"{region},{day.isoformat()},5" for region, tz in (("berlin", "Europe/Berlin"), ("nyc", "America/New_York"))
            for day in pd.date_range("2025-03-01", periods=20, freq="D", tz=tz)]
    data = load(tmp_path, rows, slot=daily)
    origins = region_origins(data, daily, None)
    assert origins == {"berlin": pd.Timestamp("2025-03-21T00:00:00+01:00"),
                       "nyc": pd.Timestamp("2025-03-21T00:00:00-04:00")}
    assert lagging_regions(data, daily, origins) == []
    assert set(region_origins(data, daily, "2025-03-21T00:00:00-04:00").values()) == {origins["nyc"]}  # as given
    behind = load(tmp_path, rows[:19] + rows[20:], slot=daily)  # Berlin's 20 March missing
    origins = region_origins(behind, daily, None)
    assert origins["berlin"] == origins["nyc"] == pd.Timestamp("2025-03-21T00:00:00-04:00")
    [warning] = lagging_regions(behind, daily, origins)
    assert "berlin (29 h) behind" in warning


def test_header_only_exogenous_tables_mean_none(tmp_path):
    data = load(tmp_path, orders_rows(slots=4), events="region,start,end,kind\n",
                promotions="region,start,end,intensity\n")
    assert data.events is not None and data.events.empty and data.promotions.empty


def test_skip_invalid_regions_keeps_the_valid_ones(tmp_path):
    orders = (orders_rows(slots=6) + orders_rows("nyc", "2025-03-01T00:00:00-05:00", slots=5, tz="America/New_York")
              + ["nyc,2025-03-01T02:30:00-05:00,-4"] + orders_rows("paris", slots=6))
    weather = "region,ts,temperature\nberlin,2025-03-01T00:00:00+01:00,3.5\nnyc,2025-03-01T00:00:00-05:00,cold\n"
    events = "region,start,end,kind\nparis,2025-03-01T18:00:00+01:00,2025-03-01T21:00:00+01:00,home_game\n"
    with pytest.raises(DataError, match="column 'orders' row 12: '-4' is negative"):
        load(tmp_path, orders, weather=weather, events=events)
    data = load_dataset(InputPaths(orders=str(tmp_path / "orders.csv"), regions=str(tmp_path / "regions.csv"),
                                   weather=str(tmp_path / "weather.csv"), events=str(tmp_path / "events.csv")),
                        SLOT, skip_invalid_regions=True)
    assert sorted(data.regions) == ["berlin"] and set(data.orders["region"]) == {"berlin"}
    assert list(data.weather["region"]) == ["berlin"] and data.events is None  # only rows of skipped regions
    assert sorted(data.invalid) == ["nyc", "paris"]
    assert "column 'orders' row 12: '-4' is negative" in data.invalid["nyc"]
    assert "no row for region 'paris'" in data.invalid["paris"]


def test_skip_invalid_regions_still_stops_when_nothing_is_left(tmp_path):
    write(tmp_path, "orders.csv", ["region,ts,orders", "berlin,2025-03-01T00:00:00+01:00,-1"])
    with pytest.raises(DataError, match="every region has invalid inputs.*is negative"):
        load_dataset(InputPaths(orders=str(tmp_path / "orders.csv")), SLOT, skip_invalid_regions=True)


def test_one_missing_slot_is_named_in_the_singular(tmp_path):
    (tmp_path / "orders.csv").write_text("region,ts,orders\nberlin,2025-03-01T00:00:00+01:00,3\n"
                                         "berlin,2025-03-01T01:00:00+01:00,4\n")
    with pytest.raises(DataError, match="region 'berlin' has 1 missing slot of 30min inside its history"):
        load_dataset(InputPaths(str(tmp_path / "orders.csv")), Slot.parse("30min"))


def test_regions_whose_orders_end_before_the_default_as_of_are_named_with_their_gap(tmp_path):
    """Extracts cut at local midnight in two time zones: Berlin's data end 6 hours before New York's."""
    data = load(tmp_path, orders_rows(slots=96) + orders_rows("nyc", "2025-03-01T00:00:00-05:00", slots=96,
                                                              tz="America/New_York"))
    as_of = resolve_as_of(data, SLOT, None)
    assert as_of == pd.Timestamp("2025-03-03T05:00:00Z")  # New York's local midnight
    [warning] = lagging_regions(data, SLOT, region_origins(data, SLOT, None))
    assert "1 region(s) have orders ending before as_of 2025-03-03T05:00:00+00:00" in warning
    assert "berlin (6 h) behind" in warning and "nyc" not in warning.split("regions):")[1]
    assert "pass --as-of per-region (each region from its own end)" in warning
    earlier = pd.Timestamp("2025-03-02T23:00:00Z")
    assert lagging_regions(data, SLOT, {"berlin": earlier, "nyc": earlier}) == []


def open_hours_rows(region: str, tz: str, last_local: str) -> list[str]:
    """Five weeks of a restaurant open 11:00-22:00 local: rows for its open slots only, up to and
    including `last_local` (local wall time)."""
    stamps = pd.date_range("2025-04-01", pd.Timestamp(last_local), freq="30min").tz_localize(tz)
    hours = stamps.hour
    return [f"{region},{ts.isoformat()},{1 + i % 5}" for i, ts in enumerate(stamps) if 11 <= hours[i] < 22]


def test_a_region_whose_orders_end_at_its_closing_time_is_not_behind(tmp_path):
    """Berlin closes at 22:00, six hours before New York's last orders: its missing night is
    closing time, as in its last four weeks, not an extract cut early."""
    nyc = open_hours_rows("nyc", "America/New_York", "2025-05-06 21:30")
    closed = load(tmp_path, open_hours_rows("berlin", "Europe/Berlin", "2025-05-06 21:30") + nyc,
                  missing_as_zero=True)
    assert resolve_as_of(closed, SLOT, None) == pd.Timestamp("2025-05-07T02:00:00Z")  # New York's 22:00
    assert lagging_regions(closed, SLOT, region_origins(closed, SLOT, None)) == []
    cut_early = load(tmp_path, open_hours_rows("berlin", "Europe/Berlin", "2025-05-06 17:30") + nyc,
                     missing_as_zero=True)
    [warning] = lagging_regions(cut_early, SLOT, region_origins(cut_early, SLOT, None))
    assert "berlin (10 h) behind" in warning


def test_one_row_per_order_is_summed_into_local_slots(tmp_path):
    """An export of order events: no orders column, any time of day (seconds too), several
    orders at one instant; slots without an order are zero orders, no --missing-as-zero needed."""
    rows = ["region,ts,order_id",
            "berlin,2025-03-01T11:59:59+01:00,a1",   # 11:30-12:00 local
            "berlin,2025-03-01T12:00:00+01:00,a2",   # 12:00-12:30
            "berlin,2025-03-01T12:14:03+01:00,a3",
            "berlin,2025-03-01T12:14:03+01:00,a4",   # the same second as a3
            "berlin,2025-03-01T13:45:10+01:00,a5"]   # 13:30-14:00; 12:30-13:30 had none
    data = load(tmp_path, "\n".join(rows) + "\n")
    local = data.orders.assign(ts=data.orders["ts"].dt.tz_convert("Europe/Berlin").dt.strftime("%H:%M"))
    assert local[["ts", "orders"]].values.tolist() == [["11:30", 1], ["12:00", 3], ["12:30", 0], ["13:00", 0],
                                                        ["13:30", 1]]


@pytest.mark.parametrize("header, rows", [
    # a shop system's export: numeric order ids and the basket's value, stamped to the minute
    ("order_id,region,ts,amount", ["1017,berlin,2025-03-01T11:59:00+01:00,23.50",
                                   "1018,berlin,2025-03-01T12:14:00+01:00,9.90",
                                   "1019,berlin,2025-03-01T13:45:00+01:00,31.00"]),
    ("OrderID,region,ts", ["7,berlin,2025-03-01T11:59:00+01:00", "8,berlin,2025-03-01T12:14:00+01:00",
                           "9,berlin,2025-03-01T13:45:00+01:00"]),
    # no id column, but stamped to the second: events, not a table of measures
    ("region,ts,amount", ["berlin,2025-03-01T11:59:59+01:00,23.50", "berlin,2025-03-01T12:14:03+01:00,9.90",
                          "berlin,2025-03-01T13:45:10+01:00,31.00"]),
])
def test_an_export_with_numeric_ids_or_values_is_order_rows(tmp_path, header, rows):
    data = load(tmp_path, "\n".join([header, *rows]) + "\n")
    local = data.orders.assign(ts=data.orders["ts"].dt.tz_convert("Europe/Berlin").dt.strftime("%H:%M"))
    assert local[["ts", "orders"]].values.tolist() == [["11:30", 1], ["12:00", 1], ["12:30", 0], ["13:00", 0],
                                                        ["13:30", 1]]


def test_a_table_of_measures_on_the_slot_grid_is_not_taken_for_orders(tmp_path):
    rows = ["region,ts,temperature", "berlin,2025-03-01T00:00:00+01:00,3.5", "berlin,2025-03-01T00:30:00+01:00,4.0"]
    with pytest.raises(DataError, match="missing column 'orders' \\(the file looks like the weather table\\)"):
        load(tmp_path, "\n".join(rows) + "\n")


def test_an_orders_column_of_ones_with_repeated_instants_is_order_rows(tmp_path):
    rows = ["region,ts,orders", "berlin,2025-03-01T12:00:00+01:00,1", "berlin,2025-03-01T12:00:00+01:00,1",
            "berlin,2025-03-01T12:40:00+01:00,1"]
    data = load(tmp_path, "\n".join(rows) + "\n")
    assert data.orders["orders"].tolist() == [2, 1]


@pytest.mark.parametrize("country, error", [
    ("DE-BY", None),
    ("US-CA", None),
    ("DE-XX", "column 'country' row 1: 'DE-XX' names a subdivision the holidays package does not know"),
    ("XX-BY", "column 'country' row 1: 'XX-BY' is not a country code known to the holidays package"),
])
def test_a_country_code_may_carry_its_subdivision(tmp_path, country, error):
    regions = write(tmp_path, "regions.csv", f"region,timezone,country\nberlin,Europe/Berlin,{country}\n")
    paths = InputPaths(orders=write(tmp_path, "orders.csv", ["region,ts,orders", *orders_rows()]), regions=regions)
    if error is None:
        assert load_dataset(paths, SLOT).regions["berlin"].country == country
    else:
        with pytest.raises(DataError, match=error):
            load_dataset(paths, SLOT)
