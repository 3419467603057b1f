"""Several Prefect task runs per Dask task, so Prefect costs little over plain Dask.

prefect-dask's `DaskTaskRunner` makes every task run one Dask task: for each, the flow process
serializes Prefect's whole context (mostly its settings) and the worker rebuilds the settings
and opens a new API client. `BatchingDaskTaskRunner` keeps every task run (its own id, name,
tags, states, logs, retries and result) but changes how they travel:

- flow side: the context is serialized once per flow run; a submission only records its task,
  parameters, tags and a new task run id, and returns a future at once;
- submissions are held until the flow stops submitting for a moment (or many are waiting), and
  while the cluster has more unfinished batches than threads (looked at again as each task run
  finishes; unless the flow waits on one of them), then sent as a few Dask tasks of several
  task runs each, largest first (guided sizes: each batch a share of what is left), so the
  workers stay evenly busy to the end, and a region's prediction, submitted when its training
  ends, travels with others;
- worker side: the flow run's settings are rebuilt once per worker process, and each batch has
  one context and the API client its worker thread keeps; each task run goes through Prefect's
  own task engine, one after another, and its final state reaches the flow as soon as it has it
  (a Dask event), so that what waits on it (a region's prediction) need not wait for the batch;
- a slow task run does not hold back those queued behind it in its batch while a worker thread
  is idle: when threads are idle and nothing is waiting to be sent, the flow sends the later
  half of the not-yet-started task runs of the batch with the most of them again, as a batch of
  their own ("stealing"); before it starts a task run, a batch claims it on the Dask scheduler,
  and skips it when another batch claimed it first, so each task run runs once;
- a batch that Dask runs again because its worker died skips the task runs that already
  finished: each finished state is kept on the Dask scheduler until the flow has the batch's
  result, and then the batch is forgotten (its record deleted from the scheduler, so nothing is
  left there after the flow run), so that Dask does not recompute it when a worker that held its
  result dies;
- when Dask gives up on a batch (`KilledWorker`), only the task run that was running when its
  workers died gets the error: those before it keep their states, those after it go out again.

Submissions that wait on futures (in `wait_for` or in their parameters) and async tasks take
prefect-dask's own path, one Dask task each; a batched future they wait on is handed to Dask as
a future of its own state.
"""
from __future__ import annotations

import concurrent.futures
import math
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import cloudpickle
import distributed
from distributed.scheduler import KilledWorker
from prefect import tags
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import State
from prefect.context import (
    SettingsContext,
    SyncClientContext,
    TagsContext,
    TaskRunContext,
    hydrated_context,
    serialize_context,
)
from prefect.events.worker import EventsWorker
from prefect.futures import PrefectFuture, PrefectTaskRunFuture
from prefect.settings import get_current_settings
from prefect.task_engine import run_task_sync
from prefect.utilities.collections import StopVisiting, visit_collection
from prefect.utilities.engine import collect_task_run_inputs_sync
from prefect_dask.task_runners import PrefectDaskFuture

from deployments.runners import OrdercastDaskTaskRunner

LINGER_SECONDS = 0.02  # a pause this long in submissions sends what is waiting
MAX_WAITING = 512  # or this many waiting submissions
BATCHES_PER_THREAD = 2  # guided sizes: each batch is 1/(2 x threads) of what is left
METADATA_ROOT = "ordercast-batches"
CLAIMS_ROOT = "ordercast-claims"  # per flow run: task run id -> the batch that runs it
SKIPPED = b""  # a batch's record of a task run another batch claimed
FINISHED_TOPIC = "ordercast-task-run-finished"  # Dask event per finished task run of a batch
SETTINGS_KEPT = 8  # flow runs whose rebuilt settings a worker process keeps


@dataclass
class SharedContext:
    """A flow run's serialized Prefect context, common to all of its batches, under an id of its own."""

    id: str
    serialized: dict[str, Any]


@dataclass
class TaskRunCall:
    """One task run as it travels inside a batch: everything but the shared context."""

    task: Any
    task_run_id: uuid.UUID
    parameters: dict[str, Any]
    dependencies: dict[str, set]
    tags: tuple[str, ...]


@dataclass
class InFlightBatch:
    """A sent batch's futures (and their calls, to send again), and how many of them, from the
    first, are known to be settled (so that counting unfinished batches does not look at every
    settled future again)."""

    members: list[BatchMemberFuture]
    calls: list[TaskRunCall] = field(default_factory=list)
    settled: int = 0

    def unfinished(self) -> bool:
        while self.settled < len(self.members) and self.members[self.settled].outcome.done():
            self.settled += 1
        return self.settled < len(self.members)

    def not_started(self) -> list[int]:
        """Indexes of the task runs queued behind the first unsettled one (the one running) that
        no other batch has been sent yet."""
        self.unfinished()
        return [index for index in range(self.settled + 1, len(self.members))
                if not self.members[index].outcome.done() and not self.members[index].stolen]


class BatchMemberFuture(PrefectTaskRunFuture):
    """The future of one task run inside a batch; the runner settles it when its batch returns."""

    def __init__(self, task_run_id: uuid.UUID, runner: BatchingDaskTaskRunner) -> None:
        super().__init__(task_run_id)
        self._runner = runner
        self.outcome: concurrent.futures.Future[State] = concurrent.futures.Future()
        self._sent = threading.Event()
        self._batch: distributed.Future | None = None
        self._index = -1
        self._state_future: distributed.Future | None = None
        self._settle_lock = threading.Lock()
        self.stolen = False  # sent again in a second batch: either may run it

    def attach(self, batch: distributed.Future, index: int) -> None:
        self._batch, self._index = batch, index
        self._sent.set()

    def settle(self, state: State) -> None:
        """Record the final state, once (from its event or from its batch's result), and let go
        of the batch (see `BatchingDaskTaskRunner._forget`)."""
        with self._settle_lock:
            if self.outcome.done():
                return
            self._batch = None
            self.outcome.set_result(state)

    def fail(self, error: BaseException) -> None:
        """No final state: its workers kept dying, or the flow run was cancelled."""
        with self._settle_lock:
            if not self.outcome.done():
                self.outcome.set_exception(error)

    def _ensure_sent(self) -> None:
        if not self._sent.is_set():
            self._runner.send_waiting()
            self._sent.wait()

    def wait(self, timeout: float | None = None) -> None:
        if self._final_state:
            return
        self._ensure_sent()
        try:
            self._final_state = self.outcome.result(timeout=timeout)
        except Exception:  # its workers kept dying, or the timeout passed
            return

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        if not self._final_state:
            self._ensure_sent()
            try:
                self._final_state = self.outcome.result(timeout=timeout)
            except concurrent.futures.TimeoutError as error:
                raise TimeoutError(f"Task run {self.task_run_id} did not complete within {timeout} seconds") from error
        return self._final_state.result(raise_on_failure=raise_on_failure, _sync=True)

    def add_done_callback(self, fn: Callable[[PrefectFuture], None]) -> None:
        if self._final_state:
            fn(self)
            return
        self._ensure_sent()
        self.outcome.add_done_callback(lambda _: fn(self))

    def state_future(self) -> distributed.Future:
        """A Dask future of this task run's final state, for submissions that wait on it (kept with
        this future: Dask cancels a task whose dependencies' futures are all released)."""
        if self._state_future is None:
            self._ensure_sent()
            batch = self._batch
            if batch is None or self.stolen:  # settled, or in two batches: hand Dask the state itself
                self._state_future = self._runner.client.scatter(self.outcome.result())
            else:
                self._state_future = self._runner.client.submit(_pick, batch, self._index, pure=False)
            self._state_future.task_run_id = self.task_run_id
        return self._state_future


class BatchingDaskTaskRunner(OrdercastDaskTaskRunner):
    """`OrdercastDaskTaskRunner` that sends task runs to Dask in batches (see the module doc)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reset_batching()

    def _reset_batching(self) -> None:
        self._waiting: list[tuple[TaskRunCall, BatchMemberFuture]] = []
        self._lock = threading.Lock()
        self._client_lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._last_submit = 0.0
        self._thread_count = 1
        self._context: SharedContext | None = None
        self._in_flight: dict[str, InFlightBatch] = {}
        self._subscribed = False

    def __getstate__(self) -> dict[str, Any]:
        # The flow, runner included, travels to workers in the context: locks and timers cannot.
        return {key: value for key, value in self.__dict__.items()
                if key not in ("_waiting", "_lock", "_client_lock", "_timer", "_last_submit", "_thread_count",
                               "_context", "_in_flight", "_subscribed")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_batching()

    @property
    def client(self):
        """The Dask client, created once even when the flow and the send timer ask at the same time."""
        with self._client_lock:
            return OrdercastDaskTaskRunner.client.fget(self)

    def submit(self, task, parameters: dict[str, Any], wait_for=None, dependencies=None) -> PrefectFuture:
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        if wait_for or task.isasync or TaskRunContext.get() or _holds_futures(parameters):
            return super().submit(task, parameters, wait_for, dependencies)
        cloudpickle.dumps(parameters)  # what cannot be sent raises here, in the flow, as on the stock runner
        inputs = {name: collect_task_run_inputs_sync(value) for name, value in parameters.items()}
        for name, extra in (dependencies or {}).items():
            inputs[name] = inputs.get(name, set()) | set(extra)
        call = TaskRunCall(task, uuid.uuid4(), parameters, inputs, tuple(TagsContext.get().current_tags))
        future = BatchMemberFuture(call.task_run_id, self)
        with self._lock:
            if self._context is None:
                self._context = SharedContext(uuid.uuid4().hex, _shared_context())
            self._waiting.append((call, future))
            self._last_submit = time.monotonic()
            send_now = len(self._waiting) >= MAX_WAITING
            if not send_now and self._timer is None:
                self._start_timer(LINGER_SECONDS)
        if send_now:
            self.send_waiting()
        return future

    def _start_timer(self, delay: float) -> None:
        """One timer per pause, not one per submission (call with the lock held)."""
        self._timer = threading.Timer(delay, self._on_timer)
        self._timer.daemon = True
        self._timer.start()

    def _on_timer(self) -> None:
        """Send the waiting submissions once the flow has not submitted for LINGER_SECONDS and the
        cluster has no more unfinished batches than threads; else hold them until a task run
        finishes (`_wake_held`) or the flow waits on one of them."""
        with self._lock:
            if threading.current_thread() is not self._timer:  # cancelled by a send meanwhile
                return
            quiet = time.monotonic() - self._last_submit
            if quiet < LINGER_SECONDS:
                self._start_timer(LINGER_SECONDS - quiet)
                return
            if self._unfinished_batches() > self._thread_count:
                self._timer = None
                return
        self.send_waiting()

    def _wake_held(self) -> None:
        """A task run finished: held submissions may go out now (the timer decides); with nothing
        held, idle threads take over task runs queued behind a running one (`_steal`)."""
        with self._lock:
            if self._waiting:
                if self._timer is None:
                    self._start_timer(0)
            elif self._context is not None:
                self._steal(self._context)

    def _wake_held_from_event_loop(self) -> None:
        """`_wake_held` for the Dask client's event loop, which must never wait for the lock: a send
        holds it while it asks the scheduler through that loop. Read without the lock, this can miss a
        timer that is just deciding to hold; the batch's own result (`_settle`) then wakes them."""
        if (self._waiting and self._timer is None) or (not self._waiting and self._in_flight):
            threading.Thread(target=self._wake_held, name="ordercast-wake-held", daemon=True).start()

    def _steal(self, context: SharedContext) -> None:
        """For each idle worker thread, send the later half of the not-yet-started task runs of the
        batch with the most of them again, as a batch of their own (call with the lock held)."""
        idle = self._thread_count - self._unfinished_batches()
        while idle > 0:
            candidates = [(len(batch.not_started()), batch) for batch in list(self._in_flight.values())]
            count, victim = max(candidates, key=lambda item: item[0], default=(0, None))
            if count == 0:
                return
            taken = victim.not_started()[-math.ceil(count / 2):]
            for index in taken:
                victim.members[index].stolen = True
            self._send([(victim.calls[index], victim.members[index]) for index in taken], context, attach=False,
                       claim_from=0)
            idle -= 1

    def _unfinished_batches(self) -> int:
        """Batches with task runs not settled yet. While there are more than threads, at least one
        is queued, so no worker goes idle if what waits is held a little longer."""
        return sum(batch.unfinished() for batch in list(self._in_flight.values()))

    def send_waiting(self) -> None:
        """Send every waiting submission to Dask, in guided batch sizes."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            waiting, self._waiting = self._waiting, []
            context = self._context
            if not waiting:
                return
            start = 0
            self._thread_count = self._threads()
            for size in guided_sizes(len(waiting), self._thread_count):
                self._send(waiting[start:start + size], context)
                start += size

    def _send(self, members: list[tuple[TaskRunCall, BatchMemberFuture]], context: SharedContext,
              attach: bool = True, claim_from: int = 1) -> None:
        """One batch to Dask. `attach`: its futures point at it (not for a stolen copy, whose task
        runs stay in their first batch too); `claim_from`: see `run_batch`."""
        if not self._subscribed:
            self.client.subscribe_topic(FINISHED_TOPIC, self._on_task_run_finished)
            self._subscribed = True
        batch_id = uuid.uuid4().hex
        self._in_flight[batch_id] = InFlightBatch([future for _, future in members], [call for call, _ in members])
        batch = self.client.submit(run_batch, batch_id, context, [call for call, _ in members], claim_from,
                                   key=f"{members[0][0].task.name}-batch-{batch_id}", pure=False)
        if attach:
            for index, (_, future) in enumerate(members):
                future.attach(batch, index)
        batch.add_done_callback(lambda done: self._settle(done, batch_id, members, context))

    def _on_task_run_finished(self, event: tuple[float, dict[str, Any]]) -> None:
        """Settle one task run as soon as its worker reports it finished (events of other flow
        runs' batches on the same cluster are ignored)."""
        _, message = event
        batch = self._in_flight.get(message["batch"])
        if batch is not None:
            batch.members[message["index"]].settle(cloudpickle.loads(message["state"]))
            self._wake_held_from_event_loop()

    def _settle(self, batch: distributed.Future, batch_id: str, members: list[tuple[TaskRunCall, BatchMemberFuture]],
                context: SharedContext) -> None:
        """Hand each task run its final state once its batch returned."""
        try:
            states = batch.result()
        except KilledWorker as error:
            self._recover(batch_id, members, context, error)
        except BaseException as error:  # cancelled with the flow run
            for _, future in members:
                future.fail(error)
            self._in_flight.pop(batch_id, None)
        else:
            for (_, future), state in zip(members, states):
                if state is not None:  # None: another batch claimed and ran it
                    future.settle(state)
            self._forget(batch_id)
        self._wake_held()

    def _forget(self, batch_id: str) -> None:
        """Remove a settled batch's record from the scheduler, so nothing of the flow run stays
        there; with the batch's future released too, Dask will not compute it again when a worker
        that held its result dies."""
        self._in_flight.pop(batch_id, None)
        self.client.run_on_scheduler(_drop_batch_record, batch_id=batch_id)

    def _recover(self, batch_id: str, members: list[tuple[TaskRunCall, BatchMemberFuture]], context: SharedContext,
                 error: KilledWorker) -> None:
        """A batch whose workers kept dying (Dask gave up: `KilledWorker`). Its task runs run one after
        another, so the first one not finished is the one that killed them: it gets the error; those
        before it keep their finished states, and those after it go out again in a new batch."""
        finished = self.client.get_metadata([METADATA_ROOT, batch_id], default=None) or {}
        culprit = next((index for index in range(len(members)) if str(index) not in finished), len(members))
        for index, (_, future) in enumerate(members[:culprit]):
            if finished[str(index)] != SKIPPED:
                future.settle(cloudpickle.loads(finished[str(index)]))
        self._forget(batch_id)
        if culprit == len(members):  # every task run had finished when the last worker died
            return
        members[culprit][1].fail(error)
        if culprit + 1 < len(members):
            with self._lock:  # some may have been stolen: every one is claimed
                self._send(members[culprit + 1:], context, claim_from=0)

    def _threads(self) -> int:
        workers = self.client.scheduler_info().get("workers", {})
        return max(1, sum(worker.get("nthreads", 1) for worker in workers.values()))

    def _optimize_futures(self, expr: Any) -> Any:
        def unwrap(value: Any) -> Any:
            if isinstance(value, BatchMemberFuture):
                return value.state_future()
            if isinstance(value, PrefectDaskFuture):
                return value.wrapped_future
            return value

        return visit_collection(expr, visit_fn=unwrap, return_data=True)

    def __exit__(self, *args: Any) -> None:
        self.send_waiting()
        if self._context is not None and self._subscribed:
            try:
                self.client.run_on_scheduler(_drop_claims, context_id=self._context.id)
            except Exception:  # the cluster is gone already: nothing is left on it either
                pass
        super().__exit__(*args)


def guided_sizes(count: int, threads: int) -> list[int]:
    """Batch sizes for `count` task runs on `threads` threads: each a 1/(2 x threads) share of what
    is left (at least one), so early batches are large and the last ones single task runs."""
    sizes, left = [], count
    while left:
        size = max(1, math.ceil(left / (BATCHES_PER_THREAD * threads)))
        sizes.append(size)
        left -= size
    return sizes


def _drop_batch_record(dask_scheduler: distributed.Scheduler, batch_id: str) -> None:
    """On the scheduler: delete a batch's finished states (`set_metadata` can only overwrite),
    and the root entry once no batch is left."""
    batches = dask_scheduler.task_metadata.get(METADATA_ROOT, {})
    batches.pop(batch_id, None)
    if not batches:
        dask_scheduler.task_metadata.pop(METADATA_ROOT, None)


def _claim(dask_scheduler: distributed.Scheduler, context_id: str, task_run_id: str, batch_id: str) -> bool:
    """On the scheduler: whether this batch may run the task run (no other batch claimed it)."""
    claims = dask_scheduler.task_metadata.setdefault(CLAIMS_ROOT, {}).setdefault(context_id, {})
    return claims.setdefault(task_run_id, batch_id) == batch_id


def _drop_claims(dask_scheduler: distributed.Scheduler, context_id: str) -> None:
    """On the scheduler: forget a flow run's claims once it is over."""
    claims = dask_scheduler.task_metadata.get(CLAIMS_ROOT, {})
    claims.pop(context_id, None)
    if not claims:
        dask_scheduler.task_metadata.pop(CLAIMS_ROOT, None)


def run_batch(batch_id: str, context: SharedContext, calls: list[TaskRunCall], claim_from: int = 0
              ) -> list[State | None]:
    """Run a batch's task runs through Prefect's task engine in one context with one API client;
    runs in a Dask worker. Task runs finished by an earlier attempt of this batch, or claimed by
    another batch (`None` in the result), are not run again. Task runs before `claim_from` are
    not claimed: the first of a batch the flow sent first is never sent again."""
    scheduler = distributed.get_client()
    finished = scheduler.get_metadata([METADATA_ROOT, batch_id], default=None) or {}
    states: list[State | None] = []
    serialized = _with_rebuilt_settings(context)
    settings = SettingsContext(**serialized["settings_context"]) if serialized["settings_context"] else nullcontext()
    with settings, SyncClientContext.model_construct(client=_kept_sync_client()) as clients, \
            hydrated_context(serialized, client=clients.client):
        for index, call in enumerate(calls):
            if str(index) in finished:
                states.append(None if finished[str(index)] == SKIPPED else cloudpickle.loads(finished[str(index)]))
                continue
            if index >= claim_from and not scheduler.run_on_scheduler(
                    _claim, context_id=context.id, task_run_id=str(call.task_run_id), batch_id=batch_id):
                scheduler.set_metadata([METADATA_ROOT, batch_id, str(index)], SKIPPED)
                states.append(None)
                continue
            with tags(*call.tags):
                state = run_task_sync(call.task, task_run_id=call.task_run_id, parameters=call.parameters,
                                      return_type="state", dependencies=call.dependencies)
            EventsWorker.instance().wait_until_empty()  # its states are on their way to the server
            finished_state = cloudpickle.dumps(state)
            scheduler.set_metadata([METADATA_ROOT, batch_id, str(index)], finished_state)
            scheduler.log_event(FINISHED_TOPIC, {"batch": batch_id, "index": index, "state": finished_state})
            states.append(state)
    return states


_kept_sync_clients = threading.local()  # per API, in each worker thread


def _kept_sync_client() -> SyncPrefectClient:
    """A started sync API client, one per API for the life of each worker thread, so that a batch
    does not build its own (its SSL context costs about 20 ms of CPU; a flow run of many small
    task runs sends many batches). Entering it again, as each batch does, does not close it."""
    clients = vars(_kept_sync_clients)
    api = _api_identity()
    if api not in clients:
        client = get_client(sync_client=True)
        client.__enter__()
        clients[api] = client
    return clients[api]


def _api_identity() -> tuple[str, ...]:
    """Which API the current settings name: its URL, key and auth string (clients are kept per API)."""
    api = get_current_settings().api
    return tuple(secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
                 for secret in (api.url, api.key, api.auth_string))


_rebuilt_settings: dict[str, Any] = {}  # SharedContext.id -> Prefect Settings, in this worker process


def _with_rebuilt_settings(context: SharedContext) -> dict[str, Any]:
    """The serialized context with its settings as a Settings object, rebuilt from their dump once
    per flow run in each worker process (rebuilding reads the environment and settings files, which
    costs more than the rest of the context)."""
    if not context.serialized["settings_context"]:
        return context.serialized
    settings = _rebuilt_settings.get(context.id)
    if settings is None:
        settings = SettingsContext(**context.serialized["settings_context"]).settings
        _rebuilt_settings[context.id] = settings
        while len(_rebuilt_settings) > SETTINGS_KEPT:
            _rebuilt_settings.pop(next(iter(_rebuilt_settings)), None)
    return {**context.serialized, "settings_context": {**context.serialized["settings_context"], "settings": settings}}


def _shared_context() -> dict[str, Any]:
    """The flow run's serialized context without the parts that differ per task run."""
    context = serialize_context()
    context["tags_context"] = {}
    context["asset_context"] = {}
    return context


def _holds_futures(parameters: dict[str, Any]) -> bool:
    found = []

    def look(value: Any) -> None:
        if isinstance(value, PrefectFuture):
            found.append(value)
            raise StopVisiting

    visit_collection(parameters, visit_fn=look, return_data=False)
    return bool(found)


def _pick(states: list[State], index: int) -> State:
    return states[index]
