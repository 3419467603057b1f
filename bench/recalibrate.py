"""Replay the interval calibration of this checkout over a finished `bench/accuracy.py` run's
backtests, rolling origin, without running anything again.

    python bench/recalibrate.py OUT [--sets NAME,...] [--window wN] [--min-cutoffs 10] [--block 4]

The four scored windows of a run are few, and three sets are scored over year-end; this asks
the calibration the same question at every cutoff of a year. For each region of each set, the
model its last window's backtest chose (OUT/SET/wN/backtest) is taken at every cutoff t that
has at least `--min-cutoffs` earlier cutoffs whose whole horizon was observed by t. The
calibration code (`forecasting.backtest._calibration`, the production rule) is fitted on those
earlier cutoffs' residuals and predicts t's P10, P50 and P90. Printed per set: the mean over
cutoffs of the P10-P90 coverage (nominal 0.80), of its distance from 0.80, and of the pinball
loss (mean over q = 0.1, 0.5, 0.9, summed over slots, divided by the orders), as
`bench/accuracy.py` scores it. The stored point forecasts do not depend on the calibration
code, so running this at two commits on the same OUT compares two rules on the same forecasts.

It also asks how far four scored windows can tell: over every run of `--block` consecutive
cutoffs (the four weekly windows of `bench/accuracy.py`), the coverage of the run (mean over its
cutoffs and the regions), the share of runs inside 0.75-0.85 and the 10th-90th percentile range.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from forecasting.backtest import _calibration  # noqa: E402
from forecasting.intervals import horizon_bucket  # noqa: E402
from forecasting.metrics import coverage, pinball  # noqa: E402

LEVELS = (0.1, 0.5, 0.9)
TARGET_RANGE = (0.75, 0.85)


def replay(backtest: Path, horizon_days: int, min_cutoffs: int, zones: dict[str, str]) -> pd.DataFrame:
    """One row per (region, scored cutoff): coverage and pinball loss of the replayed intervals;
    `zones`: each region's time zone."""
    predictions = pd.read_parquet(backtest / "predictions.parquet")
    chosen = pd.read_parquet(backtest / "selection.parquet")[["region", "model"]]
    rows = []
    for region, model in chosen.itertuples(index=False):
        own = predictions.loc[(predictions["region"] == region) & (predictions["model"] == model)].copy()
        origin = own["origin"] if "origin" in own else own["cutoff"]  # no such column before 2433a93
        own["bucket"] = horizon_bucket(own["ts"], origin, horizon_days, zones[region])
        observed_by = own["cutoff"] + pd.Timedelta(days=horizon_days)
        for cutoff in sorted(own["cutoff"].unique()):
            earlier = own.loc[observed_by <= cutoff]
            if earlier["cutoff"].nunique() < min_cutoffs:
                continue
            scored = own.loc[own["cutoff"] == cutoff]
            actual = scored["actual"].to_numpy("float64")
            quantiles = _calibration(earlier).quantiles(scored["forecast"].to_numpy(), scored["bucket"].to_numpy(),
                                                        LEVELS)
            rows.append({"region": region, "cutoff": cutoff,
                         "coverage": coverage(actual, quantiles[:, 0], quantiles[:, 2]),
                         "pinball": pinball(actual, quantiles, LEVELS) * len(actual) / max(actual.sum(), 1e-9)})
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the --out folder of a bench/accuracy.py run")
    parser.add_argument("--sets", help="comma-separated set names (default: every set in OUT/accuracy.json)")
    parser.add_argument("--window", default="w4", help="whose backtest to replay (default w4, the longest)")
    parser.add_argument("--min-cutoffs", type=int, default=10,
                        help="earlier observed cutoffs a scored cutoff needs (default 10)")
    parser.add_argument("--block", type=int, default=4,
                        help="consecutive cutoffs per run, as the scored windows (default 4)")
    args = parser.parse_args()
    summary = json.loads((args.out / "accuracy.json").read_text())
    names = args.sets.split(",") if args.sets else list(summary["sets"])
    low, high = TARGET_RANGE
    print(f"{'set':<20} {'cutoffs':>7} {'coverage':>9} {'|cov-0.8|':>9} {'pinball':>8}   "
          f"{args.block} cutoffs in a row: in {low}-{high}, P10-P90 range")
    shares = []
    for name in names:
        regions = pd.read_csv(args.out / name / "data" / "regions.csv", dtype=str)
        scores = replay(args.out / name / args.window / "backtest", summary["horizon_days"], args.min_cutoffs,
                        dict(zip(regions["region"], regions["timezone"])))
        if scores.empty:
            print(f"{name:<20} {0:>7}  (no cutoff has {args.min_cutoffs} earlier observed ones)")
            continue
        runs = block_coverage(scores, args.block)
        inside = float(runs.between(low, high).mean()) if len(runs) else float("nan")
        shares.append(inside)
        spread = f"{runs.quantile(0.1):.3f}-{runs.quantile(0.9):.3f}" if len(runs) else "-"
        print(f"{name:<20} {scores['cutoff'].nunique():>7} {scores['coverage'].mean():>9.4f} "
              f"{(scores['coverage'] - 0.8).abs().mean():>9.4f} {scores['pinball'].mean():>8.4f}   "
              f"{inside:>5.0%} of {len(runs)}, {spread}")
    if shares:
        print(f"Chance that every set's {args.block}-cutoff coverage is in {low}-{high} at once, were the sets "
              f"independent: {float(np.prod(shares)):.4f}")
    return 0


def block_coverage(scores: pd.DataFrame, size: int) -> pd.Series:
    """The coverage of every run of `size` consecutive scored cutoffs: the mean over the run's
    cutoffs of the mean over regions (each region's horizon has as many slots)."""
    per_cutoff = scores.groupby("cutoff")["coverage"].mean().sort_index()
    return per_cutoff.rolling(size).mean().dropna()


if __name__ == "__main__":
    raise SystemExit(main())
