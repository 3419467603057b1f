"""Deployments of one's own data: a market's daily forecast, weekly backtest and daily accuracy.

`ordercast deploy --orders PATH ...` registers three deployments named after the market
(`forecast/NAME`, `backtest/NAME`, `accuracy/NAME`) on a process work pool, with the table
paths, the region subset, the schedules in the market's time zone and the cluster as
parameters and job variables. The inputs are validated before anything is registered, so a
typo fails here, in seconds, and not at 05:00 as a Failed scheduled run.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecasting.errors import ConfigError

ENTRYPOINTS = {"forecast": "deployments/entrypoints.py:forecast",
               "backtest": "deployments/entrypoints.py:backtest",
               "accuracy": "deployments/entrypoints.py:accuracy"}
DESCRIPTIONS = {
    "forecast": "Forecast the market's regions for the next {horizon_days} days.",
    "backtest": "Backtest the candidate models and refresh each region's selection.",
    "accuracy": "Score the stored forecasts against the orders that arrived; flag regions worse than promised.",
}


@dataclass
class Market:
    """What `ordercast deploy` registers for one market."""

    name: str
    tables: dict[str, str | None]
    out: Path
    timezone: str
    crons: dict[str, str]  # flow -> cron, in `timezone`
    cluster: str = "local"
    regions: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # slot, horizon_days, missing_as_zero
    staffing: str | None = None  # staffing table: the daily forecast also plans drivers and shifts
    db: str | None = None  # forecast database of all three flows (default: SQLite files under `out`)
    prune_older_than: str | None = None  # the daily forecast then prunes what is older (`ordercast prune`)
    prune_vintages: bool = False  # ... and old vintages in the forecast database
    db_password_block: str | None = None  # Prefect Secret block with the database password

    def environment(self) -> dict[str, str]:
        """The flow-run process's environment: the cluster, and where the database password is kept."""
        from deployments.database_password import BLOCK_ENV

        block = {BLOCK_ENV: self.db_password_block} if self.db_password_block else {}
        return {"ORDERCAST_CLUSTER": self.cluster, **block}

    def _pruning(self) -> dict[str, Any]:
        if not self.prune_older_than:
            return {}
        return {"prune_older_than": self.prune_older_than, "prune_vintages": self.prune_vintages}

    def deployments(self) -> list[dict[str, Any]]:
        """Name, entrypoint, parameters and schedule of each deployment."""
        tables = {table: path for table, path in self.tables.items() if path}
        subset = {"region_subset": self.regions} if self.regions else {}
        database = {"db": self.db} if self.db else {}
        parameters = {
            "forecast": {**tables, **self.options, **subset, **database, **self._pruning(),
                         "out": str(self.out / "forecast"),
                         **({"staffing": self.staffing} if self.staffing else {})},
            "backtest": {**tables, **self.options, **subset, **database, "out": str(self.out / "backtest")},
            "accuracy": {"orders": tables["orders"], **({"regions": tables["regions"]} if "regions" in tables else {}),
                         "slot": self.options.get("slot", "30min"),
                         "missing_as_zero": self.options.get("missing_as_zero", False),
                         **database, "out": str(self.out / "forecast")},
        }
        return [{"flow": flow, "name": self.name, "entrypoint": ENTRYPOINTS[flow], "parameters": parameters[flow],
                 "cron": self.crons[flow], "description": DESCRIPTIONS[flow].format(**self.options)}
                for flow in ENTRYPOINTS]


def check_schedule(option: str, cron: str, timezone: str) -> None:
    """A cron expression and an IANA time zone Prefect accepts, or a one-line error."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as error:
        field_name = error.errors()[0]["loc"][0]
        if field_name == "timezone":
            raise ConfigError(f"--timezone: '{timezone}' is not an IANA time zone (e.g. Europe/Berlin, "
                              "America/New_York)") from None
        raise ConfigError(f"{option}: '{cron}' is not a cron expression (minute hour day-of-month month "
                          "day-of-week, e.g. '0 5 * * *')") from None


def market_timezone(region_zones: dict[str, str], chosen: list[str] | None) -> str:
    """The one time zone of the market's regions (the schedule's default), or an error asking
    for `--timezone` when they differ."""
    zones = {zone for region, zone in region_zones.items() if not chosen or region in chosen}
    if len(zones) != 1:
        raise ConfigError(f"the regions are in {len(zones)} time zones ({', '.join(sorted(zones))}); give the "
                          "schedule's time zone with --timezone, or deploy each market with --only-regions")
    return zones.pop()


def register(market: Market, pool: str, project_root: Path) -> list[str]:
    """Register (or update) the market's deployments; returns their full names."""
    from prefect import Flow
    from prefect.schedules import Cron

    names = []
    for spec in market.deployments():
        flow = Flow.from_source(source=str(project_root), entrypoint=spec["entrypoint"])
        with contextlib.redirect_stdout(io.StringIO()):  # Prefect's table per deployment; one summary follows
            flow.deploy(name=spec["name"], work_pool_name=pool, build=False, push=False, print_next_steps=False,
                        ignore_warnings=True, schedules=[Cron(spec["cron"], timezone=market.timezone)],
                        parameters=spec["parameters"], description=spec["description"],
                        job_variables={"env": market.environment()})
        names.append(f"{spec['flow']}/{spec['name']}")
    return names
