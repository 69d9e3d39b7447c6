"""Symmetries of a layer's design space: designs that build the same crystal.

A :class:`~matdesinne.materials.material.LayerBuilder` puts the reference's fractional
coordinates into the design's cell, so some different designs make congruent structures,
with the same band gap and energy. Two relabellings of the cell hold for every metric:

- **swap** a1 <-> a2: ``(a, b, α, β) -> (b, a, β, α)``; the atoms sit at ``(y, x, z)``;
- **flip** a3 -> -a3: ``(α, β) -> (180° - α, 180° - β)``; the atoms sit at ``(x, y, -z)``.

The relabelled cell is an isometric copy of the original (a mirror for swap, a reflection
z -> -z for flip, which reverses a perpendicular field). The design then builds the same
crystal exactly when the moved atoms coincide with the reference's, up to an in-plane
translation, either as they are or after inversion r -> -r (which reverses the field
again). The layer must map onto itself across its slab (z -> z or z -> 1 - z), so
that the vacuum and the field's geometry are preserved too.

1H-MoS2 and 1H-WS2 have both: swap with the field reversed (their metal sits at an
inversion image of the chalcogen column) and flip with the field reversed (the layer is
mirror-symmetric); MoS2's published box is a hair wider in b than in a, so only flip keeps
it. A DFT check of 12 WS2 images agreed with the originals (see the WS2 README). The images
share the band gap and the energy, what ``label`` computes; a property that changes sign
under a mirror (a dipole, say) does not, and needs ``train --no-symmetry``. :func:`find_symmetries` derives them from a builder and a design space, keeping
those that map the space's box onto itself, and their composition; ``train`` adds each
training row's images to the rows it learns from.

Example::

    maps = find_symmetries(material("ws2").builder, material("ws2").space())
    x_images = [m.apply(x, space.names) for m in maps]  # each (n, dim), same properties
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from matdesinne.data.design_space import DesignSpace
from matdesinne.materials.material import FIELD, LATTICE

_TOL = 1e-6  # fractional coordinates and relative box bounds


@dataclass(frozen=True)
class ParameterMap:
    """A map of designs to designs that build congruent structures.

    ``swap`` exchanges a with b and α with β; ``flip`` sends α, β to 180° minus themselves;
    ``field_sign`` multiplies the field (-1: reversed).
    """

    name: str
    swap: bool
    flip: bool
    field_sign: int

    def apply(self, x: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """The images of designs ``x`` (n, dim) whose columns are ``names``; (n, dim)."""
        x = np.asarray(x, dtype=np.float64)
        col = {n: i for i, n in enumerate(names)}
        out = x.copy()
        if self.swap:
            for p, q in (("a", "b"), ("alpha", "beta")):
                if p in col and q in col:
                    out[:, col[p]], out[:, col[q]] = x[:, col[q]], x[:, col[p]]
        if self.flip:
            for p in ("alpha", "beta"):
                if p in col:
                    out[:, col[p]] = 180.0 - out[:, col[p]]
        if FIELD in col:
            out[:, col[FIELD]] = self.field_sign * out[:, col[FIELD]]
        return out

    def lattice(self, cellpar: Sequence[float]) -> tuple[float, ...]:
        """The image of six lattice parameters (a, b, c, α, β, γ)."""
        return tuple(float(v) for v in self.apply(np.asarray([cellpar], dtype=np.float64), LATTICE)[0])


def _moved(fractional: np.ndarray, swap: bool, flip: bool) -> np.ndarray:
    """Where the relabelled cell puts the atoms, in the original cell's fractional coordinates."""
    moved = fractional[:, [1, 0, 2]] if swap else fractional.copy()
    if flip:
        moved[:, 2] = -moved[:, 2]
    return moved


def _coincide(symbols: Sequence[str], fractional: np.ndarray, moved: np.ndarray, z_shift: float) -> bool:
    """Whether ``moved`` (plus ``z_shift`` along c) is the same set of atoms as ``fractional``
    after one in-plane translation."""
    symbols = np.asarray(symbols)
    moved = moved + np.array([0.0, 0.0, z_shift])
    for j in np.flatnonzero(symbols == symbols[0]):
        shift = fractional[j, :2] - moved[0, :2]
        placed = moved.copy()
        placed[:, :2] += shift
        matched = np.zeros(len(fractional), dtype=bool)
        for i in range(len(placed)):
            d = fractional - placed[i]
            d[:, :2] -= np.round(d[:, :2])
            hit = np.flatnonzero((symbols == symbols[i]) & ~matched & (np.abs(d).max(1) < _TOL))
            if len(hit) == 0:
                break
            matched[hit[0]] = True
        if matched.all():
            return True
    return False


def _keeps_box(m: ParameterMap, space: DesignSpace, reference: Sequence[float]) -> bool:
    """Whether ``m`` maps the space's box onto itself and leaves the fixed parameters as they are."""
    names = list(space.names)
    if m.swap and any((p in names) != (q in names) for p, q in (("a", "b"), ("alpha", "beta"))):
        return False  # a varying parameter would trade places with a fixed one
    box = np.array([space.lows, space.highs])
    images = np.sort(m.apply(box, names), axis=0)
    scale = np.maximum(np.abs(box).max(0), 1.0)
    if np.any(np.abs(images - box) > _TOL * scale):
        return False
    fixed = [i for i, k in enumerate(LATTICE) if k not in names]
    image = m.lattice(reference)
    return all(abs(image[i] - reference[i]) <= _TOL * max(abs(reference[i]), 1.0) for i in fixed)


def find_symmetries(builder, space: DesignSpace) -> tuple[ParameterMap, ...]:
    """The maps other than the identity under which ``builder`` (a
    :class:`~matdesinne.materials.material.LayerBuilder`) makes congruent structures and
    that keep ``space``'s box: swap, flip, both, or the field's reversal alone (a flat or
    centrosymmetric layer), each with every sign of the field that works, and each acting
    differently on the space's designs (none as the identity)."""
    if builder is None or not any(n in LATTICE for n in space.names):
        return ()
    symbols, fractional = builder.symbols, np.asarray(builder.fractional, dtype=np.float64)
    flat = bool(np.ptp(fractional[:, 2]) < _TOL)  # a mirror through its own plane reverses the field
    names = set(space.names)
    # What each part does to a design of this space: a swap or flip of parameters the space
    # does not vary changes nothing, so two maps may act alike, and one may act as the identity.
    swaps = bool(names & {"a", "b", "alpha", "beta"})
    flips = bool(names & {"alpha", "beta"})
    found, actions = [], {(False, False, 1)}
    for swap, flip in ((False, False), (True, False), (False, True), (True, True)):
        moved = _moved(fractional, swap, flip)
        signs = set()
        for inverted in (False, True):
            # The layer maps onto itself across the slab: z -> z needs no shift, z -> -z a shift of 1.
            if _coincide(symbols, fractional, -moved if inverted else moved, 1.0 if flip != inverted else 0.0):
                sign = (-1 if flip else 1) * (-1 if inverted else 1)  # z -> -z and r -> -r each reverse it
                signs |= {sign, -sign} if flat else {sign}
        if FIELD not in space.names:
            signs = {1} if signs else set()  # no field: its sign is moot
        for sign in sorted(signs, reverse=True):
            name = "+".join(k for k, on in (("swap", swap), ("flip", flip)) if on)
            reversed_text = "field reversed" if sign < 0 else ""
            m = ParameterMap(f"{name} ({reversed_text})" if name and reversed_text else (name or reversed_text),
                             swap, flip, sign)
            action = (swap and swaps, flip and flips, sign)
            if action not in actions and _keeps_box(m, space, builder.cellpar):
                found.append(m)
                actions.add(action)
    return tuple(found)


def with_images(x: np.ndarray, y: np.ndarray, maps: Sequence[ParameterMap], space: DesignSpace):
    """Rows ``x`` (n, dim) with ``y`` (n, ...) followed by each map's images of them, clipped
    into the box against round-off: ((1 + len(maps)) n, dim) and the ``y`` rows repeated."""
    if not maps:
        return x, y
    images = [np.clip(m.apply(x, space.names), space.lows, space.highs) for m in maps]
    return np.concatenate([np.asarray(x, dtype=np.float64), *images]), np.concatenate([y] * (1 + len(maps)))
