"""Train a model set (surrogate and/or cINN) on one dataset with one shared split."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from matdesinne.data.datasets import load_dataset, split_indices
from matdesinne.errors import UserInputError
from matdesinne.io import ensure_dir
from matdesinne.models.surrogate import EnsembleSurrogate
from matdesinne.models.zoo import GENERATORS

ESTIMATORS = {EnsembleSurrogate.kind: EnsembleSurrogate, **GENERATORS}

#: Generator settings on an augmented set: each epoch is then ~25x longer, so fewer,
#: larger-batch epochs.
AUGMENTED = {"epochs": 60, "batch_size": 1024, "lr": 1e-3, "patience": 10}


def augment_with_surrogate(x, y, space, surrogate: EnsembleSurrogate, n: int, seed: int):
    """Append ``n`` design points drawn uniformly from the box, labelled by ``surrogate``.

    A conditional generator learns p(x | y) from a few thousand rows only coarsely: the
    level sets of y are thin shells in design space. Labelled uniform points (uniform like
    the MoS2 sampling itself) show it those shells densely. Only training rows reach the
    surrogate that labels them, so validation and test rows stay unseen.
    """
    extra = np.random.default_rng(seed).uniform(space.lows, space.highs, (n, space.dim))
    labels, _ = surrogate.predict(extra)
    return np.vstack([x, extra]), np.concatenate([y, labels])


def train_models(
    data: str = "mos2",
    x: Sequence[str] | None = None,
    y: str | None = None,
    kinds: Sequence[str] = ("surrogate", *GENERATORS),
    out: str | os.PathLike = "models",
    epochs: int | None = None,
    seed: int = 0,
    split_seed: int = 0,
    device: str = "auto",
    augment: int = 200_000,
    y_lower: float | None = None,
    y_upper: float | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> dict:
    """Fit each model kind on the training rows, pick its epoch on the validation rows, and
    save it to ``out``. Test rows are never seen. Returns each model's training record.

    Generators train on the training rows plus ``augment`` surrogate-labelled uniform
    points (see :func:`augment_with_surrogate`; 0 turns it off), all on the same points;
    they use the surrogate trained in the same call, or else the one already in ``out``. ``y_lower``/``y_upper``
    declare a CSV property's physical limits (the built-in MoS2 gap has lower = 0).
    """
    if augment < 0:
        raise UserInputError(f"--augment must be 0 or more, got {augment}")
    dataset = load_dataset(data, x, y, y_lower=y_lower, y_upper=y_upper)
    train, val, test = split_indices(len(dataset), split_seed, val_fraction, test_fraction)
    out = ensure_dir(out)
    split = {
        "seed": split_seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
        "n_train": len(train), "n_val": len(val), "n_test": len(test),
    }
    unknown = [k for k in kinds if k not in ESTIMATORS]
    if unknown:
        raise UserInputError(f"unknown model {unknown[0]!r}: use one of {', '.join(ESTIMATORS)}")
    records, surrogate, augmented = {}, None, None
    for kind in sorted(kinds, key=lambda k: k != "surrogate"):  # the surrogate first
        x_fit, y_fit = dataset.x[train], dataset.y[train]
        settings = {"seed": seed, "device": device}
        if kind in GENERATORS and augment:
            if augmented is None:
                if surrogate is None and (out / "surrogate.json").exists():
                    surrogate = EnsembleSurrogate.load(out)
                if surrogate is None or not surrogate.space_.same_space(dataset.space):
                    raise UserInputError(f"{out}: augmenting a generator needs a surrogate of this design space; "
                                         "train it too (--model all) or pass --augment 0")
                augmented = augment_with_surrogate(x_fit, y_fit, dataset.space, surrogate, augment, seed)
            x_fit, y_fit = augmented
            settings.update(AUGMENTED)
        if epochs is not None:
            settings["epochs"] = epochs
        model = ESTIMATORS[kind](**settings)
        model.fit(x_fit, y_fit, dataset.space, dataset.x[val], dataset.y[val])
        if kind == "surrogate":
            surrogate = model
        model.training_.update(data=str(data), split=split, augment=augment if kind in GENERATORS else 0)
        model.save(out)
        records[kind] = model.training_
    return records
