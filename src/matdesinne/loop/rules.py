"""Acquisition rules for a cold start: which design points to compute next, given those
computed so far. A rule is chosen by name (:data:`RULES`); a new one is any object with a
``name`` and a ``select`` method (see :class:`AcquisitionRule`).

- ``straddle`` (the default) aims the budget at the targets' level sets. A Gaussian-process
  classifier (scikit-learn) gives each point's probability of having a gap at all, which
  finds the gapped region fast in a box that is mostly metallic; a Gaussian-process
  regressor on the gapped rows gives a mean ``μ`` and a standard deviation ``σ``. Each
  target ``t`` scores a point by ``p_gapped · (1.96 σ − |μ − t|)``: the straddle heuristic
  of Bryan et al. (NeurIPS 2005), the ambiguity that level-set estimation (LSE; Gotovos et
  al., IJCAI 2013) classifies by, high where the level set may pass and the model is unsure.
  While fewer than :data:`MIN_GAPPED` gapped rows are known, points score by
  ``p_gapped`` plus the classifier's own uncertainty. The batch takes the targets in turn,
  each its best point, and no two points of a batch lie closer than ``spacing``.
- ``space-filling``: the pool points farthest from every computed point (greedy maximin),
  the baseline that a rule must beat at the same budget.

All coordinates are the box's unit coordinates, (n, dim) arrays in [0, 1].
"""

from __future__ import annotations

import warnings
from typing import Protocol, Sequence

import numpy as np

from matdesinne.errors import UserInputError

#: Gapped rows the regressor needs before the straddle score is used.
MIN_GAPPED = 5
#: The straddle's width: the 95 % band of a normal (Bryan et al.).
STRADDLE = 1.96


class AcquisitionRule(Protocol):
    """Picks ``batch`` indices of ``pool`` (m, dim) to compute next, given the computed rows
    ``x`` (n, dim) with property ``y`` (n,) whose physical floor is ``lower`` (None: none)."""

    name: str

    def select(self, x: np.ndarray, y: np.ndarray, lower: float | None, targets: Sequence[float],
               pool: np.ndarray, batch: int, seed: int) -> np.ndarray: ...


def _spaced(scores: list[np.ndarray], pool: np.ndarray, batch: int, spacing: float) -> np.ndarray:
    """Greedy batch: the score lists (one per target) take turns to pick their best point
    left; points within ``spacing`` of a picked one are left out for all."""
    free = np.ones(len(pool), dtype=bool)
    picked: list[int] = []
    turn = 0
    while len(picked) < batch and free.any():
        score = np.where(free, scores[turn % len(scores)], -np.inf)
        best = int(np.argmax(score))
        picked.append(best)
        free &= np.linalg.norm(pool - pool[best], axis=1) > spacing
        free[best] = False
        turn += 1
    if len(picked) < batch:  # spacing too wide for the pool: fill by score alone
        rest = [i for i in np.argsort(-scores[0]) if i not in picked]
        picked += rest[:batch - len(picked)]
    return np.array(picked, dtype=np.int64)


class SpaceFilling:
    """Greedy maximin: each pick is the pool point farthest from every computed and picked point."""

    name = "space-filling"

    def select(self, x, y, lower, targets, pool, batch, seed):
        dist = np.min(np.linalg.norm(pool[:, None, :] - x[None, :, :], axis=2), axis=1) if len(x) else np.full(len(pool), np.inf)
        picked = []
        for _ in range(min(batch, len(pool))):
            best = int(np.argmax(dist))
            picked.append(best)
            dist = np.minimum(dist, np.linalg.norm(pool - pool[best], axis=1))
            dist[best] = -np.inf
        return np.array(picked, dtype=np.int64)


class Straddle:
    """The straddle/LSE rule aimed at the targets (see the module's note). ``spacing``: the
    least distance between two points of a batch, in unit coordinates."""

    name = "straddle"

    def __init__(self, spacing: float = 0.05):
        self.spacing = spacing

    def models(self, x: np.ndarray, y: np.ndarray, lower: float | None, seed: int):
        """``(p_gapped(pool), regressor or None)`` fitted on the computed rows."""
        gapped = _gapped(y, lower)
        return _classifier(x, gapped, seed), _gapped_regressor(x, y, gapped, seed)

    def select(self, x, y, lower, targets, pool, batch, seed):
        p_of, regressor = self.models(x, y, lower, seed)
        p = p_of(pool)
        if regressor is None:
            scores = [p + p * (1 - p)]  # find the gapped region first
        else:
            mu, sd = regressor.predict(pool, return_std=True)
            scores = [p * (STRADDLE * sd - np.abs(mu - t)) for t in targets]
        spacing = self.spacing * np.sqrt(pool.shape[1])
        return _spaced(scores, pool, batch, spacing)

    def estimates(self, x, y, lower, targets, pool, tolerance: float, seed: int) -> dict[str, float | None]:
        """Per target: the regressor's mean σ on pool points it predicts within ``tolerance``
        of the target (property units), the campaign's running estimate of its error
        there; None before there is a regressor or where no point is predicted there."""
        regressor = _gapped_regressor(x, y, _gapped(y, lower), seed)  # the classifier is not needed here
        if regressor is None:
            return {f"{t:g}": None for t in targets}
        mu, sd = regressor.predict(pool, return_std=True)
        out = {}
        for t in targets:
            near = np.abs(mu - t) <= tolerance
            out[f"{t:g}"] = float(sd[near].mean()) if near.any() else None
        return out


def _gapped(y: np.ndarray, lower: float | None) -> np.ndarray:
    """Which rows have a gap: above the property's floor (all, without one)."""
    return y > lower if lower is not None else np.ones(len(y), dtype=bool)


def _gapped_regressor(x: np.ndarray, y: np.ndarray, gapped: np.ndarray, seed: int):
    """The regressor on the gapped rows, or None while fewer than :data:`MIN_GAPPED` are known."""
    return _regressor(x[gapped], y[gapped], seed) if gapped.sum() >= MIN_GAPPED else None


def _classifier(x: np.ndarray, gapped: np.ndarray, seed: int):
    """``p(pool)``: the probability of a gap, by a scikit-learn GP classifier; constant where
    only one class is known yet."""
    if gapped.all() or not gapped.any():
        value = 1.0 if gapped.all() else 0.5  # no gapped row yet: every point is worth a look
        return lambda pool: np.full(len(pool), value)
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * RBF(np.full(x.shape[1], 0.3), (1e-2, 1e2))
    with warnings.catch_warnings():  # a length scale at its bound is fine for ranking points
        warnings.simplefilter("ignore")
        model = GaussianProcessClassifier(kernel, random_state=seed % 2**31).fit(x, gapped.astype(int))
    return lambda pool: model.predict_proba(pool)[:, 1]


def _regressor(x: np.ndarray, y: np.ndarray, seed: int):
    """A scikit-learn GP regressor of the property on gapped rows: ARD Matérn 5/2 plus noise."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.full(x.shape[1], 0.3), (1e-2, 1e2), nu=2.5)
              + WhiteKernel(1e-4, (1e-8, 1e-1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed % 2**31).fit(x, y)


#: The rules by name.
RULES = {"straddle": Straddle, "space-filling": SpaceFilling}


def rule(name: str) -> AcquisitionRule:
    """A rule by its name (see :data:`RULES`); an unknown one is refused in one line."""
    if name not in RULES:
        raise UserInputError(f"unknown acquisition rule {name!r}: use one of {', '.join(RULES)}")
    return RULES[name]()
