"""Independent evaluators: forward models that play no part in generating candidates.

They are fitted on the training rows only, with their own seeds, and exist to score
candidates honestly (the surrogate that localized them cannot). Each reports its own
held-out error, so a reader can judge how far to trust its verdicts.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from matdesinne.data.design_space import DesignSpace


class Evaluator:
    """Base: ``fit(x, y, space)`` then ``predict(x)``, clipped to the property's limits."""

    name = ""
    family = ""

    def fit(self, x: np.ndarray, y: np.ndarray, space: DesignSpace) -> "Evaluator":
        self.space_ = space
        self.mean_, self.std_ = x.mean(0), x.std(0)
        self._fit((x - self.mean_) / self.std_, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        prop = self.space_.property
        pred = self._predict((np.asarray(x, dtype=np.float64) - self.mean_) / self.std_)
        lower = -np.inf if prop.lower is None else prop.lower
        upper = np.inf if prop.upper is None else prop.upper
        return np.clip(pred, lower, upper)

    def _fit(self, xs, y):
        raise NotImplementedError

    def _predict(self, xs):
        raise NotImplementedError


class GaussianProcessEvaluator(Evaluator):
    """Gaussian process with an anisotropic RBF kernel plus white noise.

    Kernel hyperparameters are fitted by marginal likelihood on ``n_hyper`` random
    training rows (exact GP fitting is cubic in rows); the GP is then conditioned on all
    training rows with those hyperparameters fixed.
    """

    name = "gp"
    family = "Gaussian process (RBF-ARD kernel)"

    def __init__(self, n_hyper: int = 2000, seed: int = 1):
        self.n_hyper = n_hyper
        self.seed = seed

    def _fit(self, xs, y):
        rng = np.random.default_rng(self.seed)
        sub = rng.choice(len(xs), min(self.n_hyper, len(xs)), replace=False)
        kernel = ConstantKernel() * RBF(np.ones(xs.shape[1])) + WhiteKernel(1e-3)
        tuned = GaussianProcessRegressor(kernel, normalize_y=True, random_state=self.seed).fit(xs[sub], y[sub])
        self.kernel_ = tuned.kernel_
        self.gp_ = GaussianProcessRegressor(self.kernel_, normalize_y=True, optimizer=None).fit(xs, y)

    def _predict(self, xs):
        return self.gp_.predict(xs)


class TreesEvaluator(Evaluator):
    """Histogram gradient-boosted trees: piecewise constant, so blind to smooth surrogate quirks."""

    name = "trees"
    family = "gradient-boosted trees"

    def __init__(self, seed: int = 1):
        self.seed = seed

    def _fit(self, xs, y):
        self.model_ = HistGradientBoostingRegressor(max_iter=600, learning_rate=0.05, random_state=self.seed).fit(xs, y)

    def _predict(self, xs):
        return self.model_.predict(xs)


def held_out_report(predict, x: np.ndarray, y: np.ndarray, targets, window: float = 0.1) -> dict:
    """An evaluator's own MAE on held-out rows (``predict`` maps x (n, dim) to (n,)):
    overall, and within ±window of each target."""
    err = np.abs(predict(x) - y)
    out = {"mae": float(err.mean()), "near": {}}
    for t in targets:
        near = np.abs(y - t) <= window
        out["near"][f"{t:g}"] = {"mae": float(err[near].mean()) if near.any() else None, "rows": int(near.sum())}
    return out
