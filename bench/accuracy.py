"""Accuracy benchmark: ordercast's production workflow, each of its candidate models and open-source
peers, scored on the same windows of real public data sets and of the synthetic demo sets.

    python bench/accuracy.py                                # every set (real ones from bench/real_data.py)
    python bench/accuracy.py --sets city --quick --windows 2  # a smoke test: 3 regions, 1 year
    python bench/accuracy.py --sets NAME,... --skip-peers --out DIR
    python bench/accuracy.py --ordercast .venv/bin/ordercast ...   # score a plain install (pandas 3)
    python bench/accuracy.py --data shops:1h=/data/shops            # a real set kept back, in ordercast's tables

Windows: the last `--windows` weekly cutoffs whose whole `--horizon-days` horizon is observed in
every region (the last one is the earliest region's data end minus the horizon, on the slot grid;
a local midnight for `1D` sets). Scored, pooled over windows and regions:
- "ordercast selection": per window W, `ordercast backtest` with its defaults on the orders
  before W, then `ordercast forecast --as-of W` in the same $ORDERCAST_HOME (so it uses that
  backtest's per-region selection and calibrated intervals); for a `1D` set whose regions do not
  share a clock, `--as-of per-region` on the orders before W instead, as a user would run it
  (W, the first region's midnight, falls inside the others' last day);
- "ordercast default": the same forecast in a home that never saw a backtest;
- "ordercast <model>": one `ordercast backtest --cutoff-dates W1,...,Wn --retrain-every 1
  --models <every model>` on the full data (`pooled` only where the set has several regions),
  each candidate scored as a policy (`profile_ensemble` where the candidate had
  too little history, as in production). Its P10/P50/P90 at W are calibrated as production's
  would be had the backtest before W chosen it: on its residuals in that backtest
  (OUT/SET/wN/backtest). The candidates backtest's own intervals are not used: its cutoffs are
  the scored windows, so they were fitted on the very weeks they would be scored on;
- peers (bench/accuracy_peers.py), trained on the orders before each W.
WAPE = sum |forecast - orders| / sum orders; coverage of [P10, P90] (nominal 0.8); pinball =
mean over q = 0.1, 0.5, 0.9 of sum of pinball losses / sum orders. All commands run with
--missing-as-zero (a missing slot is zero orders; a no-op for complete data) and ORDERCAST_SERIAL=1.
Results: OUT/accuracy.json and the printed tables. Peers need: pip install -e '.[bench]' lightgbm.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # this checkout's code, installed or not
import accuracy_peers as peers  # noqa: E402

from forecasting.backtest import _calibration  # noqa: E402
from forecasting.errors import ConfigError  # noqa: E402
from forecasting.intervals import horizon_bucket  # noqa: E402
from forecasting.models import MODELS, SHORT_HISTORY_MODEL  # noqa: E402
from forecasting.slots import Slot  # noqa: E402

BIN = Path(sys.executable).parent
ORDERCAST = BIN / "ordercast"  # the command scored; --ordercast changes it
SYNTHETIC = {"city": ["--regions", "12"], "suburb": ["--regions", "8", "--profile", "suburb"]}
QUICK = ["--regions", "3", "--years", "1"]
TABLES = ("orders", "weather", "events", "promotions", "regions")
SELECTION, DEFAULT = "ordercast selection (workflow)", "ordercast default (no backtest)"


def real_datasets() -> dict[str, Any]:
    """bench/real_data.py's DATASETS, or none when it is missing or does not import."""
    try:
        import real_data
    except Exception as error:  # noqa: BLE001 - any failure means: no real sets
        print(f"no real data sets: bench/real_data.py does not import ({error})")
        return {}
    return dict(real_data.DATASETS)


@dataclass(frozen=True)
class GivenSet:
    """A real set already in ordercast's input tables (`--data NAME:SLOT=DIR`): one kept back."""

    folder: Path
    slot: str


def given_set(text: str) -> tuple[str, GivenSet]:
    """`NAME:SLOT=DIR` from the command line."""
    label, _, folder = text.partition("=")
    name, _, slot = label.partition(":")
    if not (name and slot and folder):
        raise argparse.ArgumentTypeError(f"'{text}': expected NAME:SLOT=DIR, e.g. shops:1h=/data/shops")
    try:
        Slot.parse(slot)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(f"'{text}': {error}") from None
    if not (Path(folder) / "orders.csv").is_file() and not (Path(folder) / "orders.parquet").is_file():
        raise argparse.ArgumentTypeError(f"'{text}': {folder} has no orders.csv or orders.parquet")
    return name, GivenSet(Path(folder).resolve(), slot)


def prepare(name: str, folder: Path, quick: bool, real: dict[str, Any]) -> tuple[Path, str]:
    """The set's data folder (written unless there) and its slot."""
    if isinstance(real.get(name), GivenSet):
        return real[name].folder, real[name].slot
    if name in real:
        data = folder / "data"
        if not (data / "orders.csv").exists():
            import real_data

            data = Path(real_data.write_dataset(name, data))
        return data, real[name].slot
    data = folder / "data"
    if not (data / "orders.csv").exists():
        ordercast(["demo-data", "--out", str(data), *SYNTHETIC[name], *(QUICK if quick else [])],
                  folder / "home-data", folder / "demo-data.log")
    return data, "30min"


def ordercast(args: list[str], home: Path, log: Path, check: bool = True) -> int:
    """Run one ordercast command; exit 2 (some regions fell back) is fine, anything else raises
    when `check`."""
    env = {**os.environ, "ORDERCAST_HOME": str(home), "ORDERCAST_SERIAL": "1"}
    with log.open("a") as out:
        code = subprocess.run([str(ORDERCAST), *args], env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if check and code not in (0, 2):
        tail = log.read_text().strip().splitlines()[-5:]
        raise RuntimeError(f"ordercast {args[0]} exited {code}; {log}:\n" + "\n".join(tail))
    return code


def table_args(data: Path) -> list[str]:
    """--orders ... --regions for the tables present in a data folder."""
    found = [(t, data / f"{t}.{ext}") for t in TABLES for ext in ("csv", "parquet") if (data / f"{t}.{ext}").exists()]
    return [arg for table, path in found for arg in (f"--{table}", str(path))]


def windows(panel: peers.Panel, count: int, horizon_days: int) -> list[pd.Timestamp]:
    """The last `count` weekly cutoffs (UTC) whose whole horizon is observed in every region."""
    observed = panel.frame.loc[panel.frame["y"].notna()].groupby("unique_id")["ds"].max()
    step = peers.STEP[panel.slot]
    if panel.slot != "1D":
        last = (observed.min() + step - pd.Timedelta(days=horizon_days)).tz_localize("UTC")
        return [last - pd.Timedelta(weeks=k) for k in range(count)][::-1]
    ends = {r: d + step - pd.Timedelta(days=horizon_days) for r, d in observed.items()}
    local = {r: e.tz_localize(panel.timezones[r], nonexistent="shift_forward") for r, e in ends.items()}
    region = min(local, key=lambda r: local[r])
    tz = panel.timezones[region]
    return [(ends[region] - pd.Timedelta(weeks=k)).tz_localize(tz, nonexistent="shift_forward").tz_convert("UTC")
            for k in range(count)][::-1]


def backtest_cutoffs(panel: peers.Panel, cutoffs: list[pd.Timestamp]) -> list[pd.Timestamp]:
    """The windows as `ordercast backtest --cutoff-dates`. A `1D` window starts each region's
    horizon at its first local midnight at or after W (the peers' split); the latest of those
    midnights, as a cutoff, gives each region that same origin (the start of its day that
    contains the cutoff), since they all fall within a day of W."""
    if panel.slot != "1D":
        return cutoffs
    daily = Slot.parse("1D")
    return [max(daily.first_start_at_or_after(c, tz) for tz in set(panel.timezones.values())) for c in cutoffs]


def truncate(data: Path, cutoff: pd.Timestamp, folder: Path) -> Path:
    """A copy of the data folder with the orders before the cutoff; tables of regions left without
    orders lose those regions' rows."""
    folder.mkdir(parents=True, exist_ok=True)
    orders = peers.read_table(data, "orders")
    kept = orders.loc[pd.to_datetime(orders["ts"], utc=True, format="ISO8601") < cutoff]
    kept.to_csv(folder / "orders.csv", index=False)
    present = set(kept["region"].astype(str))
    for table in TABLES[1:]:
        frame = peers.read_table(data, table)
        if frame is not None:
            if table != "regions":
                frame = frame.loc[frame["region"].astype(str).isin(present)]
            frame.to_csv(folder / f"{table}.csv", index=False)
    return folder


def policy(predictions: pd.DataFrame, model: str) -> pd.DataFrame:
    """A candidate's backtest forecasts, the short-history model's where it did not run (as in
    production)."""
    own = predictions.loc[predictions["model"] == model]
    naive = predictions.loc[predictions["model"] == SHORT_HISTORY_MODEL]
    ran = own.set_index(["region", "cutoff"]).index.unique()
    fill = naive.loc[~naive.set_index(["region", "cutoff"]).index.isin(ran)]
    return pd.concat([own, fill], ignore_index=True)


def candidate_scores(folder: Path, cutoffs: list[pd.Timestamp], run_at: list[pd.Timestamp], truth: pd.DataFrame,
                     horizon_days: int, zones: dict[str, str]) -> dict[str, Any]:
    """Each candidate of the candidates backtest (`folder`/candidates, run at the cutoffs `run_at`
    for the windows `cutoffs`), scored as a policy, with its intervals at window N calibrated on
    its residuals in window N's backtest (`folder`/wN); `zones`: each region's time zone."""
    predictions = pd.read_parquet(folder / "candidates" / "predictions.parquet")
    predictions["cutoff"] = pd.to_datetime(predictions["cutoff"], utc=True).map(dict(zip(run_at, cutoffs)))
    assert predictions["cutoff"].notna().all(), "the candidates backtest ran at a cutoff that is no window's"
    residuals = {}
    for index, cutoff in enumerate(cutoffs, 1):
        backtest = pd.read_parquet(folder / f"w{index}" / "backtest" / "predictions.parquet")
        residuals[cutoff] = backtest.assign(bucket=horizon_bucket(backtest["ts"], backtest["origin"], horizon_days,
                                                                  backtest["region"].map(zones)))
    scores = {}
    for model in sorted(predictions["model"].unique()):
        forecasts = with_window_intervals(policy(predictions, model), residuals, horizon_days, zones)
        scores[f"ordercast {model}"] = peers.score(forecasts, truth)
        ran = predictions.loc[predictions["model"] == model, ["region", "cutoff"]].drop_duplicates()
        scores[f"ordercast {model}"]["region_windows_run"] = len(ran)
    return scores


def with_window_intervals(forecasts: pd.DataFrame, residuals: dict[pd.Timestamp, pd.DataFrame],
                          horizon_days: int, zones: dict[str, str]) -> pd.DataFrame:
    """`forecasts` with P10/P50/P90 from the production rule (`_calibration`) fitted on the same
    model's predictions in the region's backtest before each window (`residuals`, by window, with
    their horizon `bucket`); a model that did not run there takes the short-history model's, as
    production would."""
    parts = []
    for (cutoff, region, model), rows in forecasts.groupby(["cutoff", "region", "model"]):
        backtest = residuals[cutoff]
        own = backtest.loc[backtest["region"] == region]
        source = own.loc[own["model"] == model]
        if source.empty:
            source = own.loc[own["model"] == SHORT_HISTORY_MODEL]
        bands = _calibration(source).quantiles(rows["forecast"].to_numpy(),
                                               horizon_bucket(rows["ts"], rows["origin"], horizon_days, zones[region]),
                                               peers.QUANTILES)
        parts.append(rows.assign(**{f"p{round(q * 100)}": bands[:, i] for i, q in enumerate(peers.QUANTILES)}))
    return pd.concat(parts, ignore_index=True)


def run_set(name: str, out: Path, args: argparse.Namespace, real: dict[str, Any]) -> dict[str, Any]:
    """Every ordercast step and the peers on one set; returns its scores, timings and notes."""
    folder = out / (f"{name}-quick" if args.quick and name in SYNTHETIC else name)
    folder.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def step(label: str, started: float) -> None:
        timings[label] = round(time.perf_counter() - started, 1)
        print(f"[{name}] {label}: {timings[label]:.0f} s", flush=True)

    started = time.perf_counter()
    data, slot = prepare(name, folder, args.quick, real)
    panel = peers.load_panel(data, slot)
    cutoffs = windows(panel, args.windows, args.horizon_days)
    truth = peers.actuals(panel, cutoffs, args.horizon_days)
    step("data", started)
    result: dict[str, Any] = {"slot": slot, "regions": int(panel.frame["unique_id"].nunique()),
                              "windows": [c.isoformat() for c in cutoffs], "scores": {}, "timings": timings,
                              "exit_codes": {}, "notes": []}
    scores, codes = result["scores"], result["exit_codes"]
    common = ["--horizon-days", str(args.horizon_days), "--slot", slot, "--missing-as-zero"]
    homes = {"selection": folder / "home-selection", "default": folder / "home-default",
             "candidates": folder / "home-candidates"}
    try:
        if args.only_peers:
            raise _Skipped
        started = time.perf_counter()
        backtest = folder / "candidates"
        run_at = backtest_cutoffs(panel, cutoffs)
        codes["candidates"] = ordercast(["backtest", *table_args(data), *common, "--cutoff-dates",
                                         ",".join(c.isoformat() for c in run_at), "--retrain-every", "1",
                                         "--models", ",".join(MODELS), "--out", str(backtest)],
                                        homes["candidates"], folder / "candidates.log")
        step("candidates backtest", started)
        workflow: dict[str, list[pd.DataFrame]] = {SELECTION: [], DEFAULT: []}
        several_clocks = panel.slot == "1D" and len(set(panel.timezones.values())) > 1
        for index, cutoff in enumerate(cutoffs, 1):
            window = folder / f"w{index}"
            started = time.perf_counter()
            truncated = truncate(data, cutoff, window / "data")
            codes[f"w{index} backtest"] = ordercast(["backtest", *table_args(truncated), *common, "--out",
                                                     str(window / "backtest")], homes["selection"],
                                                    window / "backtest.log")
            step(f"w{index} backtest", started)
            as_of = [*table_args(truncated), "--as-of", "per-region"] if several_clocks else \
                [*table_args(data), "--as-of", cutoff.isoformat()]
            runs = ((SELECTION, homes["selection"], "forecast"), (DEFAULT, homes["default"], "default"))
            for label, home, sub in runs:
                started = time.perf_counter()
                codes[f"w{index} {sub}"] = ordercast(
                    ["forecast", *as_of, *common, "--quantiles", "0.1,0.5,0.9", "--out", str(window / sub)], home,
                    window / f"{sub}.log")
                frame = pd.read_parquet(window / sub / "forecasts.parquet").assign(cutoff=cutoff)
                workflow[label].append(frame)
                models = frame.drop_duplicates("region")["model"].value_counts().to_dict()
                result["notes"].append(f"w{index} {sub}: models {models}, fallback regions "
                                       f"{int(frame.drop_duplicates('region')['fallback'].sum())}")
                step(f"w{index} {sub}", started)
        for label, frames in workflow.items():
            scores[label] = peers.score(pd.concat(frames, ignore_index=True), truth)
        scores.update(candidate_scores(folder, cutoffs, run_at, truth, args.horizon_days, panel.timezones))
    except _Skipped:
        pass
    except RuntimeError as error:
        result["error"] = str(error)
        print(f"[{name}] FAILED: {error}", flush=True)
    finally:
        for home in homes.values():
            if home.exists():
                ordercast(["server", "stop"], home, folder / "server-stop.log", check=False)
    if not args.skip_peers:
        started = time.perf_counter()
        scores.update(peer_scores(folder / "peers.json", panel, cutoffs, truth, args.horizon_days, name))
        step("peers", started)
    return result


class _Skipped(Exception):
    """--only-peers: the ordercast steps are not run."""


def peer_scores(cache: Path, panel: peers.Panel, cutoffs: list[pd.Timestamp], truth: pd.DataFrame,
                horizon_days: int, name: str) -> dict[str, Any]:
    """The peers' scores on these windows, from `cache` when it holds the same windows (peers do
    not depend on ordercast's code; delete the file to recompute)."""
    key = {"windows": [c.isoformat() for c in cutoffs], "horizon_days": horizon_days}
    if cache.exists():
        cached = json.loads(cache.read_text())
        if {k: cached.get(k) for k in key} == key:
            print(f"[{name}] peers: from {cache}", flush=True)
            return cached["scores"]
    forecasts = peers.run_peers(panel, cutoffs, horizon_days, log=lambda line: print(f"[{name}]{line}", flush=True))
    scores = {label: peers.score(frame, truth) for label, frame in forecasts.items()}
    cache.write_text(json.dumps({**key, "scores": scores}, indent=2))
    return scores


def print_tables(results: dict[str, Any], real: dict[str, Any], horizon_days: int) -> None:
    """WAPE per set (real sets with their mean, then synthetic), intervals, best peer, timings."""
    groups = [("Real data sets", [n for n in results if n in real]),
              ("Synthetic demo sets", [n for n in results if n not in real])]
    for title, names in groups:
        if not names:
            continue
        rows: list[str] = []
        for name in names:
            rows += [r for r in results[name]["scores"] if r not in rows]
        with_mean = title.startswith("Real") and len(names) > 1
        print(f"\n{title}: WAPE, last {len(results[names[0]]['windows'])} weekly cutoffs, {horizon_days}-day "
              "horizon, all regions pooled")
        header = f"{'':<40}" + "".join(f"{n[:14]:>15}" for n in names) + (f"{'mean':>10}" if with_mean else "")
        print(header)
        print(f"{'(slot, regions)':<40}" + "".join(f"{results[n]['slot'] + ', ' + str(results[n]['regions']):>15}"
                                                  for n in names))

        def line(label: str, metric: str) -> None:
            values = [results[n]["scores"].get(label, {}).get(metric) for n in names]
            cells = "".join(f"{v:>15.3f}" if v is not None else f"{'-':>15}" for v in values)
            known = [v for v in values if v is not None]
            mean = f"{sum(known) / len(known):>10.3f}" if with_mean and len(known) == len(values) else ""
            print(f"{label[:40]:<40}{cells}{mean}")

        order = (SELECTION, DEFAULT)
        for row in sorted(rows, key=lambda r: (not r.startswith("ordercast"), order.index(r) if r in order else 2, r)):
            line(row, "wape")
        best = [min(((r, s["wape"]) for r, s in results[n]["scores"].items() if not r.startswith("ordercast")),
                    key=lambda item: item[1], default=("-", float("nan"))) for n in names]
        print(f"{'best peer':<40}" + "".join(f"{b[0].split(' ', 1)[-1][:14]:>15}" for b in best))
        for metric in ("coverage", "pinball"):
            print("\ncoverage of [P10, P90] (nominal 0.8)" if metric == "coverage" else
                  "\npinball loss, mean over q = 0.1, 0.5, 0.9, / orders")
            for row in rows:
                if any(metric in results[n]["scores"].get(row, {}) for n in names):
                    line(row, metric)
    print("\nseconds per step")
    for name, result in results.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.0f}" for k, v in result["timings"].items())
              + (f"  ERROR: {result['error'].splitlines()[0]}" if "error" in result else ""))


def main() -> int:
    global ORDERCAST
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", help="comma-separated set names (default: every real set, then city, suburb)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    parser.add_argument("--skip-peers", action="store_true", help="run ordercast only")
    parser.add_argument("--only-peers", action="store_true",
                        help="run the peers only (their scores are cached in OUT/SET/peers.json)")
    parser.add_argument("--data", type=given_set, action="append", default=[], metavar="NAME:SLOT=DIR",
                        help="also score a real set kept back, already in ordercast's tables (DIR/orders.csv, "
                             "regions.csv, any of weather/events/promotions); its slot such as 30min, 1h or 1D. "
                             "Repeatable; without --sets, only these sets run")
    parser.add_argument("--windows", type=int, default=4, help="weekly cutoffs scored (default 4)")
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument("--quick", action="store_true", help="synthetic sets with 3 regions and 1 year")
    parser.add_argument("--ordercast", type=Path, default=ORDERCAST,
                        help="the ordercast command to score (default: the one beside this Python). The bench "
                             "extra moves pandas to 2.3; give .venv/bin/ordercast to score a plain install's")
    args = parser.parse_args()
    if not args.ordercast.is_file():
        parser.error(f"--ordercast: {args.ordercast} is not a file")
    ORDERCAST = args.ordercast
    pandas_version = subprocess.run([str(ORDERCAST.parent / "python"), "-c",
                                     "import pandas; print(pandas.__version__)"],
                                    capture_output=True, text=True).stdout.strip() or "unknown"
    peers.quiet()
    given = dict(args.data)
    real = {**real_datasets(), **given}
    names = args.sets.split(",") if args.sets else ([*given] if given else [*real, *SYNTHETIC])
    unknown = [n for n in names if n not in real and n not in SYNTHETIC]
    if unknown:
        parser.error(f"unknown sets {unknown}; known: {', '.join([*real, *SYNTHETIC])}")
    source = Path(importlib.util.find_spec("forecasting").origin).parent.parent
    commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    print(f"command: {' '.join(sys.argv)}\nordercast from {source} at {commit}, run as {ORDERCAST} (pandas "
          f"{pandas_version}); machine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in names:
        results[name] = run_set(name, args.out, args, real)
        (args.out / "accuracy.json").write_text(json.dumps(
            {"commit": commit, "ordercast": str(ORDERCAST), "pandas": pandas_version,
             "horizon_days": args.horizon_days, "quick": args.quick, "sets": results},
            indent=2, default=str))
    print_tables(results, real, args.horizon_days)
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
