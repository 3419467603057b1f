"""`ordercast retry` refuses when a later run wrote OUT or an input changed since the retried run,
and retries a backtest run only when a deployment's worker can rerun its failed regions."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from deployments.run_history import RunFailures, needs_retry, retry_conflicts
from forecasting.errors import ConfigError
from forecasting.tables import content_hash, input_files

STARTED = datetime(2026, 1, 8, 6, 0, tzinfo=timezone.utc)


def _setup(tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_text("region,ts,orders\na,2026-01-01T00:00:00+00:00,1\n")
    params = {"out": str(tmp_path / "out"), "as_of": "2026-01-08T00:00:00+00:00", "orders": str(orders)}
    failures = RunFailures("run-1", "brave-fox", "forecast", "Failed", None, params, [], [], started=STARTED)
    record = {"run_id": "run-1", "created_at": "2026-01-08T06:05:00+00:00", "configuration": {"as_of": params["as_of"]},
              "input_hashes": {"orders": content_hash(input_files(orders, "orders"))}}
    return orders, failures, record


def test_a_retry_of_the_run_out_holds_with_unchanged_inputs_is_allowed(tmp_path):
    _, failures, record = _setup(tmp_path)
    assert retry_conflicts(failures, record) == []
    earlier = {**record, "run_id": "run-0", "created_at": "2026-01-07T06:05:00+00:00"}  # run-1 wrote nothing
    assert retry_conflicts(failures, earlier) == []
    assert retry_conflicts(failures, None) == []  # nor did any run before it


def test_a_retry_is_refused_naming_what_changed(tmp_path):
    orders, failures, record = _setup(tmp_path)
    later = {**record, "run_id": "run-9", "created_at": "2026-01-09T06:05:00+00:00",
             "configuration": {"as_of": "2026-01-09T00:00:00+00:00"}}
    [vintage] = retry_conflicts(failures, later)
    assert "now holds a later run, run-9 (as of 2026-01-09T00:00:00+00:00)" in vintage

    orders.write_text(orders.read_text() + "a,2026-01-01T00:30:00+00:00,2\n")
    assert retry_conflicts(failures, record) == [f"the orders input {orders} changed since run run-1"]
    orders.unlink()
    assert retry_conflicts(failures, record) == [f"the orders input {orders} is gone"]


def test_a_backtest_run_is_retried_when_it_came_from_a_deployment():
    scheduled = RunFailures("run-2", "calm-owl", "backtest", "Failed", None, {}, [], [], deployment_id="d-1")
    assert needs_retry(scheduled)
    assert not needs_retry(RunFailures("run-3", "calm-owl", "backtest", "Completed", None, {}, [], [],
                                       deployment_id="d-1"))
    ad_hoc = RunFailures("run-4", "calm-owl", "backtest", "Failed", None, {}, [], [])
    with pytest.raises(ConfigError, match="an ad-hoc backtest run: .* run the same `ordercast backtest` command"):
        needs_retry(ad_hoc)
    with pytest.raises(ConfigError, match="a 'accuracy' run; retry repairs forecast and backtest runs"):
        needs_retry(RunFailures("run-5", "calm-owl", "accuracy", "Failed", None, {}, [], []))
