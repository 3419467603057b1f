"""Orchestration benchmark: what running on Prefect costs over using Dask directly.

    python bench/orchestration.py                                # trivial tasks, 12 and 100 regions
    python bench/orchestration.py --sizes trivial,12,100,1000 --repeats 3

The same work runs in four ways, on one LocalCluster (2 worker processes, 1 thread each, or
`--workers`) and with one model thread, in alternating order:

  serial   one process, a plain loop
  dask     raw Dask: `client.submit` per step and region, `as_completed`
  stock    the project's flow on prefect-dask's stock `DaskTaskRunner`
  batched  the project's flow on `deployments.batching.BatchingDaskTaskRunner`

Sizes: `trivial` (`--tasks` no-op tasks: the orchestration cost alone; `--tags` puts tags on
them, which makes Prefect's task engine ask the server for tag concurrency slots) and a number of regions
(the real per-region train and predict on synthetic data: 2 years of history for 12 regions,
13 weeks for more, 7-day horizon, so every region gets an XGBoost model). Each mode's wall time
(median over repeats), its ratio to raw Dask, the peak memory of the flow process and of the
largest worker, the most threads a worker had, and the CPU seconds spent by the flow process,
the workers and the Prefect server (where the time goes) are printed as a table and written as JSON
(`--out`). Loading and partitioning happen once before the timing (the flow's snapshot cache
makes repeats skip them too; their time is printed); writing the outputs is timed in every mode.
Before every timed run the workers are restarted and import what they run, so no mode's worker
memory sits on top of what an earlier one left behind.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODES = ("serial", "dask", "stock", "batched")
WORKER_IMPORTS = ("xgboost", "prefect.task_engine", "forecasting.pipeline", "flows.forecast", "deployments.batching")


class Usage:
    """Samples the resident memory of this process and of every worker process, and the
    workers' thread counts, until stopped; also the CPU seconds this process, the workers and
    the Prefect server (with its children) spent in between."""

    def __init__(self, worker_pids: list[int], server_pid: int | None, interval: float = 0.1) -> None:
        import psutil

        self._me = psutil.Process()
        self._workers = [psutil.Process(pid) for pid in worker_pids]
        self._server = psutil.Process(server_pid) if server_pid else None
        self.flow_peak = self.worker_peak = self.worker_threads = 0
        self.cpu: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)

    def _sample(self, interval: float) -> None:
        while not self._stop.is_set():
            self.flow_peak = max(self.flow_peak, self._me.memory_info().rss)
            for worker in self._workers:
                try:
                    self.worker_peak = max(self.worker_peak, worker.memory_info().rss)
                    self.worker_threads = max(self.worker_threads, worker.num_threads())
                except Exception:  # a worker restarting
                    pass
            self._stop.wait(interval)

    def _cpu_seconds(self) -> dict[str, float]:
        def spent(process) -> float:
            times = process.cpu_times()
            return times.user + times.system

        server = 0.0
        if self._server is not None:
            server = sum(spent(process) for process in [self._server, *self._server.children(recursive=True)])
        return {"flow": spent(self._me), "workers": sum(spent(worker) for worker in self._workers),
                "server": server}

    def __enter__(self) -> Usage:
        self._cpu_before = self._cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        after = self._cpu_seconds()
        self.cpu = {name: after[name] - self._cpu_before[name] for name in after}


def noop(index: int) -> int:
    return index


def make_trivial_flow(tagging: str):
    from prefect import flow, tags, task

    noop_task = task(noop, name="noop", task_run_name="noop-{index}")
    tags_of = {"none": lambda index: (), "shared": lambda index: ("model:xgboost",),
               "unique": lambda index: (f"region:r{index}", "model:xgboost")}[tagging]

    @flow(name="bench-trivial")
    def trivial(count: int) -> int:
        futures = []
        for index in range(count):
            with tags(*tags_of(index)):
                futures.append(noop_task.submit(index))
        return sum(future.result() for future in futures)

    return trivial


def run_trivial(mode: str, count: int, client, runner, tagging: str = "none") -> None:
    from distributed import as_completed

    if mode == "serial":
        assert sum(noop(index) for index in range(count)) == count * (count - 1) // 2
    elif mode == "dask":
        futures = [client.submit(noop, index, pure=False) for index in range(count)]
        assert sum(future.result() for future in as_completed(futures)) == count * (count - 1) // 2
    else:
        state = make_trivial_flow(tagging).with_options(task_runner=runner)(count, return_state=True)
        assert state.is_completed() and state.result() == count * (count - 1) // 2, state


def prepare_regions(regions: int, folder: Path) -> dict:
    """Synthetic data (written once), partitioned; returns what every mode needs."""
    from forecasting.demo_data import csv_paths, generate, write_csv
    from forecasting.pipeline import RunOptions, prepare_partitions

    data = folder / f"data-{regions}"
    if not (data / "orders.csv").exists():
        years = 2.0 if regions <= 12 else 13 / 52
        write_csv(generate(regions=regions, years=years, seed=0), data)
    paths = csv_paths(data)
    options = RunOptions("30min", 7, None, False, False, 1, (0.1, 0.5, 0.9), None, False)
    started = time.perf_counter()
    manifest = prepare_partitions(paths, options, folder / f"partitions-{regions}")
    seconds = time.perf_counter() - started
    print(f"  {regions:>7} regions loaded and partitioned in {seconds:.1f} s (not part of the timings)", flush=True)
    return {"paths": paths, "options": options, "manifest": manifest, "prepare_seconds": round(seconds, 1)}


def run_regions(mode: str, work: dict, folder: Path, client, runner) -> None:
    from distributed import as_completed

    from forecasting.outputs import collect_outputs
    from forecasting.pipeline import predict_region, train_region

    manifest, options = work["manifest"], work["options"]
    run_id = f"{mode}-{time.time_ns()}"
    scratch, store, out = folder / "runs" / run_id, folder / "models", folder / "out" / mode
    common = dict(options=options, model_store=store, as_of=manifest["as_of"], run_dir=scratch)
    selections = folder / "home" / "selections"  # what the flow reads: no backtest, so the default model
    if mode == "serial":
        predictions = [predict_region(entry, trained=train_region(entry, selection_store=selections, **common),
                                      **common) for entry in manifest["regions"]]
    elif mode == "dask":
        training = [client.submit(train_region, entry, selection_store=selections, pure=False, **common)
                    for entry in manifest["regions"]]
        entry_of = {future.key: entry for future, entry in zip(training, manifest["regions"])}
        predicting = [client.submit(predict_region, entry_of[future.key], trained=future.result(), pure=False,
                                    **common) for future in as_completed(training)]
        predictions = [future.result() for future in as_completed(predicting)]
    else:
        from flows.forecast import forecast

        paths = work["paths"]
        state = forecast.with_options(task_runner=runner)(
            orders=paths.orders, weather=paths.weather, events=paths.events, promotions=paths.promotions,
            regions=paths.regions, horizon_days=options.horizon_days, out=str(out), model_store=str(store),
            return_state=True)
        assert state.is_completed(), state
        return
    collect_outputs(predictions, out, f"sqlite:///{out}/forecasts.sqlite", run_id, {"flow": "bench"})
    assert len(predictions) == len(manifest["regions"])


def make_runner(mode: str, address: str):
    from deployments.batching import BatchingDaskTaskRunner
    from deployments.runners import OrdercastDaskTaskRunner

    if mode == "stock":
        return OrdercastDaskTaskRunner(kind="address", address=address)
    if mode == "batched":
        return BatchingDaskTaskRunner(kind="address", address=address)
    return None


def import_work_libraries() -> None:
    """Import what a worker needs for the first task of any mode (run untimed, on new workers)."""
    for name in WORKER_IMPORTS:
        importlib.import_module(name)


def new_workers(client) -> list[int]:
    """Restart the workers and import what they will run; their process ids. Each mode's memory is
    then measured from new processes, not on top of what an earlier mode left behind."""
    client.restart(wait_for_workers=True)
    client.run(import_work_libraries)
    return list(client.run(os.getpid).values())


def measure(size: str, args: argparse.Namespace, folder: Path, cluster, client) -> dict:
    work = None if size == "trivial" else prepare_regions(int(size), folder)
    from deployments import server

    server_pid = getattr(server.status(), "pid", None)
    runs: dict[str, list[dict]] = {mode: [] for mode in args.modes}
    flow_modes = [mode for mode in args.modes if mode in ("stock", "batched")]
    if work is not None and flow_modes and args.warm_up:  # fill the snapshot cache, warm imports
        run_regions(flow_modes[0], work, folder, client, make_runner(flow_modes[0], cluster.scheduler_address))
    for repeat in range(args.repeats):
        order = args.modes if repeat % 2 == 0 else tuple(reversed(args.modes))
        for mode in order:
            runner = make_runner(mode, cluster.scheduler_address)
            worker_pids = new_workers(client)
            with Usage(worker_pids, server_pid) as usage:
                started = time.perf_counter()
                if work is None:
                    run_trivial(mode, args.tasks, client, runner, args.tags)
                else:
                    run_regions(mode, work, folder, client, runner)
                seconds = time.perf_counter() - started
            runs[mode].append({"seconds": seconds, "flow_rss": usage.flow_peak, "worker_rss": usage.worker_peak,
                               "worker_threads": usage.worker_threads, "cpu": usage.cpu})
            cpu = ", ".join(f"{name} {spent:.1f}" for name, spent in usage.cpu.items())
            print(f"  {size:>7} {mode:>8} run {repeat + 1}: {seconds:8.2f} s   (CPU s: {cpu})", flush=True)
    units = args.tasks if work is None else int(size)
    medians = {mode: statistics.median(run["seconds"] for run in mode_runs) for mode, mode_runs in runs.items()}
    return {mode: {"median_seconds": round(medians[mode], 3),
                   "per_unit_ms": round(1000 * medians[mode] / units, 2),
                   "ratio_to_dask": round(medians[mode] / medians["dask"], 3) if "dask" in medians else None,
                   "flow_peak_mib": round(max(r["flow_rss"] for r in runs[mode]) / 2**20),
                   "worker_peak_mib": round(max(r["worker_rss"] for r in runs[mode]) / 2**20),
                   "worker_peak_threads": max(r["worker_threads"] for r in runs[mode]),
                   "cpu_seconds": {name: round(statistics.median(r["cpu"][name] for r in runs[mode]), 1)
                                   for name in runs[mode][0]["cpu"]},
                   "seconds": [round(r["seconds"], 3) for r in runs[mode]]}
            for mode in runs} | {"units": units, "prepare_seconds": work["prepare_seconds"] if work else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="trivial,12,100", help="comma-separated: trivial and region counts")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--tasks", type=int, default=500, help="no-op tasks of the trivial size (default 500)")
    parser.add_argument("--tags", choices=("none", "shared", "unique"), default="none",
                        help="tags on the trivial task runs: none, one shared tag, or a tag per task run "
                             "(like the forecast's region:<name>)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode and size; the median counts")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each)")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="skip the untimed flow run before a region size (it fills the flow's snapshot "
                             "cache and warms the flow process's imports; skip it only with --work-dir of an "
                             "earlier run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "orchestration.json")
    parser.add_argument("--work-dir", type=Path, help="data and scratch (default: a temporary folder)")
    args = parser.parse_args()
    args.modes = tuple(mode.strip() for mode in args.modes.split(","))
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")

    folder = args.work_dir or Path(tempfile.mkdtemp(prefix="ordercast-bench-"))
    os.environ["ORDERCAST_HOME"] = str(folder / "home")
    from deployments import server

    own_server = "PREFECT_API_URL" not in os.environ
    server.ensure_api()
    try:
        return run(args, folder)
    finally:
        if own_server:
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)  # the flows' last log lines, before the server goes
            server.stop(folder / "home")


def run(args: argparse.Namespace, folder: Path) -> int:
    """Measure every size on one cluster; print and write the results."""
    from distributed import Client, LocalCluster

    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()},
               "workers": args.workers, "threads_per_worker": 1, "model_threads": 1, "sizes": {}}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        for size in args.sizes.split(","):
            print(f"{size}:", flush=True)
            results["sizes"][size] = measure(size.strip(), args, folder, cluster, client)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nResults: {args.out}")
    return 0


def print_table(results: dict) -> None:
    print(f"\n{'size':>8} {'mode':>8} {'median s':>9} {'ms/unit':>8} {'x dask':>7} {'flow MiB':>9} "
          f"{'worker MiB':>11} {'threads':>8}  CPU s flow/workers/server")
    for size, modes in results["sizes"].items():
        for mode, row in modes.items():
            if mode in ("units", "prepare_seconds"):
                continue
            ratio = f"{row['ratio_to_dask']:.2f}" if row["ratio_to_dask"] is not None else "-"
            print(f"{size:>8} {mode:>8} {row['median_seconds']:9.2f} {row['per_unit_ms']:8.1f} {ratio:>7} "
                  f"{row['flow_peak_mib']:9d} {row['worker_peak_mib']:11d} {row['worker_peak_threads']:8d}  "
                  + "/".join(f"{seconds:.1f}" for seconds in row["cpu_seconds"].values()))


if __name__ == "__main__":
    sys.exit(main())
