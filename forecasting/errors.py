"""Exceptions that carry a one-line message meant for the person running ordercast."""
from __future__ import annotations

import errno


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


_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.EBUSY, errno.EIO, errno.ETIMEDOUT,
                     errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ENETDOWN,
                     errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ESTALE}
_TRANSIENT_DATABASE_TEXT = ("locked", "busy", "timeout", "timed out", "deadlock", "could not connect",
                            "connection refused", "connection reset", "server closed the connection",
                            "terminating connection", "too many connections")


def is_transient(error: BaseException) -> bool:
    """Worth retrying: connection errors, timeouts, locked or busy databases and EAGAIN-like
    I/O errors. Everything else fails at once, since running it again gives the same answer:
    data and model errors, missing or forbidden files, a full disk, a missing table or column,
    a child process that was killed."""
    from sqlalchemy.exc import DisconnectionError, OperationalError

    if isinstance(error, OrdercastError):
        return False
    if isinstance(error, (TransientFault, ConnectionError, TimeoutError, DisconnectionError)):
        return True
    if isinstance(error, OSError):
        return error.errno in _TRANSIENT_ERRNOS
    if isinstance(error, OperationalError):
        text = str(error.orig if error.orig is not None else error).lower()
        return any(words in text for words in _TRANSIENT_DATABASE_TEXT)
    return False
