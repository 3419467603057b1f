"""The `ordercast` command line.

Exit codes of `forecast` and `demo`: 0 every region written; 2 some regions failed and the
rest were written; 1 nothing written (bad input, bad option, or every region failed).
Prefect is imported only after `ensure_api` has pointed this process at one Prefect server.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from forecasting.errors import OrdercastError
from forecasting.settings import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_KEEP_RUNS,
    DEFAULT_SLOT,
    PROGRESS,
    QUIET_ENV,
    ordercast_home,
)

EXIT_OK, EXIT_NOTHING_WRITTEN, EXIT_PARTIAL = 0, 1, 2
DEFAULT_POOL = "ordercast"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_TABLE_OPTIONS = ("weather", "events", "promotions", "regions")
VERBOSE_HELP = ("also show every task run's log lines and Dask's own messages in the terminal (default: the flow's "
                "progress, warnings and errors; the Prefect UI has every log line either way)")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _database_password_to_environment(args)
        return args.handler(args)
    except OrdercastError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOTHING_WRITTEN
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _database_password_to_environment(args: argparse.Namespace) -> None:
    """Keep a database password out of flow-run parameters, run.json and logs: a password in a
    PostgreSQL `--db` (or `--forecasts`) URL moves into this process's PGPASSWORD, which the
    driver reads and local Dask workers inherit; the URL goes on without it. A deployment keeps
    its parameters on the Prefect server, so `deploy` refuses such a URL instead."""
    from forecasting.errors import ConfigError
    from forecasting.storage import split_password

    for option in ("db", "forecasts", "database"):
        url = getattr(args, option, None)
        if not url:
            continue
        bare, password = split_password(url)
        if password is None:
            continue
        flag = f"--{option}"
        if args.handler is _deploy:
            raise ConfigError(f"{flag}: leave the password out of the URL: a deployment's parameters are shown in the "
                              "Prefect UI. Set PGPASSWORD in the worker's environment instead (or use ~/.pgpass)")
        if not bare.startswith("postgresql"):
            raise ConfigError(f"{flag}: a password in the URL is taken from it for PostgreSQL only; for this database "
                              "give the password through the driver's own environment or configuration")
        os.environ["PGPASSWORD"] = password
        setattr(args, option, bare)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ordercast",
        description="Order-volume forecasting per region and time slot: Prefect flows on a Dask cluster. "
        f"State lives in $ORDERCAST_HOME (now {ordercast_home()}).",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    demo_data = commands.add_parser("demo-data", help="write a synthetic data set in the input contract",
                                    description="Write orders.csv, weather.csv, events.csv, promotions.csv and "
                                    "regions.csv: realistic, seeded synthetic data in 30-minute slots.")
    demo_data.add_argument("--out", required=True, type=Path, help="folder to write the CSV files into")
    _add_demo_shape(demo_data)
    demo_data.set_defaults(handler=_demo_data)

    forecast = commands.add_parser("forecast", help="train per-region models and forecast the horizon",
                                   description="Load and validate the inputs, train a model per region on a "
                                   "local Dask cluster, predict every slot of the horizon, and write "
                                   "OUT/forecasts.parquet, the forecasts table, OUT/plots/ and OUT/run.json. "
                                   "Exit 0: all regions written; 2: some regions failed; 1: nothing written.")
    _add_table_options(forecast)
    _add_run_options(forecast)
    _add_staffing_options(forecast)
    forecast.set_defaults(handler=_forecast)

    backtest = commands.add_parser("backtest", help="backtest candidate models per region and select the best",
                                   description="Run every candidate model at many past cutoffs on a local Dask "
                                   "cluster, score them (WAPE, bias, MASE, pinball loss, coverage), choose a model "
                                   "per region on the earlier cutoffs and score that choice on the last "
                                   "--holdout-cutoffs cutoffs it never saw. Writes OUT/metrics.parquet, "
                                   "OUT/predictions.parquet, OUT/selection.parquet, OUT/run.json, OUT/plots/ and "
                                   "the model_selection table; later forecasts use the selected models and "
                                   "calibrated intervals. Exit codes as for forecast.")
    _add_table_options(backtest)
    _add_run_options(backtest, forecast_options=False)
    backtest.add_argument("--cutoffs", type=int, default=52, help="number of cutoffs (default 52)")
    backtest.add_argument("--cutoff-step", default="7D", help="time between cutoffs, pandas style (default 7D); with --slot 1D "
                          "and whole days, calendar days between local midnights")
    backtest.add_argument("--cutoff-dates", help="explicit cutoffs D1,D2,... (ISO-8601 with offset) instead of "
                          "--cutoffs/--cutoff-step")
    backtest.add_argument("--retrain-every", type=int, default=4,
                          help="refit learned models every K cutoffs; predict at every cutoff with the latest "
                          "fit made at or before it (default 4)")
    backtest.add_argument("--models", help=f"candidate models, comma-separated (default all: {', '.join(_model_names())}; "
                          "pooled, one model over every region, runs when there are at least 2 regions; recursive and "
                          "recursive_ensemble run with slots shorter than a day)")
    backtest.add_argument("--staffing", help="staffing table (docs/staffing.md): also cost each model's staffing "
                          "against the actual orders at every cutoff (short and idle driver-hours, cost)")
    backtest.add_argument("--select-by", choices=("wape", "cost"), default="wape",
                          help="choose each region's model by WAPE (default) or, with --staffing, by staffing cost; "
                          "the same rule either way (the preferred model unless another is better by more than "
                          "one standard error)")
    backtest.add_argument("--holdout-cutoffs", type=int, default=12,
                          help="last cutoffs held out from model selection and interval calibration (default 12)")
    backtest.set_defaults(handler=_backtest)

    accuracy = commands.add_parser("accuracy", help="score the stored forecasts against the orders that arrived",
                                   description="Score every forecast vintage in the database against the orders "
                                   "that have arrived since: WAPE, bias and P-interval coverage per region, model, "
                                   "vintage and vintage age. Writes OUT/accuracy.parquet, "
                                   "OUT/accuracy_regions.parquet and OUT/plots/accuracy.png, and flags regions "
                                   "whose WAPE over the last 14 days is above 1.25 times their backtest's "
                                   "held-out WAPE. Exit 0: scored, flags listed (or no orders arrived yet); "
                                   "1: no forecasts table, or invalid input.")
    accuracy.add_argument("--orders", required=True, help="orders CSV/Parquet file or folder, with the new orders")
    accuracy.add_argument("--regions", help="regions table (region, timezone, country); default UTC")
    accuracy.add_argument("--out", required=True, type=Path,
                          help="output folder (usually the forecast's OUT, whose database it reads by default)")
    accuracy.add_argument("--slot", default=DEFAULT_SLOT, help="slot length of the forecasts (default 30min)")
    accuracy.add_argument("--missing-as-zero", action="store_true",
                          help="treat slots missing inside a region's history as zero orders")
    accuracy.add_argument("--db", help="SQLAlchemy URL of the forecast database (default sqlite:///OUT/forecasts.sqlite)")
    accuracy.add_argument("--since", help="score only vintages with as_of at or after this ISO-8601 timestamp")
    accuracy.set_defaults(handler=_accuracy)

    staff = commands.add_parser(
        "staff", help="turn stored forecasts into drivers per slot and the shifts that cover them",
        description="Plan drivers from stored forecasts, without training or predicting (what-if runs with other "
        "costs or limits). Per slot: the whole number of drivers with the lowest expected cost of idle "
        "driver-hours and late orders (the forecast quantile at the service level late_order_cost / "
        "(late_order_cost + driver_hour_cost / orders_per_driver_hour)), within min_drivers and max_drivers. "
        "Then the cheapest shifts that cover it (an integer program, HiGHS). Writes OUT/staffing.parquet, "
        "OUT/shifts.parquet, OUT/staffing/<region>.csv, OUT/plots/staffing_<region>.png and the database "
        "tables staffing and shifts. Exit 0: every region staffed; 2: some regions failed; 1: nothing written.")
    staff.add_argument("--forecasts", required=True,
                       help="a forecast's OUT folder, or the SQLAlchemy URL of a forecast database")
    staff.add_argument("--staffing", required=True,
                       help="staffing table (CSV/Parquet): region, orders_per_driver_hour, driver_hour_cost, "
                       "late_order_cost; optional min_drivers, max_drivers, min_shift_hours, max_shift_hours, "
                       "shift_start_step (hours)")
    staff.add_argument("--out", required=True, type=Path, help="output folder (may be the forecast's OUT)")
    staff.add_argument("--as-of", help="the forecast vintage to staff (ISO-8601; default: each region's latest)")
    staff.add_argument("--published", help="published shifts (CSV/Parquet: region, shift_start, shift_end, "
                       "drivers): kept as they are; new shifts start only after the notice period")
    staff.add_argument("--notice-hours", type=float, default=48.0,
                       help="with --published: no new shift starts within this many hours of as_of (default 48)")
    staff.add_argument("--time-limit", type=float, default=20.0,
                       help="seconds the shift solver may spend per region; then its best plan so far (default 20)")
    staff.add_argument("--db", help="SQLAlchemy URL of the database to write (default sqlite:///OUT/forecasts.sqlite)")
    staff.set_defaults(handler=_staff)

    demo = commands.add_parser("demo", help="generate demo data if missing, then run the forecast",
                               description="Write the demo data set under $ORDERCAST_HOME/demo/data unless it "
                               "is there, run the forecast flow on a local Dask cluster against the local "
                               "Prefect server, and print where the forecasts, plots and UI are.")
    demo.add_argument("--data", type=Path, help="demo data folder (default $ORDERCAST_HOME/demo/data)")
    demo.add_argument("--out", type=Path, help="output folder (default $ORDERCAST_HOME/demo/out)")
    _add_demo_shape(demo)
    _add_run_options(demo, data_options=False)
    demo.set_defaults(handler=_demo)

    deploy = commands.add_parser(
        "deploy", help="register scheduled deployments of your data (or the demo's) on the Prefect server",
        description="With --orders: validate your tables, then register three deployments for them, "
        "forecast/NAME (daily, --cron), backtest/NAME (weekly, --backtest-cron) and accuracy/NAME (daily, "
        "--accuracy-cron), all in --timezone, writing under OUT/NAME. Deploy each market (region subset, time "
        "zone) under its own --name. Without --orders: register the demo deployments of "
        "deployments/prefect.yaml on the tables in --data. Nothing is registered when an input is invalid. "
        "Run `ordercast worker` to execute the scheduled runs.")
    deploy.add_argument("--pool", default=DEFAULT_POOL, help=f"process work pool (default {DEFAULT_POOL})")
    deploy.add_argument("--orders", help="your orders table (file or folder, any name): deploy your data")
    deploy.add_argument("--weather", help="weather table (optional)")
    deploy.add_argument("--events", help="events table (optional)")
    deploy.add_argument("--promotions", help="promotions table (optional)")
    deploy.add_argument("--regions", help="regions table (optional; time zones and countries)")
    deploy.add_argument("--name", default="main",
                        help="deployment name, one per market: forecast/NAME, backtest/NAME, accuracy/NAME "
                        "(default main)")
    deploy.add_argument("--db", help="SQLAlchemy URL of the forecast database the three deployments share, without "
                        "a password (the workers' PGPASSWORD or ~/.pgpass gives it; default: SQLite files under OUT)")
    deploy.add_argument("--db-password-block", metavar="NAME",
                        help="Prefect Secret block that holds the --db password, for workers whose environment "
                        "has no PGPASSWORD (create it in the UI under Blocks, or with Secret(value=...).save(NAME))")
    deploy.add_argument("--prune-older-than", metavar="AGE",
                        help="after each successful daily forecast, remove what is older than AGE (e.g. 30D), as "
                        "`ordercast prune` does (default: keep everything)")
    deploy.add_argument("--prune-vintages", action="store_true",
                        help="with --prune-older-than: also delete old forecast vintages from the database "
                        "(each region's newest stays)")
    deploy.add_argument("--only-regions", metavar="REGION,...",
                        help="this market's regions (default: every region in the tables)")
    deploy.add_argument("--cron", default="0 5 * * *", help="when the daily forecast runs (default '0 5 * * *')")
    deploy.add_argument("--backtest-cron", default="0 1 * * 1",
                        help="when the backtest runs (default '0 1 * * 1': Mondays 01:00)")
    deploy.add_argument("--accuracy-cron", default="30 4 * * *",
                        help="when the accuracy report runs (default '30 4 * * *')")
    deploy.add_argument("--timezone", help="time zone of the schedules (default: the regions' time zone when they "
                        "share one; required when they do not)")
    deploy.add_argument("--cluster", default="local", help="where the scheduled runs' tasks run: a cluster file "
                        "or kind, as for forecast (default local)")
    deploy.add_argument("--slot", default=DEFAULT_SLOT, help="slot length of your data (default 30min)")
    deploy.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS,
                        help=f"days to forecast (default {DEFAULT_HORIZON_DAYS})")
    deploy.add_argument("--missing-as-zero", action="store_true",
                        help="treat slots missing inside a region's history as zero orders")
    deploy.add_argument("--staffing", help="staffing table: the daily forecast also plans drivers per slot and "
                        "shifts (docs/staffing.md)")
    deploy.add_argument("--notify", metavar="URL",
                        help="with --orders: a webhook that gets a message (JSON {\"text\": ...}) when a run of these "
                        "deployments ends Failed or Crashed (the run, its failed regions and the repair) or is Late "
                        "and not started for --late-minutes; installed as Prefect automations")
    deploy.add_argument("--late-minutes", type=float, default=30,
                        help="with --notify: minutes a Late run may wait for a worker before the alert (default 30)")
    deploy.add_argument("--data", type=Path, help="without --orders: folder with the demo's five tables "
                        "(default $ORDERCAST_HOME/demo/data)")
    deploy.add_argument("--out", type=Path, help="folder the deployments write into (default "
                        "$ORDERCAST_HOME/scheduled, and NAME under it with --orders)")
    deploy.set_defaults(handler=_deploy)

    worker = commands.add_parser("worker", help="start a Prefect worker that runs scheduled flow runs",
                                 description="Start a Prefect process worker polling the work pool, so that "
                                 "scheduled and manually triggered deployment runs execute on this machine.")
    worker.add_argument("--pool", default=DEFAULT_POOL, help=f"work pool to poll (default {DEFAULT_POOL})")
    worker.add_argument("--run-once", action="store_true",
                        help="run the flow runs that are due, then exit: 0 when every one completed, 2 when any "
                        "ended Failed or Crashed (each is named)")
    worker.set_defaults(handler=_worker)

    prune = commands.add_parser(
        "prune", help="remove old models, run folders, snapshots, task results, vintages and flow runs",
        description="Free disk in a long-running installation. Under $ORDERCAST_HOME (or ORDERCAST_WORK_DIR): stored "
        "models, run folders, input snapshots, stored task results and drill markers older than --older-than; the "
        "newest --keep-runs models per region, run folders and snapshots stay whatever their age, so --no-train "
        "and a retry of a kept run still work. On the Prefect server: flow runs that ended before --older-than, "
        "with their task runs (their logs go with the server's daily vacuum). With --vintages: forecast, staffing "
        "and shift rows of vintages (as_of) older than --older-than in --db, except each region's newest. "
        "--dry-run prints what would go.")
    prune.add_argument("--keep-runs", type=int, default=DEFAULT_KEEP_RUNS,
                       help="newest models per region, run folders and snapshots kept whatever their age (default 10)")
    prune.add_argument("--older-than", default="30D", help="only what is older than this goes (default 30D)")
    prune.add_argument("--vintages", action="store_true",
                       help="also delete old forecast vintages from the database given by --db")
    prune.add_argument("--db", help="SQLAlchemy URL of the forecast database (with --vintages)")
    prune.add_argument("--dry-run", action="store_true", help="print what would go and how much; remove nothing")
    prune.set_defaults(handler=_prune)

    runs = commands.add_parser("runs", help="list recent flow runs and their states",
                               description="List the latest flow runs on the Prefect server (newest first) with "
                               "their flow, state and start time: what the Prefect UI's run list shows.")
    runs.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    runs.set_defaults(handler=_runs)

    failures = commands.add_parser("failures", help="print the failed regions and errors of a flow run",
                                   description="Print the regions of a flow run that failed or fell back to the "
                                   "seasonal naive, with their errors and task run ids, and any other failed "
                                   "task run. Exit 0: nothing failed; 2: failures listed; 1: run not found.")
    failures.add_argument("run_id", nargs="?", metavar="RUN_ID", help="flow run id (default: the latest run)")
    failures.set_defaults(handler=_failures)

    retry = commands.add_parser("retry", help="retry a failed forecast (or scheduled backtest) run: only what "
                                "failed runs again",
                                description="Retry RUN_ID under its own id, as Retry in the Prefect UI does: the run "
                                "goes to AwaitingRetry and runs again with its own inputs, options and as_of; "
                                "every task run that completed before comes back Cached from its stored result, "
                                "so only the regions that failed or fell back train again, and OUT and the "
                                "database are written for every region once. A deployment's run is picked up "
                                "by a worker of its work pool; an ad-hoc run runs here, on --cluster. Refuses "
                                "(exit 1, naming what changed) when a later run wrote OUT or an input's content "
                                "changed. A backtest run of a deployment is retried the same way (only its "
                                "failed regions are backtested again); an ad-hoc backtest run is not (run the "
                                "command again). Exit codes as for forecast.")
    retry.add_argument("run_id", metavar="RUN_ID", help="flow run id of the forecast or backtest run to repair")
    retry.add_argument("--cluster", default="local",
                       help="where an ad-hoc run's tasks run, as for forecast (default local)")
    retry.add_argument("--workers", type=int, help="Dask worker processes of a local cluster (default: one per core)")
    retry.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    retry.add_argument("--force", action="store_true",
                       help="retry even when a later run wrote OUT or an input file changed "
                       "(without it, retry refuses and says what changed)")
    retry.set_defaults(handler=_retry)

    server = commands.add_parser("server", help="start, stop or check the local Prefect server",
                                 description="The local Prefect server (SQLite under $ORDERCAST_HOME/prefect, or "
                                 "PostgreSQL with --database; bound to 127.0.0.1) that flow runs and Dask workers "
                                 "report to.")
    server.add_argument("action", choices=["start", "stop", "status"])
    server.add_argument("--port", type=int, help="port for start (default 4200, or a free port if taken)")
    server.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1; 0.0.0.0 lets workers on other machines "
                        "report, and lets anyone who reaches the port read and change runs)")
    server.add_argument("--database", metavar="URL",
                        help="with start: keep the server's runs in this PostgreSQL database "
                        "(postgresql://user@host:port/db; the password from PGPASSWORD or ~/.pgpass) instead of "
                        "SQLite; remembered for this $ORDERCAST_HOME. For a server shared by a team")
    server.set_defaults(handler=_server)
    return parser


def _model_names() -> list[str]:
    from forecasting.models import MODELS

    return list(MODELS)


def _add_table_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orders", required=True, help="orders CSV/Parquet file or folder (region, ts, orders)")
    parser.add_argument("--weather", help="weather table (region, ts, numeric columns)")
    parser.add_argument("--events", help="events table (region, start, end, kind)")
    parser.add_argument("--promotions", help="promotions table (region, start, end, intensity)")
    parser.add_argument("--regions", help="regions table (region, timezone, country); default UTC, no holidays")
    parser.add_argument("--out", required=True, type=Path, help="output folder")


def _add_demo_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regions", type=int, default=12, help="number of regions (default 12)")
    parser.add_argument("--years", type=float, default=2.0, help="years of history (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--profile", choices=["city", "suburb"], default="city",
                        help="shape of the data: city (the demo: lunch and dinner peaks, sports) or suburb "
                        "(small dinner-driven regions, some with an unannounced change of weekly pattern)")


def _add_staffing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--staffing", help="staffing table (CSV/Parquet, see `ordercast staff --help`): also plan "
                        "drivers per slot and shifts per region after its prediction, and write the quantiles "
                        "0.05 to 0.95 that staffing reads")
    parser.add_argument("--published", help="with --staffing: published shifts (region, shift_start, shift_end, "
                        "drivers), kept as they are")
    parser.add_argument("--notice-hours", type=float, default=48.0,
                        help="with --published: no new shift starts within this many hours of as_of (default 48)")


def _add_run_options(parser: argparse.ArgumentParser, data_options: bool = True,
                     forecast_options: bool = True) -> None:
    if data_options:
        parser.add_argument("--slot", default=DEFAULT_SLOT,
                            help="slot length: 5min, 10min, 15min, 20min, 30min, 60min/1h or 1D (default 30min)")
        parser.add_argument("--missing-as-zero", action="store_true",
                            help="treat slots missing inside a region's history as zero orders")
    parser.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS,
                        help=f"days to forecast (default {DEFAULT_HORIZON_DAYS})")
    if forecast_options:
        parser.add_argument("--as-of", help="forecast origin, ISO-8601 with offset on the slot grid; only orders "
                            "before it are used (default: the end of the latest orders over all regions). "
                            "'per-region': each region from the end of its own orders (extracts cut at "
                            "different times); run.json then gives each region's as_of")
        parser.add_argument("--no-train", action="store_true",
                            help="predict with the latest stored model per region instead of training")
        parser.add_argument("--skip-invalid-regions", action="store_true",
                            help="regions whose inputs are invalid get no forecast and are listed with their "
                            "errors; the rest are written (exit 2). Default: any invalid input stops the run (exit 1)")
        parser.add_argument("--region-timeout", type=float, metavar="SECONDS",
                            help="stop a region's training after SECONDS (its process is killed) and give it "
                            "the seasonal naive fallback (default: no limit)")
    parser.add_argument("--quantiles", default="0.1,0.5,0.9",
                        help="quantiles of the prediction intervals, written as columns p10, p50, ... "
                        "(default 0.1,0.5,0.9)")
    parser.add_argument("--db", help="SQLAlchemy URL of the forecast database (default sqlite:///OUT/forecasts.sqlite)")
    parser.add_argument("--cluster", default="local",
                        help="where tasks run: a cluster YAML file, or 'local' (default: LocalCluster, one worker "
                        "per core) or 'serial' (no Dask, for debugging); see deployments/clusters/")
    parser.add_argument("--workers", type=int, help="Dask worker processes of a local cluster (default: one per core)")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)


def _demo_data(args: argparse.Namespace) -> int:
    _write_demo_data(args.out, args.regions, args.years, args.seed, args.profile)
    return EXIT_OK


def _write_demo_data(out: Path, regions: int, years: float, seed: int, profile: str = "city") -> None:
    from forecasting.demo_data import generate, write_csv

    if regions < 1 or years <= 0:
        raise OrdercastError(f"demo-data: --regions must be >= 1 and --years > 0, got {regions} and {years}")
    done = []

    def progress(region: str) -> None:
        done.append(region)
        print(f"  generated {region} ({len(done)}/{regions})", file=sys.stderr)

    print(f"Writing demo data ({regions} regions, {years:g} years, seed {seed}) to {out}", file=sys.stderr)
    written = write_csv(generate(regions, years, seed, progress, profile), out)
    written["staffing"] = _write_demo_staffing(out)
    for name, path in written.items():
        print(f"  {name:<11} {path}")


def _write_demo_staffing(data: Path) -> Path:
    """The demo's staffing table, for the regions of its regions.csv."""
    import pandas as pd

    from forecasting.demo_data import demo_staffing
    from forecasting.storage import atomic_write_bytes

    path = data / "staffing.csv"
    regions = pd.read_csv(data / "regions.csv")["region"]
    atomic_write_bytes(path, demo_staffing(regions.tolist()).to_csv(index=False).encode())
    return path


def _demo(args: argparse.Namespace) -> int:
    home = ordercast_home()
    data = args.data or home / "demo" / "data"
    out = args.out or home / "demo" / "out"
    if (data / "orders.csv").exists():
        print(f"Using demo data in {data}", file=sys.stderr)
    else:
        _write_demo_data(data, args.regions, args.years, args.seed, args.profile)
    tables = {name: str(data / f"{name}.csv") for name in ("orders", *_TABLE_OPTIONS)}
    staffing = data / "staffing.csv"
    if not staffing.exists():  # demo data written before the demo shipped a staffing table
        _write_demo_staffing(data)
    args.staffing, args.published, args.notice_hours = str(staffing), None, 48.0
    return _run_forecast(tables, out, args, slot=DEFAULT_SLOT, missing_as_zero=False)


def _forecast(args: argparse.Namespace) -> int:
    return _run_forecast(_tables(args), args.out, args, slot=args.slot, missing_as_zero=args.missing_as_zero)


def _tables(args: argparse.Namespace) -> dict[str, str | None]:
    return {"orders": args.orders, **{name: getattr(args, name) for name in _TABLE_OPTIONS}}


def _backtest(args: argparse.Namespace) -> int:
    from forecasting.backtest import BacktestOptions
    from forecasting.contract import parse_as_of
    from forecasting.errors import ConfigError

    dates = [d.strip() for d in args.cutoff_dates.split(",") if d.strip()] if args.cutoff_dates else None
    for date in dates or []:
        parse_as_of(date)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else tuple(_model_names())
    try:
        import pandas as pd

        pd.Timedelta(args.cutoff_step)
    except ValueError:
        raise ConfigError(f"--cutoff-step: '{args.cutoff_step}' is not a duration such as 7D") from None
    staffing = _staffing_params(args, args.slot)["staffing"] if args.staffing else None
    BacktestOptions(args.slot, args.horizon_days, models, args.retrain_every, _quantiles(args.quantiles),
                    args.holdout_cutoffs, staffing=staffing, select_by=args.select_by)  # validates before anything starts
    params = dict(slot=args.slot, horizon_days=args.horizon_days, missing_as_zero=args.missing_as_zero, db=args.db,
                  cutoffs=args.cutoffs, cutoff_step=args.cutoff_step, cutoff_dates=dates,
                  retrain_every=args.retrain_every, models=list(models), quantiles=list(_quantiles(args.quantiles)),
                  holdout_cutoffs=args.holdout_cutoffs, staffing=staffing, select_by=args.select_by)
    return _run_flow("backtest", _tables(args), args.out, args, params, _print_backtest_outputs)


def _accuracy(args: argparse.Namespace) -> int:
    from deployments.server import ensure_api

    if args.since:
        from forecasting.contract import parse_as_of

        parse_as_of(args.since)
    _check_databases(args.db)
    out = args.out.resolve()
    _, ui_url = ensure_api()
    print(f"Prefect UI: {ui_url}", file=sys.stderr)
    from flows.accuracy import accuracy_flow

    _shape_terminal_logs(quiet=False)
    state = accuracy_flow(orders=str(Path(args.orders).resolve()), out=str(out),
                          regions=str(Path(args.regions).resolve()) if args.regions else None, slot=args.slot,
                          missing_as_zero=args.missing_as_zero, db=args.db, since=args.since, return_state=True)
    link = f"{ui_url}/runs/flow-run/{state.state_details.flow_run_id}"
    if not state.is_completed():
        print(f"error: {_failure_message(state)}", file=sys.stderr)
        print(f"Flow run:   {link}", file=sys.stderr)
        return EXIT_NOTHING_WRITTEN
    summary = state.result()
    if not summary["vintages"]:
        print("No stored forecast slot has arrived orders yet: nothing to score.")
    else:
        vintages = summary["vintages"]
        print(f"Scored {vintages} vintage{'' if vintages == 1 else 's'}; WAPE over the orders since "
              f"{summary['recent_since']}:")
        for row in summary["regions"]:
            promise = "no backtest" if row["promised_wape"] is None else f"backtest promised {row['promised_wape']:.3f}"
            flag = "  <- clearly worse than promised" if row["flagged"] else ""
            print(f"  {row['region']:<24} {row['model']:<16} WAPE {row['recent_wape']:.3f} ({promise}){flag}")
        print(f"Tables:     {out / 'accuracy.parquet'}, {out / 'accuracy_regions.parquet'}")
        print(f"Plot:       {summary['plot']}")
    print(f"Flow run:   {link}")
    return EXIT_OK


def _staff(args: argparse.Namespace) -> int:
    from deployments.server import ensure_api
    from forecasting.errors import ConfigError

    if args.notice_hours < 0 or args.time_limit <= 0:
        raise ConfigError("--notice-hours must be >= 0 and --time-limit > 0")
    forecasts = args.forecasts if "://" in args.forecasts else str(Path(args.forecasts).resolve())
    _check_databases(forecasts, args.db)
    _check_staffing_inputs(forecasts, args)
    out = args.out.resolve()
    _, ui_url = ensure_api()
    from flows.staffing import staffing_flow

    _shape_terminal_logs(quiet=False)
    state = staffing_flow(forecasts=forecasts, staffing=str(Path(args.staffing).resolve()), out=str(out),
                          published=str(Path(args.published).resolve()) if args.published else None,
                          as_of=args.as_of, notice_hours=args.notice_hours, time_limit=args.time_limit,
                          db=args.db, return_state=True)
    link = f"{ui_url}/runs/flow-run/{state.state_details.flow_run_id}"
    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, dict):
        print(f"error: {_failure_message(state)}", file=sys.stderr)
        print(f"Flow run:   {link}", file=sys.stderr)
        return EXIT_NOTHING_WRITTEN
    print_staffing(summary)
    print(f"Staffing:   {out / 'staffing.parquet'}, {out / 'shifts.parquet'}, {out / 'staffing'}/<region>.csv")
    print(f"Flow run:   {link}")
    if summary["failed"]:
        for region, error in summary["failed"].items():
            print(f"error: {region}: {error}", file=sys.stderr)
        return EXIT_PARTIAL if summary["regions"] else EXIT_NOTHING_WRITTEN
    return EXIT_OK


def _check_staffing_inputs(forecasts: str, args: argparse.Namespace) -> None:
    """Read and check what `staff` needs before any server or flow run starts, so that bad input
    fails in seconds with its one-line error and leaves no Failed run behind."""
    from forecasting.staffing import load_staffing_inputs, regions_to_staff, slot_minutes_of
    from forecasting.staffing_outputs import read_stored_forecasts

    frame = read_stored_forecasts(forecasts, args.as_of)
    table, _ = load_staffing_inputs(args.staffing, slot_minutes_of(frame), args.published)
    regions_to_staff(set(frame["region"]), table)


def print_staffing(summary: dict[str, Any]) -> None:
    """Next week's driver-hours per region, as a short table."""
    print("Next 7 days: driver-hours per region (required per slot / scheduled in shifts), expected cost")
    width = max([len(row["region"]) for row in summary["regions"]] + [6])
    for row in summary["regions"]:
        print(f"  {row['region']:<{width}}  {row['driver_hours_required_7d']:>8,.0f} / "
              f"{row['driver_hours_scheduled_7d']:>8,.0f} h  cost {row['expected_cost_7d']:>10,.0f}  "
              f"service level {row['service_level']:.2f}")


def _prune(args: argparse.Namespace) -> int:
    from deployments.server import ensure_api
    from forecasting.errors import ConfigError
    from forecasting.retention import parse_age
    from forecasting.settings import work_root

    if args.keep_runs < 1:
        raise ConfigError(f"--keep-runs must be >= 1, got {args.keep_runs}")
    if args.vintages and not args.db:
        raise ConfigError("--vintages needs --db URL (the forecast database, e.g. sqlite:///OUT/forecasts.sqlite)")
    parse_age(args.older_than)
    ensure_api()
    from tasks.retention import prune_installation

    pruned = prune_installation(args.older_than, args.keep_runs, args.db if args.vintages else None, args.dry_run)
    verb = "Would remove" if args.dry_run else "Removed"
    kinds: dict[str, list] = {}
    for removal in pruned.removals:
        kinds.setdefault(removal.kind, []).append(removal)
    print(f"{verb} under {work_root()} (older than {pruned.cutoff:%Y-%m-%d %H:%M} UTC, newest {args.keep_runs} "
          "kept):")
    for kind in ("models", "run folders", "input snapshots", "task results", "drill markers"):
        items = kinds.get(kind, [])
        print(f"  {kind:<16} {len(items):>6}  {sum(item.bytes for item in items) / 2**20:>9.1f} MiB")
    if args.vintages:
        print(f"{verb} from {args.db}: " + ", ".join(f"{rows} {table} rows" for table, rows in pruned.vintages.items()))
    print(f"{verb} on the Prefect server: {pruned.flow_runs} flow runs that ended, with their task runs "
          "(their logs and artifacts go with the server's daily vacuum)")
    return EXIT_OK


def _quantiles(text: str) -> tuple[float, ...]:
    from forecasting.errors import ConfigError
    from forecasting.intervals import parse_quantiles

    try:
        return parse_quantiles(text)
    except ValueError as error:
        raise ConfigError(f"--quantiles: {error}") from None


def _preflight(tables: dict[str, str | None], slot: str, horizon_days: int, as_of: str | None,
               workers: int | None) -> None:
    """Cheap checks before any server or cluster starts: options and input paths."""
    from forecasting.contract import PER_REGION, parse_as_of
    from forecasting.errors import ConfigError
    from forecasting.slots import Slot
    from forecasting.tables import input_files

    Slot.parse(slot)
    if horizon_days < 1:
        raise ConfigError(f"--horizon-days must be >= 1, got {horizon_days}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if as_of is not None and as_of != PER_REGION:
        parse_as_of(as_of)
    for name, path in tables.items():
        if path is not None:
            input_files(path, name)


def _run_forecast(tables: dict[str, str | None], out: Path, args: argparse.Namespace, *, slot: str,
                  missing_as_zero: bool) -> int:
    if args.region_timeout is not None and args.region_timeout <= 0:
        raise OrdercastError(f"--region-timeout must be > 0 seconds, got {args.region_timeout:g}")
    params = dict(slot=slot, horizon_days=args.horizon_days, as_of=args.as_of, no_train=args.no_train,
                  missing_as_zero=missing_as_zero, db=args.db, quantiles=list(_quantiles(args.quantiles)),
                  region_timeout=args.region_timeout, skip_invalid_regions=args.skip_invalid_regions)
    if args.staffing:
        params.update(_staffing_params(args, slot))
    return _run_flow("forecast", tables, out, args, params, _print_outputs)


def _staffing_params(args: argparse.Namespace, slot: str) -> dict[str, Any]:
    """Check the staffing inputs before anything starts (a bad table fails in seconds)."""
    from forecasting.errors import ConfigError
    from forecasting.slots import Slot
    from forecasting.staffing import load_staffing_inputs

    published, notice_hours = getattr(args, "published", None), getattr(args, "notice_hours", 48.0)
    if notice_hours < 0:
        raise ConfigError("--notice-hours must be >= 0")
    load_staffing_inputs(args.staffing, Slot.parse(slot).minutes, published)
    return {"staffing": str(Path(args.staffing).resolve()), "notice_hours": notice_hours,
            "published": str(Path(published).resolve()) if published else None}


def _run_flow(name: str, tables: dict[str, str | None], out: Path, args: argparse.Namespace,
              params: dict[str, Any], print_outputs) -> int:
    """Check options, point at one Prefect server, and run a flow on the chosen cluster."""
    _preflight(tables, params["slot"], args.horizon_days, params.get("as_of"), args.workers)
    _check_databases(params.get("db"))
    cluster = _cluster(args)
    out = out.resolve()
    tables = {table: str(Path(path).resolve()) if path else None for table, path in tables.items()}
    _validate_inputs(tables, params)
    flow, ui_url = _flow_on_cluster(name, cluster, args.verbose)

    from deployments.runners import threads_per_worker

    state = flow(out=str(out), model_threads=threads_per_worker(cluster), return_state=True, **params, **tables)
    _close_progress_lines()
    return _report(state, out, ui_url, print_outputs)


def _flow_on_cluster(name: str, cluster, verbose: bool):
    """The flow with the cluster's task runner, the terminal's log shape set and one Prefect server
    answering; returns the flow and the server's UI address."""
    from deployments.server import ensure_api

    quiet = not verbose
    if quiet:
        os.environ[QUIET_ENV] = "1"
        if _is_local(cluster):  # before Dask is imported here or in the workers this process starts. Not for
            # SSH: its cluster hands this configuration to the remote processes, and waits for their log lines
            os.environ["DASK_LOGGING__DISTRIBUTED"] = "critical"
    _, ui_url = ensure_api()
    print(f"Prefect UI: {ui_url}", file=sys.stderr)

    from deployments.runners import build_task_runner
    from flows.backtest import backtest_flow
    from flows.forecast import forecast

    _shape_terminal_logs(quiet)
    chosen = {"forecast": forecast, "backtest": backtest_flow}[name]
    return chosen.with_options(task_runner=build_task_runner(cluster)), ui_url


def _check_databases(*urls: str | None) -> None:
    """Connect once to each server database before any flow starts. When the password is kept in
    a Prefect Secret block (deployments/database_password.py), the Prefect API is reached first to load it."""
    servers = [url for url in urls if url and "://" in url and not url.startswith("sqlite")]
    if not servers:
        return
    from deployments.database_password import block_to_load, password_from_block

    if block_to_load():
        from deployments.server import ensure_api

        ensure_api()
        password_from_block()
    from forecasting.storage import check_connection

    for url in servers:
        check_connection(url)


def _is_local(cluster) -> bool:
    from deployments.clusters import LocalCluster

    return isinstance(cluster, LocalCluster)


def _validate_inputs(tables: dict[str, str | None], params: dict[str, Any]) -> None:
    """Read, validate and partition the inputs before any server, flow run or cluster starts, so
    that a bad file fails in seconds with its one-line error and leaves no Failed run behind. The
    flow's `load-inputs` then reuses the partitions (same snapshot key) instead of reading again."""
    from forecasting.contract import InputPaths
    from forecasting.pipeline import RunOptions, prepare_partitions, prepared_partitions, snapshot_of

    paths = InputPaths(**tables)
    options = RunOptions(slot=params["slot"], horizon_days=params["horizon_days"], as_of=params.get("as_of"),
                         missing_as_zero=params.get("missing_as_zero", False),
                         skip_invalid_regions=params.get("skip_invalid_regions", False))
    _, folder = snapshot_of(paths, options)
    manifest = prepared_partitions(folder)
    if manifest is None:
        started = time.perf_counter()
        manifest = prepare_partitions(paths, options, folder)
        print(f"Inputs valid: {len(manifest['regions'])} regions, as_of {manifest['as_of']} "
              f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    for warning in manifest["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)


def _cluster(args: argparse.Namespace):
    """The `--cluster` configuration; remote kinds also set the Prefect API and shared folder."""
    from deployments.clusters import LocalCluster, load_cluster
    from forecasting.errors import ConfigError

    cluster = load_cluster(args.cluster)
    if args.workers is not None:
        if not isinstance(cluster, LocalCluster):
            raise ConfigError(f"--workers applies to local clusters; set worker counts in {args.cluster}")
        cluster = cluster.model_copy(update={"n_workers": args.workers})
    shared_dir = getattr(cluster, "shared_dir", None)
    if shared_dir:
        if "://" not in shared_dir and not Path(shared_dir).is_dir():
            raise ConfigError(f"{args.cluster}: shared_dir: '{shared_dir}' is not a folder on this machine")
        from deployments.server import healthy

        if not healthy(cluster.api_url):
            raise ConfigError(f"{args.cluster}: api_url: {cluster.api_url} does not answer from this machine; "
                              "start the Prefect server there or fix the address")
        os.environ["ORDERCAST_WORK_DIR"] = shared_dir
        os.environ["PREFECT_API_URL"] = cluster.api_url
    return cluster


def _report(state: Any, out: Path, ui_url: str, print_outputs) -> int:
    """Print where the outputs are and turn the flow's final state into an exit code."""
    run_id = str(state.state_details.flow_run_id)
    link = f"{ui_url}/runs/flow-run/{run_id}"
    record = _run_record(out, run_id)
    if state.is_completed() and record:
        print_outputs(record, out)
        print(f"Flow run:   {link}")
        return EXIT_OK
    message = _failure_message(state)
    if record is None:
        print(f"error: {message}", file=sys.stderr)
        print(f"Flow run:   {link} (nothing written)", file=sys.stderr)
        return EXIT_NOTHING_WRITTEN
    print_outputs(record, out)
    print(f"error: {message}", file=sys.stderr)
    print(f"Flow run:   {link}", file=sys.stderr)
    return EXIT_PARTIAL


def _run_record(out: Path, run_id: str) -> dict[str, Any] | None:
    """OUT/run.json if this very run wrote it, else None (nothing was written). A forecast
    that crashed after its database commit has its output commit completed first."""
    from forecasting.outputs import read_run_record

    _finish_output_commit(out, run_id)
    record = read_run_record(out)
    return record if record and record.get("run_id") == run_id else None


def _finish_output_commit(out: Path, run_id: str | None = None) -> None:
    """Complete or discard what a crashed forecast left staged in OUT (only `run_id`'s, if
    given). Skipped while another run holds OUT: that run does it itself."""
    from forecasting.errors import OutputLocked
    from forecasting.locks import exclusive_outputs
    from forecasting.outputs import STAGING, recover_outputs

    if not (out / STAGING).is_dir():
        return
    try:
        with exclusive_outputs(out, "", run_id or "recovery"):
            recover_outputs(out, run_id)
    except OutputLocked:
        pass


def _failure_message(state: Any) -> str:
    """The one-line reason of a failed run: our own error's message, else Prefect's."""
    try:
        state.result()
    except OrdercastError as error:
        return str(error)
    except Exception:  # noqa: BLE001 - any other failure is described by the state message
        pass
    return state.message or state.name


def _print_outputs(record: dict[str, Any], out: Path) -> None:
    import pandas as pd

    from forecasting.outputs import read_run_record

    from deployments.summary import region_lines

    regions = record["regions"]
    try:
        forecasts = pd.read_parquet(out / "forecasts.parquet", columns=["region", "ts", "local_start", "as_of",
                                                                        "forecast"])
    except (OSError, ValueError, KeyError):  # an OUT written before local_start existed
        forecasts = None
    if forecasts is not None:
        daily = record["configuration"].get("slot") == "1D"
        print("\n".join(region_lines(forecasts, regions, daily=daily)))
        print()
    written = [region for region in regions if region["status"] in ("ok", "fallback")]
    fallbacks = sum(region["status"] == "fallback" for region in regions)
    rows = sum(region["rows"] for region in written)
    note = f", {fallbacks} from the seasonal naive fallback" if fallbacks else ""
    print(f"Forecasts:  {out / 'forecasts.parquet'} ({rows} rows, {len(written)}/{len(regions)} regions{note})")
    print(f"Database:   {record['configuration']['db']}")
    print(f"Plots:      {out / 'plots'}")
    print(f"Run record: {out / 'run.json'}")
    staffing = read_run_record(out, "staffing.json")
    if staffing and staffing.get("run_id") == record.get("run_id"):
        print()
        print_staffing(staffing)
        print(f"Staffing:   {out / 'staffing.parquet'}, {out / 'shifts.parquet'}, {out / 'staffing'}/<region>.csv")


def _print_backtest_outputs(record: dict[str, Any], out: Path) -> None:
    summary = record["summary"]
    chosen = {}
    for region in record["regions"]:
        chosen[region["model"]] = chosen.get(region["model"], 0) + 1
    print(f"Selection:  {out / 'selection.parquet'} ({', '.join(f'{m}: {n}' for m, n in sorted(chosen.items()))})")
    held_out = len(summary["held_out_cutoffs"])
    print(f"Held-out:   WAPE {_fmt(summary['selection_wape'])} with the per-region selection over "
          f"{held_out} cutoff{'' if held_out == 1 else 's'}; interval coverage {_fmt(summary['coverage'])} "
          f"(nominal {summary['nominal_coverage']})")
    for model, value in sorted(summary["model_wape"].items(), key=lambda item: item[1]):
        print(f"            {model:<16} WAPE {_fmt(value)} (this model in every region it can run)")
    staffing = summary.get("staffing")
    if staffing:
        chosen_cost = staffing["selection"]
        print(f"Staffing:   held-out cost {chosen_cost['staffing_cost']:,.0f} with the per-region selection (by "
              f"{staffing['select_by']}): {chosen_cost['short_driver_hours']:,.0f} driver-hours short of the actual "
              f"orders, {chosen_cost['idle_driver_hours']:,.0f} idle")
        for model, cost in sorted(staffing["model_cost"].items(), key=lambda item: item[1]):
            print(f"            {model:<16} cost {cost:,.0f} (this model in every region it can run)")
    left_out = [r["region"] for r in record["regions"] if any(n.startswith("left out") for n in r["notes"])]
    if left_out:
        example = next(n for r in record["regions"] for n in r["notes"] if n.startswith("left out"))
        print(f"Note:       {len(left_out)} of {len(record['regions'])} regions chose without some candidates, "
              f"e.g. {example} (run.json, notes)")
    print(f"Metrics:    {out / 'metrics.parquet'}, {out / 'predictions.parquet'}")
    print(f"Database:   {record['configuration']['db']} (table model_selection)")
    print(f"Plots:      {out / 'plots'}")
    print(f"Run record: {out / 'run.json'}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class _DropExpectedTraceback(logging.Filter):
    """Input errors are explained in one line; their tracebacks only hide that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], OrdercastError):
            record.exc_info = None
            record.exc_text = None
        return True


class _FlowProgressOnly(logging.Filter):
    """The terminal shows the flow's progress, warnings and errors; task runs' info lines go to
    the Prefect UI only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith("prefect.task_runs")


class ProgressLine(logging.Filter):
    """In a terminal, progress records (`extra={PROGRESS: True}`) rewrite one line in place
    instead of adding a line each; the next other record, or `close`, ends that line. Where the
    stream is not a terminal (a file, a pipe, CI), every record stays a plain line."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream
        self.open = False

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, PROGRESS, False):
            self.stream.write(f"\r\x1b[K{record.getMessage()}")
            self.stream.flush()
            self.open = True
            return False
        self.close()
        return True

    def close(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


_progress_lines: list[ProgressLine] = []


def _shape_terminal_logs(quiet: bool) -> None:
    for name in ("prefect", "prefect.task_runs", "prefect.flow_runs", ""):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_DropExpectedTraceback())
            if quiet and not isinstance(handler, logging.FileHandler) and handler.__class__.__name__ != "APILogHandler":
                handler.addFilter(_FlowProgressOnly())
                _rewrite_progress_in_place(handler)


def _rewrite_progress_in_place(handler: logging.Handler) -> None:
    """Progress records share one line where the handler writes to a terminal."""
    stream = getattr(handler, "stream", None)
    if stream is not None and stream.isatty():
        _progress_lines.append(ProgressLine(stream))
        handler.addFilter(_progress_lines[-1])


def _close_progress_lines() -> None:
    for line in _progress_lines:
        line.close()


def _deploy(args: argparse.Namespace) -> int:
    from forecasting.errors import ConfigError

    if args.late_minutes <= 0:
        raise ConfigError(f"--late-minutes must be > 0, got {args.late_minutes:g}")
    if args.notify and not args.notify.startswith(("http://", "https://")):
        raise ConfigError(f"--notify: '{args.notify}' is not an http(s) URL")
    if args.orders:
        return _deploy_market(args)
    own_table_options = {"--notify": args.notify, "--staffing": args.staffing, "--db": args.db,
                         "--db-password-block": args.db_password_block, "--prune-older-than": args.prune_older_than}
    option = next((name for name, value in own_table_options.items() if value), None)
    if option:
        raise ConfigError(f"{option} applies to the deployments of your own tables: add --orders PATH (and the other "
                          "tables) and --name NAME")
    from deployments.server import ensure_api
    from forecasting.contract import InputPaths, load_dataset
    from forecasting.slots import Slot

    home = ordercast_home()
    data = (args.data or home / "demo" / "data").resolve()
    out = (args.out or home / "scheduled").resolve()
    missing = [f"{name}.csv" for name in ("orders", *_TABLE_OPTIONS) if not (data / f"{name}.csv").is_file()]
    if missing:
        raise ConfigError(f"{data} has no {', '.join(missing)}: the demo deployments read all five demo tables. "
                          "For your own tables (any names, optional ones left out) use `ordercast deploy --orders "
                          "PATH [--weather PATH] ... --name NAME`; for demo data, `ordercast demo-data --out DIR`")
    tables = {name: str(data / f"{name}.csv") for name in ("orders", *_TABLE_OPTIONS)}
    load_dataset(InputPaths(**tables), Slot.parse(DEFAULT_SLOT))
    if not (data / "staffing.csv").exists():  # demo data written before the demo shipped a staffing table
        _write_demo_staffing(data)
    _, ui_url = ensure_api()
    _ensure_work_pool(args.pool)
    env = {**os.environ, "ORDERCAST_ROOT": str(PROJECT_ROOT), "ORDERCAST_DATA": str(data),
           "ORDERCAST_OUT": str(out), "ORDERCAST_POOL": args.pool}
    command = [str(Path(sys.executable).with_name("prefect")), "--no-prompt", "deploy", "--all",
               "--prefect-file", str(PROJECT_ROOT / "deployments" / "prefect.yaml")]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = " ".join(result.stdout.split()[-60:] + result.stderr.split()[-60:])
        raise OrdercastError(f"deploy: prefect deploy failed (exit {result.returncode}): {tail}")
    print(f"Registered the deployments of deployments/prefect.yaml on work pool '{args.pool}'")
    print(f"Deployments: {ui_url}/deployments")
    print(f"Run them with: ordercast worker --pool {args.pool}")
    return EXIT_OK


def _deploy_market(args: argparse.Namespace) -> int:
    """Validate the user's tables, schedule and cluster, then register the market's deployments."""
    from deployments.clusters import load_cluster
    from deployments.market import Market, check_schedule, market_timezone, register
    from deployments.server import ensure_api
    from forecasting.contract import InputPaths, load_dataset
    from forecasting.errors import ConfigError
    from forecasting.slots import Slot

    tables = {name: str(Path(path).resolve()) if path else None for name, path in _tables(args).items()}
    _preflight(tables, args.slot, args.horizon_days, None, None)
    if args.prune_older_than:
        from forecasting.retention import parse_age

        parse_age(args.prune_older_than)
    elif args.prune_vintages:
        raise ConfigError("--prune-vintages applies with --prune-older-than AGE")
    load_cluster(args.cluster)
    cluster = str(Path(args.cluster).resolve()) if Path(args.cluster).is_file() else args.cluster
    subset = sorted({name.strip() for name in args.only_regions.split(",") if name.strip()}) \
        if args.only_regions else None
    dataset = load_dataset(InputPaths(**tables), Slot.parse(args.slot), missing_as_zero=args.missing_as_zero)
    unknown = sorted(set(subset or ()) - set(dataset.regions))
    if unknown:
        raise ConfigError(f"--only-regions: not in {tables['orders']}: {', '.join(unknown)}")
    timezone = args.timezone or market_timezone({r: info.timezone for r, info in dataset.regions.items()}, subset)
    crons = {"forecast": args.cron, "backtest": args.backtest_cron, "accuracy": args.accuracy_cron}
    for flow, cron in crons.items():
        check_schedule({"forecast": "--cron"}.get(flow, f"--{flow}-cron"), cron, timezone)
    out = (args.out or ordercast_home() / "scheduled").resolve() / args.name
    options = {"slot": args.slot, "horizon_days": args.horizon_days, "missing_as_zero": args.missing_as_zero}
    staffing = _staffing_params(args, args.slot)["staffing"] if args.staffing else None
    market = Market(args.name, tables, out, timezone, crons, cluster, subset, options, staffing, args.db,
                    args.prune_older_than, args.prune_vintages, args.db_password_block)

    _, ui_url = ensure_api()
    _ensure_work_pool(args.pool)
    names = register(market, args.pool, PROJECT_ROOT)
    regions = len(subset) if subset else len(dataset.regions)
    print(f"Registered {', '.join(names)} on work pool '{args.pool}': {regions} regions, forecast at "
          f"'{args.cron}' {timezone}, outputs under {out}")
    if args.notify:
        from datetime import timedelta

        from deployments.alerts import install_alerts

        automations = install_alerts(names, args.notify, args.name, args.pool, timedelta(minutes=args.late_minutes))
        print(f"Alerts: failed, crashed and late runs post to {args.notify} (Prefect automations "
              f"{', '.join(repr(name) for name in automations)}; {ui_url}/automations)")
    print(f"Deployments: {ui_url}/deployments")
    print(f"Run them with: ordercast worker --pool {args.pool}  (now: prefect deployment run forecast/{args.name})")
    return EXIT_OK


def _ensure_work_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            print(f"Created process work pool '{name}'")


def _worker(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from deployments.run_history import failed_pool_runs
    from deployments.server import ensure_api

    _, ui_url = ensure_api()
    print(f"Prefect UI: {ui_url}; polling work pool '{args.pool}'", file=sys.stderr)
    command = [str(Path(sys.executable).with_name("prefect")), "worker", "start", "--pool", args.pool,
               "--type", "process"]
    if not args.run_once:
        return subprocess.call(command, cwd=PROJECT_ROOT)
    started = datetime.now(timezone.utc)
    code = subprocess.call([*command, "--run-once"], cwd=PROJECT_ROOT)
    failed = failed_pool_runs(args.pool, started)
    for run in failed:
        print(f"error: flow run {run['name']} ({run['flow']}, {run['state']}): {run['message'][:300]}",
              file=sys.stderr)
        print(f"       details: ordercast failures {run['id']}", file=sys.stderr)
    return code or (EXIT_PARTIAL if failed else EXIT_OK)


def _runs(args: argparse.Namespace) -> int:
    from deployments.run_history import recent_runs
    from deployments.server import ensure_api

    ensure_api()
    rows = recent_runs(args.limit)
    if not rows:
        print("No flow runs yet")
        return EXIT_OK
    print(f"{'started':<26} {'flow':<10} {'state':<10} {'run id':<37} name")
    for row in rows:
        print(f"{row['start']:<26} {row['flow']:<10} {row['state']:<10} {row['id']:<37} {row['name']}")
        if row["state"] not in ("Completed", "Running", "Scheduled", "Pending") and row["message"]:
            print(f"{'':<26} {row['message'][:160]}")
    return EXIT_OK


def _failures(args: argparse.Namespace) -> int:
    from deployments.run_history import run_failures
    from deployments.server import ensure_api

    _, ui_url = ensure_api()
    report = run_failures(args.run_id)
    print(f"Flow run {report.run_name} ({report.flow_name}, {report.state}): {ui_url}/runs/flow-run/{report.run_id}")
    for row in report.regions:
        what = {"fallback": "fell back to the seasonal naive", "invalid": "skipped, its inputs are invalid"}.get(
            row["status"], "has no forecast")
        where = f"task run {row['task_run_id']}" if row["task_run_id"] else "found by load-inputs"
        print(f"  {row['region']}: {what}; {row['error']} ({where})")
    listed = {row["task_run_id"] for row in report.regions}
    others = [run for run in report.failed_task_runs if run["id"] not in listed]
    for run in others:
        print(f"  task run {run['name']} ({run['state']}, {run['id']}): {run['message']}")
    if not report.regions and not others:
        print("  no failed regions or task runs")
        return EXIT_OK
    if report.regions and report.flow_name == "forecast":
        print(f"Re-run them with: ordercast retry {report.run_id}")
    elif report.flow_name == "backtest":
        print(f"Re-run them with: ordercast retry {report.run_id}" if report.deployment_id else
              "Re-run them with the same `ordercast backtest` command (an ad-hoc backtest keeps no results)")
    return EXIT_PARTIAL


def _retry(args: argparse.Namespace) -> int:
    """Retry a forecast run (or a deployment's backtest run) under its own id, as Retry in the
    Prefect UI does: the run goes to AwaitingRetry, then a worker (deployment runs) or this process
    (ad-hoc forecast runs) runs it again, and only the task runs that did not complete before
    execute; the others come back Cached."""
    from deployments.run_history import needs_retry, retry_conflicts, run_again, run_failures, schedule_retry
    from forecasting.errors import ConfigError
    from forecasting.outputs import read_run_record

    flow, ui_url = _flow_on_cluster("forecast", _cluster(args), args.verbose)
    failures = run_failures(args.run_id)
    if not needs_retry(failures):
        print(f"Flow run {failures.run_id} is Completed: nothing to retry")
        return EXIT_OK
    link = f"{ui_url}/runs/flow-run/{failures.run_id}"
    if failures.flow_name == "backtest":  # a deployment's (needs_retry): its worker reruns the failed regions
        failed = ", ".join(run["name"] for run in failures.failed_task_runs) or "none recorded"
        return _retry_by_worker(failures, f"failed: {failed}", link)
    out = Path(failures.parameters["out"])
    _check_databases(failures.parameters.get("db"))
    _finish_output_commit(out)
    conflicts = retry_conflicts(failures, read_run_record(out))
    if conflicts and not args.force:
        raise ConfigError(f"retry of run {failures.run_id} refused: {'; '.join(conflicts)}. Run the forecast again, "
                          "or pass --force to retry anyway")
    for conflict in conflicts:
        print(f"warning: {conflict} (retrying anyway: --force)", file=sys.stderr)
    troubled = ", ".join(row["region"] for row in failures.regions) or "none recorded"
    if failures.deployment_id:
        return _retry_by_worker(failures, f"troubled regions: {troubled}", link)
    print(f"Retrying flow run {failures.run_name} ({failures.state}) under its own id; troubled regions: "
          f"{troubled}", file=sys.stderr)
    schedule_retry(failures.run_id, "Retry via ordercast retry")
    state = run_again(failures.run_id, flow)
    _close_progress_lines()
    return _report(state, out, ui_url, _print_outputs)


def _retry_by_worker(failures, troubled: str, link: str) -> int:
    """Set a deployment's run to AwaitingRetry, as the UI's Retry does; a worker of its pool runs it."""
    from deployments.run_history import schedule_retry

    schedule_retry(failures.run_id, "Retry via ordercast retry")
    print(f"Flow run {failures.run_name} is AwaitingRetry: a worker of work pool '{failures.work_pool}' runs it "
          f"again under its own id; only what did not complete runs ({troubled}). {link}")
    return EXIT_OK


def _server(args: argparse.Namespace) -> int:
    from deployments import server

    home = ordercast_home()
    if args.action == "start":
        info = server.start(home, args.port, args.host, args.database)
        print(f"Prefect server running: UI {info.ui_url}, API {info.api_url} (pid {info.pid}); "
              f"runs kept in {server.recorded_database(home) or home / 'prefect' / 'prefect.db'}")
        other = server.point_prefect_cli(info.api_url)
        if other:
            print(f"Prefect CLI: your active profile is '{other}'; to use this server: prefect profile use "
                  f"{server.PROFILE}")
        else:
            print(f"Prefect CLI: profile '{server.PROFILE}' is active ({server.user_profiles_path()}), so "
                  "`prefect flow-run ls` and `prefect deployment run` reach this server from any shell")
    elif args.action == "stop":
        print("Prefect server stopped" if server.stop(home) else "No Prefect server was running")
    else:
        info = server.status(home)
        if info is None:
            print("Prefect server is not running")
            return 3
        print(f"Prefect server running: UI {info.ui_url}, API {info.api_url} (pid {info.pid})")
    return EXIT_OK


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
