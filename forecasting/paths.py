"""File-system names for regions: region names are free text, file names are not."""
from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def region_key(region: str) -> str:
    """A file name for a region: the name itself when safe, else a slug plus a short hash."""
    if _SAFE.fullmatch(region):
        return region
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", region).strip("._")[:80] or "region"
    return f"{slug}-{hashlib.sha1(region.encode()).hexdigest()[:8]}"
