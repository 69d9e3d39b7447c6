"""Choosing how the model learns from new rows: a residual GP or a refit, by cross-validation.

Both updates start from the *prior* surrogate and use every new row told so far, so the
model after any tell is a function of (prior, rows in the order told, seed) alone, which is
what lets a campaign rebuild it from its saved rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from matdesinne.errors import UserInputError
from matdesinne.loop.coords import to_unit
from matdesinne.loop.correction import fit_residual, prior_of
from matdesinne.loop.refit import base_rows, refit_surrogate
from matdesinne.models import EnsembleSurrogate

#: The update methods, cheapest first (a tie in cross-validation keeps the cheaper).
METHODS = ("residual", "refit")


@dataclass
class Update:
    """The outcome of :func:`choose_update`.

    ``model``: the surrogate updated on all rows by ``method``; ``scores``: each tried
    method's cross-validated MAE (property units; None with fewer than 2 rows);
    ``held_out``: each tried method's out-of-fold prediction of every row, shape (n,).
    """

    model: EnsembleSurrogate
    method: str
    scores: dict[str, float | None] = field(default_factory=dict)
    held_out: dict[str, np.ndarray] = field(default_factory=dict)


def apply_update(method: str, surrogate: EnsembleSurrogate, x: np.ndarray, y: np.ndarray, *, seed: int = 0,
                 base: tuple[np.ndarray, np.ndarray] | None = None, refit_options: dict | None = None) -> EnsembleSurrogate:
    """``surrogate`` updated on rows ``x`` (n, dim), ``y`` (n,) (or (n, k), every property,
    NaN where not told) by ``method`` ("residual" or
    "refit", see :data:`METHODS`). ``base`` are a refit's faithful rows (default
    :func:`~matdesinne.loop.refit.base_rows`); ``refit_options`` go to
    :func:`~matdesinne.loop.refit.refit_surrogate`."""
    if method == "residual":
        return fit_residual(surrogate, x, y, seed=seed)
    if method == "refit":
        if base is None:
            base = base_rows(prior_of(surrogate), seed=seed)[:2]
        return refit_surrogate(surrogate, x, y, base, seed=seed, **(refit_options or {}))
    raise UserInputError(f"unknown update method {method!r}: use one of {', '.join(METHODS)}")


def fold_of(x: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's fold, 0 to ``min(folds, n) - 1``, for rows ``x`` (n, dim) in unit coordinates: shape (n,).

    The folds are spatial: k-means clusters of the rows (scikit-learn, seeded). A campaign's
    rows come in batches of near neighbours, so random folds would score each held-out row
    against its own batch mates still in training, which reads better than the next batch
    will do. With a cluster held out, the nearest training rows are further away, as they
    are for a new batch. ``folds >= n`` is leave-one-out.
    """
    from sklearn.cluster import KMeans

    n = len(x)
    k = max(1, min(folds, n))
    if k == n or k == 1:
        fold = np.empty(n, dtype=np.int64)
        fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
        return fold
    return KMeans(n_clusters=k, n_init=4, random_state=seed % 2**31).fit_predict(np.asarray(x, dtype=np.float64))


def held_out_predictions(method: str, surrogate: EnsembleSurrogate, x: np.ndarray, y: np.ndarray, *, folds: int = 5,
                         seed: int = 0, **options) -> np.ndarray:
    """K-fold predictions (n,) of every row's first property by ``surrogate`` updated by
    ``method`` on the other folds' rows (``min(folds, n)`` spatial folds, see :func:`fold_of`;
    ``folds >= n`` is leave-one-out); ``y`` is (n,) or (n, k), as for :func:`apply_update`.
    NaN everywhere with fewer than 2 rows. ``options`` go to :func:`apply_update`."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = np.full(len(y), np.nan)
    if len(y) < 2:
        return out
    fold = fold_of(to_unit(x, surrogate.space_), folds, seed)
    for f in range(fold.max() + 1):
        held = fold == f
        model = apply_update(method, surrogate, x[~held], y[~held], seed=(seed + 1 + f) % 2**32, **options)
        out[held] = model.predict(x[held])[0]
    return out


def choose_update(surrogate: EnsembleSurrogate, x: np.ndarray, y: np.ndarray, methods=METHODS, *, folds: int = 5,
                  seed: int = 0, base: tuple[np.ndarray, np.ndarray] | None = None,
                  refit_options: dict | None = None) -> Update:
    """Score each update method by K-fold cross-validation on the new rows ``x`` (n, dim),
    ``y`` (n,) and return the one with the lowest held-out MAE, refitted on all rows.

    ``y`` is (n,), or (n, k) with every property the surrogate predicts (NaN where not
    told); the scores are on the first property, the one the campaign targets.

    Every fold's model predicts rows it never saw, held out a cluster at a time (see
    :func:`fold_of`), and the scores use only the campaign's own data (the new source of
    truth), never the prior's training rows. The chosen method's score is the lower of
    those compared, so it is slightly optimistic as an estimate of the next batch's error;
    the campaign's honest figure is the DFT check of its shipped candidates. With one method, or
    fewer than 2 rows, nothing is compared and that (first) method is applied.

    Example::

        upd = choose_update(models.surrogate, x_dft, y_dft, folds=5, seed=0)
        upd.method, upd.scores       # "residual", {"residual": 0.012, "refit": 0.031}
        design(ModelSet(models.generator, upd.model, models.directory), target=0.6)
    """
    methods = tuple(methods)
    if not methods or any(m not in METHODS for m in methods):
        given = ", ".join(map(str, methods)) or "none"
        raise UserInputError(f"update methods must be among {', '.join(METHODS)}, got {given}")
    if "refit" in methods and base is None:
        base = base_rows(prior_of(surrogate), seed=seed)[:2]
    options = {"base": base, "refit_options": refit_options}
    y = np.asarray(y, dtype=np.float64)
    held_out = {m: held_out_predictions(m, surrogate, x, y, folds=folds, seed=seed, **options) for m in methods}
    first = y if y.ndim == 1 else y[:, 0]
    scores = {m: (float(np.abs(p - first).mean()) if len(y) >= 2 else None) for m, p in held_out.items()}
    ranked = [m for m in methods if scores[m] is not None]
    best = min(ranked, key=lambda m: scores[m]) if ranked else methods[0]
    return Update(apply_update(best, surrogate, x, y, seed=seed, **options), best, scores, held_out)
