"""Metrics that score models and candidates against known property values."""

from __future__ import annotations

import numpy as np


def forward_metrics(surrogate, x: np.ndarray, y: np.ndarray) -> dict:
    """MAE overall, on rows at the property's floor, and on the rest; plus how well the
    floor (for a band gap: the metal/insulator step) is classified. All in property units."""
    pred, std = surrogate.predict(x)
    err = np.abs(pred - y)
    out = {"n": int(len(y)), "mae": float(err.mean()), "rmse": float(np.sqrt((err**2).mean())), "mean_std": float(std.mean())}
    lower = surrogate.space_.property.lower
    if lower is not None:
        at_floor = y <= lower
        # A prediction within 0.01 property units of the floor counts as "at the floor".
        pred_floor = pred <= lower + 0.01
        out.update(
            mae_at_floor=float(err[at_floor].mean()) if at_floor.any() else None,
            mae_above_floor=float(err[~at_floor].mean()) if (~at_floor).any() else None,
            floor_accuracy=float((at_floor == pred_floor).mean()),
            floor_false_positive=float((pred_floor & ~at_floor).mean()),
            floor_false_negative=float((~pred_floor & at_floor).mean()),
        )
    return out
