"""Band edges off the k-mesh: find the VBM and CBM of a cell, not just of its mesh points.

A Γ-centred mesh samples the bands at fixed fractions of the reciprocal vectors. In a
strained or sheared cell the band edges (K, Γ, the Λ/Q valley) move off those points, and
the mesh's gap is then too large, by an amount that jumps as an edge moves between points
(about 0.16 eV per edge at 9×9 for MoS2-like cells). The search here starts from a mesh
whose eigenvalues are known (the self-consistent one's), takes every valley whose
extremum lies within ``window`` of the best, and refines each by two rounds of a 3^d
stencil in the cell's own reciprocal basis with a quadratic fit, then one point at the
fitted extremum: 18 k-points per valley in 2D, in three batched non-self-consistent
calculations.

Only eigenvalues actually computed are reported: the valence maximum found is never above
the true one and the conduction minimum never below, so the gap found is never smaller
than the true gap, and never larger than the starting mesh's.

The search is engine-independent: ``bands(k)`` computes the top valence and bottom
conduction band at fractional k-points ``k`` (m, 3). GPAW's lives in
:mod:`matdesinne.validation.dft`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

#: ``bands(k)``: k (m, 3) fractional -> (top valence band (m,), bottom conduction band (m,)) in eV.
Bands = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

#: How far (eV) a valley's fitted extremum may fall short of the best computed point and
#: still be refined: the fit's own error on a 3^d stencil of a smooth band is far smaller.
PRUNE = 0.01

#: Two k-points closer than this (fractional, modulo 1 and k -> -k) are the same point.
SAME_K = 1e-6


@dataclass(frozen=True)
class BandEdges:
    """The valence maximum ``vbm`` and conduction minimum ``cbm`` (eV) and their k-points
    (fractional, in the reciprocal basis, each in [0, 1)); ``kpoints``: how many k-points
    were computed to find them (the starting mesh's included)."""

    vbm: float
    cbm: float
    vbm_k: tuple[float, float, float]
    cbm_k: tuple[float, float, float]
    kpoints: int = 0

    @property
    def gap(self) -> float:
        """CBM − VBM in eV: negative where the bands overlap (a metal)."""
        return self.cbm - self.vbm

    @property
    def direct(self) -> bool:
        """Whether both edges sit at one k-point (or at k and −k, the same by time reversal)."""
        return same_k(self.vbm_k, self.cbm_k)


def same_k(k1: Sequence[float], k2: Sequence[float]) -> bool:
    """Whether fractional k-points ``k1`` and ``k2`` coincide modulo 1, or modulo 1 and k -> −k."""
    a, b = np.asarray(k1, dtype=np.float64), np.asarray(k2, dtype=np.float64)
    for d in (a - b, a + b):
        if np.all(np.abs(d - np.round(d)) < SAME_K):
            return True
    return False


def wrapped(k: np.ndarray) -> np.ndarray:
    """Fractional k-points (..., 3) folded into [0, 1)."""
    k = np.asarray(k, dtype=np.float64) % 1.0
    return np.where(np.isclose(k, 1.0, atol=1e-12), 0.0, k) + 0.0


def mesh_points(n: int, periodic: Sequence[bool] = (True, True, False)) -> np.ndarray:
    """The Γ-centred n×n(×n) mesh in fractional coordinates, shape (m, 3); one point along a
    non-periodic direction. Ordered so that ``reshape`` gives the grid, first axis slowest."""
    axes = [np.arange(n) / n if p else np.zeros(1) for p in periodic]
    return np.array(list(itertools.product(*axes)), dtype=np.float64)


def valleys(values: np.ndarray, n: int, periodic: Sequence[bool], sign: float, window: float) -> list[int]:
    """Indices into the mesh (:func:`mesh_points` order) of the local extrema of ``values``
    (m,) within ``window`` eV of the global one: maxima for ``sign`` = +1, minima for −1.
    Of a pair k, −k (the same energy by time reversal) one is kept."""
    shape = [n if p else 1 for p in periodic]
    grid = sign * np.asarray(values, dtype=np.float64).reshape(shape)
    is_peak = np.ones(grid.shape, dtype=bool)
    axes = [a for a, p in enumerate(periodic) if p]
    for shift in itertools.product((-1, 0, 1), repeat=len(axes)):
        if any(shift):
            is_peak &= grid >= np.roll(grid, shift, axis=axes)
    best = grid.max()
    flat = np.flatnonzero(is_peak.ravel() & (grid.ravel() >= best - window))
    flat = flat[np.argsort(-grid.ravel()[flat], kind="stable")]
    k = mesh_points(n, periodic)
    kept: list[int] = []
    for i in flat:
        if not any(same_k(k[i], k[j]) for j in kept):
            kept.append(int(i))
    return kept


def _stencil(periodic: Sequence[bool]) -> np.ndarray:
    """The 3^d offsets (in units of the step) along the periodic directions, centre first."""
    axes = [(-1, 0, 1) if p else (0,) for p in periodic]
    return np.array(sorted(itertools.product(*axes), key=lambda o: any(o)), dtype=np.float64)


def _fitted_extremum(offsets: np.ndarray, values: np.ndarray, periodic: Sequence[bool], sign: float,
                     limit: float) -> tuple[np.ndarray, float]:
    """The offset (3,) of the extremum of a quadratic fitted to ``values`` at ``offsets``
    (m, 3) (a maximum for ``sign`` = +1, a minimum for −1) and the best value the valley
    may hold: the fit's there, or the best sampled one if that is better. Where the fit has
    no such extremum, or puts it beyond ``limit`` along any direction, the best sampled
    offset and value."""
    axes = [a for a, p in enumerate(periodic) if p]
    d = offsets[:, axes]
    pairs = list(itertools.combinations_with_replacement(range(len(axes)), 2))
    design = np.column_stack([np.ones(len(d)), d, *[d[:, i] * d[:, j] for i, j in pairs]])
    coef = np.linalg.lstsq(design, values, rcond=None)[0]
    grad = coef[1:1 + len(axes)]
    hess = np.zeros((len(axes), len(axes)))
    for c, (i, j) in zip(coef[1 + len(axes):], pairs):
        hess[i, j] += c if i != j else 2 * c
        hess[j, i] = hess[i, j]
    i = int(np.argmax(sign * values))
    best = (offsets[i], float(values[i]))
    eig = np.linalg.eigvalsh(sign * hess)
    if not np.all(eig < 0):  # no maximum of sign * E: keep the best point sampled
        return best
    step = np.linalg.solve(hess, -grad)
    if np.any(np.abs(step) > limit):
        return best
    out = np.zeros(3)
    out[axes] = step
    predicted = float(coef[0] + grad @ step + 0.5 * step @ hess @ step)
    return out, max(predicted, best[1], key=lambda v: sign * v)


def search_edges(bands: Bands, n: int, valence: np.ndarray, conduction: np.ndarray,
                 periodic: Sequence[bool] = (True, True, False), window: float = 0.3) -> BandEdges:
    """Refine the band edges of a cell whose top valence and bottom conduction bands on the
    Γ-centred ``n`` mesh (:func:`mesh_points` order) are ``valence`` and ``conduction``
    (eV, shape (m,)). ``bands(k)`` computes both at new fractional k-points (m, 3); it is
    called three times, with every valley's points at once. Returns the best edges among
    all computed points (see the module's note: never a gap below the true one).

    Example (a valence maximum at k = (0.31, 0.47, 0) between the points of a 6×6 mesh)::

        k0 = np.array([0.31, 0.47, 0.0])
        def bands(k):
            d = k - k0 - np.round(k - k0)
            return -np.sum(d**2, 1), 1.0 + np.sum(d**2, 1)
        mesh = mesh_points(6)
        edges = search_edges(bands, 6, *bands(mesh))   # edges.gap ~ 1.0, edges.direct
    """
    k_mesh = mesh_points(n, periodic)
    centres, signs = [], []
    for sign, values in ((+1.0, valence), (-1.0, conduction)):
        for i in valleys(values, n, periodic, sign, window):
            centres.append(k_mesh[i])
            signs.append(sign)
    centres, signs = np.array(centres), np.array(signs)
    seen_k, seen_v, seen_c = [k_mesh], [np.asarray(valence, float)], [np.asarray(conduction, float)]
    stencil = _stencil(periodic)  # the centre first
    step = 1.0 / (2 * n)  # half the mesh spacing: the stencil brackets the mesh point's cell
    for level in range(2):
        new = stencil[1:] if level == 0 else stencil  # at first the centres are mesh points, known
        v, c = bands(wrapped((centres[:, None, :] + step * new[None, :, :]).reshape(-1, 3)))
        seen_k.append((centres[:, None, :] + step * new[None, :, :]).reshape(-1, 3))
        seen_v.append(np.asarray(v, float))
        seen_c.append(np.asarray(c, float))
        moved, hopes = [], []
        for j, (centre, sign) in enumerate(zip(centres, signs)):
            values = (v if sign > 0 else c)[j * len(new):(j + 1) * len(new)]
            if level == 0:
                known = valence if sign > 0 else conduction
                values = np.concatenate([[known[_mesh_index(centre, k_mesh)]], values])
            offset, hope = _fitted_extremum(stencil, values, periodic, sign, 1.5)
            moved.append(centre + step * offset)
            hopes.append(hope)
        centres, hopes = np.array(moved), np.array(hopes)
        # A valley whose fitted extremum cannot beat a point already computed elsewhere by
        # more than PRUNE is dropped: it holds no edge, and refining it would only cost.
        best_v, best_c = np.concatenate(seen_v).max(), np.concatenate(seen_c).min()
        beaten = np.where(signs > 0, hopes < best_v - PRUNE, hopes > best_c + PRUNE)
        centres, signs = centres[~beaten], signs[~beaten]
        step /= 4  # a finer stencil around the fitted extremum
    v, c = bands(wrapped(centres))  # the fitted extrema themselves
    seen_k.append(centres), seen_v.append(np.asarray(v, float)), seen_c.append(np.asarray(c, float))
    k_all, v_all, c_all = np.vstack(seen_k), np.concatenate(seen_v), np.concatenate(seen_c)
    iv, ic = int(np.argmax(v_all)), int(np.argmin(c_all))
    return BandEdges(float(v_all[iv]), float(c_all[ic]), _plain(k_all[iv]), _plain(k_all[ic]), int(len(k_all)))


def _mesh_index(k: np.ndarray, k_mesh: np.ndarray) -> int:
    """The index of mesh point ``k`` in ``k_mesh`` (m, 3)."""
    return int(np.argmin(np.abs(k_mesh - k).sum(axis=1)))


def mesh_edges(k: np.ndarray, valence: np.ndarray, conduction: np.ndarray) -> BandEdges:
    """The edges among given k-points (m, 3) and bands (m,), with no search."""
    iv, ic = int(np.argmax(valence)), int(np.argmin(conduction))
    return BandEdges(float(valence[iv]), float(conduction[ic]), _plain(k[iv]), _plain(k[ic]), len(k))


def _plain(k: np.ndarray) -> tuple[float, float, float]:
    """A k-point as plain floats in [0, 1), rounded to 1e-9 (below any search step)."""
    return tuple(float(round(v, 9)) % 1.0 for v in wrapped(k))
