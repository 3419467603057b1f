"""One region's share of a model trained on every region of a run.

The pooled booster is `xgboost` fitted on the training rows of all regions at once, with the
region as a feature (`region_code`). Its features are already scale-free (lags divided by the
region's own level, which is also the Poisson offset), so one booster serves regions of any
size, and a young region borrows the slot-of-week and calendar effects that the others learned.

It is trained once per run (`forecasting.pooled`) and stored once, under
`models/_pooled/`; each region that uses it stores a small folder that names that shared folder
(relative to the model store, so the store can move) and its own region code, so a `--no-train`
forecast or a retry of one region reads the same booster. Fitted on one region's rows alone (as
for held-out intervals), it is that region's own booster with a constant code.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecasting.models.base import ForecastModel
from forecasting.models.xgboost import XGBoostModel

REGION_CODE = "region_code"
FILE = "pooled.json"
OWN_BOOSTER = "booster"


class PooledModel(ForecastModel):
    name = "pooled"

    def __init__(self, region_code: int = 0, source: str | None = None, n_threads: int = 1) -> None:
        self.region_code = region_code
        self.source = source  # the shared pooled model's folder; None when fitted on this region alone
        self.n_threads = n_threads

    def get_params(self) -> dict[str, Any]:
        return {"region_code": self.region_code, "source": self.source, "n_threads": self.n_threads}

    @classmethod
    def share_of(cls, source: Path, region_code: int, n_threads: int = 1) -> PooledModel:
        """A region's view of the stored pooled booster in `source`: fitted already."""
        model = cls(region_code, str(source), n_threads)
        model.booster_ = _shared_booster(str(source), n_threads)
        return model

    def fit(self, features: pd.DataFrame, target: pd.Series) -> PooledModel:
        """Fit on one region's rows: its own booster, the region code held constant."""
        self.source = None
        self.booster_ = XGBoostModel(n_threads=self.n_threads).fit(features.assign(**{REGION_CODE: self.region_code}),
                                                                   target)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """The booster's features in its order; a feature this region lacks (another region's
        event kind or holiday) is missing, which the trees handle."""
        self._check_fitted("booster_")
        columns = [c for c in self.booster_.feature_names_ if c != REGION_CODE]
        view = features.reindex(columns=columns).assign(**{REGION_CODE: self.region_code})
        return self.booster_.predict(view[self.booster_.feature_names_])

    def save(self, folder: Path) -> None:
        """Into a folder of the model store (STORE/<region>/<model>/): a share names its source
        relative to STORE."""
        self._check_fitted("booster_")
        params = self.get_params()
        if self.source is None:
            (Path(folder) / OWN_BOOSTER).mkdir()
            self.booster_.save(Path(folder) / OWN_BOOSTER)
        else:
            params["source"] = os.path.relpath(self.source, _store_of(folder))
        (Path(folder) / FILE).write_text(json.dumps(params))

    @classmethod
    def load(cls, folder: Path) -> PooledModel:
        model = cls(**json.loads((Path(folder) / FILE).read_text()))
        if model.source is None:
            model.booster_ = XGBoostModel.load(Path(folder) / OWN_BOOSTER)
        else:
            model.source = str(_store_of(folder) / model.source)
            model.booster_ = _shared_booster(model.source, model.n_threads)
        return model


def shared_source(folder: Path) -> str | None:
    """The shared pooled folder a stored region model reads, if it is a pooled share."""
    try:
        source = json.loads((Path(folder) / FILE).read_text()).get("source")
    except (OSError, ValueError):
        return None
    return str(_store_of(folder) / source) if source else None


def _store_of(folder: Path) -> Path:
    """The model store a stored model's folder is in (STORE/<region>/<model folder>)."""
    return Path(folder).parent.parent


@lru_cache(maxsize=4)
def _shared_booster(source: str, n_threads: int) -> XGBoostModel:
    """The shared booster, read once per worker process for all its regions."""
    if not Path(source).is_dir():
        raise FileNotFoundError(f"the pooled model {source} that this region's model uses is gone "
                                "(pruned or moved); train again without --no-train")
    return XGBoostModel.load(Path(source))
