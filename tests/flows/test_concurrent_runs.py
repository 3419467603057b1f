"""A shared installation on a real PostgreSQL server: the Prefect server (`ordercast server start
--database`) and the forecast database on it, and several runs at once: two forecasts of
different region sets and a backtest, started at the same moment. Every row of each run is
written once, nothing fails on a lock, each run logs how long it waited for the database's
write lock, and the password given in the URLs is nowhere in what the runs leave behind."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from deployments import server
from forecasting.storage import read_table_db
from tests.helpers import flow_run_logs, table_args
from tests.postgres import PASSWORD

MARKETS = {"europe": ["berlin-mitte", "london-soho"], "us": ["nyc-midtown"]}


def test_two_forecasts_and_a_backtest_write_one_postgresql_database_at_once(small_demo_dir, postgres, tmp_path):
    store = postgres.create_database("concurrent")
    assert PASSWORD in store
    home = tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update(ORDERCAST_HOME=str(home), PGPASSWORD="")
    ordercast = str(Path(sys.executable).with_name("ordercast"))
    started = subprocess.run([ordercast, "server", "start", "--port", str(server.free_port()), "--database",
                              postgres.create_database("concurrent_prefect")], env=env, capture_output=True,
                             text=True, timeout=300)
    assert started.returncode == 0, started.stderr[-3000:]
    recorded = (home / server.DATABASE_FILE).read_text()
    assert recorded.startswith("postgresql+asyncpg://ordercast@127.0.0.1:") and PASSWORD not in recorded
    try:
        commands = {}
        for market, regions in MARKETS.items():
            data = _market_tables(small_demo_dir, tmp_path / market, regions)
            commands[market] = ["forecast", *table_args(data), "--horizon-days", "7", "--workers", "1",
                                "--db", store, "--out", str(tmp_path / "out" / market)]
        commands["backtest"] = ["backtest", *table_args(small_demo_dir), "--cutoffs", "2", "--horizon-days", "7",
                                "--models", "seasonal_naive,weekly_profile", "--workers", "1", "--db", store,
                                "--out", str(tmp_path / "out" / "backtest")]
        running = {name: subprocess.Popen([ordercast, *args], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True) for name, args in commands.items()}
        results = {name: process.communicate(timeout=600) for name, process in running.items()}
        for name, process in running.items():
            assert process.returncode == 0, f"{name}: {results[name][1][-3000:]}"

        run_ids = {name: _run_id(tmp_path / "out" / name) for name in commands}
        forecasts = read_table_db(postgres.url("concurrent"))
        assert forecasts.groupby("region").size().to_dict() == {region: 7 * 48 for regions in MARKETS.values()
                                                                for region in regions}
        by_region = forecasts.groupby("region")["run_id"].agg(set).to_dict()
        assert by_region == {region: {run_ids[market]} for market, regions in MARKETS.items() for region in regions}
        selection = read_table_db(postgres.url("concurrent"), "model_selection")
        assert len(selection) == 3 and set(selection["backtest_run_id"]) == {run_ids["backtest"]}

        api_url = server.status(home).api_url
        spans = [_span(api_url, run_id) for run_id in run_ids.values()]
        assert max(start for start, _ in spans) < min(end for _, end in spans)  # all three were running at once
        for name, run_id in run_ids.items():
            waits = [float(seconds) for seconds in
                     re.findall(r"waited (\d+\.\d+) s for the database's write lock", flow_run_logs(api_url, run_id))]
            assert waits and max(waits) < 2.0, (name, waits)
            assert PASSWORD not in json.dumps(_flow_run(api_url, run_id).parameters) + flow_run_logs(api_url, run_id)
        assert all(PASSWORD not in out + err for out, err in results.values())
        assert not (home / "prefect" / "prefect.db").exists()  # the server's runs are in PostgreSQL

        assert subprocess.run([ordercast, "server", "stop"], env=env, capture_output=True).returncode == 0
        listed = subprocess.run([ordercast, "runs"], env={**env, "PGPASSWORD": PASSWORD}, capture_output=True,
                                text=True, timeout=300)  # starts the server again, on the same database
        assert listed.returncode == 0, listed.stderr[-3000:]
        assert all(run_id in listed.stdout for run_id in run_ids.values())
    finally:
        subprocess.run([ordercast, "server", "stop"], env=env, capture_output=True, timeout=120)


def _market_tables(source: Path, folder: Path, regions: list[str]) -> Path:
    """The demo tables of `regions` only: one market's extract."""
    folder.mkdir(parents=True)
    for table in source.glob("*.csv"):
        frame = pd.read_csv(table)
        if "region" in frame.columns:
            frame = frame.loc[frame["region"].isin(regions)]
        frame.to_csv(folder / table.name, index=False)
    return folder


def _run_id(out: Path) -> str:
    return json.loads((out / "run.json").read_text())["run_id"]


def _flow_run(api_url: str, flow_run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            return client.read_flow_run(flow_run_id)


def _span(api_url: str, flow_run_id: str):
    """When a flow run started and ended."""
    run = _flow_run(api_url, flow_run_id)
    return run.start_time, run.end_time
