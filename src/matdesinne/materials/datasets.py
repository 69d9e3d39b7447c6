"""Datasets by name or file: a built-in material's data, or a user CSV, read in a space."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from matdesinne.data.datasets import Dataset, dataset_from, read_dataset
from matdesinne.data.splits import Split
from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.io import read_csv, read_json
from matdesinne.materials.material import Material
from matdesinne.materials.registry import DEFAULT, builtin_names, material


def load_dataset(
    data: str | os.PathLike = DEFAULT,
    x: Sequence[str] | None = None,
    y: str | None = None,
    y_lower: float | None = None,
    y_upper: float | None = None,
    space: str | os.PathLike | Material | None = None,
) -> Dataset:
    """A built-in material's dataset by name (``"mos2"``), or a user CSV.

    A built-in dataset has fixed columns: ``y`` may choose among its material's properties
    (default: the first). A CSV read with ``space`` (a material, its name or its TOML file)
    takes that space's parameters, bounds and property ``y``, and every row must lie in its
    box; without, see :func:`~matdesinne.data.datasets.read_dataset`.
    """
    text = str(data)
    if text in builtin_names():
        found = material(text)
        fixed = x is not None and list(x) != [p.name for p in found.parameters]
        if fixed or y_lower is not None or y_upper is not None or found.data is None:
            raise UserInputError(f"the built-in {text} dataset has fixed columns and limits; x=, y=, y_lower= and "
                                 "y_upper= apply to a CSV file")
        return dataset_from(read_csv(found.data), found.space(y), text)
    path = Path(data)
    if path.suffix.lower() != ".csv" and not path.exists():
        raise UserInputError(f"unknown dataset {text!r}: give one of {', '.join(builtin_names())} or a CSV file")
    if space is None:
        return read_dataset(path, x, y, y_lower=y_lower, y_upper=y_upper)
    found = space if isinstance(space, Material) else material(space)
    if (x is not None and list(x) != [p.name for p in found.parameters]) or y_lower is not None or y_upper is not None:
        raise UserInputError(f"space {found.name!r} fixes the design columns and property limits; "
                             "leave out x=, y_lower= and y_upper=")
    return read_dataset(path, space=found.space(y))


def dataset_reference(data: str | os.PathLike) -> str:
    """How a training record names its dataset so that it resolves from any folder: a
    built-in name as it is, a CSV as its absolute path."""
    return str(data) if str(data) in builtin_names() else str(Path(data).resolve())


def space_reference(found: Material | None) -> str | None:
    """How a training record names a space that is not built in: its TOML file, absolute."""
    return None if found is None or found.source is None else str(found.source)


def training_dataset(record: Mapping, space: DesignSpace, property_name: str | None = None) -> Dataset | None:
    """The dataset a model was trained on, from its training record (``training_``), read
    with the model's own columns and property limits (or, by ``property_name``, another
    property the dataset holds, e.g. a multi-property surrogate's second; None when it
    holds none); None when the record names none.

    A dataset that no longer fits the model's design space is refused in one line.
    Records written before paths were stored absolute resolve from the current folder.
    """
    data = record.get("data")
    if data is None:
        return None
    if not isinstance(data, str) or not data:
        raise UserInputError(f"the training record names its dataset as {data!r}, not a file or built-in name")
    prop = space.property
    if property_name is not None and property_name != prop.name:
        known = [p.name for p in material(data if data in builtin_names() else record["space"]).properties] \
            if data in builtin_names() or record.get("space") else [str(c) for c in read_csv(data).columns]
        if property_name not in known:
            return None
        if data in builtin_names() or record.get("space"):
            return load_dataset(data, y=property_name, space=None if data in builtin_names() else record["space"])
        return load_dataset(data, space.names, property_name)
    if data in builtin_names():
        known = [p.name for p in material(data).properties]
        dataset = load_dataset(data, y=prop.name if prop.name in known else None)
    elif record.get("space"):
        dataset = load_dataset(data, y=prop.name, space=record["space"])
    else:
        dataset = load_dataset(data, space.names, prop.name, y_lower=prop.lower, y_upper=prop.upper)
    if not dataset.space.same_space(space):
        raise UserInputError(f"the models do not belong to their recorded training dataset {data!r}")
    return dataset


def training_split(record: Mapping, space: DesignSpace) -> tuple[Dataset, tuple[np.ndarray, ...]] | None:
    """A model's training dataset (:func:`training_dataset`) with the ``(train, val, test)``
    index arrays of the split its record names; None when the record lacks either.
    ``train`` holds the rows the models trained on; rows appended since come back in none.

    The split is checked against the dataset (see :class:`~matdesinne.data.splits.Split`): a
    dataset that changed under a recorded fold is refused in one line. Rows appended after
    the models were trained come back in none of the three: the models never saw them.
    """
    split = record.get("split")
    dataset = training_dataset(record, space) if isinstance(split, Mapping) else None
    if dataset is None:
        return None
    fixed = Split.from_dict(split, "the models' training record")
    train, val, test = fixed.indices(dataset.x, f"dataset {record['data']}")
    seen = fixed.rows + int(split.get("added", 0))  # the rows the dataset had when they were trained
    return dataset, (train[train < seen], val, test)


def provenance_file(data: str | os.PathLike) -> Path | None:
    """The provenance JSON of a dataset: ``<stem>.json`` beside its CSV (a built-in
    material's, or one that ``label`` wrote); None where there is none."""
    found = material(str(data)).data if str(data) in builtin_names() else Path(data)
    if found is None:
        return None
    path = Path(found).with_suffix(".json")
    return path if path.is_file() else None


def recorded_split(data: str | os.PathLike) -> Split | None:
    """The split a dataset's provenance records (``"split"``), or None where it records none."""
    path = provenance_file(data)
    record = read_json(path).get("split") if path is not None else None
    return None if record is None else Split.from_dict(record, str(path))
