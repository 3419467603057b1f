"""Per-region tags leave nothing behind on long-lived Dask workers, and cost no server request
where no tag has a concurrency limit.

Prefect's task engine starts a slot-acquisition service (a thread and an API connection) per
distinct set of tags in each worker process and keeps it for the life of the process. The
region tasks stop theirs (`tasks.close_tag_slot_service`); these tests count the services'
threads on real workers of a real LocalCluster, reporting to the real local Prefect server.
The batching runner answers the engine's slot request itself for tags without a limit
(`deployments.batching.TagLimits`); the requests that reach the server are counted from the
worker's HTTP client log. It also starts each tag set's service with one API client kept by the
worker process (`deployments.batching.start_slot_service`), and each batch with the sync API
client its worker thread keeps; the clients built are counted."""
from __future__ import annotations

import gc
import logging
import threading

import pytest
from distributed import Client, LocalCluster
from prefect import flow, tags, task
from prefect.client.orchestration import get_client

from deployments.batching import BatchingDaskTaskRunner
from deployments.runners import OrdercastDaskTaskRunner
from tasks import close_tag_slot_service
from tests.helpers import run_cli, settled, table_args

SERVICE_THREAD = "ConcurrencySlotAcquisitionWithLeaseServiceThread"


def _service_threads() -> int:
    return sum(thread.name.startswith(SERVICE_THREAD) for thread in threading.enumerate())


def _kept_alive() -> dict[str, int]:
    """What the slot services hold on to: their API clients, and the calls Prefect keeps to drain
    them at shutdown (each call's context holds the task run that started the service, with that
    run's own client). Task run contexts also linger for a while in pending timers, so they are
    not counted directly."""
    from prefect._internal.concurrency.threads import get_global_loop
    from prefect.client.orchestration import PrefectClient
    from prefect.concurrency.services import ConcurrencySlotAcquisitionWithLeaseService

    gc.collect()
    shutdown_calls = getattr(get_global_loop(), "_on_shutdown", [])
    return {"clients": sum(isinstance(item, PrefectClient) for item in gc.get_objects()),
            "shutdown_calls": sum(isinstance(getattr(getattr(call, "fn", None), "__self__", None),
                                             ConcurrencySlotAcquisitionWithLeaseService) for call in shutdown_calls)}


def _kept_alive_on_worker(client: Client) -> dict[str, int]:
    return next(iter(client.run(_kept_alive).values()))


def _service_threads_settled(client: Client) -> int:
    """Service threads left on the worker, once they are gone or after 10 s (stopping takes a moment)."""
    return settled(lambda: sum(client.run(_service_threads).values()), lambda count: count == 0, 10.0)


@task(task_run_name="tagged-{index}")
def tagged(index: int, close: bool) -> int:
    if close:
        close_tag_slot_service()
    return index


@flow(name="tagged-probe")
def tagged_probe(count: int, close: bool, prefix: str = "probe") -> list[int]:
    futures = []
    for index in range(count):
        with tags(f"region:{prefix}-{index}", "model:probe"):
            futures.append(tagged.submit(index, close))
    return [future.result() for future in futures]


@pytest.fixture()
def one_worker():
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        yield cluster, client


def test_closing_the_tag_service_keeps_no_thread_or_client_per_tag_set(one_worker, prefect_server):
    cluster, client = one_worker
    runner = OrdercastDaskTaskRunner(kind="address", address=cluster.scheduler_address)
    assert tagged_probe.with_options(task_runner=runner)(12, close=True) == list(range(12))
    assert _service_threads_settled(client) == 0
    after_closing = _kept_alive_on_worker(client)
    assert after_closing["clients"] <= 2 and after_closing["shutdown_calls"] == 0, after_closing

    assert tagged_probe.with_options(task_runner=runner)(12, close=False) == list(range(12))
    # Prefect's own behaviour, which the helper works around; if this fails, Prefect has
    # stopped keeping a service per tag set and `close_tag_slot_service` can go.
    assert sum(client.run(_service_threads).values()) == 12
    kept = _kept_alive_on_worker(client)
    assert kept["clients"] >= after_closing["clients"] + 12 and kept["shutdown_calls"] == 12, kept


def test_forecast_on_a_long_lived_cluster_leaves_no_service_per_region(one_worker, small_demo_dir, prefect_server,
                                                                      tmp_path):
    cluster, client = one_worker
    config = tmp_path / "address.yaml"
    config.write_text(f"kind: address\naddress: {cluster.scheduler_address}\napi_url: {prefect_server.api_url}\n"
                      f"shared_dir: {tmp_path}\n")
    result = run_cli("forecast", *table_args(small_demo_dir), "--out", str(tmp_path / "out"), "--cluster", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert _service_threads_settled(client) == 0


class _SlotRequestCounter(logging.Handler):
    """Counts the answered HTTP requests for tag concurrency slots that a process's API clients
    make (a busy server's 503 makes the client ask again, which is not counted twice)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "/v2/concurrency_limits/increment-with-lease" in message and '"HTTP/1.1 200 OK"' in message:
            self.count += 1


def _count_slot_requests() -> None:
    http_log = logging.getLogger("httpx")  # one INFO line per request
    http_log.setLevel(logging.INFO)
    http_log.addHandler(_SlotRequestCounter())


def _slot_requests() -> int:
    return sum(handler.count for handler in logging.getLogger("httpx").handlers
               if isinstance(handler, _SlotRequestCounter))


def test_batched_task_runs_ask_the_server_for_tag_slots_only_where_a_tag_has_a_limit(one_worker, prefect_server):
    cluster, client = one_worker
    client.run(_count_slot_requests)
    with get_client(sync_client=True) as api:
        api.create_concurrency_limit(tag="region:batched-2", concurrency_limit=5)
        try:
            batched = BatchingDaskTaskRunner(kind="address", address=cluster.scheduler_address)
            assert tagged_probe.with_options(task_runner=batched)(4, close=True, prefix="batched") == [0, 1, 2, 3]
            assert sum(client.run(_slot_requests).values()) == 1  # region:batched-2's, which has a limit

            # Prefect's own behaviour on the stock runner: one request per tagged task run.
            stock = OrdercastDaskTaskRunner(kind="address", address=cluster.scheduler_address)
            assert tagged_probe.with_options(task_runner=stock)(4, close=True, prefix="stock") == [0, 1, 2, 3]
            assert sum(client.run(_slot_requests).values()) == 1 + 4
        finally:
            api.delete_concurrency_limit_by_tag("region:batched-2")


def _count_api_clients() -> None:
    """Count, from now on, the API clients (async and sync) built in this worker process."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    for client_class in (PrefectClient, SyncPrefectClient):
        build = client_class.__init__

        def counted(self, *args, build=build, **kwargs) -> None:
            type(self).built += 1
            build(self, *args, **kwargs)

        client_class.built = 0
        client_class.__init__ = counted


def _api_clients_built() -> dict[str, int]:
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    return {"async": PrefectClient.built, "sync": SyncPrefectClient.built}


def test_batched_task_runs_build_no_api_client_per_tag_set_or_batch(one_worker, prefect_server):
    cluster, client = one_worker
    batched = BatchingDaskTaskRunner(kind="address", address=cluster.scheduler_address)
    assert tagged_probe.with_options(task_runner=batched)(3, close=True, prefix="warm") == [0, 1, 2]
    client.run(_count_api_clients)

    assert tagged_probe.with_options(task_runner=batched)(12, close=True, prefix="shared") == list(range(12))
    built = next(iter(client.run(_api_clients_built).values()))
    assert built == {"async": 0, "sync": 0}, built  # 12 new tag sets, in several batches

    # Prefect's own behaviour on the stock runner: a new client per tag set and per task run.
    stock = OrdercastDaskTaskRunner(kind="address", address=cluster.scheduler_address)
    assert tagged_probe.with_options(task_runner=stock)(12, close=True, prefix="own") == list(range(12))
    built = next(iter(client.run(_api_clients_built).values()))
    assert built["async"] >= 12 and built["sync"] >= 12, built
    assert _service_threads_settled(client) == 0
