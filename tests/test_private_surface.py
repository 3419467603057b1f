"""Every name ordercast uses that Prefect, prefect-dask or Dask do not promise to keep.

`pyproject.toml` pins prefect and prefect-dask to the minor versions the suite ran on. Before
raising a pin, run this test against the new versions: each name that moved fails here, first,
with the file that depends on it. Public names (flows, tasks, states, the client's API calls,
artifacts, filters) are not listed: they are covered by the rest of the suite."""
from __future__ import annotations

import importlib
import inspect
import re

import pytest

PRIVATE_SURFACE = [
    # (module, attribute path, who depends on it and how)
    ("prefect_dask.task_runners", "DaskTaskRunner._client", "deployments/runners.py: the runner's lazily made "
     "Dask client, to register the worker set-up once"),
    ("prefect_dask.task_runners", "DaskTaskRunner._started", "deployments/batching.py: refuse submissions "
     "before the runner starts"),
    ("prefect_dask.task_runners", "DaskTaskRunner._optimize_futures", "deployments/batching.py: hand batched "
     "futures to Dask as futures of their state"),
    ("prefect_dask.task_runners", "PrefectDaskFuture.wrapped_future", "deployments/batching.py: the same"),
    ("prefect.futures", "PrefectTaskRunFuture._final_state", "deployments/batching.py: a batched future keeps "
     "its final state as Prefect's futures do"),
    ("prefect.context", "serialize_context", "deployments/batching.py: the flow run's context, serialized once "
     "per flow run"),
    ("prefect.context", "hydrated_context", "deployments/batching.py: a batch's context on the worker"),
    ("prefect.context", "SyncClientContext", "deployments/batching.py: a batch borrows its thread's API client"),
    ("prefect.context", "SettingsContext", "deployments/batching.py: settings rebuilt once per worker process"),
    ("prefect.task_engine", "run_task_sync", "deployments/batching.py: each batched task run goes through "
     "Prefect's own task engine"),
    ("prefect.utilities.engine", "collect_task_run_inputs_sync", "deployments/batching.py: task run inputs "
     "(dependencies) shown in the UI"),
    ("prefect.events.worker", "EventsWorker.wait_until_empty", "deployments/batching.py: a finished task run's "
     "state events leave the worker before its batch reports it"),
    ("distributed.scheduler", "Scheduler.task_metadata", "deployments/batching.py: a settled batch's record is "
     "deleted from the scheduler's metadata (set_metadata cannot delete)"),
    ("prefect.flow_engine", "run_flow", "deployments/run_history.py: `ordercast retry` runs an ad-hoc flow run "
     "again under its own id, as `prefect flow-run retry` does"),
    ("distributed.scheduler", "KilledWorker", "flows/outcomes.py, deployments/batching.py: a region whose workers "
     "kept dying"),
]


@pytest.mark.parametrize("module, path, reason", PRIVATE_SURFACE, ids=[f"{m}.{p}" for m, p, _ in PRIVATE_SURFACE])
def test_private_names_ordercast_relies_on_still_exist(module, path, reason):
    target = importlib.import_module(module)
    *owners, name = path.split(".")
    for part in owners:
        assert hasattr(target, part), _moved(module, path, reason)
        target = getattr(target, part)
    assert hasattr(target, name) or name in _set_in_init(target), _moved(module, path, reason)


def _set_in_init(cls) -> set[str]:
    """Instance attributes the class (or a base) assigns in `__init__`."""
    names = set()
    for klass in getattr(cls, "__mro__", ()):
        init = vars(klass).get("__init__")
        if init is not None and hasattr(init, "__code__"):
            names.update(re.findall(r"self\.(\w+)\s*(?::[^=]+)?=", inspect.getsource(init)))
    return names


def _moved(module: str, path: str, reason: str) -> str:
    import prefect
    import prefect_dask

    return (f"{module}.{path} is gone in prefect {prefect.__version__} / prefect-dask {prefect_dask.__version__}; "
            f"ordercast needs it in {reason}. Adapt that code before raising the pin in pyproject.toml.")
