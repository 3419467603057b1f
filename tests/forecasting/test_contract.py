"""The data contract: valid inputs load; each malformed input gives one clear line."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forecasting.contract import InputPaths, load_dataset, resolve_as_of
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


MALFORMED_ORDERS = {
    "missing column": ("region,ts,order\nberlin,2025-03-01T00:00:00+01:00,3\n",
                       ["orders.csv", "missing column 'orders'", "'order'"]),
    "empty input": ("region,ts,orders\n", ["orders.csv", "no rows"]),
    "not a number": (orders_rows(slots=3) + ["berlin,2025-03-01T01:30:00+01:00,many"],
                     ["orders.csv", "column 'orders' row 4", "'many'", "not a number"]),
    "negative orders": (orders_rows(slots=3) + ["berlin,2025-03-01T01:30:00+01:00,-2"],
                        ["orders.csv", "column 'orders' row 4", "negative"]),
    "fractional orders": (orders_rows(slots=3) + ["berlin,2025-03-01T01:30:00+01:00,2.5"],
                          ["orders.csv", "column 'orders' row 4", "whole number"]),
    "unparseable timestamp": (orders_rows(slots=3) + ["berlin,2025-13-01T00:00:00+01:00,2"],
                              ["orders.csv", "column 'ts' row 4", "'2025-13-01T00:00:00+01:00'", "not an ISO-8601"]),
    "naive timestamp": (orders_rows(slots=3) + ["berlin,2025-03-01T01:30:00,2"],
                        ["orders.csv", "column 'ts' row 4", "no UTC offset"]),
    "duplicate rows": (orders_rows(slots=3) + ["berlin,2025-03-01T00:30:00+01:00,9"],
                       ["orders.csv", "rows 2 and 4", "duplicate (region, ts)", "region=berlin"]),
    "off the slot grid": (orders_rows(slots=3) + ["berlin,2025-03-01T01:37:00+01:00,2"],
                          ["orders.csv", "column 'ts' row 4", "not on the 30min slot grid", "Europe/Berlin"]),
    "missing slots": (orders_rows(slots=3) + ["berlin,2025-03-01T03:00:00+01:00,2"],
                      ["orders.csv", "region 'berlin' has 3 missing 30min slots", "--missing-as-zero"]),
    "coarser than the slot": (orders_rows(slots=6, step="60min"),
                              ["orders.csv", "region 'berlin'", "coarser than --slot 30min"]),
    "empty region name": (orders_rows(slots=3) + [",2025-03-01T01:30:00+01:00,2"],
                          ["orders.csv", "column 'region' row 4", "empty"]),
    "region missing from regions table": (orders_rows(slots=3) + ["paris,2025-03-01T01:30:00+01:00,2"],
                                          ["regions.csv", "no row for region 'paris'", "orders.csv row 4"]),
}


@pytest.mark.parametrize("case", list(MALFORMED_ORDERS))
def test_malformed_orders_give_one_clear_line(tmp_path, case):
    orders, expected = MALFORMED_ORDERS[case]
    with pytest.raises(DataError) as caught:
        load(tmp_path, orders)
    message = str(caught.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: orders file not found"):
        load_dataset(InputPaths(orders=str(tmp_path / "nope.csv")), SLOT)


def test_unreadable_files_are_named(tmp_path):
    (tmp_path / "orders.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"orders\.parquet: cannot read as Parquet"):
        load_dataset(InputPaths(orders=str(tmp_path / "orders.parquet")), SLOT)
    (tmp_path / "orders.csv").write_bytes(b"region,ts,orders\n\xff\xfe\x00bad,\x81\n")
    with pytest.raises(DataError, match=r"orders\.csv: cannot read as CSV"):
        load_dataset(InputPaths(orders=str(tmp_path / "orders.csv")), SLOT)


def test_naive_parquet_timestamps_are_rejected(tmp_path):
    frame = pd.DataFrame({"region": "berlin", "ts": pd.date_range("2025-03-01", periods=2, freq="30min"),
                          "orders": [1, 2]})
    frame.to_parquet(tmp_path / "orders.parquet")
    with pytest.raises(DataError, match=r"orders\.parquet: column 'ts' row 1: .* naive timestamp"):
        load_dataset(InputPaths(orders=str(tmp_path / "orders.parquet")), SLOT)


def test_regions_table_errors(tmp_path):
    orders = write(tmp_path, "orders.csv", ["region,ts,orders", *orders_rows(slots=2)])
    bad_zone = write(tmp_path, "regions.csv", "region,timezone,country\nberlin,Europe/Berlim,DE\n")
    with pytest.raises(DataError, match=r"regions\.csv: column 'timezone' row 1: 'Europe/Berlim' is not an IANA"):
        load_dataset(InputPaths(orders=orders, regions=bad_zone), SLOT)
    bad_country = write(tmp_path, "regions.csv", "region,timezone,country\nberlin,Europe/Berlin,XX\n")
    with pytest.raises(DataError, match=r"regions\.csv: column 'country' row 1: 'XX'"):
        load_dataset(InputPaths(orders=orders, regions=bad_country), SLOT)


EXOGENOUS = {
    "weather for an unknown region": ("weather", "region,ts,temperature\nparis,2025-03-01T00:00:00+01:00,3.5\n",
                                      ["weather.csv", "column 'region' row 1", "'paris'", "not a region"]),
    "weather that is not numeric": ("weather", "region,ts,sky\nberlin,2025-03-01T00:00:00+01:00,cloudy\n",
                                    ["weather.csv", "column 'sky' row 1", "not a number"]),
    "event for an unknown region": ("events", "region,start,end,kind\n"
                                    "rome,2025-03-01T18:00:00+01:00,2025-03-01T21:00:00+01:00,home_game\n",
                                    ["events.csv", "column 'region' row 1", "'rome'"]),
    "event ending before it starts": ("events", "region,start,end,kind\n"
                                      "berlin,2025-03-01T18:00:00+01:00,2025-03-01T17:00:00+01:00,concert\n",
                                      ["events.csv", "column 'end' row 1", "not after start"]),
    "promotion with text intensity": ("promotions", "region,start,end,intensity\n"
                                      "berlin,2025-03-01T00:00:00+01:00,2025-03-02T00:00:00+01:00,high\n",
                                      ["promotions.csv", "column 'intensity' row 1", "not a number"]),
    "promotion with a misspelled column": ("promotions", "region,start,end,intensty\n",
                                           ["promotions.csv", "missing column 'intensity'", "'intensty'"]),
}


@pytest.mark.parametrize("case", list(EXOGENOUS))
def test_malformed_exogenous_tables(tmp_path, case):
    table, text, expected = EXOGENOUS[case]
    with pytest.raises(DataError) as caught:
        load(tmp_path, orders_rows(slots=4), **{table: text})
    for part in expected:
        assert part in str(caught.value), f"{part!r} not in {caught.value!s}"


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


def test_header_only_exogenous_tables_mean_none(tmp_path):
    data = load(tmp_path, orders_rows(slots=4), events="region,start,end,kind\n",
                promotions="region,start,end,intensity\n")
    assert data.events is not None and data.events.empty and data.promotions.empty
