"""`ordercast prune`: old files under the home, old vintages in the database and old flow runs on
the Prefect server go; what `--no-train`, a retry of a kept run and recent runs need stays."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.helpers import run_cli

DAY = 86400


def _make(path: Path, age_days: float, folder: bool = True, size: int = 1000) -> Path:
    """A folder holding a file (or a file) last modified `age_days` ago."""
    target = path / "data.bin" if folder else path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"x" * size)
    stamp = time.time() - age_days * DAY
    os.utime(path, (stamp, stamp))
    return path


def _home(root: Path) -> dict[str, list[Path]]:
    models = [_make(root / "models" / "north" / f"m{age:02d}", age) for age in (1, 40, 50, 60, 70)]
    models += [_make(root / "models" / "south" / "m90", 90)]  # its only model: --no-train needs it
    runs = [_make(root / "runs" / f"run-{age}", age) for age in (2, 45, 55, 65)]
    snapshots = [_make(root / "cache" / f"key{age}", age) for age in (3, 80, 85)]
    records = [_make(root / "cache" / "records" / f"key{age}", age, folder=False) for age in (3, 80, 85)]
    results = [_make(root / "results" / f"result{age}", age, folder=False) for age in (5, 31, 100)]
    drills = [_make(root / "drills" / f"run-{age}", age) for age in (1, 60)]
    return {"models": models, "runs": runs, "snapshots": snapshots, "records": records, "results": results,
            "drills": drills}


def _forecasts_db(path: Path) -> str:
    from forecasting.storage import write_forecasts_db

    now = pd.Timestamp.now(tz="UTC").floor("h")
    frames = []
    for region, ages in (("north", (1, 40, 60)), ("south", (50, 70))):  # south: newest vintage 50 days old
        for age in ages:
            as_of = now - pd.Timedelta(days=age)
            frames.append(pd.DataFrame({
                "region": region, "ts": [as_of, as_of + pd.Timedelta(minutes=30)], "local_start": "x",
                "as_of": as_of, "forecast": 1.0, "model": "m", "fallback": False, "run_id": f"r{age}",
                "created_at": now}))
    url = f"sqlite:///{path}"
    write_forecasts_db(pd.concat(frames, ignore_index=True), url)
    return url


def _old_cancelled_flow_run(days: int) -> str:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Scheduled

    @flow(name="prune-probe")
    def probe() -> None:
        return None

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(probe, state=Scheduled(scheduled_time=pd.Timestamp.now(tz="UTC")
                                                            - pd.Timedelta(days=days)))
        client.set_flow_run_state(run.id, Cancelled(), force=True)
    return str(run.id)


def test_prune_keeps_what_is_needed_and_dry_run_removes_nothing(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    home = tmp_path / "home"
    made = _home(home)
    url = _forecasts_db(tmp_path / "forecasts.sqlite")
    old_run = _old_cancelled_flow_run(days=45)
    env = {"ORDERCAST_HOME": str(home)}
    everything = sorted(str(p) for p in home.rglob("*"))

    dry = run_cli("prune", "--keep-runs", "2", "--vintages", "--db", url, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert sorted(str(p) for p in home.rglob("*")) == everything  # nothing removed
    lines = dry.stdout.splitlines()
    assert lines[0].startswith(f"Would remove under {home}")
    assert any(line.split()[:2] == ["models", "3"] for line in lines), dry.stdout  # north's 3 oldest beyond 2 kept
    assert any(line.split()[:3] == ["run", "folders", "2"] for line in lines), dry.stdout
    assert f"Would remove from {url}: 6 forecasts rows" in dry.stdout  # 3 vintages of 2 slots
    assert "Would remove on the Prefect server: 1 flow runs" in dry.stdout

    result = run_cli("prune", "--keep-runs", "2", "--vintages", "--db", url, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    left = {name: [path.exists() for path in paths] for name, paths in made.items()}
    assert left["models"] == [True, True, False, False, False, True]  # the newest 2 per region, and south's only
    assert left["runs"] == [True, True, False, False]
    assert left["snapshots"] == [True, True, False] and left["records"] == [True, True, False]
    assert left["results"] == [True, False, False] and left["drills"] == [True, False]
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        kept = pd.read_sql_table("forecasts", connection).groupby("region")["run_id"].agg(lambda s: sorted(set(s)))
    engine.dispose()
    assert kept.to_dict() == {"north": ["r1"], "south": ["r50"]}  # each region's newest stays, however old
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_flow_run(old_run)


def test_prune_refuses_bad_options(tmp_path):
    env = {"ORDERCAST_HOME": str(tmp_path / "home"), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    assert run_cli("prune", "--older-than", "soon", env=env).stderr.strip() == (
        "error: --older-than: 'soon' is not a duration such as 30D or 12h")
    assert run_cli("prune", "--vintages", env=env).stderr.strip().startswith("error: --vintages needs --db URL")
    assert run_cli("prune", "--keep-runs", "0", env=env).returncode == 1
