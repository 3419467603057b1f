"""The forecast database on a real PostgreSQL server: `forecast --staffing`, its `retry` and the
what-if `staff` write the same tables as on SQLite, and a password given in a `--db` URL leaves
no trace in run records, flow-run parameters, artifacts or logs; a password kept in a Prefect
Secret block is found there. (A backtest on PostgreSQL, and the Prefect server on it:
tests/flows/test_concurrent_runs.py.)"""
from __future__ import annotations

import json

import pandas as pd

from forecasting.demo_data import demo_staffing
from forecasting.storage import read_table_db
from tests.helpers import flow_run_logs, prefect_records, read_run, run_cli, table_args
from tests.postgres import PASSWORD


def test_forecast_retry_and_staff_on_postgresql_leave_no_password_behind(small_demo_dir, prefect_server, postgres,
                                                                         tmp_path):
    url = postgres.create_database("flows")
    assert PASSWORD in url
    regions = pd.read_csv(small_demo_dir / "regions.csv")["region"].tolist()
    staffing = tmp_path / "staffing.csv"
    demo_staffing(regions).to_csv(staffing, index=False)
    out, what_if = tmp_path / "out", tmp_path / "what-if"
    outputs = []

    first = run_cli("forecast", *table_args(small_demo_dir), "--horizon-days", "7", "--staffing", str(staffing),
                    "--db", url, "--out", str(out), env={"ORDERCAST_FAULTS": "train:berlin-mitte"})
    outputs.append(first)
    assert first.returncode == 2, first.stderr[-3000:]
    run_id = read_run(out)["run_id"]
    assert read_run(out)["configuration"]["db"] == postgres.url("flows", password=False)

    refused = run_cli("retry", run_id, env={"PGPASSWORD": ""})  # the password is not stored anywhere
    assert refused.returncode == 1 and "cannot connect" in refused.stderr and "PGPASSWORD" in refused.stderr
    retry = run_cli("retry", run_id, env={"PGPASSWORD": PASSWORD})  # as the user's environment gives it
    outputs.append(retry)
    assert retry.returncode == 0, retry.stderr[-3000:]

    database = postgres.url("flows")
    forecasts = read_table_db(database)
    assert len(forecasts) == 3 * 7 * 48 and set(forecasts["run_id"]) == {run_id} and not forecasts["fallback"].any()
    assert str(forecasts["ts"].dtype) == "datetime64[us, UTC]" and {"p5", "p95"} <= set(forecasts.columns)
    assert len(read_table_db(database, "staffing")) == 3 * 7 * 48
    assert set(read_table_db(database, "shifts")["region"]) == set(regions)

    _save_secret(prefect_server.api_url, "ordercast-test-db-password", PASSWORD)
    staff = run_cli("staff", "--forecasts", postgres.url("flows", password=False), "--staffing", str(staffing),
                    "--out", str(what_if),  # the password from a Prefect Secret block, as a worker without it would
                    env={"PGPASSWORD": "", "ORDERCAST_DB_PASSWORD_BLOCK": "ordercast-test-db-password"})
    outputs.append(staff)
    assert staff.returncode == 0, staff.stderr[-3000:]
    assert len(pd.read_parquet(what_if / "staffing.parquet")) == 3 * 7 * 48

    for result in outputs:
        assert PASSWORD not in result.stdout + result.stderr
    for folder in (out, what_if):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in {".json", ".csv", ".md", ".txt"}:
                assert PASSWORD not in path.read_text(), path
    staff_run = json.loads((what_if / "staffing.json").read_text())["run_id"]
    for flow_run_id, option in ((run_id, "db"), (staff_run, "forecasts")):
        flow_run, _, artifacts = prefect_records(prefect_server.api_url, flow_run_id)
        assert PASSWORD not in json.dumps(flow_run.parameters)
        assert flow_run.parameters[option] == postgres.url("flows", password=False)
        assert all(PASSWORD not in str(artifact.data) for artifact in artifacts)
        logs = flow_run_logs(prefect_server.api_url, flow_run_id)
        assert logs and PASSWORD not in logs


def _save_secret(api_url: str, name: str, value: str) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        Secret(value=value).save(name, overwrite=True)
