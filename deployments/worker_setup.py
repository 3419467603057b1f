"""Set-up and tear-down on every Dask worker, including workers that replace dead ones.

Registered with `Client.register_plugin` by the task runner. It gives workers a common log
format, the environment they need (Prefect API, shared folder, model threads that are not
capped at one), checks that the shared folder is writable, and places files the configuration
asks to upload.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from distributed import WorkerPlugin

from forecasting.settings import usable_cores

LOG_FORMAT = "%(asctime)s | %(levelname)-7s | %(name)s | worker %(process)d | %(message)s"
FILES_ENV = "ORDERCAST_FILES_DIR"


class WorkerSetup(WorkerPlugin):
    name = "ordercast-setup"

    def __init__(self, env: dict[str, str] | None = None, shared_dir: str | None = None,
                 files: dict[str, bytes] | None = None) -> None:
        self.env = env or {}
        self.shared_dir = shared_dir
        self.files = files or {}

    def setup(self, worker) -> None:
        os.environ.update(self.env)
        _honour_model_threads()
        _configure_logging()
        from deployments.database_password import password_from_block

        password_from_block()
        if self.shared_dir and "://" not in self.shared_dir:
            folder = Path(self.shared_dir)
            if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
                raise RuntimeError(f"worker {worker.address}: shared_dir {folder} is not a writable folder here; "
                                   "mount it on every worker machine")
        if self.files:
            target = Path(worker.local_directory) / "ordercast-files"
            target.mkdir(parents=True, exist_ok=True)
            for name, content in self.files.items():
                (target / Path(name).name).write_bytes(content)
            os.environ[FILES_ENV] = str(target)

    def teardown(self, worker) -> None:
        shutil.rmtree(Path(worker.local_directory) / "ordercast-files", ignore_errors=True)


def _honour_model_threads() -> None:
    """Dask starts workers with OMP_NUM_THREADS=1, which caps every XGBoost fit at one thread
    whatever its `nthread` (`--model-threads`, the pooled model's fit on all cores). Every fit
    here names its thread count, so the cap is lifted to the machine's cores; it takes effect
    because XGBoost, and with it OpenMP, is first imported by a task, after this set-up."""
    os.environ["OMP_NUM_THREADS"] = str(usable_cores())


def _configure_logging() -> None:
    formatter = logging.Formatter(LOG_FORMAT)
    for name in ("ordercast", "distributed"):
        logger = logging.getLogger(name)
        if not any(getattr(handler, "_ordercast", False) for handler in logger.handlers):
            handler = logging.StreamHandler()
            handler._ordercast = True
            handler.setFormatter(formatter)
            logger.addHandler(handler)
            logger.propagate = False
