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
