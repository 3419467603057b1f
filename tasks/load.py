"""Feature loading: validate the inputs and partition them per region, cached per data snapshot."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import CachePolicy

from forecasting.contract import InputPaths
from forecasting.errors import ConfigError
from forecasting.pipeline import (
    RunOptions,
    check_stored_models,
    partitions_present,
    prepare_partitions,
    prepared_partitions,
    snapshot_of,
)
from forecasting.snapshot import cache_root
from tasks import run_logger, shared_storage, transient_retries


class SnapshotCache(CachePolicy):
    """Cache key: the task's `snapshot` argument, the hash of the inputs' contents, slot,
    requested as_of, missing-slot rule and code version (`forecasting.snapshot.snapshot_key`)."""

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs) -> str:
        return inputs["snapshot"]


@task(name="load-inputs", task_run_name="load-inputs", persist_result=True, result_serializer="json",
      **transient_retries())
def load_inputs(paths: InputPaths, options: RunOptions, snapshot: str, cache_dir: str) -> dict[str, Any]:
    """Validate every input table and write one partition per region into `cache_dir`; returns the manifest."""
    logger = run_logger()
    manifest = prepared_partitions(Path(cache_dir))
    if manifest:
        logger.info("Inputs were validated and partitioned before the run started; reusing them")
    else:
        manifest = prepare_partitions(paths, options, Path(cache_dir))
    for note in manifest["warnings"]:
        logger.warning(note)
    for region, error in manifest["invalid_regions"].items():
        logger.error("Region %s skipped, its inputs are invalid: %s", region, error)
    logger.info("Partitioned %d regions into %s, as_of %s", len(manifest["regions"]), cache_dir, manifest["as_of"])
    return manifest


def cached_load_inputs(refresh: bool = False):
    """`load_inputs` with its snapshot cache stored under `<work root>/cache/records`, where the flow
    and every worker can read it; `refresh` recomputes and overwrites the entry. Workers get the
    storage as a block saved on the Prefect server (named after the folder)."""
    return load_inputs.with_options(cache_policy=SnapshotCache(), result_storage=shared_storage(cache_root() / "records"),
                                    refresh_cache=refresh)


def load_snapshot(paths: InputPaths, options: RunOptions) -> dict[str, Any]:
    """The manifest of the inputs' partitions: from the snapshot cache when these inputs were
    partitioned before (the task run shows Cached), else validated and partitioned now."""
    key, folder = snapshot_of(paths, options)
    manifest = cached_load_inputs()(paths, options, key, str(folder))
    if not partitions_present(manifest):
        run_logger().warning("The cached partitions of snapshot %s are gone; partitioning again", key)
        manifest = cached_load_inputs(refresh=True)(paths, options, key, str(folder))
    return manifest


@task(name="check-stored-models", task_run_name="check-stored-models")
def check_models(manifest: dict[str, Any], options: RunOptions, model_store: str) -> None:
    """`--no-train`: stop before predicting unless every region has a stored model that fits."""
    check_stored_models(manifest, options, Path(model_store))


def restrict_regions(manifest: dict[str, Any], subset: list[str] | None) -> dict[str, Any]:
    """The manifest limited to a deployment's region subset (a market); every named region must
    be in the inputs."""
    if not subset:
        return manifest
    known = {entry["region"] for entry in manifest["regions"]} | set(manifest["invalid_regions"])
    unknown = sorted(set(subset) - known)
    if unknown:
        raise ConfigError(f"region subset names regions not in the inputs: {', '.join(unknown)}")
    wanted = set(subset)
    return {**manifest, "regions": [entry for entry in manifest["regions"] if entry["region"] in wanted],
            "invalid_regions": {r: e for r, e in manifest["invalid_regions"].items() if r in wanted}}
