"""Task-runner factory: one function turns a cluster shape into a Prefect task runner."""
from __future__ import annotations

import os
from dataclasses import dataclass

from prefect_dask import DaskTaskRunner

from forecasting.errors import ConfigError


@dataclass(frozen=True)
class LocalClusterConfig:
    """A `distributed.LocalCluster` on this machine (default: one worker process per core)."""

    n_workers: int | None = None
    threads_per_worker: int = 1
    processes: bool = True

    def __post_init__(self) -> None:
        if self.n_workers is not None and self.n_workers < 1:
            raise ConfigError(f"n_workers must be >= 1, got {self.n_workers}")
        if self.threads_per_worker < 1:
            raise ConfigError(f"threads_per_worker must be >= 1, got {self.threads_per_worker}")

    @property
    def workers(self) -> int:
        return self.n_workers or os.cpu_count() or 1


def build_task_runner(config: LocalClusterConfig) -> DaskTaskRunner:
    """prefect-dask's DaskTaskRunner on a LocalCluster; the dashboard takes a free port."""
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": config.workers,
            "threads_per_worker": config.threads_per_worker,
            "processes": config.processes,
            "dashboard_address": "127.0.0.1:0",
        },
    )
