"""Accuracy benchmark: ordercast's backtest on two differently shaped synthetic sets, side by
side with open-source peers scored on the same held-out windows.

    python bench/accuracy.py                   # both sets, full size (about 10 minutes on 2 cores)
    python bench/accuracy.py --skip-peers      # ordercast only

Sets: `city` (the demo: 12 regions, 2 years) and `suburb` (8 regions, 2 years). Each runs
`ordercast backtest` with its defaults (52 weekly cutoffs, the last 12 held out), timed, then
`bench/accuracy_peers.py` on the same windows. Results go to `--out` as JSON and a printed table.
Peers need the optional extra: `pip install -e '.[bench]'`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SETS = {"city": ["--regions", "12"], "suburb": ["--regions", "8", "--profile", "suburb"]}
TABLES = ("orders", "weather", "events", "promotions", "regions")


def run_set(name: str, out: Path, skip_peers: bool) -> dict:
    """Data, backtest and peers for one set; returns its results."""
    data, backtest = out / name / "data", out / name / "backtest"
    env = {**os.environ, "ORDERCAST_HOME": str(out / "home")}
    if not (data / "orders.csv").exists():
        subprocess.run([BIN / "ordercast", "demo-data", "--out", data, *SETS[name]], check=True, env=env)
    tables = [arg for table in TABLES for arg in (f"--{table}", str(data / f"{table}.csv"))]
    started = time.perf_counter()
    subprocess.run([BIN / "ordercast", "backtest", *tables, "--out", backtest], check=True, env=env)
    seconds = time.perf_counter() - started
    summary = json.loads((backtest / "run.json").read_text())["summary"]
    result = {"backtest_seconds": round(seconds, 1), "ordercast": {
        "ordercast selection (per region)": summary["selection_wape"],
        **{f"ordercast {model}": value for model, value in summary["model_wape"].items()},
    }, "coverage": summary["coverage"], "held_out_cutoffs": len(summary["held_out_cutoffs"])}
    if not skip_peers:
        peers_json = out / name / "peers.json"
        subprocess.run([sys.executable, ROOT / "bench" / "accuracy_peers.py", "--data", data, "--backtest", backtest,
                        "--out", peers_json], check=True, env=env)
        result["peers"] = json.loads(peers_json.read_text())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    parser.add_argument("--sets", default="city,suburb", help="comma-separated: city, suburb")
    parser.add_argument("--skip-peers", action="store_true", help="run ordercast only")
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    results = {name: run_set(name, args.out, args.skip_peers) for name in args.sets.split(",")}
    (args.out / "accuracy.json").write_text(json.dumps(results, indent=2))
    print_table(results)
    return 0


def print_table(results: dict) -> None:
    names = list(results)
    rows: dict[str, dict[str, float]] = {}
    for set_name, result in results.items():
        for model, value in result["ordercast"].items():
            rows.setdefault(model, {})[set_name] = value
        for model, value in peer_wapes(result.get("peers")).items():
            rows.setdefault(model, {})[set_name] = value
    print("\nHeld-out WAPE (last 12 weekly cutoffs, 21-day horizon, 30-minute slots, all regions pooled)")
    print(f"{'model':<40}" + "".join(f"{n:>10}" for n in names))
    for model, values in sorted(rows.items(), key=lambda item: item[1].get(names[0], 9)):
        print(f"{model:<40}" + "".join(f"{values[n]:>10.3f}" if n in values else f"{'-':>10}" for n in names))
    for set_name, result in results.items():
        print(f"{set_name}: backtest {result['backtest_seconds']} s; P10-P90 coverage of the selection "
              f"{result['coverage']:.3f} on {result['held_out_cutoffs']} held-out cutoffs")


def peer_wapes(peers: dict | None) -> dict[str, float]:
    """Peer name -> pooled WAPE, from the peers harness's JSON."""
    if not peers:
        return {}
    return {name: entry["wape"] for name, entry in peers.get("models", {}).items() if not name.startswith("ordercast")}


if __name__ == "__main__":
    sys.exit(main())
