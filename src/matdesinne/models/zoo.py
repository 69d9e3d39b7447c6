"""Finding and loading a set of models: a generator and the surrogate of one design space,
checked to belong together (see :mod:`~matdesinne.models.manifest`)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from matdesinne.errors import UserInputError
from matdesinne.materials import DEFAULT, Material, material, material_of, space_reference
from matdesinne.models.cfm import CFM
from matdesinne.models.cinn import CINN
from matdesinne.models.cvae import CVAE
from matdesinne.models.generator import Generator
from matdesinne.models.inn import INN
from matdesinne.models.manifest import MANIFEST, file_sha256, read_manifest, unlisted_or_changed
from matdesinne.models.mdn import MDN
from matdesinne.models.surrogate import EnsembleSurrogate

#: Samplers of p(x | y) by checkpoint kind.
GENERATORS: dict[str, type[Generator]] = {cls.kind: cls for cls in (CINN, INN, MDN, CVAE, CFM)}


def default_models_dir(space: str | os.PathLike | Material = DEFAULT) -> Path:
    """The shipped models of a material (default: the paper's), inside the installed package."""
    found = space if isinstance(space, Material) else material(space)
    if found.models is None:
        # Name the command that makes them, for this very space.
        raise UserInputError(f"space {found.name!r} ships no models: make some with `matdesinne train --data DATA.csv "
                             f"--space {found.source or found.name} --out MODELS` (DATA.csv from `matdesinne label`), "
                             "then pass --models MODELS")
    return found.models


#: The end of every message that refuses a set for its provenance.
_MIXED_HINT = "train the set again (matdesinne train), or pass allow_mixed=True to use it anyway"


@dataclass
class ModelSet:
    """A generator (sampler of p(x | y); None when only the surrogate was loaded) and a
    forward surrogate trained on the same design space."""

    generator: Generator | None
    surrogate: EnsembleSurrogate
    directory: Path
    space_file: str | None = None

    @property
    def space(self):
        return self.surrogate.space_

    @functools.cached_property
    def material(self) -> Material | None:
        """The material of the models' design space: its TOML file (named when loading, or
        in the training record), else the built-in of its name; None when there is neither."""
        return material_of(self.space, self.space_file)

    @property
    def files(self) -> list[Path]:
        """Every file of the models folder (checkpoints, manifest, calibrations): inputs that
        a command's outputs must not overwrite."""
        return sorted(p for p in self.directory.iterdir() if p.is_file())

    @property
    def builder(self):
        """The structure builder of the models' material; None where it has none (whoever
        needs structures then refuses in one line, after checking the rest of its input)."""
        found = self.material
        return None if found is None else found.builder


def load_models(
    directory: str | os.PathLike | None = None,
    generator: str | None = "cinn",
    device: str = "cpu",
    allow_mixed: bool = False,
    space: str | os.PathLike | None = None,
) -> ModelSet:
    """Load ``<generator>`` and ``surrogate`` checkpoints from ``directory`` (default: the
    shipped models of ``space``, a material's name or TOML file; default: MoS2);
    ``generator=None`` loads the surrogate alone (enough to predict). Models of another
    space than ``space`` are refused.

    Refused in one line unless ``allow_mixed``: a checkpoint whose files differ from the
    folder's manifest (an interrupted ``train``), checkpoints from a ``train`` run in a
    folder without a manifest, and a generator and surrogate from different training runs
    where the generator was not trained against this surrogate. A folder without a manifest
    whose checkpoints record no run (the shipped models before manifests, models saved by
    ``Estimator.save``) loads as it is. Models of different design spaces are always refused.
    """
    found = material(space) if space is not None else None
    directory = Path(directory) if directory is not None else default_models_dir(found or DEFAULT)
    if not directory.is_dir():
        raise UserInputError(f"{directory}: no such models folder")
    if generator is not None and generator not in GENERATORS:
        raise UserInputError(f"unknown generator {generator!r}: use one of {', '.join(GENERATORS)}")
    manifest = None if allow_mixed else read_manifest(directory)
    if manifest is not None:  # checked before loading: a half-moved set is not a set
        problem = unlisted_or_changed(directory, [k for k in (generator, "surrogate") if k], manifest)
        if problem:
            raise UserInputError(f"{directory}: {problem}, so the folder holds an interrupted or altered training; {_MIXED_HINT}")
    gen = GENERATORS[generator].load(directory, device) if generator is not None else None
    sur = EnsembleSurrogate.load(directory, device)
    if gen is not None and not gen.space_.same_space(sur.space_):
        raise UserInputError(
            f"{directory}: the {generator} checkpoint belongs to design space {gen.space_.name!r} "
            f"({', '.join(gen.space_.names)} -> {gen.space_.property.name}) but the surrogate to "
            f"{sur.space_.name!r} ({', '.join(sur.space_.names)} -> {sur.space_.property.name})"
        )
    if not allow_mixed:
        _check_provenance(directory, gen, sur, manifest is not None)
    if found is not None and found.name != sur.space_.name:
        raise UserInputError(f"{directory}: the models belong to design space {sur.space_.name!r}, not {found.name!r}")
    space_file = space_reference(found) if found is not None else sur.training_.get("space")
    return ModelSet(gen, sur, directory, space_file)


def _check_provenance(directory: Path, gen: Generator | None, sur: EnsembleSurrogate, has_manifest: bool) -> None:
    """Refuse a set whose members do not come from one training (see :func:`load_models`)."""
    runs = {m.kind: m.training_.get("run") for m in (gen, sur) if m is not None}
    if not has_manifest and any(runs.values()):
        raise UserInputError(f"{directory}: has no {MANIFEST}, yet holds checkpoints of a train run, so that run "
                             f"was interrupted or the files were copied in; {_MIXED_HINT}")
    if gen is None or runs[gen.kind] == runs["surrogate"]:
        return
    if gen.training_.get("surrogate_sha256") == file_sha256(directory / "surrogate.safetensors"):
        return  # trained later, on points labelled by this very surrogate
    raise UserInputError(
        f"{directory}: the {gen.kind} (training run {runs[gen.kind] or 'unrecorded'}) and the surrogate (run "
        f"{runs['surrogate'] or 'unrecorded'}) come from different trainings, and the {gen.kind} was not "
        f"trained against this surrogate; {_MIXED_HINT}"
    )
