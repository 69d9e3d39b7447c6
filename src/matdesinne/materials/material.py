"""A material: its design space, properties, structure builder and built-in files.

A :class:`Material` is everything matdesinne knows of one material, in one place. Layered
materials (the 2D ones this package targets) share one structure convention,
:class:`LayerBuilder`: the design's lattice parameters make a new cell and the reference
structure's fractional coordinates are kept, so the layer thickness scales with ``c`` and
shears with α, β. This is how the published MoS2 data was built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from ase import Atoms
from ase.geometry import cellpar_to_cell

from matdesinne.data.design_space import DesignSpace, Parameter, Property
from matdesinne.errors import UserInputError

#: Lattice parameters in ASE's ``cellpar`` order: lengths in Å, angles in degrees.
LATTICE = ("a", "b", "c", "alpha", "beta", "gamma")
LATTICE_UNITS = {"a": "Å", "b": "Å", "c": "Å", "alpha": "deg", "beta": "deg", "gamma": "deg"}
#: The perpendicular electric field, V/Å along z; applied by the DFT calculator, not the builder.
FIELD = "efield"

Builder = Callable[[Mapping[str, float]], Atoms]


def cell_from(cellpar) -> np.ndarray:
    """The (3, 3) cell of lattice parameters ``cellpar`` (Å, degrees); refuses, in one line,
    angles no cell can have and cells flat to round-off."""
    cellpar = [float(v) for v in cellpar]
    try:
        cell = cellpar_to_cell(cellpar)
    except (AssertionError, ValueError):  # ASE asserts on angles no cell can have
        raise UserInputError(f"lattice parameters {cellpar} make a degenerate cell") from None
    volume = float(np.linalg.det(cell))
    if not np.isfinite(volume) or volume <= 1e-6 * np.prod(cellpar[:3]):
        raise UserInputError(f"lattice parameters {cellpar} make a degenerate cell")
    return cell


@dataclass(frozen=True)
class LayerBuilder:
    """Builds a monolayer from one design (a mapping name -> value).

    ``symbols`` and ``fractional`` (n, 3) are the atoms of the unstrained layer, whose
    lattice parameters are ``cellpar`` (vacuum along c). Lattice parameters missing from a
    design keep those values; the field (V/Å) goes into ``atoms.info`` for the calculator,
    with ``layer=True`` so that it computes a slab.
    """

    symbols: tuple[str, ...]
    fractional: tuple[tuple[float, float, float], ...]
    cellpar: tuple[float, ...]

    @classmethod
    def of(cls, atoms: Atoms) -> "LayerBuilder":
        """The builder that keeps the fractional coordinates of ``atoms``."""
        return cls(tuple(atoms.get_chemical_symbols()), tuple(map(tuple, atoms.get_scaled_positions())),
                   tuple(float(v) for v in atoms.cell.cellpar()))

    @property
    def reference(self) -> Atoms:
        """The unstrained layer at zero field."""
        return self({})

    def __call__(self, design: Mapping[str, float]) -> Atoms:
        own = dict(zip(LATTICE, self.cellpar))
        cellpar = [float(design.get(k, own[k])) for k in LATTICE]
        atoms = Atoms(self.symbols, scaled_positions=self.fractional, cell=cell_from(cellpar), pbc=True)
        atoms.info.update({k: float(design[k]) for k in LATTICE if k in design})
        atoms.info[FIELD] = float(design.get(FIELD, 0.0))  # applied by the calculator
        atoms.info["layer"] = True  # a monolayer: vacuum along c, computed as a slab
        return atoms


@dataclass(frozen=True)
class Material:
    """One material.

    ``parameters`` is its design space and ``properties`` what can be designed for (the
    first is the default), each with its unit and physical limits. ``builder`` makes a
    structure from a design (None: the space has no structures, so no DFT; its
    ``reference`` is the unstrained structure, the zero of the strain energy).
    ``data``, ``models`` and ``source`` are its built-in dataset (CSV), shipped models
    folder and the file it was read from, where it has them.
    """

    name: str
    parameters: tuple[Parameter, ...]
    properties: tuple[Property, ...]
    builder: LayerBuilder | None = None
    data: Path | None = None
    models: Path | None = None
    source: Path | None = None

    def property(self, name: str | None = None) -> Property:
        """The property ``name`` (default: the first)."""
        if name is None:
            return self.properties[0]
        for prop in self.properties:
            if prop.name == name:
                return prop
        raise UserInputError(f"{self.name} has no property {name!r}; it has {', '.join(p.name for p in self.properties)}")

    def space(self, property_name: str | None = None) -> DesignSpace:
        """The design space mapped to one property (default: the first)."""
        return DesignSpace(self.name, self.parameters, self.property(property_name))

    def symmetries(self) -> tuple:
        """The maps of designs that build congruent structures in this space (see
        :mod:`matdesinne.materials.symmetry`); none without a builder."""
        from matdesinne.materials.symmetry import find_symmetries

        return find_symmetries(self.builder, self.space())

    def build(self, design: Mapping[str, float]) -> Atoms:
        if self.builder is None:
            raise UserInputError(f"design space {self.name!r} has no structure builder; give it a structure file")
        return self.builder(design)



#: How the figures group lattice parameters into strains, as the paper plots them.
STRAIN_KINDS = {
    "in-plane": ("a", "b", "gamma"),
    "out-of-plane": ("c", "alpha", "beta"),
    "tensile/compressive": ("a", "b", "c"),
    "shear": ("alpha", "beta", "gamma"),
}
_SYMBOL = {"alpha": "α", "beta": "β", "gamma": "γ"}


def strain_groups(space: DesignSpace) -> dict[str, list[str]]:
    """The strain groups of a space's lattice parameters that have an equilibrium, e.g.
    ``{"shear (α, β, γ)": ["alpha", "beta", "gamma"], ...}``; groups the space lacks
    entirely are left out, so a space without lattice parameters has none."""
    present = {p.name for p in space.parameters if p.name in LATTICE and p.equilibrium}
    groups = {}
    for kind, names in STRAIN_KINDS.items():
        kept = [n for n in names if n in present]
        if kept:
            groups[f"{kind} ({', '.join(_SYMBOL.get(n, n) for n in kept)})"] = kept
    return groups
