"""Metrics on arrays of design points: how far apart, how novel and how duplicated candidates are."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


def forward_metrics(surrogate, x: np.ndarray, y: np.ndarray) -> dict:
    """The surrogate's own :meth:`~matdesinne.models.EnsembleSurrogate.score` (kept for old
    callers; the metrics live with the model they score)."""
    return surrogate.score(x, y)


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
