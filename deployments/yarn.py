"""A Dask cluster on YARN, built on skein (YARN's Python client) and distributed's Cluster.

One YARN application with two skein services: `dask.scheduler` (one container) and
`dask.worker` (`n_workers` containers, restarted up to `worker_restarts` times), which
starts only after the scheduler. Both unpack the packed Python environment as
`./environment`, activate it, and meet through a scheduler file in `shared_dir`, so no
YARN-specific discovery is needed. Not `dask-yarn`: its last release cannot be imported
with current `distributed`.
"""
from __future__ import annotations

import importlib
import json
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

from distributed.core import rpc
from distributed.deploy.cluster import Cluster

from deployments.clusters import YarnClusterConfig

SCHEDULER, WORKER = "dask.scheduler", "dask.worker"
START_TIMEOUT_SECONDS = 300


def scheduler_file(config: YarnClusterConfig, token: str) -> str:
    return f"{config.shared_dir.rstrip('/')}/dask/{token}/scheduler.json"


def application_spec(config: YarnClusterConfig, token: str, environment: dict[str, str]):
    """The skein application specification for a cluster configuration."""
    import skein

    files = {"environment": skein.File(source=config.environment, type="archive")}
    files.update({name: skein.File(source=path) for name, path in config.files.items()})
    env = {**environment, **config.env}
    address_file = shlex.quote(scheduler_file(config, token))
    activate = "set -e\nsource environment/bin/activate\n"
    scheduler = skein.Service(
        resources=skein.Resources(memory=config.scheduler.memory, vcores=config.scheduler.vcores),
        files=files, env=env, max_restarts=0,
        script=f"{activate}mkdir -p $(dirname {address_file})\n"
               f"exec python -m distributed.cli.dask_scheduler --port 0 --dashboard-address :0 "
               f"--scheduler-file {address_file}\n",
    )
    worker = skein.Service(
        resources=skein.Resources(memory=config.worker.memory, vcores=config.worker.vcores),
        files=files, env=env, instances=config.n_workers, max_restarts=config.worker_restarts,
        depends=[SCHEDULER],
        script=f"{activate}exec python -m distributed.cli.dask_worker --scheduler-file {address_file} "
               f"--nthreads {config.worker.vcores} --memory-limit '{config.worker.memory}' "
               f"--name \"$SKEIN_CONTAINER_ID\"\n",
    )
    return skein.ApplicationSpec(name=config.name, queue=config.queue, services={SCHEDULER: scheduler, WORKER: worker})


class YarnCluster(Cluster):
    """Submits the application, waits for its scheduler, and behaves as a distributed Cluster."""

    def __init__(self, config: dict[str, Any], environment: dict[str, str] | None = None) -> None:
        self.config = YarnClusterConfig(**config)
        token = uuid.uuid4().hex[:12]
        spec = application_spec(self.config, token, environment or {})
        self._skein = _client_class(self.config.skein_client)()
        self.application = self._skein.submit_and_connect(spec)
        try:
            self._address = _wait_for_scheduler(Path(scheduler_file(self.config, token)))
        except Exception:
            self.application.shutdown("FAILED")
            raise
        super().__init__(asynchronous=False, name=self.config.name)
        self.scheduler_comm = rpc(self._address)
        self._loop_runner.start()
        self.sync(self._start)

    @property
    def scheduler_address(self) -> str:
        return self._address

    def scale(self, n: int) -> None:
        self.application.scale(WORKER, n)

    async def _close(self) -> None:
        await super()._close()
        self.application.shutdown("SUCCEEDED")

    def close(self, timeout: float | None = None) -> None:
        super().close(timeout)
        self._loop_runner.stop()


def _client_class(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _wait_for_scheduler(path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.5)
    raise TimeoutError(f"the YARN scheduler did not write {path} within {START_TIMEOUT_SECONDS} s; "
                       "check the application's logs (yarn logs -applicationId ...)")
