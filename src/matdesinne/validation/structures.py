"""Atomic structures from design parameters, one builder per design space.

A builder maps one row of design parameters (a dict name -> value) to an ASE ``Atoms``.
MoS2 ships one; a user's design space registers its own with :func:`register_builder`.
Parameters that are not geometry (the MoS2 field) go into ``atoms.info`` so that a
calculator can apply them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from ase import Atoms
from ase.geometry import cellpar_to_cell

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError

#: 1H-MoS2 in its equilibrium cell (a = b = 3.16 Å, c = 12.30 Å, γ = 120°): Mo at the
#: centre, S at ±d along c, with the S-S thickness 3.13 Å. Fractional coordinates stay
#: fixed under strain, so the layer thickness scales with c and shears with α, β: this is
#: how the published data was built (Cartesian thickness fixed does not match it).
MOS2_HALF_THICKNESS = 3.13 / 2 / 12.30
MOS2_FRACTIONAL = {
    "Mo": (1 / 3, 2 / 3, 0.5),
    "S1": (2 / 3, 1 / 3, 0.5 + MOS2_HALF_THICKNESS),
    "S2": (2 / 3, 1 / 3, 0.5 - MOS2_HALF_THICKNESS),
}

Builder = Callable[[Mapping[str, float]], Atoms]
BUILDERS: dict[str, Builder] = {}


def register_builder(space_name: str, builder: Builder) -> None:
    """Make ``builder`` the structure builder of design space ``space_name``."""
    BUILDERS[space_name] = builder


def build_mos2(row: Mapping[str, float]) -> Atoms:
    """Monolayer 1H-MoS2 from lattice parameters (Å, degrees) and a field along z (V/Å)."""
    cellpar = [float(row[k]) for k in ("a", "b", "c", "alpha", "beta", "gamma")]
    try:
        cell = cellpar_to_cell(cellpar)
    except (AssertionError, ValueError):  # ASE asserts on angles no cell can have
        raise UserInputError(f"lattice parameters {cellpar} make a degenerate cell") from None
    volume = float(np.linalg.det(cell))
    if not np.isfinite(volume) or volume <= 1e-6 * np.prod(cellpar[:3]):
        raise UserInputError(f"lattice parameters {cellpar} make a degenerate cell")
    atoms = Atoms("MoS2", scaled_positions=list(MOS2_FRACTIONAL.values()), cell=cell, pbc=True)
    atoms.info.update({k: float(row[k]) for k in ("a", "b", "c", "alpha", "beta", "gamma")})
    atoms.info["efield"] = float(row["efield"])  # V/Å along z; applied by the calculator
    atoms.info["layer"] = True  # a monolayer: vacuum along c, computed as a slab
    return atoms


register_builder("mos2", build_mos2)


def builder_for(space: DesignSpace) -> Builder:
    if space.name not in BUILDERS:
        raise UserInputError(
            f"design space {space.name!r} has no structure builder; register one with "
            "matdesinne.validation.structures.register_builder"
        )
    return BUILDERS[space.name]


#: Values this close to a bound (as a fraction of the range) count as on it: a CSV written
#: with 7 significant digits (as matdesinne wrote them before they kept every digit) moves a
#: candidate that sits exactly on a bound by ~1e-7.
ROUND_OFF = 1e-6


def check_in_range(frame: pd.DataFrame, space: DesignSpace, source: str = "candidates",
                   rows: np.ndarray | None = None) -> np.ndarray:
    """The design columns of ``frame`` as an array (n, dim), clipped into the bounds, after
    checking that ``rows`` (default: all) lie inside the design space, the region the
    structure builder is valid for, up to CSV round-off."""
    from matdesinne.data.datasets import check_finite

    x = check_finite(frame, space.names, source)
    rows = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=int)
    outside = rows[~space.contains(x[rows], tolerance=ROUND_OFF)]
    if outside.size:
        row = int(outside[0])
        bad = [p.name for p, v in zip(space.parameters, x[row]) if not p.low <= v <= p.high]
        raise UserInputError(
            f"{source}: {outside.size} row(s) lie outside the structure builder's valid range, "
            f"the first on data row {row + 1} ({', '.join(bad)})"
        )
    return np.clip(x, space.lows, space.highs)


def build_structures(frame: pd.DataFrame, space: DesignSpace, source: str = "candidates") -> list[Atoms]:
    """One ``Atoms`` per row of ``frame``, which must hold the design columns, all inside the
    design space (the region the builder is valid for)."""
    x = check_in_range(frame, space, source)
    build = builder_for(space)
    return [build(dict(zip(space.names, values))) for values in x]


FORMATS = {"cif": "cif", "poscar": "vasp", "extxyz": "extxyz"}


def write_structures(atoms: list[Atoms], frame: pd.DataFrame, out: str | os.PathLike, fmt: str) -> list[Path]:
    """Write each structure as ``structure_<row>.<fmt>`` (one ``structures.extxyz`` for extxyz,
    whose per-frame info keeps every parameter) and an ``index.csv`` mapping rows, design
    parameters and the field to files. Returns the written paths.

    The folder ``out`` is written whole or not at all: it must be new, empty or an earlier
    output of matdesinne, which is replaced (no file of an older run stays beside the new
    index); a failure midway leaves it as it was.
    """
    from ase.io import write

    from matdesinne.io import atomic_folder, write_csv

    if fmt not in FORMATS:
        raise UserInputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = Path(out)
    index = frame.copy()
    if fmt == "extxyz":
        names, contents = ["structures.extxyz"], [atoms]  # every structure in one file
        index["file"] = names[0]
        index["frame"] = range(len(atoms))
    else:
        ext = "vasp" if fmt == "poscar" else fmt
        names, contents = [f"structure_{i:05d}.{ext}" for i in range(len(atoms))], atoms
        index["file"] = names
    with atomic_folder(out) as tmp:
        for name, content in zip(names, contents):
            write(tmp / name, content, format=FORMATS[fmt])
        write_csv(index, tmp / "index.csv")
    return [*(out / name for name in names), out / "index.csv"]
