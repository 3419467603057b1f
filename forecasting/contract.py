"""The data contract: load and validate orders, exogenous tables and regions.

`load_dataset` either returns a `Dataset` whose orders sit on the slot grid of every region,
or raises one `DataError` naming the file, column and row at fault. It writes nothing.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from functools import reduce
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import numpy as np
import pandas as pd

from forecasting.errors import DataError
from forecasting.slots import Slot
from forecasting.tables import (
    ROW,
    SOURCE,
    check_columns,
    example_row,
    fail_at,
    fail_duplicates,
    parse_labels,
    parse_numbers,
    parse_timestamps,
    read_table,
)

ORDERS_COLUMNS = ["region", "ts", "orders"]
ORDER_EVENT_COLUMNS = ["region", "ts"]  # one row per order: an orders table without counts
CLOSED_WEEKS = 4  # a region without orders at these slots of the week for 4 weeks was closed then
IDENTIFIER_NAME = re.compile(r"(^|[_\W])(id|Id|ID)$|[a-z0-9](Id|ID)$")  # id, order_id, order id, orderId
EVENT = "_order_event"
WEATHER_KEYS = ["region", "ts"]
EVENTS_COLUMNS = ["region", "start", "end", "kind"]
PROMOTIONS_COLUMNS = ["region", "start", "end", "intensity"]
REGIONS_COLUMNS = ["region", "timezone", "country"]
_SUB_DAY_STEPS = (5, 10, 15, 20, 30, 60)

PER_REGION = "per-region"  # `--as-of per-region`: every region forecast from the end of its own orders


@dataclass(frozen=True)
class InputPaths:
    """Where the input tables are; only `orders` is required."""

    orders: str
    weather: str | None = None
    events: str | None = None
    promotions: str | None = None
    regions: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {name: value for name, value in self.__dict__.items() if value is not None}


@dataclass(frozen=True)
class RegionInfo:
    region: str
    timezone: str
    country: str | None


@dataclass
class Dataset:
    """Validated inputs; timestamps in UTC, orders summed into slots."""

    orders: pd.DataFrame
    regions: dict[str, RegionInfo]
    weather: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    promotions: pd.DataFrame | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)  # region -> its first data error (skip mode)


def load_dataset(paths: InputPaths, slot: Slot, *, missing_as_zero: bool = False,
                 skip_invalid_regions: bool = False) -> Dataset:
    """Read and validate every input table of a run.

    By default the first data error raises `DataError`. With `skip_invalid_regions`, an error
    confined to one region's rows (in any table) drops that region and is kept in
    `Dataset.invalid`; errors that belong to no single region (a missing file or column, an
    unreadable file, an empty region name, a bad regions table) still raise.
    """
    hashes: dict[str, str] = {}
    notes: list[str] = []
    invalid: dict[str, str] = {}
    per_region = _RegionwiseValidation(skip_invalid_regions, invalid)
    raw_orders, hashes["orders"] = read_table(paths.orders, "orders", ORDER_EVENT_COLUMNS)
    raw_orders = _mark_order_events(raw_orders)
    orders = _nothing_left_if_none(per_region.run(raw_orders, _validate_orders), invalid)
    known = set(orders["region"].unique())

    if paths.regions:
        raw_regions, hashes["regions"] = read_table(paths.regions, "regions", REGIONS_COLUMNS)
        regions = _validate_regions(raw_regions, orders, known, invalid if skip_invalid_regions else None)
    else:
        regions = {name: RegionInfo(name, "UTC", None) for name in sorted(known)}
        notes.append("no regions table: every region uses UTC and no holidays")

    orders = _nothing_left_if_none(per_region.run(orders.loc[orders["region"].isin(regions)],
                                                  lambda group: _orders_to_slots(group, slot, regions, missing_as_zero)),
                                   invalid)
    with_orders = set(orders["region"].unique())
    regions = {name: info for name, info in regions.items() if name in with_orders}
    dataset = Dataset(orders=orders, regions=regions, hashes=hashes, warnings=notes, invalid=invalid)
    if paths.weather:
        raw, hashes["weather"] = read_table(paths.weather, "weather", WEATHER_KEYS, allow_empty=True)
        dataset.weather = per_region.run(per_region.known_only(raw, known), lambda t: _validate_weather(t, known))
    if paths.events:
        raw, hashes["events"] = read_table(paths.events, "events", EVENTS_COLUMNS, allow_empty=True)
        dataset.events = per_region.run(per_region.known_only(raw, known), lambda t: _validate_intervals(t, known, "kind"))
    if paths.promotions:
        raw, hashes["promotions"] = read_table(paths.promotions, "promotions", PROMOTIONS_COLUMNS, allow_empty=True)
        dataset.promotions = per_region.run(per_region.known_only(raw, known),
                                            lambda t: _validate_intervals(t, known, "intensity"))
    for name in ("weather", "events", "promotions"):
        table = getattr(dataset, name)
        if table is not None and invalid:
            setattr(dataset, name, table.loc[~table["region"].isin(invalid)].reset_index(drop=True))
    if invalid:
        dataset.orders = _nothing_left_if_none(
            dataset.orders.loc[~dataset.orders["region"].isin(invalid)].reset_index(drop=True), invalid)
        dataset.regions = {name: info for name, info in dataset.regions.items() if name not in invalid}
    return dataset


def _nothing_left_if_none(orders: pd.DataFrame | None, invalid: dict[str, str]) -> pd.DataFrame:
    if orders is None or orders.empty:
        raise DataError(f"every region has invalid inputs, nothing to forecast; for example: "
                        f"{next(iter(invalid.values()), 'no rows')}")
    return orders


class _RegionwiseValidation:
    """Runs a validator on a whole table (the default: the first error raises) or, when
    skipping invalid regions, on each region's rows alone, recording a failing region's error."""

    def __init__(self, skip: bool, invalid: dict[str, str]) -> None:
        self.skip, self.invalid = skip, invalid

    def run(self, table: pd.DataFrame, validate) -> pd.DataFrame | None:
        """The validated table; None when skipping left no valid region in it."""
        if not self.skip or table.empty:
            return validate(table)
        labels = parse_labels(table, "region")  # rows without a region belong to none: that still stops the run
        pieces = []
        for region, rows in table.groupby(labels, sort=True):
            if region in self.invalid:
                continue
            try:
                pieces.append(validate(rows))
            except DataError as error:
                self.invalid[region] = str(error)
        return pd.concat(pieces, ignore_index=True) if pieces else None

    def known_only(self, table: pd.DataFrame, known: set[str]) -> pd.DataFrame:
        """When skipping, rows of regions that have no valid orders are left out, not an error."""
        if not self.skip or table.empty:
            return table
        return table.loc[parse_labels(table, "region").isin(known)]


def _mark_order_events(raw: pd.DataFrame) -> pd.DataFrame:
    """Whether the orders table holds one row per order (summed into slots later) or a count per
    slot. Order rows: no `orders` column (unless the file is another table, or has a misspelled
    `orders` column: those are errors), or `orders` all 1 with several rows at one instant or
    timestamps with seconds."""
    if "orders" not in raw.columns:
        extra = [c for c in raw.columns if c not in (*ORDER_EVENT_COLUMNS, SOURCE, ROW)]
        if _looks_like_counts_or_measures(raw, extra):
            check_columns(raw.drop(columns=[SOURCE, ROW]), raw[SOURCE].iloc[0], ORDERS_COLUMNS)
        return raw.assign(**{EVENT: True})
    if not raw["orders"].astype("string").str.strip().isin(["1", "1.0"]).all():
        return raw.assign(**{EVENT: False})
    return raw.assign(**{EVENT: _stamped_like_events(raw)})


def _stamped_like_events(raw: pd.DataFrame) -> bool:
    """Several rows of a region at one instant, or timestamps with seconds: rows of events."""
    stamps = pd.to_datetime(raw["ts"].astype("string").str.strip(), errors="coerce", utc=True, format="ISO8601")
    repeated = raw[["region"]].assign(ts=stamps).duplicated().any()
    return bool(repeated or stamps.dt.second.ne(0).any())


def _looks_like_counts_or_measures(raw: pd.DataFrame, extra: list[str]) -> bool:
    """A file without `orders` that is not order rows: a column that reads like a misspelling of
    `orders`, or only numeric extra columns (a weather table given as orders). An export of
    orders is recognised by an id column (`order_id`, even numeric) or by event timestamps, so
    its numeric columns (an order's value) are not read as measures."""
    if difflib.get_close_matches("orders", extra, n=1, cutoff=0.8):  # "order", "ordres"; not "order_id"
        return True
    if any(IDENTIFIER_NAME.search(str(column).strip()) for column in extra) or _stamped_like_events(raw):
        return False
    numeric = [c for c in extra if pd.to_numeric(raw[c], errors="coerce").notna().all()]
    return bool(extra) and len(numeric) == len(extra)


def _validate_orders(raw: pd.DataFrame) -> pd.DataFrame:
    """Checks run on the cells as written, so messages quote what the user wrote."""
    frame = raw.copy()
    frame["region"] = parse_labels(raw, "region")
    frame["ts"] = parse_timestamps(raw, "ts")
    frame["_ts_text"] = raw["ts"].astype("string")
    if raw[EVENT].all():
        frame["orders"] = 1
        return frame
    counts = parse_numbers(raw, "orders", allow_empty=False)
    fail_at(raw, counts < 0, "orders", "is negative; orders must be >= 0")
    fail_at(raw, counts != np.floor(counts), "orders", "is not a whole number of orders")
    frame["orders"] = counts.astype("int64")
    fail_duplicates(frame, ["region", "ts"], "(region, ts)")
    return frame


def holiday_area(code: str) -> tuple[str, str | None]:
    """A regions table's `country`: a country code, or one with its subdivision after a dash
    (`DE-BY`, `US-CA`), whose own holidays are added to the country's."""
    nation, _, part = code.partition("-")
    return nation, part or None


def _validate_regions(frame: pd.DataFrame, orders: pd.DataFrame, with_orders: set[str],
                      invalid: dict[str, str] | None = None) -> dict[str, RegionInfo]:
    """Time zone and country per region that has orders (`with_orders`: the regions of `orders`);
    a region without a row is an error, or (when skipping invalid regions, `invalid` given) an
    invalid region."""
    frame = frame.assign(region=parse_labels(frame, "region"))
    fail_duplicates(frame, ["region"], "region")
    zones = frame["timezone"].astype("string").str.strip()
    fail_at(frame, ~zones.map(_is_timezone, na_action=None).astype(bool), "timezone",
            "is not an IANA time zone such as Europe/Berlin")
    countries = frame["country"].astype("string").str.strip().fillna("")
    supported = holidays.list_supported_countries()
    areas = [holiday_area(code) for code in countries]
    nations = pd.Series([nation for nation, _ in areas], index=frame.index)
    fail_at(frame, (countries != "") & ~nations.isin(list(supported)), "country",
            "is not a country code known to the holidays package (e.g. US, DE, GB, or DE-BY with its state); "
            "leave empty for none")
    unknown_part = [nation in supported and part is not None and part not in supported[nation]
                    for nation, part in areas]
    fail_at(frame, pd.Series(unknown_part, index=frame.index), "country",
            "names a subdivision the holidays package does not know for that country; the codes after the "
            "dash are those of holidays.list_supported_countries(), e.g. DE-BY, US-CA, GB-SCT")
    listed = set(frame["region"])
    unlisted = orders.loc[~orders["region"].isin(listed)].drop_duplicates("region")
    for index in unlisted.index:
        message = (f"{frame[SOURCE].iloc[0]}: no row for region '{unlisted.at[index, 'region']}' "
                   f"used in {unlisted.at[index, SOURCE]} row {unlisted.at[index, ROW]}; add it with its timezone "
                   "and country")
        if invalid is None:
            raise DataError(message)
        invalid[unlisted.at[index, "region"]] = message
    return {
        region: RegionInfo(region, zone, country or None)
        for region, zone, country in zip(frame["region"], zones, countries)
        if region in with_orders
    }


def _is_timezone(name) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _orders_to_slots(
    orders: pd.DataFrame, slot: Slot, regions: dict[str, RegionInfo], missing_as_zero: bool
) -> pd.DataFrame:
    """Sum finer input into slots, reject coarser or off-grid input and gaps."""
    pieces = []
    for region, group in orders.groupby("region", sort=True):
        tz = regions[region].timezone
        group = group.sort_values("ts")
        starts = slot.floor(group["ts"], tz)
        misaligned = starts != group["ts"]
        events = bool(group[EVENT].all())  # order rows: any time, a slot without one had no orders
        if misaligned.any() and not events:
            _check_finer_input(group, starts, slot, tz)
        elif not events:
            _check_not_coarser(group, slot, tz)
        summed = group.assign(ts=starts).groupby("ts", sort=True)["orders"].sum()
        grid = slot.grid(summed.index[0], summed.index[-1] + pd.Timedelta(seconds=1), tz)
        missing = grid.difference(summed.index)
        if len(missing) and not (missing_as_zero or events):
            first = missing[0].tz_convert(tz).isoformat()
            raise DataError(
                f"{group[SOURCE].iloc[0]}: column 'ts': region '{region}' has {plural(len(missing), 'missing slot')} "
                f"of {slot.alias} inside its history (first: {first}); "
                "pass --missing-as-zero if a missing slot means zero orders"
            )
        summed = summed.reindex(grid, fill_value=0)
        pieces.append(pd.DataFrame({"region": region, "ts": grid, "orders": summed.to_numpy("int64")}))
    return pd.concat(pieces, ignore_index=True)


def plural(count: int, noun: str) -> str:
    """'1 missing slot', '2 missing slots'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _check_finer_input(group: pd.DataFrame, starts: pd.Series, slot: Slot, tz: str) -> None:
    """Rows off the slot grid are fine only if the input is on a finer supported grid and is
    either finer than the slot or mostly inside the slot it starts in. Rows whole slots apart
    that start half a slot or more into theirs (hourly rows on UTC hours for a region at
    UTC+05:30; daily rows at UTC midnight for New York, 19:00 the day before) would each be
    counted in a slot that holds half of it or less, shifted without a word. `starts`: the
    start of the local slot each row's `ts` falls in."""
    misaligned = starts != group["ts"]
    local = group["ts"].dt.tz_convert(tz)
    minute_of_day = (local.dt.hour * 60 + local.dt.minute).to_numpy()
    whole_minutes = (local.dt.second == 0) & (local.dt.microsecond == 0)
    step = int(reduce(math.gcd, minute_of_day.tolist(), slot.minutes))
    start_every = "local midnight" if slot.is_daily else f"every {slot.alias} from local midnight"
    shown = group.assign(ts=group["_ts_text"])
    if whole_minutes.all() and step in _SUB_DAY_STEPS and slot.minutes % step == 0:
        gaps = (group["ts"].diff().dropna() / pd.Timedelta(minutes=1)).round().astype("int64").to_numpy()
        whole_slots_apart = len(gaps) > 0 and int(np.gcd.reduce(gaps)) % slot.minutes == 0
        into_slot = ((group["ts"] - starts) / pd.Timedelta(minutes=1)).round()
        late = into_slot * 2 >= slot.minutes
        if not (whole_slots_apart and late.any()):
            return
        first = int(into_slot[late].iloc[0])
        fail_at(shown, late, "ts", f"is not on the {slot.alias} slot grid (slots start {start_every} in {tz}): "
                f"it starts {_minutes_text(first)} into its slot, and the region's rows are whole slots apart, "
                "so half or more of what it counts falls in the next slot; write each row at the local start of "
                "the slot it counts")
    fail_at(shown, misaligned, "ts", f"is not on the {slot.alias} slot grid (slots start {start_every} in {tz})")


def _minutes_text(minutes: int) -> str:
    """'30 min', '19 h', '5 h 30 min'."""
    hours, rest = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if part)


def _check_not_coarser(group: pd.DataFrame, slot: Slot, tz: str) -> None:
    if len(group) < 3:
        return
    if slot.is_daily:
        local_days = group["ts"].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
        index = ((local_days - local_days.iloc[0]) / pd.Timedelta(days=1)).round().astype("int64")
    else:
        index = ((group["ts"] - group["ts"].iloc[0]) / slot.length).round().astype("int64")
    step = int(np.gcd.reduce(np.diff(index.to_numpy())))
    if step > 1:
        first = group.index[0]
        group = group.assign(ts=group["_ts_text"])
        raise DataError(
            f"{group[SOURCE].iloc[0]}: column 'ts': region '{group.at[first, 'region']}' is in steps of "
            f"{step} x {slot.alias}, coarser than --slot {slot.alias}; choose a coarser --slot "
            f"or supply finer data; row {example_row(group, first)}"
        )


def _unknown_region(frame: pd.DataFrame, known: set[str]) -> pd.Series:
    return ~frame["region"].isin(known)


def _validate_weather(raw: pd.DataFrame, known: set[str]) -> pd.DataFrame:
    frame = raw.copy()
    frame["region"] = parse_labels(raw, "region")
    fail_at(raw, _unknown_region(frame, known), "region", "is not a region of the orders table")
    frame["ts"] = parse_timestamps(raw, "ts")
    fail_duplicates(frame.assign(_ts_text=raw["ts"].astype("string")), ["region", "ts"], "(region, ts)")
    value_columns = [c for c in frame.columns if c not in ("region", "ts", SOURCE, ROW)]
    if not value_columns:
        raise DataError(f"{frame[SOURCE].iloc[0]}: no weather columns besides region and ts (e.g. temperature)")
    for column in value_columns:
        frame[column] = parse_numbers(raw, column, allow_empty=True)
    return frame[["region", "ts", *value_columns]].sort_values(["region", "ts"], ignore_index=True)


def _validate_intervals(frame: pd.DataFrame, known: set[str], value: str) -> pd.DataFrame:
    """Events (`kind`) and promotions (`intensity`): rows active from `start` until `end`."""
    raw = frame
    frame = raw.copy()
    frame["region"] = parse_labels(raw, "region")
    fail_at(raw, _unknown_region(frame, known), "region", "is not a region of the orders table")
    frame["start"] = parse_timestamps(raw, "start")
    frame["end"] = parse_timestamps(raw, "end")
    fail_at(raw, frame["end"] <= frame["start"], "end", "is not after start")
    if value == "kind":
        frame["kind"] = parse_labels(raw, "kind")
    else:
        frame[value] = parse_numbers(raw, value, allow_empty=False)
        fail_at(raw, frame[value] < 0, value, "is negative; intensity must be >= 0")
    return frame[["region", "start", "end", value]].sort_values(["region", "start"], ignore_index=True)


def data_ends(dataset: Dataset, slot: Slot) -> dict[str, pd.Timestamp]:
    """Where each region's orders end (UTC): the end of its last orders slot."""
    return {region: slot.next_start(group["ts"].iloc[-1], dataset.regions[region].timezone)
            for region, group in dataset.orders.groupby("region", sort=True)}


def lagging_regions(dataset: Dataset, slot: Slot, origins: dict[str, pd.Timestamp]) -> list[str]:
    """A warning naming the regions whose orders end before their default origin (`region_origins`),
    and by how much: their forecast starts after a gap with no history."""
    ends = {region: end for region, end in data_ends(dataset, slot).items() if end < origins[region]}
    if not ends:
        return []
    histories = {region: rows for region, rows in dataset.orders.groupby("region", sort=False) if region in ends}
    behind = {region: origins[region] - end for region, end in ends.items()
              if not _closed_between(histories[region], dataset.regions[region].timezone, slot, end, origins[region])}
    if not behind:
        return []
    as_of = max(origins.values())
    listed = ", ".join(f"{region} ({_duration(gap)})" for region, gap in sorted(behind.items(), key=lambda x: -x[1]))
    return [f"{len(behind)} region(s) have orders ending before as_of {as_of.isoformat()} (the latest end over all "
            f"regions): {listed} behind. Their horizon starts after that gap; if extracts were cut at different "
            f"times, pass --as-of {PER_REGION} (each region from its own end) or --as-of TS"]


def _closed_between(rows: pd.DataFrame, zone: str, slot: Slot, end: pd.Timestamp, origin: pd.Timestamp) -> bool:
    """Whether a region's orders (`rows`, on the clock `zone`) end early because it was closed: no
    orders in any of its last `CLOSED_WEEKS` weeks at the local slots of the week from its end to
    `origin` (a restaurant's night, an export of order rows that ends at the last order), not an
    extract cut earlier."""
    gap = slot.grid(end, origin, zone)
    since = end - pd.Timedelta(weeks=CLOSED_WEEKS)
    if gap.empty or len(gap) >= slot.per_day * 7 or rows["ts"].iloc[0] > since:
        return False
    recent = rows.loc[(rows["ts"] >= since) & (rows["orders"] > 0), "ts"]
    return not _slot_of_week(gap, zone).isin(_slot_of_week(pd.DatetimeIndex(recent), zone)).any()


def _slot_of_week(starts: pd.DatetimeIndex, zone: str) -> pd.Index:
    local = starts.tz_convert(zone)
    return pd.Index(local.day_of_week * 1440 + local.hour * 60 + local.minute)


def mid_slot_regions(dataset: Dataset, slot: Slot, as_of: pd.Timestamp) -> list[str]:
    """A note naming the regions whose slot (with `1D`, local day) `as_of` falls inside (a run
    across time zones, one `--as-of`): that slot is partial, so it is neither history nor horizon."""
    inside = [region for region, info in dataset.regions.items()
              if not slot.on_grid(pd.Series([as_of]), info.timezone).iloc[0]]
    if not inside:
        return []
    listed = ", ".join(inside[:5]) + (f" and {len(inside) - 5} more" if len(inside) > 5 else "")
    if slot.is_daily:
        where, next_start = "the local day", "their next local midnight"
    else:
        where, next_start = f"a {slot.alias} slot", "their next slot"
    return [f"as_of {as_of.isoformat()} falls inside {where} of {len(inside)} region(s): {listed}. That "
            f"{'day' if slot.is_daily else 'slot'} had not ended, so it is left out of their history, and their "
            f"horizon starts at {next_start}; pass --as-of {PER_REGION} to start each region at the end of its "
            "own orders"]


def _duration(gap: pd.Timedelta) -> str:
    hours = gap / pd.Timedelta(hours=1)
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:.1f} days"


def region_origins(dataset: Dataset, slot: Slot, as_of: str | None) -> dict[str, pd.Timestamp]:
    """Each region's forecast origin (UTC): its own data end with `--as-of per-region`, else the
    one origin of `resolve_as_of` for every region. By default, a region on another clock whose
    orders end at the start of its slot that contains that origin (with `1D` slots its midnight
    came first; with hourly slots in Kolkata and Berlin its hours start half an hour apart) is not
    behind: it starts from its own end."""
    if as_of == PER_REGION:
        return data_ends(dataset, slot)
    when = resolve_as_of(dataset, slot, as_of)
    origins = {region: when for region in dataset.regions}
    if as_of is None:
        for region, end in data_ends(dataset, slot).items():
            if slot.floor(pd.Series([when]), dataset.regions[region].timezone).iloc[0] == end:
                origins[region] = end
    return origins


def resolve_as_of(dataset: Dataset, slot: Slot, as_of: str | None) -> pd.Timestamp:
    """The forecast origin (UTC): given, or the last orders slot plus one slot. A given one must
    be on the slot grid of some region (a run across clocks whose grids never meet, such as
    hourly slots in Berlin and Kolkata, cannot have it on every region's: `mid_slot_regions`)."""
    if as_of is None:
        return max(data_ends(dataset, slot).values())
    when = parse_as_of(as_of)
    regions = list(dataset.regions.values())
    if not slot.is_daily and not any(slot.on_grid(pd.Series([when]), info.timezone).iloc[0] for info in regions):
        named = f"region '{regions[0].region}' ({regions[0].timezone})" if len(regions) == 1 else \
            f"any of the {len(regions)} regions"
        raise DataError(f"--as-of: '{as_of}' is not on the {slot.alias} slot grid of {named}")
    return when


def parse_as_of(text: str) -> pd.Timestamp:
    """An `--as-of` value: ISO-8601 with an offset, returned in UTC."""
    try:
        when = pd.Timestamp(text.strip())
    except ValueError:
        raise DataError(f"--as-of: '{text}' is not an ISO-8601 timestamp") from None
    if when.tzinfo is None:
        raise DataError(f"--as-of: '{text}' has no UTC offset; write it like 2024-05-01T00:00:00+00:00")
    return when.tz_convert("UTC").as_unit("ns")
