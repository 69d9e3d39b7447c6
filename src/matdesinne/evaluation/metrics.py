"""Metrics that score models and candidates against known property values."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


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


def normalized(x: np.ndarray, space) -> np.ndarray:
    """Design parameters (n, dim) in units where each parameter's range has length 1."""
    return (np.asarray(x, dtype=np.float64) - space.lows) / (space.highs - space.lows)


def _subsample(a: np.ndarray, max_n: int, seed: int) -> np.ndarray:
    if len(a) <= max_n:
        return a
    return a[np.random.default_rng(seed).choice(len(a), max_n, replace=False)]


def _nearest(a: np.ndarray, b: np.ndarray, exclude_self: bool = False, chunk: int = 2048) -> np.ndarray:
    """Distance from each row of ``a`` to its nearest row of ``b``, shape (len(a),)."""
    out = np.empty(len(a))
    for lo in range(0, len(a), chunk):
        d = cdist(a[lo : lo + chunk], b)
        if exclude_self:
            d[np.arange(len(d)), np.arange(lo, lo + len(d))] = np.inf
        out[lo : lo + chunk] = d.min(1)
    return out


def energy_distance(a: np.ndarray, b: np.ndarray, max_n: int = 2000, seed: int = 0) -> float:
    """Energy distance 2E|A-B| - E|A-A'| - E|B-B'| between two samples (rows), on at most
    ``max_n`` rows of each. Zero when the distributions match; same units as the rows."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    a, b = _subsample(a, max_n, seed), _subsample(b, max_n, seed + 1)
    return float(2 * cdist(a, b).mean() - cdist(a, a).mean() - cdist(b, b).mean())


def nn_distance(a: np.ndarray, max_n: int = 1000, seed: int = 0) -> float:
    """Mean distance from a point to its nearest neighbour, on ``max_n`` random rows (a fixed
    count, since the value shrinks as the sample grows)."""
    if len(a) < 2:
        return float("nan")
    a = _subsample(a, max_n, seed)
    return float(_nearest(a, a, exclude_self=True).mean())


def duplicate_fraction(a: np.ndarray, radius: float = 1e-3) -> float:
    """Fraction of rows with another row within ``radius`` (near-duplicates)."""
    if len(a) < 2:
        return 0.0
    return float((_nearest(a, a, exclude_self=True) <= radius).mean())


def novelty(a: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance from each row of ``a`` to its nearest ``reference`` row (e.g. training data)."""
    if len(a) == 0:
        return float("nan")
    return float(_nearest(a, reference).mean())
