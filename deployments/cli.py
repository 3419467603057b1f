"""The `ordercast` command line.

Exit codes of `forecast` and `demo`: 0 every region written; 2 some regions failed and the
rest were written; 1 nothing written (bad input, bad option, or every region failed).
Prefect is imported only after `ensure_api` has pointed this process at one Prefect server.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from forecasting.errors import OrdercastError
from forecasting.settings import DEFAULT_HORIZON_DAYS, DEFAULT_SLOT, ordercast_home

EXIT_OK, EXIT_NOTHING_WRITTEN, EXIT_PARTIAL = 0, 1, 2
_TABLE_OPTIONS = ("weather", "events", "promotions", "regions")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except OrdercastError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOTHING_WRITTEN
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


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
    forecast.add_argument("--orders", required=True, help="orders CSV/Parquet file or folder (region, ts, orders)")
    forecast.add_argument("--weather", help="weather table (region, ts, numeric columns)")
    forecast.add_argument("--events", help="events table (region, start, end, kind)")
    forecast.add_argument("--promotions", help="promotions table (region, start, end, intensity)")
    forecast.add_argument("--regions", help="regions table (region, timezone, country); default UTC, no holidays")
    forecast.add_argument("--out", required=True, type=Path, help="output folder")
    _add_run_options(forecast)
    forecast.set_defaults(handler=_forecast)

    demo = commands.add_parser("demo", help="generate demo data if missing, then run the forecast",
                               description="Write the demo data set under $ORDERCAST_HOME/demo/data unless it "
                               "is there, run the forecast flow on a local Dask cluster against the local "
                               "Prefect server, and print where the forecasts, plots and UI are.")
    demo.add_argument("--data", type=Path, help="demo data folder (default $ORDERCAST_HOME/demo/data)")
    demo.add_argument("--out", type=Path, help="output folder (default $ORDERCAST_HOME/demo/out)")
    _add_demo_shape(demo)
    _add_run_options(demo, data_options=False)
    demo.set_defaults(handler=_demo)

    server = commands.add_parser("server", help="start, stop or check the local Prefect server",
                                 description="The local Prefect server (SQLite under $ORDERCAST_HOME/prefect, "
                                 "bound to 127.0.0.1) that flow runs and Dask workers report to.")
    server.add_argument("action", choices=["start", "stop", "status"])
    server.add_argument("--port", type=int, help="port for start (default 4200, or a free port if taken)")
    server.set_defaults(handler=_server)
    return parser


def _add_demo_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regions", type=int, default=12, help="number of regions (default 12)")
    parser.add_argument("--years", type=float, default=2.0, help="years of history (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _add_run_options(parser: argparse.ArgumentParser, data_options: bool = True) -> None:
    if data_options:
        parser.add_argument("--slot", default=DEFAULT_SLOT,
                            help="slot length: 5min, 10min, 15min, 20min, 30min, 60min/1h or 1D (default 30min)")
        parser.add_argument("--missing-as-zero", action="store_true",
                            help="treat slots missing inside a region's history as zero orders")
    parser.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS,
                        help=f"days to forecast (default {DEFAULT_HORIZON_DAYS})")
    parser.add_argument("--as-of", help="forecast origin, ISO-8601 with offset on the slot grid; only orders "
                        "before it are used (default: last orders slot plus one slot)")
    parser.add_argument("--no-train", action="store_true",
                        help="predict with the latest stored model per region instead of training")
    parser.add_argument("--db", help="SQLAlchemy URL of the forecast database (default sqlite:///OUT/forecasts.sqlite)")
    parser.add_argument("--workers", type=int, help="Dask worker processes (default: one per core)")


def _demo_data(args: argparse.Namespace) -> int:
    _write_demo_data(args.out, args.regions, args.years, args.seed)
    return EXIT_OK


def _write_demo_data(out: Path, regions: int, years: float, seed: int) -> None:
    from forecasting.demo_data import generate, write_csv

    if regions < 1 or years <= 0:
        raise OrdercastError(f"demo-data: --regions must be >= 1 and --years > 0, got {regions} and {years}")
    done = []

    def progress(region: str) -> None:
        done.append(region)
        print(f"  generated {region} ({len(done)}/{regions})", file=sys.stderr)

    print(f"Writing demo data ({regions} regions, {years:g} years, seed {seed}) to {out}", file=sys.stderr)
    written = write_csv(generate(regions, years, seed, progress), out)
    for name, path in written.items():
        print(f"  {name:<11} {path}")


def _demo(args: argparse.Namespace) -> int:
    home = ordercast_home()
    data = args.data or home / "demo" / "data"
    out = args.out or home / "demo" / "out"
    if (data / "orders.csv").exists():
        print(f"Using demo data in {data}", file=sys.stderr)
    else:
        _write_demo_data(data, args.regions, args.years, args.seed)
    tables = {name: str(data / f"{name}.csv") for name in ("orders", *_TABLE_OPTIONS)}
    return _run_forecast(tables, out, args, slot=DEFAULT_SLOT, missing_as_zero=False)


def _forecast(args: argparse.Namespace) -> int:
    tables = {"orders": args.orders, **{name: getattr(args, name) for name in _TABLE_OPTIONS}}
    return _run_forecast(tables, args.out, args, slot=args.slot, missing_as_zero=args.missing_as_zero)


def _preflight(tables: dict[str, str | None], slot: str, horizon_days: int, as_of: str | None,
               workers: int | None) -> None:
    """Cheap checks before any server or cluster starts: options and input paths."""
    from forecasting.contract import parse_as_of
    from forecasting.errors import ConfigError
    from forecasting.slots import Slot
    from forecasting.tables import input_files

    Slot.parse(slot)
    if horizon_days < 1:
        raise ConfigError(f"--horizon-days must be >= 1, got {horizon_days}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if as_of is not None:
        parse_as_of(as_of)
    for name, path in tables.items():
        if path is not None:
            input_files(path, name)


def _run_forecast(tables: dict[str, str | None], out: Path, args: argparse.Namespace, *, slot: str,
                  missing_as_zero: bool) -> int:
    from deployments.server import ensure_api

    _preflight(tables, slot, args.horizon_days, args.as_of, args.workers)
    out = out.resolve()
    tables = {name: str(Path(path).resolve()) if path else None for name, path in tables.items()}
    _, ui_url = ensure_api()
    print(f"Prefect UI: {ui_url}", file=sys.stderr)

    from deployments.runners import LocalClusterConfig, build_task_runner
    from flows.forecast import forecast

    _quiet_expected_tracebacks()
    cluster = LocalClusterConfig(n_workers=args.workers)
    flow = forecast.with_options(task_runner=build_task_runner(cluster))
    state = flow(
        out=str(out), slot=slot, horizon_days=args.horizon_days, as_of=args.as_of, no_train=args.no_train,
        missing_as_zero=missing_as_zero, db=args.db, model_threads=cluster.threads_per_worker,
        return_state=True, **tables,
    )
    return _report(state, out, ui_url)


def _report(state: Any, out: Path, ui_url: str) -> int:
    """Print where the outputs are and turn the flow's final state into an exit code."""
    run_id = str(state.state_details.flow_run_id)
    link = f"{ui_url}/runs/flow-run/{run_id}"
    record = _run_record(out, run_id)
    if state.is_completed() and record:
        _print_outputs(record, out)
        print(f"Flow run:   {link}")
        return EXIT_OK
    message = _failure_message(state)
    if record is None:
        print(f"error: {message}", file=sys.stderr)
        print(f"Flow run:   {link} (nothing written)", file=sys.stderr)
        return EXIT_NOTHING_WRITTEN
    _print_outputs(record, out)
    print(f"error: {message}", file=sys.stderr)
    print(f"Flow run:   {link}", file=sys.stderr)
    return EXIT_PARTIAL


def _run_record(out: Path, run_id: str) -> dict[str, Any] | None:
    """OUT/run.json if this very run wrote it, else None (nothing was written)."""
    try:
        record = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("run_id") == run_id else None


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
    regions = record["regions"]
    ok = [region for region in regions if region["status"] == "ok"]
    rows = sum(region["rows"] for region in ok)
    print(f"Forecasts:  {out / 'forecasts.parquet'} ({rows} rows, {len(ok)}/{len(regions)} regions)")
    print(f"Database:   {record['configuration']['db']}")
    print(f"Plots:      {out / 'plots'}")
    print(f"Run record: {out / 'run.json'}")


class _DropExpectedTraceback(logging.Filter):
    """Input errors are explained in one line; their tracebacks only hide that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], OrdercastError):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_expected_tracebacks() -> None:
    for name in ("prefect", "prefect.task_runs", "prefect.flow_runs", ""):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_DropExpectedTraceback())


def _server(args: argparse.Namespace) -> int:
    from deployments import server

    home = ordercast_home()
    if args.action == "start":
        info = server.start(home, args.port)
        print(f"Prefect server running: UI {info.ui_url}, API {info.api_url} (pid {info.pid})")
        print(f"Use it from other shells with: export PREFECT_API_URL={info.api_url}")
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
