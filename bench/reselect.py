"""Re-score the production workflow of a finished `bench/accuracy.py` run with today's selection
rule, without running anything again.

    python bench/reselect.py OUT [--sets NAME,...]

For every set and window W in OUT, the selection code of this checkout
(`forecasting.backtest._select`) is applied to each region's predictions in OUT/SET/wN/backtest
(the backtest the workflow ran on the orders before W), and the chosen candidate's forecast at W
is read from OUT/SET/candidates (every candidate at every window, refit at each). That is what
the workflow's forecast at W (`--as-of W`, or `--as-of per-region` for a daily set on several
clocks) predicts with that choice: the same model trained on the same orders. Prints the
workflow's WAPE per set next to the one OUT recorded.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from forecasting.backtest import BacktestOptions, _select, split_cutoffs  # noqa: E402
from forecasting.metrics import wape  # noqa: E402
from forecasting.models import FALLBACK_MODEL  # noqa: E402

WORKFLOW = "ordercast selection (workflow)"


def reselect(folder: Path, windows: list[pd.Timestamp], holdout: int) -> tuple[float, dict[str, int]]:
    """The workflow's pooled WAPE over the windows under today's rule, and how often each model was chosen."""
    candidates = pd.read_parquet(folder / "candidates" / "predictions.parquet")
    run_at = sorted(candidates["cutoff"].unique())  # the windows, or (1D, several clocks) a later midnight of each
    assert len(run_at) == len(windows), f"{folder}: the candidates backtest ran at {len(run_at)} cutoffs"
    chosen_rows, counts = [], {}
    for index, cutoff in enumerate(run_at, 1):
        backtest = pd.read_parquet(folder / f"w{index}" / "backtest" / "predictions.parquet")
        at_window = candidates.loc[candidates["cutoff"] == cutoff]
        for region, rows in backtest.groupby("region"):
            selection, held_out = split_cutoffs(sorted(rows["cutoff"].unique()), holdout)
            model = _select(rows, selection, held_out, region)["model"]
            counts[model] = counts.get(model, 0) + 1
            forecast = at_window.loc[(at_window["region"] == region) & (at_window["model"] == model)]
            if forecast.empty:  # too little history for it at the window: production falls back
                forecast = at_window.loc[(at_window["region"] == region) & (at_window["model"] == FALLBACK_MODEL)]
            chosen_rows.append(forecast)
    chosen = pd.concat(chosen_rows, ignore_index=True)
    return wape(chosen["actual"], chosen["forecast"]), counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the --out folder of a bench/accuracy.py run")
    parser.add_argument("--sets", help="comma-separated set names (default: every set in OUT/accuracy.json)")
    args = parser.parse_args()
    results = json.loads((args.out / "accuracy.json").read_text())["sets"]
    names = args.sets.split(",") if args.sets else list(results)
    holdout = BacktestOptions().holdout_cutoffs
    print(f"{'set':<20} {'recorded':>9} {'today':>9}  chosen (region-windows)")
    for name in names:
        windows = [pd.Timestamp(w) for w in results[name]["windows"]]
        value, counts = reselect(args.out / name, windows, holdout)
        recorded = results[name]["scores"].get(WORKFLOW, {}).get("wape")
        shown = f"{recorded:.4f}" if recorded is not None else "-"
        print(f"{name:<20} {shown:>9} {value:>9.4f}  {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
