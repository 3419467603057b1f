"""`ordercast retry` refuses when OUT no longer holds the retried run's vintage or an input changed."""
from __future__ import annotations

from deployments.run_history import retry_conflicts
from forecasting.tables import content_hash, input_files


def _setup(tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_text("region,ts,orders\na,2026-01-01T00:00:00+00:00,1\n")
    params = {"out": str(tmp_path / "out"), "as_of": "2026-01-08T00:00:00+00:00", "orders": str(orders)}
    record = {"run_id": "run-1", "lineage": ["run-1"], "configuration": {"as_of": params["as_of"]},
              "input_hashes": {"orders": content_hash(input_files(orders, "orders"))}}
    return orders, params, record


def test_a_retry_of_the_run_out_holds_with_unchanged_inputs_is_allowed(tmp_path):
    _, params, record = _setup(tmp_path)
    assert retry_conflicts("run-1", params, record) == []
    repaired = {**record, "run_id": "run-2", "lineage": ["run-1", "run-2"]}  # run-1 retried once already
    assert retry_conflicts("run-1", params, repaired) == []


def test_a_retry_is_refused_naming_what_changed(tmp_path):
    orders, params, record = _setup(tmp_path)
    newer = {**record, "run_id": "run-9", "lineage": ["run-9"], "configuration": {"as_of": "2026-01-09T00:00:00+00:00"}}
    [vintage] = retry_conflicts("run-1", params, newer)
    assert "now holds run run-9 (as of 2026-01-09T00:00:00+00:00), not run run-1" in vintage

    orders.write_text(orders.read_text() + "a,2026-01-01T00:30:00+00:00,2\n")
    assert retry_conflicts("run-1", params, record) == [f"the orders input {orders} changed since run run-1"]
    orders.unlink()
    assert retry_conflicts("run-1", params, record) == [f"the orders input {orders} is gone"]
    assert "holds no run.json" in retry_conflicts("run-1", params, None)[0]
