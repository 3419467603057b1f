"""The command line: help everywhere, fast one-line errors before anything starts."""
from __future__ import annotations

import io
import logging

import pandas as pd
import pytest

from tests.helpers import run_cli


@pytest.mark.parametrize("command", [[], ["forecast"], ["demo"], ["demo-data"], ["server"], ["staff"]])
def test_help_explains_every_command(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "usage: ordercast" in result.stdout
    if command == ["forecast"]:
        for option in ("--orders", "--weather", "--events", "--promotions", "--regions", "--slot", "--horizon-days",
                       "--as-of", "--no-train", "--missing-as-zero", "--db", "--out", "--staffing"):
            assert option in result.stdout
    if command == ["staff"]:
        for option in ("--forecasts", "--staffing", "--as-of", "--published", "--notice-hours", "--out"):
            assert option in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--slot", "45min"], "error: --slot: '45min' is not a supported slot"),
    (["--as-of", "2026-01-01T00:00:00"], "error: --as-of: '2026-01-01T00:00:00' has no UTC offset"),
    (["--horizon-days", "0"], "error: --horizon-days must be >= 1, got 0"),
    (["--weather", "missing-weather.csv"], "error: missing-weather.csv: weather file not found"),
    (["--db", "postgresql+psycopg://me:pw-Never-Shown@127.0.0.1:9/forecasts"],
     "error: postgresql+psycopg://me@127.0.0.1:9/forecasts: cannot connect"),  # the password is not echoed
])
def test_bad_options_fail_fast_with_one_line(tmp_path, args, message):
    orders = tmp_path / "orders.csv"
    orders.write_text("region,ts,orders\na,2026-01-01T00:00:00+00:00,1\n")
    result = run_cli("forecast", "--orders", str(orders), "--out", str(tmp_path / "out"), *args,
                     env={"PREFECT_API_URL": "http://127.0.0.1:9/api"})  # would fail if anything were contacted
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)
    assert not (tmp_path / "out").exists()


def test_deploy_refuses_a_database_password_on_the_command_line(tmp_path):
    """A deployment's parameters are shown in the Prefect UI: the password belongs in the worker's environment."""
    result = run_cli("deploy", "--orders", str(tmp_path / "orders.csv"), "--name", "m", "--db",
                     "postgresql+psycopg://me:pw-Never-Shown@db.example:5432/forecasts")
    assert result.returncode == 1 and "pw-Never-Shown" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: --db: leave the password out of the URL") and "PGPASSWORD" in result.stderr


def test_missing_orders_file(tmp_path):
    result = run_cli("forecast", "--orders", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: orders file not found"


def test_demo_data_command_writes_the_contract_tables(tmp_path):
    result = run_cli("demo-data", "--out", str(tmp_path), "--regions", "2", "--years", "0.2", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "generated" in result.stderr  # progress
    for name in ("orders", "weather", "events", "promotions", "regions"):
        assert (tmp_path / f"{name}.csv").exists()
    assert pd.read_csv(tmp_path / "regions.csv")["region"].tolist() == ["nyc-midtown", "berlin-mitte"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream_class", [_Terminal, io.StringIO])
def test_progress_rewrites_one_line_in_a_terminal_and_stays_plain_lines_elsewhere(stream_class):
    """Progress records share one terminal line, ended by the next other record; in a file or
    pipe (what the CLI tests see: `Training: 12/12 regions done` in stderr) each is a line."""
    from deployments.cli import _close_progress_lines, _rewrite_progress_in_place
    from forecasting.settings import PROGRESS

    stream = stream_class()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(f"tests.progress.{stream_class.__name__}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    _rewrite_progress_in_place(handler)
    for done in (1, 2, 3):
        logger.info("Training: %d/3 regions done", done, extra={PROGRESS: True})
    logger.warning("Region b falls back")
    logger.info("Training: 3/3 regions done", extra={PROGRESS: True})
    _close_progress_lines()
    text = stream.getvalue()
    if stream_class is _Terminal:
        assert text == ("\r\x1b[KTraining: 1/3 regions done\r\x1b[KTraining: 2/3 regions done"
                        "\r\x1b[KTraining: 3/3 regions done\nRegion b falls back\n"
                        "\r\x1b[KTraining: 3/3 regions done\n")
    else:
        assert text.splitlines() == ["Training: 1/3 regions done", "Training: 2/3 regions done",
                                     "Training: 3/3 regions done", "Region b falls back", "Training: 3/3 regions done"]


def test_demo_reuses_its_data_and_writes_the_staffing_table_it_lacks(tmp_path, monkeypatch, capsys):
    """A second `ordercast demo` forecasts the data the first one wrote, without writing it again
    (the forecast itself is replaced here: test_forecast_flow.py runs the whole demo)."""
    from deployments import cli
    from forecasting.demo_data import generate, write_csv

    data = tmp_path / "home" / "demo" / "data"
    write_csv(generate(regions=1, years=0.1, seed=3), data)
    (data / "staffing.csv").unlink(missing_ok=True)
    before = (data / "orders.csv").stat().st_mtime_ns
    forecasts = []
    monkeypatch.setenv("ORDERCAST_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cli, "_run_forecast", lambda tables, out, args, **kw: forecasts.append((tables, out)) or 0)
    assert cli.main(["demo", "--horizon-days", "7"]) == 0
    assert "Using demo data in" in capsys.readouterr().err
    assert (data / "orders.csv").stat().st_mtime_ns == before and (data / "staffing.csv").exists()
    [(tables, out)] = forecasts
    assert tables["orders"] == str(data / "orders.csv") and out == tmp_path / "home" / "demo" / "out"
