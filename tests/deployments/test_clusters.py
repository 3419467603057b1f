"""Cluster configuration: every kind parses, and bad values are named with their key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployments.batching import BatchingDaskTaskRunner
from deployments.clusters import (
    LocalCluster,
    SerialCluster,
    SSHClusterConfig,
    YarnClusterConfig,
    load_cluster,
    parse_cluster,
)
from deployments.runners import OrdercastDaskTaskRunner, SerialTaskRunner, build_task_runner
from forecasting.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "deployments" / "clusters"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_configuration_is_valid(example):
    config = load_cluster(str(EXAMPLES / example))
    assert config.kind == yaml.safe_load((EXAMPLES / example).read_text())["kind"]


def test_kind_names_and_defaults():
    assert isinstance(load_cluster("serial"), SerialCluster)
    local = load_cluster("local")
    assert isinstance(local, LocalCluster) and local.threads_per_worker == 1 and local.processes
    with pytest.raises(ConfigError, match="--cluster ssh: this kind needs a configuration file"):
        load_cluster("ssh")
    with pytest.raises(ConfigError, match="'nope.yaml' is neither a file nor one of serial, local"):
        load_cluster("nope.yaml")


@pytest.mark.parametrize("data, message", [
    ({"kind": "ssh", "hosts": [], "api_url": "http://h:4200/api", "shared_dir": "/s"},
     "cluster.yaml: hosts: List should have at least 2 items after validation, not 0 (got [])"),
    ({"kind": "local", "n_workers": 0}, "cluster.yaml: n_workers: Input should be greater than or equal to 1 (got 0)"),
    ({"kind": "local", "adapt": {"minimum": 3, "maximum": 2}},
     "cluster.yaml: adapt: minimum (3) must not exceed maximum (2)"),
    ({"kind": "local", "workers": 2}, "cluster.yaml: workers: Extra inputs are not permitted (got 2)"),
    ({"kind": "kubernetes"}, "cluster.yaml: kind: 'kubernetes' is not one of serial, local, ssh, yarn, address"),
    ({"kind": "address", "address": "tcp://h:8786", "shared_dir": "/s"}, "cluster.yaml: api_url: Field required"),
    ({"kind": "address", "address": "tcp://h:8786", "api_url": "h:4200", "shared_dir": "/s"},
     "cluster.yaml: api_url: must be the Prefect API URL the workers can reach"),
    ({"kind": "yarn", "environment": "env.tgz", "api_url": "http://h:4200/api", "shared_dir": "relative/dir"},
     "cluster.yaml: shared_dir: must be an absolute path"),
    ({"kind": "ssh", "hosts": ["a", "b"], "api_url": "http://h:4200/api", "shared_dir": "/s",
      "connect": {"verify_host_keys": False, "known_hosts": "/k"}},
     "cluster.yaml: connect: known_hosts is set but verify_host_keys is false"),
])
def test_errors_name_the_key_and_value(data, message):
    with pytest.raises(ConfigError) as caught:
        parse_cluster(data, "cluster.yaml")
    assert str(caught.value).startswith(message), str(caught.value)


def test_host_keys_are_verified_unless_turned_off_explicitly():
    base = {"kind": "ssh", "hosts": ["a", "b"], "api_url": "http://h:4200/api", "shared_dir": "/s"}
    assert "known_hosts" not in parse_cluster(base).connect.asyncssh_options()  # asyncssh's default checks
    trusting = parse_cluster({**base, "connect": {"verify_host_keys": False}})
    assert trusting.connect.asyncssh_options()["known_hosts"] is None


def test_factory_builds_each_kind(monkeypatch):
    monkeypatch.delenv("ORDERCAST_SERIAL", raising=False)
    assert isinstance(build_task_runner(SerialCluster()), SerialTaskRunner)
    local = build_task_runner(LocalCluster(n_workers=2, adapt={"minimum": 1, "maximum": 3}))
    assert isinstance(local, BatchingDaskTaskRunner) and local.cluster_class == "distributed.LocalCluster"
    assert type(build_task_runner(LocalCluster(batch_task_runs=False))) is OrdercastDaskTaskRunner
    assert local.cluster_kwargs["n_workers"] == 1 and local.adapt_kwargs == {"minimum": 1, "maximum": 3}
    ssh = build_task_runner(load_cluster(str(EXAMPLES / "ssh.yaml")))
    assert ssh.cluster_kwargs["worker_options"]["env"]["PREFECT_API_URL"] == "http://flow-host.internal:4200/api"
    assert ssh.cluster_kwargs["hosts"][0] == "sched.internal"
    assert isinstance(load_cluster(str(EXAMPLES / "yarn.yaml")), YarnClusterConfig)
    address = build_task_runner(load_cluster(str(EXAMPLES / "address.yaml")))
    assert address.address == "tcp://dask-scheduler.internal:8786"
    assert address.duplicate().worker_setup is address.worker_setup  # survives Prefect's per-run copy


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_ordercast_serial_forces_serial(monkeypatch, value):
    monkeypatch.setenv("ORDERCAST_SERIAL", value)
    runner = build_task_runner(LocalCluster())
    assert isinstance(runner, SerialTaskRunner) and "forced" in runner.describe()["kind"]
    assert isinstance(build_task_runner(SSHClusterConfig(hosts=["a", "b"], api_url="http://h:4200/api",
                                                          shared_dir="/s")), SerialTaskRunner)


def test_adaptive_local_cluster_scales_up_under_load(monkeypatch):
    import time

    monkeypatch.delenv("ORDERCAST_SERIAL", raising=False)
    runner = build_task_runner(LocalCluster(processes=False, adapt={"minimum": 0, "maximum": 2}))
    with runner:
        client = runner.client
        assert len(client.scheduler_info()["workers"]) == 0
        futures = client.map(time.sleep, [0.5] * 40, pure=False)
        deadline = time.monotonic() + 60
        while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(client.scheduler_info()["workers"]) == 2
        client.gather(futures)


def _openmp_thread_cap() -> tuple[str | None, int]:
    """In a worker: its OMP_NUM_THREADS and the thread cap of the OpenMP runtime XGBoost loaded."""
    import ctypes
    import os

    import xgboost  # noqa: F401  (loads libxgboost and its OpenMP runtime)

    maps = Path("/proc/self/maps").read_text().split()
    runtime = next(path for path in maps if "libgomp" in Path(path).name)
    return os.environ.get("OMP_NUM_THREADS"), ctypes.CDLL(runtime).omp_get_max_threads()


def test_worker_processes_let_xgboost_use_the_threads_it_is_given(monkeypatch):
    """Dask starts worker processes with OMP_NUM_THREADS=1, which would hold every XGBoost fit
    to one thread whatever its `nthread` (`--model-threads`, the pooled model's fit)."""
    import os

    monkeypatch.delenv("ORDERCAST_SERIAL", raising=False)
    with build_task_runner(LocalCluster(n_workers=1, processes=True)) as runner:
        variable, cap = runner.client.submit(_openmp_thread_cap, pure=False).result()
    cores = len(os.sched_getaffinity(0))
    assert variable == str(cores) and cap == cores
