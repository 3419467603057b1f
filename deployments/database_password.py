"""The forecast database's password from a Prefect Secret block, for machines whose environment
cannot hold it (a deployment's worker, remote Dask workers).

`ORDERCAST_DB_PASSWORD_BLOCK` names the block. Where `PGPASSWORD` is not set already, the
password is loaded from the Prefect server into this process's `PGPASSWORD`, which the
PostgreSQL drivers read; it is never written to a flow-run parameter, record or log.
"""
from __future__ import annotations

import os

from forecasting.errors import ConfigError

BLOCK_ENV = "ORDERCAST_DB_PASSWORD_BLOCK"


def block_to_load() -> str | None:
    """The Secret block's name when the password must come from it: named, and no PGPASSWORD yet."""
    return None if os.environ.get("PGPASSWORD") else os.environ.get(BLOCK_ENV) or None


def password_from_block() -> None:
    """Set PGPASSWORD from the Secret block named in ORDERCAST_DB_PASSWORD_BLOCK, if any and if
    PGPASSWORD is not set. Needs the Prefect API (PREFECT_API_URL) to be reachable."""
    name = block_to_load()
    if not name:
        return
    from prefect.blocks.system import Secret

    try:
        secret = Secret.load(name)
    except ValueError:
        raise ConfigError(f"{BLOCK_ENV}={name}: no Secret block of that name on the Prefect server") from None
    os.environ["PGPASSWORD"] = secret.get()
