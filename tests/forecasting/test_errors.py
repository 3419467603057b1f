"""Which failures are worth retrying."""
from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy.exc

from forecasting.errors import DataError, InjectedFault, RegionTimeout, TransientFault, is_transient


@pytest.mark.parametrize("error", [
    TransientFault("injected"),
    ConnectionResetError("peer reset"),
    TimeoutError("read timed out"),
    OSError(5, "Input/output error"),
    sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")),
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
])
def test_data_model_and_missing_file_errors_fail_fast(error):
    assert not is_transient(error)
