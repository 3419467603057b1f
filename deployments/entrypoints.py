"""The flows as scheduled deployments run them.

A deployment names its cluster configuration in `ORDERCAST_CLUSTER` (set per deployment in
`prefect.yaml`, a file path or `local`/`serial`); this module builds the task runner from it
when the worker's flow-run process imports it. The flows themselves do not change.
"""
from __future__ import annotations

import os

from deployments.clusters import load_cluster
from deployments.runners import build_task_runner, remote_environment
from deployments.database_password import password_from_block
from flows.accuracy import accuracy_flow
from flows.backtest import backtest_flow
from flows.forecast import forecast as forecast_flow

CLUSTER_ENV = "ORDERCAST_CLUSTER"

_cluster = load_cluster(os.environ.get(CLUSTER_ENV, "local"))
if getattr(_cluster, "shared_dir", None):
    os.environ.update(remote_environment(_cluster))
password_from_block()  # before the cluster's workers start: local ones inherit PGPASSWORD

forecast = forecast_flow.with_options(task_runner=build_task_runner(_cluster))
backtest = backtest_flow.with_options(task_runner=build_task_runner(_cluster))
accuracy = accuracy_flow.with_options(task_runner=build_task_runner(_cluster))
