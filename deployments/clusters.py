"""Typed cluster configuration: one model per kind, read from YAML or deployment parameters.

    kind: local          # serial | local | ssh | yarn | address
    n_workers: 2

Kinds that can put workers on other machines (ssh, yarn, address) also name `api_url`, the
Prefect API the workers can reach, and `shared_dir`, a folder that the flow process and every
worker read and write: the run's input partitions, models and outputs live there.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecasting.errors import ConfigError

SERIAL_ENV = "ORDERCAST_SERIAL"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdaptConfig(_Config):
    minimum: int = Field(ge=0)
    maximum: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> AdaptConfig:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum}) must not exceed maximum ({self.maximum})")
        return self


class SerialCluster(_Config):
    """No Dask: one task at a time in the flow's process, for debugging with a plain debugger."""

    kind: Literal["serial"] = "serial"


class _Dask(_Config):
    # true: several task runs per Dask task (deployments/batching.py); false: prefect-dask's one each.
    batch_task_runs: bool = True


class LocalCluster(_Dask):
    """`distributed.LocalCluster` on this machine (default: one worker process per core)."""

    kind: Literal["local"] = "local"
    n_workers: int | None = Field(default=None, ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
    processes: bool = True
    memory_limit: str | None = None
    adapt: AdaptConfig | None = None

    @property
    def workers(self) -> int:
        return self.n_workers or os.cpu_count() or 1


class _Remote(_Dask):
    api_url: str
    shared_dir: str

    @field_validator("api_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or not value.rstrip("/").endswith("/api"):
            raise ValueError(f"must be the Prefect API URL the workers can reach, like http://10.0.0.5:4200/api, "
                             f"got '{value}'")
        return value.rstrip("/")

    @field_validator("shared_dir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if "://" not in value and not value.startswith("/"):
            raise ValueError(f"must be an absolute path (or fsspec URL) that every machine sees, got '{value}'")
        return value


class SSHConnect(_Config):
    """Options for `asyncssh.connect`; host keys are checked unless turned off explicitly."""

    username: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    client_keys: list[str] = Field(default_factory=list)
    known_hosts: str | None = None
    verify_host_keys: bool = True

    @model_validator(mode="after")
    def _explicit_trust(self) -> SSHConnect:
        if not self.verify_host_keys and self.known_hosts:
            raise ValueError("known_hosts is set but verify_host_keys is false; drop one of them")
        return self

    def asyncssh_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"port": self.port}
        if self.username:
            options["username"] = self.username
        if self.client_keys:
            options["client_keys"] = self.client_keys
        if not self.verify_host_keys:
            options["known_hosts"] = None  # asyncssh: None disables host key checks
        elif self.known_hosts:
            options["known_hosts"] = self.known_hosts
        return options


class SSHClusterConfig(_Remote):
    """`distributed.SSHCluster`: the first host runs the scheduler, every other entry a worker."""

    kind: Literal["ssh"] = "ssh"
    hosts: list[str] = Field(min_length=2)
    connect: SSHConnect = Field(default_factory=SSHConnect)
    worker_options: dict[str, Any] = Field(default_factory=lambda: {"nthreads": 1})
    scheduler_options: dict[str, Any] = Field(default_factory=dict)
    remote_python: str | None = None
    upload_files: list[str] = Field(default_factory=list)


class YarnResources(_Config):
    memory: str = "2 GiB"
    vcores: int = Field(default=1, ge=1)


class YarnClusterConfig(_Remote):
    """Scheduler and workers as skein services in one YARN application."""

    kind: Literal["yarn"] = "yarn"
    environment: str
    name: str = "ordercast"
    queue: str = "default"
    n_workers: int = Field(default=2, ge=1)
    worker: YarnResources = Field(default_factory=YarnResources)
    scheduler: YarnResources = Field(default_factory=YarnResources)
    worker_restarts: int = Field(default=3, ge=-1)
    env: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    skein_client: str = "skein:Client"  # import path; the tests use a fake that runs services locally


class AddressClusterConfig(_Remote):
    """An already running Dask scheduler."""

    kind: Literal["address"] = "address"
    address: str

    @field_validator("address")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"must be a scheduler address like tcp://10.0.0.5:8786, got '{value}'")
        return value


ClusterConfig = Annotated[
    SerialCluster | LocalCluster | SSHClusterConfig | YarnClusterConfig | AddressClusterConfig,
    Field(discriminator="kind"),
]
KINDS = ("serial", "local", "ssh", "yarn", "address")


class _Document(BaseModel):
    cluster: ClusterConfig


def parse_cluster(data: Any, source: str = "cluster") -> SerialCluster | LocalCluster | SSHClusterConfig | \
        YarnClusterConfig | AddressClusterConfig:
    """Validate a mapping; errors name the source, the key and the value."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError(f"{source}: expected a mapping with 'kind' (one of {', '.join(KINDS)}), got {data!r}")
    if data["kind"] not in KINDS:
        raise ConfigError(f"{source}: kind: '{data['kind']}' is not one of {', '.join(KINDS)}")
    try:
        return _Document(cluster=data).cluster
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"][2:]) or "kind"
        message = first["msg"].removeprefix("Value error, ")
        shown = "" if first["type"] == "missing" else f" (got {first['input']!r})"
        raise ConfigError(f"{source}: {key}: {message}{shown}") from None


def load_cluster(spec: str | None) -> SerialCluster | LocalCluster | SSHClusterConfig | YarnClusterConfig | \
        AddressClusterConfig:
    """`--cluster FILE|KIND`: a YAML file, or the name of a kind that needs no settings."""
    if spec is None or spec == "local":
        return LocalCluster()
    if spec == "serial":
        return SerialCluster()
    if spec in KINDS:
        raise ConfigError(f"--cluster {spec}: this kind needs a configuration file (see deployments/clusters/"
                          f"{spec}.yaml for an example)")
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--cluster: '{spec}' is neither a file nor one of {', '.join(KINDS)}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path.name}: not valid YAML: {' '.join(str(error).split())}") from None
    return parse_cluster(data, path.name)


def serial_forced() -> bool:
    return os.environ.get(SERIAL_ENV, "").strip().lower() in ("1", "true", "yes")
