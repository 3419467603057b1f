"""Failure drills: make a named step fail for a named region on purpose.

`ORDERCAST_FAULTS="train:berlin-mitte,predict:nyc-midtown"` makes those steps raise
`InjectedFault`. Used by the test suite and by on-call drills to rehearse recovery.
"""
from __future__ import annotations

import os

from forecasting.errors import InjectedFault


def maybe_fail(step: str, region: str) -> None:
    """Raise `InjectedFault` if `ORDERCAST_FAULTS` names this step and region."""
    spec = os.environ.get("ORDERCAST_FAULTS", "")
    wanted = {item.strip() for item in spec.split(",") if item.strip()}
    if f"{step}:{region}" in wanted:
        raise InjectedFault(f"{step} failed for region '{region}': injected by ORDERCAST_FAULTS")
