"""Finding and loading a set of models: a generator and the surrogate of one design space."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from matdesinne.errors import UserInputError
from matdesinne.models.cinn import CINN
from matdesinne.models.cvae import CVAE
from matdesinne.models.generator import Generator
from matdesinne.models.inn import INN
from matdesinne.models.mdn import MDN
from matdesinne.models.surrogate import EnsembleSurrogate

#: Samplers of p(x | y) by checkpoint kind.
GENERATORS: dict[str, type[Generator]] = {cls.kind: cls for cls in (CINN, INN, MDN, CVAE)}


def default_models_dir() -> Path:
    """The shipped MoS2 models, inside the installed package."""
    return Path(str(resources.files("matdesinne") / "pretrained" / "mos2"))


@dataclass
class ModelSet:
    """A generator (sampler of p(x | y)) and a forward surrogate trained on the same design space."""

    generator: Generator
    surrogate: EnsembleSurrogate
    directory: Path

    @property
    def space(self):
        return self.surrogate.space_


def load_models(directory: str | os.PathLike | None = None, generator: str = "cinn", device: str = "cpu") -> ModelSet:
    """Load ``<generator>`` and ``surrogate`` checkpoints from ``directory`` (default: shipped MoS2)."""
    directory = Path(directory) if directory is not None else default_models_dir()
    if not directory.is_dir():
        raise UserInputError(f"{directory}: no such models folder")
    if generator not in GENERATORS:
        raise UserInputError(f"unknown generator {generator!r}: use one of {', '.join(GENERATORS)}")
    gen = GENERATORS[generator].load(directory, device)
    sur = EnsembleSurrogate.load(directory, device)
    if not gen.space_.same_space(sur.space_):
        raise UserInputError(
            f"{directory}: the {generator} checkpoint belongs to design space {gen.space_.name!r} "
            f"({', '.join(gen.space_.names)} -> {gen.space_.property.name}) but the surrogate to "
            f"{sur.space_.name!r} ({', '.join(sur.space_.names)} -> {sur.space_.property.name})"
        )
    return ModelSet(gen, sur, directory)
