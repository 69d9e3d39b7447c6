"""Materials as plug-ins: one subpackage per built-in material, or a TOML space file.

Each built-in material is a subpackage of this package that defines ``MATERIAL``, a
:class:`~matdesinne.materials.material.Material`; it is found by its folder's name, so
adding one names it nowhere else. A user's material is a TOML file and a structure file
(see :mod:`~matdesinne.materials.spacefile`). Everything above this layer reaches
materials only through :func:`material` and :func:`material_of`.
"""

from matdesinne.materials.datasets import (
    dataset_reference, load_dataset, provenance_file, recorded_split, space_reference, training_dataset,
    training_split,
)
from matdesinne.materials.material import FIELD, LATTICE, LayerBuilder, Material, strain_groups
from matdesinne.materials.registry import DEFAULT, builder_for, builtin_names, material, material_of
from matdesinne.materials.spacefile import read_space_file

__all__ = [
    "DEFAULT", "FIELD", "LATTICE", "LayerBuilder", "Material", "builder_for", "builtin_names", "dataset_reference",
    "load_dataset", "material", "material_of", "read_space_file", "space_reference", "strain_groups",
    "training_dataset", "training_split", "provenance_file", "recorded_split",
]
