"""Task-runner factory: one function turns a cluster configuration into a Prefect task runner.

Dask kinds get prefect-dask's DaskTaskRunner (with ordercast's worker set-up registered on
every worker); `serial` runs one task at a time in the flow's process. `ORDERCAST_SERIAL=1`
forces `serial` whatever the configuration says.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from deployments.clusters import (
    AddressClusterConfig,
    LocalCluster,
    SerialCluster,
    SSHClusterConfig,
    YarnClusterConfig,
    serial_forced,
)
from deployments.worker_setup import WorkerSetup
from forecasting.settings import QUIET_ENV

logger = logging.getLogger("ordercast")
WORKER_WAIT_SECONDS = 60


class SerialTaskRunner(ThreadPoolTaskRunner):
    """One task at a time, in the flow's process: breakpoints and debuggers just work."""

    def __init__(self, forced: bool = False) -> None:
        super().__init__(max_workers=1)
        self.forced = forced

    def duplicate(self) -> SerialTaskRunner:
        return type(self)(self.forced)

    def describe(self) -> dict[str, Any]:
        kind = "serial (forced by ORDERCAST_SERIAL)" if self.forced else "serial"
        return {"kind": kind, "workers": 1, "dashboard": None}


class OrdercastDaskTaskRunner(DaskTaskRunner):
    """DaskTaskRunner that registers ordercast's worker set-up and can describe its cluster."""

    def __init__(self, *, kind: str, worker_setup: WorkerSetup | None = None, expected_workers: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.worker_setup = worker_setup
        self.expected_workers = expected_workers

    def duplicate(self) -> OrdercastDaskTaskRunner:
        return type(self)(kind=self.kind, worker_setup=self.worker_setup, expected_workers=self.expected_workers,
                          address=self.address,
                          cluster_class=self.cluster_class, cluster_kwargs=self.cluster_kwargs,
                          adapt_kwargs=self.adapt_kwargs, client_kwargs=self.client_kwargs,
                          performance_report_path=self.performance_report_path)

    @property
    def client(self):
        starting = self._client is None
        client = DaskTaskRunner.client.fget(self)
        if starting and self.worker_setup is not None:
            client.register_plugin(self.worker_setup, name=WorkerSetup.name)
        return client

    def describe(self) -> dict[str, Any]:
        """Kind, worker count and dashboard, once the configured workers joined (or a minute passed)."""
        client = self.client
        if self.expected_workers:
            try:
                client.wait_for_workers(self.expected_workers, timeout=WORKER_WAIT_SECONDS)
            except TimeoutError:
                logger.warning("only %d of %d workers joined within %d s", len(client.scheduler_info()["workers"]),
                               self.expected_workers, WORKER_WAIT_SECONDS)
        return {"kind": self.kind, "workers": len(client.scheduler_info().get("workers", {})),
                "dashboard": client.dashboard_link}


def build_task_runner(config) -> SerialTaskRunner | OrdercastDaskTaskRunner:
    """The task runner for a cluster configuration (see deployments/clusters.py)."""
    if serial_forced():
        logger.warning("ORDERCAST_SERIAL is set: running every task in the flow's process, no Dask")
        return SerialTaskRunner(forced=True)
    if isinstance(config, SerialCluster):
        return SerialTaskRunner()
    runner_class = OrdercastDaskTaskRunner
    if config.batch_task_runs:
        from deployments.batching import BatchingDaskTaskRunner as runner_class
    if isinstance(config, LocalCluster):
        start_with = config.adapt.minimum if config.adapt else config.workers
        kwargs = {"n_workers": start_with, "threads_per_worker": config.threads_per_worker,
                  "processes": config.processes, "dashboard_address": "127.0.0.1:0"}
        if config.memory_limit:
            kwargs["memory_limit"] = config.memory_limit
        if os.environ.get(QUIET_ENV) and config.processes:  # a terminal command without --verbose: worker
            # processes print warnings and errors; task runs' info lines go to the UI only (threads share the
            # flow process's console, filtered there)
            kwargs["env"] = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING"}
        adapt = {"minimum": config.adapt.minimum, "maximum": config.adapt.maximum} if config.adapt else None
        return runner_class(kind="local", worker_setup=WorkerSetup(), cluster_class="distributed.LocalCluster",
                            cluster_kwargs=kwargs, adapt_kwargs=adapt,
                            expected_workers=start_with)
    setup = WorkerSetup(env=remote_environment(config), shared_dir=config.shared_dir,
                        files=_read_files(getattr(config, "upload_files", [])))
    if isinstance(config, SSHClusterConfig):
        worker_options = {**config.worker_options, "env": {**config.worker_options.get("env", {}),
                                                           **remote_environment(config)}}
        kwargs = {"hosts": config.hosts, "connect_options": config.connect.asyncssh_options(),
                  "worker_options": worker_options,
                  "scheduler_options": {"port": 0, "dashboard_address": ":0", **config.scheduler_options}}
        if config.remote_python:
            kwargs["remote_python"] = config.remote_python
        per_host = int(config.worker_options.get("n_workers", 1))
        return runner_class(kind="ssh", worker_setup=setup, cluster_class="distributed.SSHCluster",
                            cluster_kwargs=kwargs, expected_workers=(len(config.hosts) - 1) * per_host)
    if isinstance(config, YarnClusterConfig):
        return runner_class(kind="yarn", worker_setup=setup, cluster_class="deployments.yarn.YarnCluster",
                            expected_workers=config.n_workers,
                            cluster_kwargs={"config": config.model_dump(),
                                            "environment": remote_environment(config)})
    if isinstance(config, AddressClusterConfig):
        return runner_class(kind="address", worker_setup=setup, address=config.address)
    raise TypeError(f"unknown cluster configuration {config!r}")


def threads_per_worker(config) -> int:
    """Threads each worker runs tasks on: the model thread count that avoids oversubscription."""
    if isinstance(config, LocalCluster):
        return config.threads_per_worker
    if isinstance(config, SSHClusterConfig):
        return int(config.worker_options.get("nthreads", 1))
    return 1


def remote_environment(config) -> dict[str, str]:
    """What workers on other machines need: the Prefect API, the shared folder, and where the
    database password is kept (deployments/database_password.py), if anywhere."""
    from deployments.database_password import BLOCK_ENV

    block = {BLOCK_ENV: os.environ[BLOCK_ENV]} if os.environ.get(BLOCK_ENV) else {}
    return {"PREFECT_API_URL": config.api_url, "ORDERCAST_WORK_DIR": config.shared_dir,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **block}


def _read_files(paths: list[str]) -> dict[str, bytes]:
    return {Path(path).name: Path(path).read_bytes() for path in paths}
