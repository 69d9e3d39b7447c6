"""A material from a TOML file and a structure file: no Python needed.

Example (``ws2.toml``, beside ``ws2.cif``)::

    name = "ws2"
    structure = "ws2.cif"          # any format ASE reads; relative to this file
    [parameters]
    a = "±20%"                     # ± % of the reference's value ...
    c = [10.0, 14.0]               # ... or an absolute range (Å, degrees)
    gamma = "±20%"
    efield = [-1.0, 1.0]           # V/Å, perpendicular to the layer
    [properties]                   # the first is the default
    band_gap = { unit = "eV", lower = 0 }
    strain_energy = { unit = "eV/atom" }

The reference structure must be a 2D layer with vacuum along c. Parameters are any subset
of a, b, c, alpha, beta, gamma and efield; the others keep the reference's values.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from matdesinne.data.design_space import Parameter, Property
from matdesinne.errors import UserInputError
from matdesinne.io import is_special
from matdesinne.materials.material import FIELD, LATTICE, LATTICE_UNITS, LayerBuilder, Material, cell_from

#: The least vacuum (Å) between periodic images of the layer along c for it to count as 2D.
MIN_VACUUM = 5.0
_RELATIVE = re.compile(r"^\s*(?:±|\+-|\+/-)\s*([0-9]*\.?[0-9]+)\s*%\s*$")
_KEYS = {"name", "structure", "parameters", "properties"}


def read_space_file(path: str | os.PathLike) -> Material:
    """The material a TOML file describes; any mistake in it is a one-line ``UserInputError``
    naming the file."""
    path = Path(path)
    if not path.is_file() or is_special(path):
        raise UserInputError(f"{path}: no such design-space file")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UserInputError(f"{path}: not a readable TOML file ({str(err).splitlines()[0]})") from None
    where = str(path)
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise UserInputError(f"{where}: unknown key(s) {', '.join(unknown)}; a space file has {', '.join(sorted(_KEYS))}")
    missing = sorted(k for k in _KEYS if k not in spec)
    if missing:
        raise UserInputError(f"{where}: missing {', '.join(missing)}")
    name = spec["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UserInputError(f"{where}: name must be a plain word (letters, digits, _ . -), got {name!r}")
    if not isinstance(spec["structure"], str) or not spec["structure"]:
        raise UserInputError(f"{where}: structure must name a structure file")
    reference = read_reference(path.parent / spec["structure"])
    parameters = _parameters(spec["parameters"], reference, where)
    properties = _properties(spec["properties"], where)
    builder = LayerBuilder.of(reference)
    check_corners(parameters, builder, where)
    return Material(name, parameters, properties, builder, source=path.resolve())


def read_reference(path: Path) -> Atoms:
    """The reference structure; refused in one line when missing, unreadable or not a 2D slab."""
    from ase.io import read

    if not path.is_file() or is_special(path):
        raise UserInputError(f"{path}: no such structure file")
    try:
        atoms = read(path)
    except Exception as err:  # noqa: BLE001 -- ASE's readers raise anything on a bad file
        raise UserInputError(f"{path}: not a structure ASE can read ({type(err).__name__}: {err})".splitlines()[0]) from None
    if len(atoms) == 0 or abs(np.linalg.det(atoms.cell.array)) < 1e-6:
        raise UserInputError(f"{path}: holds no atoms in a periodic cell")
    vacuum = vacuum_along_c(atoms)
    if vacuum < MIN_VACUUM:
        raise UserInputError(f"{path}: is not a 2D slab: {vacuum:.2f} Å of vacuum along c, need at least {MIN_VACUUM:g} Å")
    return atoms


def vacuum_along_c(atoms: Atoms) -> float:
    """The widest empty slice between periodic images of the atoms along c, in Å (measured
    along the normal of the a-b plane)."""
    cell = atoms.cell.array
    normal = np.cross(cell[0], cell[1])
    height = abs(float(np.dot(cell[2], normal))) / float(np.linalg.norm(normal))
    z = np.sort(atoms.get_scaled_positions()[:, 2] % 1.0)
    gaps = np.diff(np.concatenate([z, [z[0] + 1.0]]))
    return float(gaps.max()) * height


def _range(value: Any, name: str, reference: float | None, where: str) -> tuple[float, float]:
    field = f"{where}: parameters.{name}"
    if isinstance(value, str):
        match = _RELATIVE.match(value)
        if not match:
            raise UserInputError(f"{field} = {value!r} is not of the form \"±P%\" or [LOW, HIGH]")
        if reference is None or reference == 0:
            raise UserInputError(f"{field}: a ± % range needs a nonzero reference value; give [LOW, HIGH]")
        share = float(match.group(1)) / 100
        low, high = sorted(((1 - share) * reference, (1 + share) * reference))
        if share == 0:
            raise UserInputError(f"{field} = {value!r} is an empty range")
        return low, high
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        low, high = float(value[0]), float(value[1])
        if low >= high:
            raise UserInputError(f"{field} = {value} is an empty or inverted range; give [LOW, HIGH] with LOW < HIGH")
        return low, high
    raise UserInputError(f"{field} = {value!r} is not of the form \"±P%\" or [LOW, HIGH] with finite numbers")


def _parameters(table: Any, reference: Atoms, where: str) -> tuple[Parameter, ...]:
    if not isinstance(table, dict) or not table:
        raise UserInputError(f"{where}: [parameters] must name at least one of {', '.join((*LATTICE, FIELD))}")
    own = dict(zip(LATTICE, (float(v) for v in reference.cell.cellpar())))
    known = (*LATTICE, FIELD)
    out = []
    for name, value in table.items():
        if name not in known:
            raise UserInputError(f"{where}: unknown parameter {name!r}; known: {', '.join(known)}")
        equilibrium = own.get(name, 0.0)
        low, high = _range(value, name, equilibrium if name != FIELD else None, where)
        out.append(Parameter(name, low, high, LATTICE_UNITS.get(name, "V/Å"), equilibrium))
    # The cellpar order, the field last, whatever order the file lists them in.
    return tuple(sorted(out, key=lambda p: known.index(p.name)))


def _properties(table: Any, where: str) -> tuple[Property, ...]:
    if not isinstance(table, dict) or not table:
        raise UserInputError(f"{where}: [properties] must name at least one property")
    out = []
    for name, spec in table.items():
        if not isinstance(spec, dict) or set(spec) - {"unit", "lower", "upper"}:
            raise UserInputError(f"{where}: properties.{name} must be a table of unit, lower, upper")
        unit = spec.get("unit", "")
        limits = [spec.get("lower"), spec.get("upper")]
        if not isinstance(unit, str) or any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))
                                            for v in limits):
            raise UserInputError(f"{where}: properties.{name}: unit must be text, lower and upper numbers")
        out.append(Property(name, unit, *(None if v is None else float(v) for v in limits)))
    return tuple(out)


def check_corners(parameters: tuple[Parameter, ...], builder: LayerBuilder, where: str) -> None:
    """Refuse a box with a corner whose cell is degenerate, naming the corner."""
    lattice = [p for p in parameters if p.name in LATTICE]
    own = dict(zip(LATTICE, builder.cellpar))
    for corner in itertools.product(*[(p.low, p.high) for p in lattice]):
        values = {**own, **{p.name: v for p, v in zip(lattice, corner)}}
        try:
            cell_from([values[k] for k in LATTICE])
        except UserInputError:
            named = ", ".join(f"{p.name}={v:g}" for p, v in zip(lattice, corner))
            raise UserInputError(f"{where}: the corner {named} of the design space makes a degenerate cell; "
                                 "narrow those ranges") from None
