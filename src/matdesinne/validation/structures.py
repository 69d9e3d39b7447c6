"""Atomic structures of designs, with the builder of their material (see
:mod:`matdesinne.materials`), and the files they are written to."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.materials import builder_for
from matdesinne.materials.material import Builder


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


def build_structures(frame: pd.DataFrame, space: DesignSpace, source: str = "candidates",
                     build: Builder | None = None) -> list[Atoms]:
    """One ``Atoms`` per row of ``frame``, which must hold the design columns, all inside the
    design space (the region the builder is valid for). ``build`` defaults to the builder
    of the built-in material of the space's name."""
    x = check_in_range(frame, space, source)
    build = builder_for(space) if build is None else build
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
