"""Soak benchmark: a long-running installation, compressed. Consecutive daily forecasts of the
demo, `as_of` moving one day per run, on a Prefect server and a forecast database both on
PostgreSQL, with pruning after each run; how the disk, both databases, the server's memory
and the run time grow.

    python bench/soak.py [--runs 30] [--keep-days 14] [--regions 12] [--out results.json]

Each run is `ordercast forecast --as-of D` (training every region, as the daily deployment
does), timed from the command line. After it, the retention of `ordercast prune` keeps
`--keep-days` days: as the runs are a day apart in simulated time but a minute apart in real
time, its cutoffs are those of the simulated clock: files, snapshots, task results and flow
runs from before the run `--keep-days - 1` runs back (real time), forecast vintages with an
`as_of` more than `--keep-days - 1` days before this run's (`--vintages`). The Prefect server's
own retention is compressed the same way: events are kept `--keep-days` x 50 s, and its
database vacuum (old events; logs and artifacts of deleted flow runs) runs every minute instead
of every hour and day. Then it measures:
disk under `$ORDERCAST_HOME`, the sizes of both PostgreSQL databases (`pg_database_size`) and
the resident memory of the Prefect server's processes.

Without `--postgres URL-PREFIX` (postgresql+psycopg://user@host:port, the password from
PGPASSWORD) it starts a throwaway PostgreSQL server of its own, as the tests do
(tests/postgres.py; needs Debian's postgresql package).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # this checkout's code, installed or not

from deployments import server  # noqa: E402

SECONDS_PER_RUN = 50  # of the 12-region demo on 2 cores: one simulated day


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep-days", type=int, default=14)
    parser.add_argument("--regions", type=int, default=12)
    parser.add_argument("--postgres", help="URL prefix of a PostgreSQL server to create the two databases on")
    parser.add_argument("--out", type=Path, help="write the per-run figures here as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ordercast-soak-"))
    home = work / "home"
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["ORDERCAST_HOME"] = str(home)
    os.environ.update(ORDERCAST_HOME=str(home))
    postgres = None
    if args.postgres:
        prefix = args.postgres.rstrip("/")
        for name in ("soak_forecasts", "soak_prefect"):
            _create_database(prefix, name)
    else:
        from tests import postgres as pg

        postgres = pg.start()
        prefix = postgres.url("postgres").rsplit("/", 1)[0]
        os.environ["PGPASSWORD"] = env["PGPASSWORD"] = pg.PASSWORD
        postgres.create_database("soak_forecasts")
        postgres.create_database("soak_prefect")
    store, prefect_db = f"{prefix}/soak_forecasts", f"{prefix}/soak_prefect"
    ordercast = str(Path(sys.executable).with_name("ordercast"))
    data = work / "data"
    subprocess.run([ordercast, "demo-data", "--out", str(data), "--regions", str(args.regions)], env=env,
                   check=True, capture_output=True)
    compressed = {  # the server's own retention on the simulated clock too: a run is about 50 s, not a day
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": f"PT{args.keep_days * SECONDS_PER_RUN}S",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS": "60",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_ORPHAN_CLEANUP_LOOP_SECONDS": "60",
    }
    end = pd.to_datetime(pd.read_csv(data / "orders.csv", usecols=["ts"])["ts"], utc=True, format="ISO8601").max()
    first = (end - pd.Timedelta(days=args.runs + 22)).floor("D")
    tables = [option for name in ("orders", "weather", "events", "promotions", "regions")
              for option in (f"--{name}", str(data / f"{name}.csv"))]
    rows, starts = [], []
    try:
        started = subprocess.run([ordercast, "server", "start", "--port", str(server.free_port()), "--database",
                                  prefect_db], env={**env, **compressed}, capture_output=True, text=True)
        if started.returncode != 0:
            sys.exit(started.stderr)
        info = server.status(home)
        os.environ["PREFECT_API_URL"] = info.api_url
        print(f"{'run':>4} {'as_of':<12} {'wall s':>7} {'home MiB':>9} {'forecast DB MiB':>16} "
              f"{'Prefect DB MiB':>15} {'server MiB':>11}", flush=True)
        for index in range(args.runs):
            as_of = first + pd.Timedelta(days=index)
            starts.append(pd.Timestamp.now(tz="UTC"))
            clock = time.perf_counter()
            result = subprocess.run([ordercast, "forecast", *tables, "--as-of", as_of.isoformat(), "--db", store,
                                     "--out", str(work / "out")], env=env, capture_output=True, text=True)
            wall = time.perf_counter() - clock
            if result.returncode != 0:
                sys.exit(f"run {index + 1} failed:\n{result.stderr[-3000:]}")
            _prune(home, store, starts, as_of, args.keep_days)
            row = {"run": index + 1, "as_of": as_of.date().isoformat(), "wall_seconds": round(wall, 1),
                   "home_mib": _mib(_disk(home)), "forecast_db_mib": _mib(_database_size(store)),
                   "prefect_db_mib": _mib(_database_size(prefect_db)), "server_mib": _mib(_rss(info.pid))}
            rows.append(row)
            print(f"{row['run']:>4} {row['as_of']:<12} {row['wall_seconds']:>7.1f} {row['home_mib']:>9.1f} "
                  f"{row['forecast_db_mib']:>16.1f} {row['prefect_db_mib']:>15.1f} {row['server_mib']:>11.1f}",
                  flush=True)
    finally:
        subprocess.run([ordercast, "server", "stop"], env=env, capture_output=True)
        if postgres:
            postgres.stop()
    _report(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


def _prune(home: Path, store: str, starts: list[pd.Timestamp], as_of: pd.Timestamp, keep_days: int) -> None:
    """`ordercast prune --keep-runs 1 --vintages` on the simulated clock: keep `keep_days` runs."""
    from forecasting.retention import plan_removals, prune_vintages, remove
    from tasks.retention import prune_flow_runs

    if len(starts) < keep_days:
        return
    real_cutoff = starts[-keep_days + 1] if keep_days > 1 else starts[-1]
    remove(plan_removals(home, 1, real_cutoff))
    prune_vintages(store, as_of - pd.Timedelta(days=keep_days - 1), dry_run=False)
    prune_flow_runs(real_cutoff.to_pydatetime(), dry_run=False)


def _create_database(prefix: str, name: str) -> None:
    engine = sa.create_engine(f"{prefix}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()


def _database_size(url: str) -> int:
    engine = sa.create_engine(url.replace("+asyncpg", "+psycopg"))
    with engine.connect() as connection:
        size = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return int(size)


def _disk(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def _rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        todo += children.get(current, [])
    return total


def _mib(size: int) -> float:
    return round(size / 2**20, 1)


def _report(rows: list[dict]) -> None:
    """Growth from run 10 to the last run (the steady state, once retention has begun)."""
    if len(rows) < 11:
        return
    early, last = rows[9], rows[-1]
    print(f"\nGrowth from run {early['run']} to run {last['run']}:")
    for key in ("home_mib", "forecast_db_mib", "prefect_db_mib", "server_mib"):
        print(f"  {key:<16} {early[key]:>8.1f} -> {last[key]:>8.1f}  ({(last[key] / early[key] - 1) * 100:+.1f}%)")
    early_wall = sum(row["wall_seconds"] for row in rows[7:12]) / 5
    late_wall = sum(row["wall_seconds"] for row in rows[-5:]) / 5
    print(f"  wall time, mean of runs 8-12 against the last 5: {early_wall:.1f} s -> {late_wall:.1f} s "
          f"({(late_wall / early_wall - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    sys.exit(main())
