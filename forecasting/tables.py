"""Reading input tables (CSV or Parquet, a file or a folder of files) and the checks on
their cells that every table shares. Each failed check raises one `DataError` whose
single line names the file, the column, the row and the offending value.

Rows are counted from 1 among the data rows, so in a CSV file row N is on line N + 1.
"""
from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import DataError

SOURCE = "_source"
ROW = "_row"
_OFFSET_SUFFIX = r"(?:Z|z|[+-]\d{2}(?::?\d{2})?)$"
_TIMESTAMP_TEXT = r"\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
TIMESTAMP_COLUMNS = ("ts", "start", "end")
_READERS = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}


def input_files(path: str | Path, table: str) -> list[Path]:
    """The files behind a table argument: the file itself, or a folder's CSV/Parquet files."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: {table} file not found")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _READERS and p.is_file())
        if not files:
            raise DataError(f"{path}: folder holds no .csv or .parquet files for the {table} table")
        return files
    if path.suffix.lower() not in _READERS:
        raise DataError(f"{path}: unsupported file type '{path.suffix}' for the {table} table; use .csv or .parquet")
    return [path]


def content_hash(files: list[Path]) -> str:
    """SHA-256 over the bytes of the files, in order: identifies a data snapshot."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_table(path: str | Path, table: str, required: list[str], *, allow_empty: bool = False
               ) -> tuple[pd.DataFrame, str]:
    """Read every file of a table, check its columns, and tag rows with file and row number.

    Returns the frame and the content hash of its files. An empty table is an error unless
    `allow_empty` (no events is a valid events table). CSV cells are read as text so that
    the checks below can name a bad cell instead of pandas guessing a type.
    """
    files = input_files(path, table)
    frames = []
    for file in files:
        frame = _read_file(file)
        check_columns(frame, file, required)
        frame[SOURCE] = file.name
        frame[ROW] = np.arange(1, len(frame) + 1)
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if data.empty and not allow_empty:
        raise DataError(f"{_describe(path, files)}: the {table} table has no rows")
    return data, content_hash(files)


def _describe(path: str | Path, files: list[Path]) -> str:
    return files[0].name if len(files) == 1 else str(path)


def _read_file(file: Path) -> pd.DataFrame:
    try:
        if _READERS[file.suffix.lower()] == "CSV":
            return pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True)
        return pd.read_parquet(file)
    except pd.errors.EmptyDataError:
        raise DataError(f"{file.name}: file is empty (no header, no rows)") from None
    except (UnicodeDecodeError, ValueError, OSError, pd.errors.ParserError) as error:
        kind = _READERS[file.suffix.lower()]
        reason = " ".join(str(error).split())[:200]
        raise DataError(f"{file.name}: cannot read as {kind}: {reason}") from None
    except Exception as error:  # pyarrow raises its own exception types for corrupt files
        kind = _READERS[file.suffix.lower()]
        reason = " ".join(str(error).split())[:200]
        raise DataError(f"{file.name}: cannot read as {kind}: {reason}") from None


def check_columns(frame: pd.DataFrame, file: Path | str, required: list[str]) -> None:
    """Raise for the first missing column, with a guess at a misspelling, a hint at the wrong
    separator or at the table the file looks like."""
    file = Path(file)
    frame.columns = [str(column).strip() for column in frame.columns]
    missing = [column for column in required if column not in frame.columns]
    if not missing:
        duplicated = frame.columns[frame.columns.duplicated()].tolist()
        if duplicated:
            raise DataError(f"{file.name}: column '{duplicated[0]}' appears more than once")
        return
    found = ", ".join(map(str, frame.columns)) or "none"
    separator = _other_separator(frame, required)
    if separator:
        raise DataError(f"{file.name}: the columns are separated by {separator}, not commas (found one column "
                        f"'{frame.columns[0]}'); save the file as comma-separated CSV")
    column = missing[0]
    extra = [c for c in frame.columns if c not in required]
    guess = difflib.get_close_matches(column, extra, n=1, cutoff=0.6)
    hint = f" (is '{guess[0]}' a misspelling of it?)" if guess else ""
    other = [name for name, columns in TABLE_SIGNATURES.items() if set(columns) <= set(frame.columns)]
    stamped = [c for c in extra if _holds_timestamps(frame[c])] if column in TIMESTAMP_COLUMNS else []
    if other and not guess:
        hint = f" (the file looks like the {other[0]} table)"
    elif stamped and not guess:
        hint = f" (column '{stamped[0]}' holds timestamps: rename it to '{column}')"
    raise DataError(
        f"{file.name}: missing column '{column}'{hint}; expected {', '.join(required)}, found {found}"
    )


# Columns that identify each input table, to name the table a wrongly passed file looks like.
TABLE_SIGNATURES = {"orders": ["region", "ts", "orders"], "events": ["region", "start", "end", "kind"],
                    "promotions": ["region", "start", "end", "intensity"], "regions": ["region", "timezone"],
                    "weather": ["region", "ts"]}
_SEPARATORS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}


def _holds_timestamps(values: pd.Series) -> bool:
    """Whether a column's first cells are dates with a time of day (a timestamp column under
    another name, such as `created_at`)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    sample = values.dropna().astype("string").head(20)
    return bool(len(sample)) and bool(sample.str.match(_TIMESTAMP_TEXT).all())


def _other_separator(frame: pd.DataFrame, required: list[str]) -> str | None:
    """How the columns are really separated, when a CSV read with commas gave one column whose
    header splits into the required columns on another separator."""
    if len(frame.columns) != 1:
        return None
    header = str(frame.columns[0])
    for separator, name in _SEPARATORS.items():
        if set(required) <= {part.strip() for part in header.split(separator)}:
            return name
    return None


def example_row(frame: pd.DataFrame, index) -> str:
    row = frame.loc[index]
    cells = ", ".join(f"{c}={_show(row[c])}" for c in frame.columns if not str(c).startswith("_"))
    return f"[{cells}]"


def fail_at(frame: pd.DataFrame, bad: pd.Series, column: str, problem: str) -> None:
    """Raise a `DataError` for the first row where `bad` is true, if any."""
    if not bad.any():
        return
    index = bad[bad].index[0]
    row = frame.loc[index]
    value = "''" if pd.isna(row[column]) else repr(_show(row[column]))
    count = int(bad.sum())
    more = f" ({count - 1} more rows like it)" if count > 1 else ""
    raise DataError(
        f"{row[SOURCE]}: column '{column}' row {row[ROW]}: {value} {problem}{more}; "
        f"row {example_row(frame, index)}"
    )


def parse_timestamps(frame: pd.DataFrame, column: str) -> pd.Series:
    """Timezone-aware timestamps, converted to UTC; naive or unparseable values are errors."""
    raw = frame[column]
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").dt.as_unit("ns")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        fail_at(frame, pd.Series(True, index=frame.index), column, "is a naive timestamp (no UTC offset)")
    text = raw.astype("string").str.strip()
    fail_at(frame, text.isna() | (text == ""), column, "is empty; expected a timestamp")
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    fail_at(frame, parsed.isna(), column, "is not an ISO-8601 timestamp")
    naive = ~text.str.contains(_OFFSET_SUFFIX, regex=True)
    fail_at(
        frame, naive, column,
        "has no UTC offset; write timestamps with their offset, e.g. 2024-05-01T12:00:00+02:00 "
        "(docs/data.md: timestamps without an offset)",
    )
    return parsed.dt.as_unit("ns")


def parse_numbers(frame: pd.DataFrame, column: str, *, allow_empty: bool) -> pd.Series:
    """Numeric values of a column; text that is not a number is an error."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw.dtype):
        fail_at(frame, pd.Series(True, index=frame.index), column, "is true/false; expected a number")
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.astype("float64")
    else:
        text = raw.astype("string").str.strip()
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        fail_at(frame, values.isna() & text.notna() & (text != ""), column, "is not a number")
    if not allow_empty:
        fail_at(frame, values.isna(), column, "is empty; expected a number")
    fail_at(frame, np.isinf(values), column, "is not a finite number")
    return values


def parse_labels(frame: pd.DataFrame, column: str) -> pd.Series:
    """Non-empty text labels (region names, event kinds)."""
    raw = frame[column]
    text = raw.astype("string").str.strip()
    fail_at(frame, text.isna() | (text == ""), column, "is empty; expected a name")
    return text.astype(object)


def fail_duplicates(frame: pd.DataFrame, keys: list[str], what: str) -> None:
    """Raise for the first pair of rows that share `keys`."""
    dup = frame.duplicated(keys, keep=False)
    if not dup.any():
        return
    rows = frame[dup].sort_values(keys + [ROW], kind="stable")
    first = rows.iloc[0]
    twin = rows[(rows[keys] == first[keys]).all(axis=1)].iloc[1]
    key_text = ", ".join(f"{k}={_as_written(first, twin, k)}" for k in keys)
    raise DataError(
        f"{first[SOURCE]}: rows {first[ROW]} and {twin[ROW]}: duplicate {what} ({key_text})"
    )


def _as_written(first: pd.Series, twin: pd.Series, key: str) -> str:
    """A key's value as the file has it (a `_<key>_text` column, when the caller kept one), so a
    search of the file finds it; both spellings when the two rows write one instant differently."""
    column = f"_{key}_text"
    if column not in first.index:
        return _show(first[key])
    texts = [str(first[column]), str(twin[column])]
    return texts[0] if texts[0] == texts[1] else " and ".join(texts)


def _show(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)
