"""Shared fixtures: an isolated $ORDERCAST_HOME, seeded demo data, one real Prefect server.

`pytest_configure` runs before any test module imports Prefect, so the Prefect settings of
this process (home folder, no telemetry) come from the isolated home.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="ordercast-tests-"))


def pytest_configure(config: pytest.Config) -> None:
    (_SESSION_HOME / "home" / "prefect").mkdir(parents=True, exist_ok=True)
    os.environ["ORDERCAST_HOME"] = str(_SESSION_HOME / "home")
    os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "home" / "prefect")
    os.environ["PREFECT_PROFILES_PATH"] = str(_SESSION_HOME / "user-prefect-profiles.toml")  # not the real ~/.prefect
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("ORDERCAST_FAULTS", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    """The default demo data set: 12 regions, 2 years of 30-minute slots, seed 0."""
    from forecasting.demo_data import generate, write_csv

    folder = _SESSION_HOME / "demo-12"
    write_csv(generate(regions=12, years=2, seed=0), folder)
    return folder


@pytest.fixture(scope="session")
def small_demo_dir() -> Path:
    """Three demo regions (two time zones, two countries) with half a year of history."""
    from forecasting.demo_data import generate, write_csv

    folder = _SESSION_HOME / "demo-3"
    write_csv(generate(regions=3, years=0.5, seed=1), folder)
    return folder


@pytest.fixture(scope="session")
def prefect_server():
    """A real local Prefect server on a free port, shared by the session, stopped at the end."""
    from deployments import server

    home = Path(os.environ["ORDERCAST_HOME"])
    info = server.start(home, port=server.free_port())
    os.environ["PREFECT_API_URL"] = info.api_url
    yield info
    server.stop(home)
    os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on loopback, run by a non-root user, stopped at the end."""
    from tests import postgres as pg

    if pg.binaries() is None:
        reason = "PostgreSQL is not installed (Debian package postgresql; .ci/run installs it)"
        if os.environ.get("ORDERCAST_REQUIRE_POSTGRES"):  # CI: these tests must run
            pytest.fail(reason)
        pytest.skip(reason)
    server = pg.start()
    yield server
    server.stop()
