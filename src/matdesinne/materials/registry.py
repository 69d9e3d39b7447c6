"""Finding a material by name (a built-in subpackage) or by file (a TOML space file)."""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from pathlib import Path

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.io import is_inside, same_file
from matdesinne.materials.material import Builder, Material

#: The material commands use when none is named: the paper's.
DEFAULT = "mos2"


def builtin_names() -> list[str]:
    """The built-in materials: the subpackages of :mod:`matdesinne.materials`."""
    return list(_builtin_names())


@functools.cache
def _builtin_names() -> tuple[str, ...]:
    # Listed once per process: every command's parser asks, and the package does not change.
    here = Path(__file__).parent
    return tuple(sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.ispkg))


@functools.cache
def _builtin(name: str) -> Material:
    found = importlib.import_module(f"matdesinne.materials.{name}").MATERIAL
    if found.name != name:
        raise RuntimeError(f"built-in material {name!r} calls itself {found.name!r}")
    return found


def material(spec: str | os.PathLike) -> Material:
    """A built-in material by name, or the material of a TOML space file."""
    text = str(spec)
    if text in builtin_names():
        return _builtin(text)
    if text.endswith(".toml"):
        from matdesinne.materials.spacefile import read_space_file

        return read_space_file(text)
    raise UserInputError(f"unknown space {text!r}: give one of {', '.join(builtin_names())} or a .toml space file")


def material_of(space: DesignSpace, source: str | os.PathLike | None = None) -> Material | None:
    """The material a design space belongs to: its ``source`` file (a TOML space a model
    was trained on, as its training record names it), else the built-in of the same name;
    None when neither exists."""
    if source:
        found = material(source)
        if found.name != space.name:
            raise UserInputError(f"space file {source} describes {found.name!r}, not design space {space.name!r}")
        return found
    return _builtin(space.name) if space.name in builtin_names() else None


def builder_for(space: DesignSpace, source: str | os.PathLike | None = None) -> Builder:
    """The structure builder of a design space (see :func:`material_of`)."""
    found = material_of(space, source)
    if found is None or found.builder is None:
        raise UserInputError(f"design space {space.name!r} has no structure builder; describe it in a .toml space "
                             "file with a structure (see `matdesinne space check`) and pass --space")
    return found.builder


def check_not_shipped(outputs: dict) -> None:
    """Refuse, in one line, an output path inside the built-in materials' folder.

    ``outputs`` maps each argument (as the message should name it, e.g. ``--out``) to its
    path (or None). The materials' datasets,
    models and calibrations are replaced only on purpose, by ``train`` and ``calibrate``
    (see the Makefile); any other command writing there would silently damage what every
    later run reads (e.g. ``design --out .../ws2/ws2_data.csv``).
    """
    root = Path(__file__).parent
    for name, out in outputs.items():
        if out is not None and (same_file(out, root) or is_inside(out, root)):
            raise UserInputError(f"{name} {out}: lies inside matdesinne's built-in materials ({os.path.realpath(root)}), "
                                 "whose data and models this command must not overwrite; choose an output elsewhere")
