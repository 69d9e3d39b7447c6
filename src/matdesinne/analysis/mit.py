"""Metal-insulator transition (MIT) finder: small design changes that flip a candidate
between the property's floor (a metal, Eg = 0) and a target value (an insulator).

For each insulating candidate and each set of at most ``max_params`` parameters, rays
in the space of those parameters alone (both ways along one axis; 12 directions in a
plane of two) are scanned to the design-space edge and the first point the surrogate
calls metallic is refined by bisection. Scanning rather than following gradients keeps
the search working on plateaus, where a step-like property has no useful slope. The result pairs the candidate (insulator end) with
that point (metal end), reports each parameter's change in physical words (% strain of
the equilibrium value, or the parameter's own unit where there is no nonzero
equilibrium), and checks the surrogate along the straight line between the ends, so a
reader sees whether the transition is sharp or an artefact of two distant points.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.models.surrogate import EnsembleSurrogate

LINE_POINTS = 21
RAY_POINTS = 24  # scan resolution along a ray, before bisection
BISECTIONS = 10
PLANE_DIRECTIONS = 12


def change_in_words(space: DesignSpace, delta: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Per-parameter changes (n, dim) in reporting units: % of a nonzero equilibrium value
    (strain), else the parameter's own unit. Returns the values and each column's unit."""
    out = np.array(delta, dtype=np.float64, copy=True)
    units = []
    for j, p in enumerate(space.parameters):
        if p.equilibrium:  # None or 0 (a field) keep their own unit
            out[:, j] = 100.0 * delta[:, j] / p.equilibrium
            units.append("%")
        else:
            units.append(p.unit)
    return out, units


def line_profile(surrogate: EnsembleSurrogate, start: np.ndarray, end: np.ndarray, points: int = LINE_POINTS) -> np.ndarray:
    """Surrogate predictions on the straight lines start -> end: shape (n, points)."""
    t = np.linspace(0.0, 1.0, points)
    path = start[:, None, :] + t[None, :, None] * (end - start)[:, None, :]
    pred, _ = surrogate.predict(path.reshape(-1, start.shape[1]))
    return pred.reshape(len(start), points)


def _directions(dim: int, subsets: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions (k, dim) in normalised units, and the subset each belongs to."""
    dirs, owner = [], []
    for s, cols in enumerate(subsets):
        if len(cols) == 1:
            angles = [0.0, np.pi]
        else:
            angles = np.linspace(0, 2 * np.pi, PLANE_DIRECTIONS, endpoint=False)
        for a in angles:
            d = np.zeros(dim)
            d[cols[0]] = np.cos(a)
            if len(cols) == 2:
                d[cols[1]] = np.sin(a)
            dirs.append(d)
            owner.append(s)
    return np.array(dirs), np.array(owner)


def _first_metal(surrogate, u0: np.ndarray, dirs: np.ndarray, space: DesignSpace, floor: float, atol: float) -> np.ndarray:
    """Along rays u0 + t * dirs (normalised units, both (m, dim)), the smallest t at which the
    surrogate predicts the floor; inf where the ray leaves the box first. Shape (m,)."""
    span, lows = space.highs - space.lows, space.lows
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = np.where(dirs > 0, (1 - u0) / dirs, np.where(dirs < 0, -u0 / dirs, np.inf)).min(1)
    grid = np.linspace(0, 1, RAY_POINTS + 1)[1:]
    pts = u0[:, None, :] + (limit[:, None] * grid)[:, :, None] * dirs[:, None, :]
    pred, _ = surrogate.predict((lows + pts * span).reshape(-1, u0.shape[1]))
    metal = pred.reshape(len(u0), RAY_POINTS) <= floor + atol
    hit = metal.any(1)
    k = metal.argmax(1)
    hi = np.where(hit, limit * grid[k], np.inf)
    lo = np.where(k > 0, limit * grid[np.maximum(k - 1, 0)], 0.0)
    idx = np.flatnonzero(hit)
    for _ in range(BISECTIONS):  # refine onto the boundary: lo insulating, hi metallic
        mid = 0.5 * (lo[idx] + hi[idx])
        p, _ = surrogate.predict(lows + (u0[idx] + mid[:, None] * dirs[idx]) * span)
        is_metal = p <= floor + atol
        hi[idx] = np.where(is_metal, mid, hi[idx])
        lo[idx] = np.where(is_metal, lo[idx], mid)
    return hi


@dataclass
class Transitions:
    """``pairs``: ranked metal/insulator pairs (see :func:`find_transitions`); ``safe``:
    insulating candidates (rows of x) that no change of at most ``max_params`` parameters
    inside the design space turns metallic ("safe from MIT")."""

    pairs: pd.DataFrame
    safe: np.ndarray


def find_transitions(
    insulators: np.ndarray,
    surrogate: EnsembleSurrogate,
    target: float,
    max_params: int = 2,
    parameters: list[str] | None = None,
    limit: int = 300,
    seed: int = 0,
    atol: float = 0.005,
) -> Transitions:
    """Ranked metal/insulator pairs reachable by changing at most ``max_params`` parameters.

    ``insulators`` (n, dim) are candidates at ``target``; at most ``limit`` of them (a
    seeded subsample) are searched. ``parameters`` restricts which parameters may change
    (default: all). Each insulator keeps its smallest flip. Rows are sorted by the size of
    the change in range-normalised units (each parameter's range = 1). ``delta_<param>``
    is insulator minus metal, in % strain or the parameter's unit.
    """
    space = surrogate.space_
    prop = space.property
    if prop.lower is None:
        raise UserInputError(f"the MIT finder needs a property with a physical floor; {prop.name} has none (retrain with a lower limit, e.g. `train --y-lower 0`)")
    names = parameters or space.names
    unknown = [n for n in names if n not in space.names]
    if unknown:
        raise UserInputError(f"unknown parameter(s) {', '.join(unknown)} for design space {space.name!r}")
    if len(insulators) == 0:
        return Transitions(pd.DataFrame(), insulators)
    rng = np.random.default_rng(seed)
    if len(insulators) > limit:
        insulators = insulators[rng.choice(len(insulators), limit, replace=False)]
    index = [space.names.index(n) for n in names]
    subsets = [c for k in range(1, max_params + 1) for c in combinations(index, k)]
    dirs, owner = _directions(space.dim, subsets)
    span = space.highs - space.lows
    u = np.clip((insulators - space.lows) / span, 0, 1)
    u0 = np.repeat(u, len(dirs), axis=0)
    ray = np.tile(dirs, (len(u), 1))
    t = _first_metal(surrogate, u0, ray, space, prop.lower, atol).reshape(len(u), len(dirs))
    best = t.argmin(1)
    found = np.isfinite(t[np.arange(len(u)), best])
    if not found.any():
        return Transitions(pd.DataFrame(), insulators)
    which = np.flatnonzero(found)
    size = t[which, best[which]]
    start = insulators[which]
    end = space.lows + (u[which] + size[:, None] * dirs[best[which]]) * span
    changed = [" ".join(space.names[c] for c in subsets[owner[b]]) for b in best[which]]
    profile = line_profile(surrogate, end, start)  # metal -> insulator
    delta, units = change_in_words(space, start - end)
    frame = pd.DataFrame({"target": float(target)}, index=range(len(start)))
    for j, name in enumerate(space.names):
        frame[f"{name}_metal"] = end[:, j]
        frame[f"{name}_insulator"] = start[:, j]
    for j, name in enumerate(space.names):
        frame[f"delta_{name}"] = delta[:, j]
    frame[f"{prop.name}_metal"] = profile[:, 0]
    frame[f"{prop.name}_insulator"] = profile[:, -1]
    frame["changed"] = changed
    frame["distance"] = size
    # Sharpness: the share of the line over which the gap climbs from 10 % to 90 % of its
    # end value; small means an abrupt step, as an MIT should be.
    top = np.maximum(profile[:, -1:], 1e-12)
    frac = profile / top
    first_10 = (frac >= 0.1).argmax(1)
    first_90 = (frac >= 0.9).argmax(1)
    frame["transition_width"] = (first_90 - first_10) / (LINE_POINTS - 1)
    frame["line_monotone"] = np.all(np.diff(profile, axis=1) >= -0.02, axis=1)
    frame.attrs["units"] = dict(zip(space.names, units))
    return Transitions(frame.sort_values("distance", ignore_index=True), insulators[~found])
