"""Which failures are worth retrying."""
from __future__ import annotations

import errno
import sqlite3

import pytest
import sqlalchemy.exc

from forecasting.errors import DataError, InjectedFault, RegionTimeout, TransientFault, is_transient


@pytest.mark.parametrize("error", [
    TransientFault("injected"),
    ConnectionResetError("peer reset"),
    TimeoutError("read timed out"),
    OSError(5, "Input/output error"),
    BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable"),
    sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")),
    sqlalchemy.exc.OperationalError("connect", {}, Exception("could not connect to server: Connection refused")),
])
def test_io_network_and_database_hiccups_are_retried(error):
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    DataError("orders.csv: column 'orders': negative"),
    InjectedFault("model failed"),
    RegionTimeout("ran past the limit"),
    ValueError("bad feature matrix"),
    FileNotFoundError(2, "No such file", "orders.csv"),
    PermissionError(13, "Permission denied", "out"),
    MemoryError(),
    OSError(errno.ENOSPC, "No space left on device"),
    sqlalchemy.exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: forecasts")),
    sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("table forecasts has no column named p5")),
    ChildProcessError("train berlin: its process ended with exit code -9 and no result"),
])
def test_data_model_full_disk_schema_and_killed_process_errors_fail_fast(error):
    assert not is_transient(error)
