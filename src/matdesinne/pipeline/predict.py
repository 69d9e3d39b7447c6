"""Forward prediction of design rows a user brings, keeping every column they gave."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matdesinne.data.datasets import check_finite
from matdesinne.errors import UserInputError
from matdesinne.models.surrogate import EnsembleSurrogate


def predict_frame(surrogate: EnsembleSurrogate, frame: pd.DataFrame,
                  source: str = "rows") -> tuple[pd.DataFrame, np.ndarray]:
    """``frame`` with ``<property>_pred`` and ``<property>_std`` appended (property units),
    for every property the surrogate predicts.

    ``frame`` must hold the design-space columns (any order, other columns kept as they
    are). Returns the new frame and a mask, shape (n,), of rows outside the design space,
    where the prediction extrapolates. A frame that already has a prediction column is
    refused rather than overwritten.

    Example::

        frame, outside = predict_frame(EnsembleSurrogate.load(default_models_dir()), pd.read_csv("rows.csv"))
    """
    space = surrogate.space_
    names = [p.name for p in surrogate.properties_]  # a multi-property surrogate predicts each
    added = [f"{name}_{kind}" for name in names for kind in ("pred", "std")]
    clash = [c for c in added if c in frame.columns]
    if clash:
        raise UserInputError(f"{source}: already has column(s) {', '.join(clash)}, which predict writes; "
                             "rename or drop them")
    x = check_finite(frame, space.names, source)
    out = frame.copy()
    for name, (pred, std) in surrogate.predict_all(x).items():
        out[f"{name}_pred"], out[f"{name}_std"] = pred, std
    return out, ~space.contains(x)
