"""Train a model set (the surrogate and generators) on one dataset with one shared split.

A training run is all or nothing: the models are trained and saved in a temporary folder
beside ``out``, moved into ``out`` only when all are done, and the manifest ``models.json``
(see :mod:`~matdesinne.models.manifest`) is written last. Other files in ``out`` (the
shipped folder's DFT calibrations) are left alone.

It is also resumable: while a model trains, its progress is saved in
``out/.train-progress/<kind>.safetensors`` (see :class:`~matdesinne.models.fitting.Progress`),
so the same call, run again after an interruption, goes on from the last save (about 30 s
back, or one epoch where an epoch is longer) and ends with the same models. A finished run
removes those files.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from matdesinne.data.datasets import check_seed
from matdesinne.data.splits import Split, fold_digest
from matdesinne.materials import (
    DEFAULT, builtin_names, dataset_reference, load_dataset, material, recorded_split, space_reference,
)
from matdesinne.materials.symmetry import with_images
from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.io import read_csv, check_folder, ensure_dir, read_json, temporary_folder
from matdesinne.models.base import Estimator, resolve_device
from matdesinne.models.checkpoint import checkpoint_files
from matdesinne.models.fitting import Progress, progress_key
from matdesinne.models.manifest import (
    file_sha256, member_entry, new_run_id, read_manifest, unlisted_or_changed, write_manifest,
)
from matdesinne.models.surrogate import EnsembleSurrogate
from matdesinne.models.zoo import GENERATORS, load_models

ESTIMATORS = {EnsembleSurrogate.kind: EnsembleSurrogate, **GENERATORS}

#: The folder in ``out`` where an unfinished run keeps each model's progress.
PROGRESS_DIR = ".train-progress"

#: Generator settings on an augmented set: each epoch is then ~25x longer, so fewer,
#: larger-batch epochs.
AUGMENTED = {"epochs": 60, "batch_size": 1024, "lr": 1e-3, "patience": 10}
#: A flow-matching loss levels off long before its samples stop improving (the loss keeps
#: the irreducible variance of the paths), so CFM trains for a fixed, longer schedule, with
#: the learning rate annealed along it (it never stalls clearly enough to be halved).
AUGMENTED_BY_KIND = {"cfm": {"epochs": 3000, "batch_size": 1024, "lr": 1e-3, "patience": 3000,
                             "lr_schedule": "cosine"}}


def augment_with_surrogate(x, y, space, surrogate: EnsembleSurrogate, n: int, seed: int):
    """Append ``n`` design points drawn uniformly from the box, labelled by ``surrogate``.

    A conditional generator learns p(x | y) from a few thousand rows only coarsely: the
    level sets of y are thin shells in design space. Labelled uniform points (uniform like
    the MoS2 sampling itself) show it those shells densely. Only training rows reach the
    surrogate that labels them, so validation and test rows stay unseen.
    """
    extra = np.random.default_rng(seed).uniform(space.lows, space.highs, (n, space.dim))
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        labels, _ = surrogate.predict(extra)
        return np.vstack([x, extra]), np.concatenate([y, labels])
    # Several properties: the surrogate's own, in its order (it was trained on the same columns).
    every = surrogate.predict_all(extra)
    if len(every) != y.shape[1]:
        raise UserInputError(f"augmenting {y.shape[1]} properties needs a surrogate of them all; it predicts "
                             f"{', '.join(every)}")
    labels = np.column_stack([mean for mean, _ in every.values()])
    return np.vstack([x, extra]), np.vstack([y, labels])


def train_models(
    data: str = DEFAULT,
    x: Sequence[str] | None = None,
    y: str | Sequence[str] | None = None,
    kinds: Sequence[str] = ("surrogate", *GENERATORS),
    out: str | os.PathLike = "models",
    epochs: int | None = None,
    members: int | None = None,
    seed: int = 0,
    split_seed: int = 0,
    device: str = "auto",
    augment: int = 200_000,
    y_lower: float | None = None,
    y_upper: float | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    space: str | os.PathLike | None = None,
    symmetry: bool = True,
) -> dict:
    """Fit each model kind on the training rows, pick its epoch on the validation rows, and
    save it to ``out``. Test rows are never seen. Returns each model's training record.

    Generators train on the training rows plus ``augment`` surrogate-labelled uniform
    points (see :func:`augment_with_surrogate`; 0 turns it off), all on the same points;
    they use the surrogate trained in the same call, or else the one already in ``out``,
    whose SHA-256 their record keeps (``surrogate_sha256``) so that the set loads as one.
    ``y`` names the property, or several (``"band_gap,strain_energy"`` or a list): the
    surrogate predicts them all (one ensemble, one output each) and the generators
    condition on them all (the INN, whose output holds y, on the first only). ``y_lower``/``y_upper`` declare a CSV property's physical limits (a
    built-in gap has lower = 0; they apply to the first property). With ``space`` (a material's name or TOML file), a CSV takes that space's
    columns, bounds and property ``y`` instead. Seeds run from 0 to 2**32 - 1. ``members``
    sets the surrogate's ensemble size (default: :class:`~matdesinne.models.EnsembleSurrogate`'s).

    With ``symmetry`` (the default), a material whose designs come in congruent pairs (see
    :mod:`matdesinne.materials.symmetry`) trains every model on its training rows and
    their images, which have the same properties; validation and test rows stay as they are.

    Every record gets the run id (``run``), the dataset as a built-in name or an absolute
    path (``data``), the split and ``augment``. Settings, seeds, the dataset and ``out`` are
    checked before any training. An interrupted run leaves the checkpoints in ``out`` as they
    were, and its progress in ``out/.train-progress/``: the same call resumes from it.
    """
    seed, split_seed = check_seed(seed), check_seed(split_seed, "split_seed")
    if isinstance(augment, bool) or not isinstance(augment, (int, np.integer)) or augment < 0:
        raise UserInputError(f"augment={augment!r} must be a whole number, 0 or more")
    unknown = [k for k in kinds if k not in ESTIMATORS]
    if unknown:
        raise UserInputError(f"unknown model {unknown[0]!r}: use one of {', '.join(ESTIMATORS)}")
    if not kinds:
        raise UserInputError(f"no model to train: name one or more of {', '.join(ESTIMATORS)}")
    if members is not None and "surrogate" not in kinds:
        raise UserInputError("members sets the surrogate's ensemble size: train the surrogate too")
    models: dict[str, Estimator] = {}
    for kind in sorted(dict.fromkeys(kinds), key=lambda k: k != "surrogate"):  # the surrogate first
        augmented = AUGMENTED_BY_KIND.get(kind, AUGMENTED)
        settings = {"seed": seed, "device": device, **(augmented if kind in GENERATORS and augment else {})}
        if epochs is not None:
            settings["epochs"] = epochs
        if members is not None and kind == "surrogate":
            settings["members"] = members
        models[kind] = ESTIMATORS[kind](**settings)
        models[kind]._check_params()
    out = check_folder(out)
    check_folder(out / PROGRESS_DIR)  # refused now, not at the first save
    found = material(space) if space is not None else None
    first, *more = property_names(y)
    if more and x is None and found is None and str(data) not in builtin_names():
        x = [str(c) for c in read_csv(data).columns if c not in (first, *more)]  # not the other properties
    dataset = load_dataset(data, x, first, y_lower=y_lower, y_upper=y_upper, space=found)
    if found is not None and dataset.space.name != found.name:
        raise UserInputError(f"the built-in dataset {data} belongs to {dataset.space.name!r}, not space {found.name!r}")
    also = [load_dataset(data, x, name, space=found) for name in more]
    for name, other in zip(more, also):
        if name == dataset.space.property.name or other.x.shape != dataset.x.shape or not np.array_equal(other.x, dataset.x):
            raise UserInputError(f"property {name!r} cannot be learnt beside {dataset.space.property.name!r}: "
                                 "it repeats it, or it lacks values on some rows")
    y_all = np.column_stack([dataset.y, *(o.y for o in also)])
    split = fixed_split(data, dataset, out, split_seed, val_fraction, test_fraction)
    train, val, test = split.indices(dataset.x, f"dataset {data}")
    owner = found or (material(str(data)) if str(data) in builtin_names() else None)
    maps = owner.symmetries() if symmetry and owner is not None else ()
    labeller = None  # (surrogate, SHA-256 of its weights) that labels the augmented points
    if augment and "surrogate" not in models and models.keys() & GENERATORS.keys():
        labeller = _surrogate_in(out, dataset.space)
    run = new_run_id()
    record = {
        "run": run, "data": dataset_reference(data),
        **({"space": ref} if (ref := space_reference(found)) else {}),
        "split": split.to_dict(dataset.x),
        **({"symmetry_images": [m.name for m in maps]} if maps else {}),
    }
    augmented = {}  # by the number of properties: one for a generator of one condition, else all
    properties = [o.space.property for o in also]
    with temporary_folder(out) as stage:
        for kind, model in models.items():
            # The surrogate learns every property; a generator conditions on them all where its family can.
            every = bool(also) and (kind == "surrogate" or getattr(model, "vector_conditions", False))
            y_source = y_all if every else y_all[:, :1]
            x_fit, y_fit = with_images(dataset.x[train], y_source[train], maps, dataset.space)
            extra = {"augment": 0}
            if kind in GENERATORS and augment:
                if y_fit.shape[1] not in augmented:
                    augmented[y_fit.shape[1]] = augment_with_surrogate(
                        x_fit, y_fit if every else y_fit[:, 0], dataset.space, labeller[0], augment, seed)
                x_fit, y_fit = augmented[y_fit.shape[1]]
                extra = {"augment": augment, "surrogate_sha256": labeller[1]}
            key = progress_key(kind, {k: v for k, v in model.get_params().items() if k != "device"},
                               dataset.space.to_dict(), [asdict(p) for p in properties] if every else [],
                               x_fit, y_fit, dataset.x[val], y_source[val], device=resolve_device(model.device))
            model.fit(x_fit, y_fit, dataset.space, dataset.x[val], y_source[val], **({"also": properties} if every else {}),
                      progress=Progress(out / PROGRESS_DIR / f"{kind}.safetensors", key))
            model.training_.update(record, **extra)
            model.save(stage)
            if kind == "surrogate":
                labeller = (model, file_sha256(stage / "surrogate.safetensors"))
        _move_in(stage, out, list(models), run)
    with contextlib.suppress(OSError):  # the models are in: leftover progress is only disk space
        for kind in models:
            (out / PROGRESS_DIR / f"{kind}.safetensors").unlink(missing_ok=True)
        if (out / PROGRESS_DIR).is_dir() and not any((out / PROGRESS_DIR).iterdir()):
            (out / PROGRESS_DIR).rmdir()
    return {kind: model.training_ for kind, model in models.items()}


def fixed_split(data, dataset, out: Path, seed: int, val_fraction: float, test_fraction: float) -> Split:
    """The split to train on: the one the dataset's provenance records, else the one the
    models already in ``out`` were trained with (on this dataset), else a new one drawn
    with ``seed``. Either way, a row that was a test row stays one, and rows added since
    train. A recorded split drawn with another seed or fractions than asked is refused in
    one line (asking for a new split of a grown dataset would move test rows into training).
    """
    asked = Split.draw(len(dataset), seed, val_fraction, test_fraction)
    for where, found in (("the dataset's provenance", recorded_split(data)), (f"the models in {out}", _split_in(out, data, dataset.x))):
        if found is None:
            continue
        if not found.same_draw(asked):
            raise UserInputError(f"{where} fixes the split of {data} (split_seed={found.seed}, validation "
                                 f"{found.val_fraction:g}, test {found.test_fraction:g}); ask for that, or train "
                                 "into another folder")
        found.indices(dataset.x, f"dataset {data}")  # refuses a dataset whose recorded rows changed
        return found
    return asked


def _split_in(out: Path, data, x: np.ndarray) -> Split | None:
    """The split recorded by a model in ``out`` trained on dataset ``data``, or None. A
    record from before splits were fixed (no row digests) is taken to cover the dataset's
    first rows, as datasets grow by appending."""
    reference = dataset_reference(data)
    for kind in ESTIMATORS:
        try:
            training = read_json(out / f"{kind}.json").get("training") if (out / f"{kind}.json").is_file() else None
        except UserInputError:
            continue  # a damaged checkpoint is refused where it is loaded, not here
        if not isinstance(training, dict) or training.get("data") != reference or not isinstance(training.get("split"), dict):
            continue
        found = Split.from_dict(training["split"], str(out / f"{kind}.json"))
        if found.test_digest is None and found.rows <= len(x):
            train, val, test = found.folds()
            found = Split(found.seed, found.val_fraction, found.test_fraction, found.rows,
                          fold_digest(x, val), fold_digest(x, test))
        return found
    return None


def property_names(y: str | Sequence[str] | None) -> list[str | None]:
    """``"band_gap,strain_energy"`` or a list of names -> the names, refusing a blank or
    repeated one in one line; None stays the dataset's default property."""
    if y is None:
        return [None]
    names = [n.strip() for n in y.split(",")] if isinstance(y, str) else list(y)
    if not names or any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise UserInputError(f"y={y!r} must name one or more different properties, comma-separated")
    return names


def _surrogate_in(out: Path, space: DesignSpace) -> tuple[EnsembleSurrogate, str]:
    """The surrogate already in ``out`` (checked as :func:`load_models` checks a set) with the
    SHA-256 of its weights, for augmenting generators trained without one."""
    surrogate = load_models(out, generator=None).surrogate if (out / "surrogate.json").exists() else None
    if surrogate is None or not surrogate.space_.same_space(space):
        raise UserInputError(f"{out}: augmenting a generator needs a surrogate of this design space; "
                             "train the surrogate too, or pass augment=0")
    return surrogate, file_sha256(out / "surrogate.safetensors")


def _move_in(stage: Path, out: Path, kinds: Sequence[str], run: str) -> None:
    """Move the run's checkpoints from ``stage`` into ``out``, then write the manifest, last.

    Until the manifest is written, the folder's old manifest (or its absence) no longer
    matches the new files, so an interruption here is refused by :func:`load_models`.
    """
    members = {**_kept_members(out, kinds), **{kind: member_entry(stage, kind, run) for kind in kinds}}
    ensure_dir(out)
    try:
        for kind in kinds:
            for name in checkpoint_files(kind):
                os.replace(stage / name, out / name)
    except OSError as err:
        raise UserInputError(f"{out}: cannot move the trained models in ({err.strerror or err})") from None
    write_manifest(out, members, run)


def _kept_members(out: Path, retrained: Sequence[str]) -> dict:
    """Manifest entries of the checkpoints in ``out`` that this run does not replace and that
    still belong to a set: those matching ``out``'s manifest or, in a folder without one,
    those that record no run (written before manifests existed). Others are left out, so
    that :func:`load_models` refuses them."""
    try:
        manifest = read_manifest(out) if out.is_dir() else None
    except UserInputError:
        return {}  # a damaged manifest vouches for nothing: the new one lists this run alone
    kept = {}
    for kind in ESTIMATORS.keys() - set(retrained):
        if not all((out / name).is_file() for name in checkpoint_files(kind)):
            continue
        if manifest is not None:
            if unlisted_or_changed(out, [kind], manifest) is None:
                kept[kind] = manifest["members"][kind]
        elif _records_no_run(out / f"{kind}.json"):
            kept[kind] = member_entry(out, kind, None)
    return kept


def _records_no_run(meta_path: Path) -> bool:
    """True for a readable checkpoint JSON whose training record names no run."""
    try:
        training = read_json(meta_path).get("training")
    except UserInputError:
        return False
    return isinstance(training, dict) and training.get("run") is None
