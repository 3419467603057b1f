"""The snapshot key: same inputs and options, same key; any change, another key."""
from __future__ import annotations

import shutil

from forecasting import snapshot
from forecasting.contract import InputPaths
from forecasting.snapshot import snapshot_dir, snapshot_key


def test_the_key_follows_contents_options_and_code(small_demo_dir, tmp_path, monkeypatch):
    shutil.copy(small_demo_dir / "orders.csv", tmp_path / "orders.csv")
    paths = InputPaths(str(tmp_path / "orders.csv"), regions=str(small_demo_dir / "regions.csv"))
    key = snapshot_key(paths, "30min", None, False)
    assert snapshot_key(paths, "30min", None, False) == key
    (tmp_path / "orders.csv").touch()  # a new modification time alone is the same snapshot
    assert snapshot_key(paths, "30min", None, False) == key
    others = {snapshot_key(paths, "60min", None, False), snapshot_key(paths, "30min", "2026-10-12T00:00:00+00:00", False),
              snapshot_key(paths, "30min", None, True), snapshot_key(InputPaths(paths.orders), "30min", None, False)}
    with (tmp_path / "orders.csv").open("a") as handle:
        handle.write("berlin-mitte,2026-11-02T06:00:00+00:00,5\n")
    others.add(snapshot_key(paths, "30min", None, False))
    monkeypatch.setattr(snapshot, "code_version", lambda: "another version")
    (tmp_path / "orders.csv").write_bytes((small_demo_dir / "orders.csv").read_bytes())
    others.add(snapshot_key(paths, "30min", None, False))
    assert len(others) == 6 and key not in others
    assert snapshot_dir(key).parent.name == "cache"
