"""The batching task runner against prefect-dask's stock runner, on real LocalClusters reporting
to the real local Prefect server: the same task runs, names, states, tags, run counts and
results; and a batch whose worker dies is re-run without repeating what already finished."""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import cloudpickle
import dask
import distributed
import pytest
from distributed.scheduler import KilledWorker
from prefect import flow, tags, task
from prefect.states import Completed

from deployments import batching
from deployments.batching import BatchingDaskTaskRunner, guided_sizes
from deployments.runners import OrdercastDaskTaskRunner
from tests.helpers import prefect_records, settled

CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "dashboard_address": "127.0.0.1:0"}
LINGER = 0.1  # seconds


@pytest.fixture(autouse=True)
def patient_linger(monkeypatch):
    """Tests below rely on which task runs share a batch: a pause of LINGER, not the default 20 ms,
    ends a burst of submissions, so a loop of them goes out together even on a loaded machine."""
    monkeypatch.setattr(batching, "LINGER_SECONDS", LINGER)


def _runner(batched: bool, workers: int = 2):
    runner_class = BatchingDaskTaskRunner if batched else OrdercastDaskTaskRunner
    return runner_class(kind="local", cluster_class="distributed.LocalCluster",
                        cluster_kwargs={**CLUSTER, "n_workers": workers})


@task(task_run_name="square-{index}", retries=1, retry_delay_seconds=0)
def square(index: int, folder: str) -> int:
    if index == 3:
        raise ValueError("three is not allowed")
    flaky = Path(folder) / "flaky"
    if index == 5 and not flaky.exists():
        flaky.touch()
        raise OSError("a hiccup on the first attempt")
    return index * index


@task(task_run_name="total")
def total(values: list[int]) -> int:
    return sum(values)


@flow(name="batching-probe")
def probe(count: int, folder: str) -> dict:
    futures = []
    for index in range(count):
        with tags(f"item:{index}", "probe"):
            futures.append(square.submit(index, folder))
    summed = total.submit([futures[0], futures[1], futures[2]])  # futures as parameters
    for future in futures:
        future.wait()
    return {"results": {index: future.result(raise_on_failure=False) if future.state.is_completed() else None
                        for index, future in enumerate(futures)},
            "failed": sorted(index for index, future in enumerate(futures) if future.state.is_failed()),
            "total": summed.result()}


def _task_runs(api_url: str, run_id, expect: list[str]) -> dict[str, tuple]:
    _, task_runs, _ = prefect_records(api_url, str(run_id), expect)
    return {run.name: (run.state.type.value, run.run_count, sorted(run.tags)) for run in task_runs}


def test_batched_task_runs_match_the_stock_runner(prefect_server, tmp_path):
    outcomes, records = {}, {}
    for batched in (False, True):
        folder = tmp_path / f"batched-{batched}"
        folder.mkdir()
        state = probe.with_options(task_runner=_runner(batched))(40, str(folder), return_state=True)
        assert state.is_completed(), state
        outcomes[batched] = state.result()
        records[batched] = _task_runs(prefect_server.api_url, state.state_details.flow_run_id,
                                      [f"square-{index}" for index in range(40)] + ["total"])

    assert outcomes[True] == outcomes[False]
    assert outcomes[True]["failed"] == [3] and outcomes[True]["total"] == 0 + 1 + 4
    assert outcomes[True]["results"][5] == 25 and outcomes[True]["results"][39] == 39 * 39
    assert records[True] == records[False]
    assert len(records[True]) == 41
    assert records[True]["square-3"] == ("FAILED", 2, ["item:3", "probe"])  # retried once, then failed
    assert records[True]["square-5"] == ("COMPLETED", 2, ["item:5", "probe"])  # the hiccup was retried
    assert records[True]["square-7"] == ("COMPLETED", 1, ["item:7", "probe"])
    assert records[True]["total"] == ("COMPLETED", 1, [])


@task(task_run_name="step-{index}")
def step(index: int, folder: str, kill_at: int) -> int:
    (Path(folder) / f"ran-{index}-{uuid.uuid4().hex}").touch()
    killed = Path(folder) / "killed"
    if index == kill_at and not killed.exists():
        killed.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return index


@flow(name="batching-lost-worker")
def lost_worker_probe(count: int, folder: str, kill_at: int) -> list[int]:
    futures = [step.submit(index, folder, kill_at) for index in range(count)]
    return [future.result() for future in futures]


def test_a_batch_rerun_after_its_worker_died_skips_finished_task_runs(prefect_server, tmp_path):
    # 8 task runs on 2 threads go out in batches of 2, 2, 1, 1, 1, 1: the first holds steps 0 and 1.
    assert guided_sizes(8, 2)[:2] == [2, 2]
    state = lost_worker_probe.with_options(task_runner=_runner(True))(8, str(tmp_path), 1, return_state=True)
    assert state.is_completed(), state
    assert state.result() == list(range(8))
    runs = [path.name.split("-")[1] for path in tmp_path.glob("ran-*")]
    assert runs.count("0") == 1  # finished before the worker died: not run again
    assert runs.count("1") == 2  # killed mid-run, then run again on a new worker
    assert all(runs.count(str(index)) == 1 for index in range(2, 8))
    records = _task_runs(prefect_server.api_url, state.state_details.flow_run_id, [f"step-{i}" for i in range(8)])
    assert {name: value[0] for name, value in records.items()} == {f"step-{i}": "COMPLETED" for i in range(8)}


@task(task_run_name="fragile-{index}")
def fragile(index: int, folder: str, kill_at: int) -> int:
    (Path(folder) / f"ran-{index}-{uuid.uuid4().hex}").touch()
    if index == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # every time: Dask gives up with KilledWorker
    return index


@flow(name="batching-killed-worker")
def killed_worker_probe(count: int, folder: str, kill_at: int) -> dict[int, int | str]:
    futures = [fragile.submit(index, folder, kill_at) for index in range(count)]
    outcome: dict[int, int | str] = {}
    for index, future in enumerate(futures):
        try:
            outcome[index] = future.result()
        except KilledWorker:
            outcome[index] = "KilledWorker"
    return outcome


def test_when_dask_gives_up_on_a_batch_only_the_task_run_that_killed_it_fails(prefect_server, tmp_path):
    # One worker that is handed one task at a time, so no other batch dies with it: 6 task runs go
    # out as batches of 3, 2 and 1, and the first holds fragile-0, -1 and -2.
    assert guided_sizes(6, 1) == [3, 2, 1]
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        state = killed_worker_probe.with_options(task_runner=_runner(True, workers=1))(
            6, str(tmp_path), 1, return_state=True)
    assert state.is_completed(), state
    assert state.result() == {0: 0, 1: "KilledWorker", 2: 2, 3: 3, 4: 4, 5: 5}
    runs = [path.name.split("-")[1] for path in tmp_path.glob("ran-*")]
    assert runs.count("1") >= 2  # Dask tried it on a new worker, then gave up
    assert all(runs.count(str(index)) == 1 for index in range(6) if index != 1), " ".join(sorted(runs, key=int))


@task(task_run_name="gate-{index}")
def gate(index: int, folder: str) -> int:
    """Step 1 waits until the flow opens the gate, which it does only once step 0 is back."""
    if index == 1:
        deadline = time.monotonic() + 60
        while not (Path(folder) / "open").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return index


@flow(name="batching-gate")
def gate_probe(folder: str) -> dict:
    futures = [gate.submit(index, folder) for index in range(4)]
    first = futures[0].result(timeout=30)  # times out if it waited for gate-1, its batch mate
    (Path(folder) / "open").touch()
    return {"first": first, "all": [future.result() for future in futures]}


def test_a_task_run_is_settled_as_soon_as_it_finishes_not_when_its_batch_does(prefect_server, tmp_path):
    # One thread: 4 task runs go out as batches of 2, 1 and 1; the first holds gate-0 and gate-1.
    assert guided_sizes(4, 1) == [2, 1, 1]
    state = gate_probe.with_options(task_runner=_runner(True, workers=1))(str(tmp_path), return_state=True)
    assert state.is_completed(), state
    assert state.result() == {"first": 0, "all": [0, 1, 2, 3]}


@task(task_run_name="sleeper-{index}")
def sleeper(index: int, seconds: float) -> str:
    """Sleeps, then names the Dask task (the batch) it ran in."""
    time.sleep(seconds)
    return distributed.get_worker().get_current_task()


@flow(name="batching-hold")
def hold_probe() -> dict[str, list[str]]:
    busy = [sleeper.submit(index, 1.0) for index in range(6)]
    time.sleep(4 * LINGER)
    late = []
    for index in range(6, 11):  # each after a pause longer than the linger, as predictions come
        late.append(sleeper.submit(index, 0.0))
        time.sleep(2 * LINGER)
    return {"busy": [future.result() for future in busy], "late": [future.result() for future in late]}


def test_submissions_are_held_while_the_cluster_has_batches_queued_and_then_go_out_together(prefect_server):
    # One thread: the 6 busy task runs go out as batches of 3, 2 and 1 (6 s of work). The 5 late
    # ones each come after a pause, so without holding they would go out as 5 batches of one.
    state = hold_probe.with_options(task_runner=_runner(True, workers=1))(return_state=True)
    assert state.is_completed(), state
    batches = state.result()
    assert len(set(batches["busy"])) == 3
    assert len(set(batches["late"])) == len(guided_sizes(5, 1)) == 3
    assert not set(batches["late"]) & set(batches["busy"])


@task(task_run_name="marker-{index}")
def marker(index: int, folder: str) -> int:
    (Path(folder) / f"marker-{index}").touch()
    return index


@flow(name="batching-wake")
def wake_probe(folder: str) -> dict:
    busy = [sleeper.submit(index, 0.5) for index in range(6)]
    time.sleep(4 * LINGER)  # past the linger: the busy ones went out as 3 batches
    late = marker.submit(0, folder)  # held while more batches are unfinished than threads
    ran = settled((Path(folder) / "marker-0").exists, bool, 30)
    return {"ran_before_waited_on": ran, "late": late.result(),
            "busy": len({future.result() for future in busy})}


def test_held_submissions_go_out_when_the_cluster_has_room_without_the_flow_waiting_on_them(prefect_server,
                                                                                           tmp_path):
    state = wake_probe.with_options(task_runner=_runner(True, workers=1))(str(tmp_path), return_state=True)
    assert state.is_completed(), state
    assert state.result() == {"ran_before_waited_on": True, "late": 0, "busy": 3}


def test_a_finished_task_run_event_never_waits_for_the_runner_lock():
    # The event arrives on the Dask client's event loop; a send holds the lock while it asks the
    # scheduler through that loop, so waiting for the lock there would hang the flow run.
    runner = _runner(True)  # not started: no cluster is needed
    member = batching.BatchMemberFuture(uuid.uuid4(), runner)
    runner._in_flight["batch"] = batching.InFlightBatch([member])
    runner._waiting.append(("held", None))  # something held, so the event wants to wake it
    event = (0.0, {"batch": "batch", "index": 0, "state": cloudpickle.dumps(Completed())})
    with runner._lock:
        handler = threading.Thread(target=runner._on_task_run_finished, args=(event,))
        handler.start()
        handler.join(timeout=5)
        assert not handler.is_alive()
        runner._waiting.clear()  # nothing to send once the lock is free
    assert member.outcome.result(timeout=0).is_completed()


@pytest.mark.parametrize("count,threads", [(1, 2), (8, 2), (100, 2), (1000, 4), (7, 1)])
def test_guided_batch_sizes_cover_every_task_run_largest_first(count, threads):
    sizes = guided_sizes(count, threads)
    assert sum(sizes) == count
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1
    assert sizes[0] == -(-count // (2 * threads))
    assert len(sizes) <= 2 * threads * (1 + count.bit_length())


@task(task_run_name="echo")
def echo(value) -> str:
    return str(value)


@flow(name="unsendable-probe")
def send_a_lock() -> str:
    return echo.submit(threading.Lock()).result()


@pytest.mark.parametrize("batched", [False, True])
def test_a_parameter_that_cannot_be_sent_raises_at_once_in_the_flow(prefect_server, batched):
    started = time.monotonic()
    with pytest.raises(TypeError, match="serialize|pickle"):
        send_a_lock.with_options(task_runner=_runner(batched, workers=1))()
    assert time.monotonic() - started < 60  # not left waiting for a result that never comes


def _count_sync_clients() -> None:
    """Count, from now on, the sync API clients built in this worker process."""
    from prefect.client.orchestration import SyncPrefectClient

    build = SyncPrefectClient.__init__

    def counted(self, *args, **kwargs) -> None:
        type(self).built += 1
        build(self, *args, **kwargs)

    SyncPrefectClient.built = 0
    SyncPrefectClient.__init__ = counted


def _sync_clients_built() -> int:
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient.built


@flow(name="echo-probe")
def echo_many(count: int) -> list[str]:
    return [future.result() for future in [echo.submit(index) for index in range(count)]]


def test_batches_reuse_the_api_client_their_worker_thread_keeps(prefect_server):
    """Each new API client costs an SSL context (about 20 ms of CPU): a batch borrows the one its
    worker thread keeps, where the stock runner builds one per task run."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        def runner(batched: bool):
            runner_class = BatchingDaskTaskRunner if batched else OrdercastDaskTaskRunner
            return runner_class(kind="address", address=cluster.scheduler_address)

        assert echo_many.with_options(task_runner=runner(True))(3) == ["0", "1", "2"]  # the thread's client
        client.run(_count_sync_clients)
        assert echo_many.with_options(task_runner=runner(True))(12) == [str(i) for i in range(12)]
        assert next(iter(client.run(_sync_clients_built).values())) == 0  # 12 task runs in several batches
        assert echo_many.with_options(task_runner=runner(False))(12) == [str(i) for i in range(12)]
        assert next(iter(client.run(_sync_clients_built).values())) >= 12  # Prefect's own: one per task run


def test_nothing_of_a_flow_run_is_left_on_the_scheduler(prefect_server, tmp_path):
    """A long-lived cluster (kind `address`) serves flow run after flow run: each batch's record of
    finished task runs is deleted from the scheduler once the flow has the batch's result, also
    after a worker died mid-batch."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        runner = BatchingDaskTaskRunner(kind="address", address=cluster.scheduler_address)
        assert echo_many.with_options(task_runner=runner)(12) == [str(i) for i in range(12)]
        runner = BatchingDaskTaskRunner(kind="address", address=cluster.scheduler_address)
        assert lost_worker_probe.with_options(task_runner=runner)(8, str(tmp_path), 1) == list(range(8))
        assert (tmp_path / "killed").exists()  # a worker did die mid-batch
        assert client.get_metadata([batching.METADATA_ROOT], default=None) is None
        assert client.get_metadata([batching.CLAIMS_ROOT], default=None) is None


@task(task_run_name="busy-{index}")
def busy(index: int) -> str:
    time.sleep(0.4)
    return distributed.get_worker().address


@flow(name="adaptive-probe")
def adaptive_probe(count: int) -> list[str]:
    return [future.result() for future in [busy.submit(index) for index in range(count)]]


def test_an_adaptive_cluster_that_grows_during_the_run_gets_work(prefect_server):
    """One worker at the start, up to three as the queue grows: every task run completes once,
    and the workers that joined during the run take part of the work."""
    runner = BatchingDaskTaskRunner(kind="local", cluster_class="distributed.LocalCluster",
                                    cluster_kwargs={**CLUSTER, "n_workers": 1},
                                    adapt_kwargs={"minimum": 1, "maximum": 3, "interval": "200ms"})
    state = adaptive_probe.with_options(task_runner=runner)(20, return_state=True)
    assert state.is_completed(), state
    addresses = state.result()
    assert len(addresses) == 20 and len(set(addresses)) >= 2, sorted(set(addresses))
    records = _task_runs(prefect_server.api_url, state.state_details.flow_run_id, [f"busy-{i}" for i in range(20)])
    assert {value[:2] for value in records.values()} == {("COMPLETED", 1)}


@task(task_run_name="region-{index}")
def uneven(index: int, folder: str, slow: int) -> float:
    """One region's work: 0.1 s, or 12 s for the slow one; logs each execution, returns its end."""
    time.sleep(12.0 if index == slow else 0.1)
    with open(Path(folder) / "runs.log", "a") as log:
        log.write(f"{index}\n")
    return time.time()


@flow(name="batching-slow-region")
def slow_region_probe(count: int, folder: str, slow: int) -> dict[int, float]:
    futures = [uneven.submit(index, folder, slow) for index in range(count)]
    return {index: future.result() for index, future in enumerate(futures)}


def test_a_slow_task_run_does_not_hold_back_the_task_runs_batched_behind_it(prefect_server, tmp_path):
    """40 regions on 2 threads; the first goes out first in the first batch (of 10) and takes 12 s.
    The other thread takes over the 9 task runs queued behind it once it has nothing else to do,
    so all 39 others (about 5 s of work) end before the slow one; each runs exactly once."""
    state = slow_region_probe.with_options(task_runner=_runner(True))(40, str(tmp_path), 0, return_state=True)
    assert state.is_completed(), state
    ended = state.result()
    late = sorted(index for index in range(1, 40) if ended[index] >= ended[0])
    assert late == [], f"ended after the slow region: {late}"
    assert sorted(map(int, (tmp_path / "runs.log").read_text().split())) == list(range(40))
    records = _task_runs(prefect_server.api_url, state.state_details.flow_run_id, [f"region-{i}" for i in range(40)])
    assert {value[:2] for value in records.values()} == {("COMPLETED", 1)}
