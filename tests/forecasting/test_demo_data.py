"""The demo data is seeded, in the contract, and realistic in the ways the issue asks."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.contract import InputPaths, load_dataset
from forecasting.demo_data import generate, write_csv
from forecasting.slots import Slot


def test_seeded_and_in_the_contract(tmp_path):
    first, again = generate(regions=4, years=0.3, seed=7), generate(regions=4, years=0.3, seed=7)
    pd.testing.assert_frame_equal(first["orders"], again["orders"])
    assert not first["orders"]["orders"].equals(generate(regions=4, years=0.3, seed=8)["orders"]["orders"])
    paths = write_csv(first, tmp_path)
    data = load_dataset(InputPaths(**{name: str(path) for name, path in paths.items()}), Slot.parse("30min"))
    assert len(data.regions) == 4 and data.weather is not None and data.events is not None


def test_realistic_shape(demo_dir):
    regions = pd.read_csv(demo_dir / "regions.csv")
    assert regions["timezone"].nunique() >= 2 and regions["country"].nunique() >= 2
    orders = pd.read_csv(demo_dir / "orders.csv")
    orders["ts"] = pd.to_datetime(orders["ts"], utc=True, format="ISO8601")
    days = orders.groupby("region")["ts"].agg(lambda ts: (ts.max() - ts.min()).days)
    assert (days < 200).sum() == 2 and (days > 700).sum() == 10  # two short histories
    means = orders.groupby("region")["orders"].mean()
    assert means.min() < 1 and (orders.loc[orders["region"] == means.idxmin(), "orders"] == 0).mean() > 0.5

    berlin = orders.loc[orders["region"] == "berlin-mitte"].copy()
    local = berlin["ts"].dt.tz_convert("Europe/Berlin")
    by_hour = berlin.groupby(local.dt.hour)["orders"].mean()
    assert by_hour[4:7].max() < 0.1 * by_hour.max()  # almost nothing between 4 and 7 a.m.
    assert by_hour[12] > 2 * by_hour[16] and by_hour[19] > 3 * by_hour[16]  # lunch and dinner peaks
    # over-dispersed: week-on-week differences vary far more than Poisson noise would
    peak = berlin.loc[local.dt.hour == 19, "orders"]
    assert peak.var() > 2 * peak.mean()


def test_exogenous_tables_reach_past_the_last_order(demo_dir):
    last_order = pd.to_datetime(pd.read_csv(demo_dir / "orders.csv")["ts"], utc=True, format="ISO8601").max()
    weather = pd.to_datetime(pd.read_csv(demo_dir / "weather.csv")["ts"], utc=True, format="ISO8601")
    assert weather.max() > last_order + pd.Timedelta(days=21)
    promotions = pd.read_csv(demo_dir / "promotions.csv")
    assert np.isfinite(promotions["intensity"]).all() and promotions["intensity"].between(0, 1).all()
