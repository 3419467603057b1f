"""Exceptions that carry a one-line message meant for the person running ordercast."""
from __future__ import annotations


class OrdercastError(Exception):
    """Base class: its message is shown to the user as is."""


class DataError(OrdercastError):
    """An input file breaks the data contract (bad file, column, value or row)."""


class ConfigError(OrdercastError):
    """A command-line option or setting has an invalid value."""


class NoStoredModelError(OrdercastError):
    """`--no-train` found no stored model that fits a region."""


class InjectedFault(OrdercastError):
    """A failure asked for through ORDERCAST_FAULTS (failure drills and tests)."""


class TransientFault(OSError):
    """An injected transient I/O error (ORDERCAST_FAULTS kind `transient`); retried like a real one."""


class RegionTimeout(OrdercastError):
    """A region's training ran past `--region-timeout` and was stopped."""


class OutputLocked(OrdercastError):
    """Another run is writing the same output folder or database."""


_PERSISTENT_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_transient(error: BaseException) -> bool:
    """Worth retrying: I/O, network and database-connection errors. Data errors, model errors
    and missing or forbidden files fail fast: running them again gives the same answer."""
    from sqlalchemy.exc import DisconnectionError, OperationalError

    if isinstance(error, OrdercastError):
        return False
    if isinstance(error, OSError):
        return not isinstance(error, _PERSISTENT_OS_ERRORS)
    return isinstance(error, (OperationalError, DisconnectionError))
