"""Data snapshots: one key for "these input bytes, read this way, by this code".

Validating and partitioning the inputs is a pure step: the same files (by content), slot,
requested `as_of`, missing-slot and invalid-region rules and `forecasting` code give the same
partitions. The key
names the cache folder `<work root>/cache/<key>/` that holds them, so repeated and retried runs
reuse the partitions instead of recomputing them.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from forecasting.contract import InputPaths
from forecasting.settings import work_root
from forecasting.tables import content_hash, input_files

_PACKAGE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 over the source of the `forecasting` package: any code change is a new version."""
    digest = hashlib.sha256()
    for source in sorted(_PACKAGE.rglob("*.py")):
        digest.update(str(source.relative_to(_PACKAGE)).encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def snapshot_key(paths: InputPaths, slot: str, as_of: str | None, missing_as_zero: bool,
                 skip_invalid_regions: bool = False) -> str:
    """The cache key of partitioning these inputs: content hashes, options and code version."""
    parts = {table: content_hash(input_files(path, table)) for table, path in paths.as_dict().items() if path}
    parts.update(slot=slot, as_of=as_of, missing_as_zero=missing_as_zero, skip_invalid_regions=skip_invalid_regions,
                 code=code_version())
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def cache_root() -> Path:
    return work_root() / "cache"


def snapshot_dir(key: str) -> Path:
    """Where the partitions of a snapshot live."""
    return cache_root() / key
