"""Tabular datasets: the built-in MoS2 band-gap data and any user CSV."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from matdesinne.data import schema
from matdesinne.data.design_space import DesignSpace, Parameter, Property, check_names
from matdesinne.errors import UserInputError
from matdesinne.io import is_special, read_csv

#: Unstrained 1H-MoS2 (paper, Methods): lattice constants in Å, angles in degrees, field in V/Å.
MOS2_EQUILIBRIUM = {"a": 3.16, "b": 3.16, "c": 12.30, "alpha": 90.0, "beta": 90.0, "gamma": 120.0}
MOS2_UNITS = {"a": "Å", "b": "Å", "c": "Å", "alpha": "deg", "beta": "deg", "gamma": "deg", "efield": "V/Å"}
MOS2_STRAIN = 0.20  # the design space samples ±20 % of each equilibrium lattice parameter
MOS2_FIELD = 1.0  # and fields of ±1 V/Å

BUILTIN = ("mos2",)

#: The models compute in float32: a finite value beyond this becomes infinite there.
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Seeds run from 0 to 2**32 - 1, the range NumPy's legacy global RNG accepts (training seeds it).
SEED_LIMIT = 2**32


@dataclass(frozen=True)
class Dataset:
    """Design parameters ``x`` (n, dim) mapped to a property ``y`` (n,), with their design space."""

    space: DesignSpace
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> "Dataset":
        return Dataset(self.space, self.x[index], self.y[index])

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.x, columns=self.space.names)
        df[self.space.property.name] = self.y
        return df


def mos2_data_path() -> Path:
    return Path(str(resources.files("matdesinne.data") / "mos2" / "mos2_bandgap.csv"))


def _mos2_space(frame: pd.DataFrame) -> DesignSpace:
    params = []
    for name, eq in MOS2_EQUILIBRIUM.items():
        # The paper quotes equilibria to 3 significant figures, so the sampled box reaches
        # a hair past ±20 % of the rounded values: widen the bounds to hold every row.
        low = min((1 - MOS2_STRAIN) * eq, float(frame[name].min()))
        high = max((1 + MOS2_STRAIN) * eq, float(frame[name].max()))
        params.append(Parameter(name, low, high, MOS2_UNITS[name], eq))
    params.append(Parameter("efield", -MOS2_FIELD, MOS2_FIELD, MOS2_UNITS["efield"], 0.0))
    return DesignSpace("mos2", tuple(params), Property("band_gap", "eV", lower=0.0))


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int, refusing in one line anything but a whole number from 0 to
    2**32 - 1. ``name`` is the argument's name in the message, written ``name=value`` as the
    library's messages are (the command line shows its flag there)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < SEED_LIMIT:
        raise UserInputError(f"{name}={schema.short(seed)} must be a whole number from 0 to {SEED_LIMIT - 1}")
    return int(seed)


def check_float32(values: np.ndarray, columns: Sequence[str], source: str) -> None:
    """Refuse finite values of ``values`` (n, k) beyond the float32 range, where the models
    would silently compute infinities (blank predictions); NaN and inf are left to the caller."""
    values = np.asarray(values, dtype=np.float64)
    over = np.isfinite(values) & (np.abs(values) > FLOAT32_MAX)
    if over.any():
        row, col = np.argwhere(over)[0]
        raise UserInputError(
            f"{source}: {int(over.sum())} value(s) beyond the float32 range (±{FLOAT32_MAX:.4g}) that the models "
            f"compute in, the first {values[row, col]:g} in column {columns[col]!r} on data row {row + 1}"
        )


def check_finite(frame: pd.DataFrame, columns: Sequence[str], source: str) -> np.ndarray:
    """Return ``frame[columns]`` as float64 (n, k), refusing repeated or unknown columns,
    text, NaN, inf and values beyond float32 with a clear message."""
    repeated = sorted({c for c in columns if list(columns).count(c) > 1})
    if repeated:
        raise UserInputError(f"{source}: column(s) {', '.join(map(repr, repeated))} named more than once")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserInputError(
            f"{source}: unknown column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}"
        )
    block = frame[list(columns)]
    for col in columns:
        if not pd.api.types.is_numeric_dtype(block[col]):
            raise UserInputError(f"{source}: column {col!r} is not numeric")
    values = block.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise UserInputError(
            f"{source}: {int(bad.sum())} NaN or infinite value(s), the first in column "
            f"{columns[col]!r} on data row {row + 1}"
        )
    check_float32(values, columns, source)
    return values


def load_dataset(
    data: str = "mos2",
    x: Sequence[str] | None = None,
    y: str | None = None,
    y_lower: float | None = None,
    y_upper: float | None = None,
) -> Dataset:
    """Load the built-in ``"mos2"`` dataset or a user CSV.

    For a CSV, ``y`` names the property column (default: the last column) and ``x`` the
    design parameters (default: every other column). A CSV's design-space bounds are the
    data's own min and max, and its name is the file's stem; ``y_lower``/``y_upper``
    declare the property's physical limits (say 0 for a band gap). Parameters may not
    repeat or take a name that the outputs reserve (see
    :func:`~matdesinne.data.design_space.reserved_columns`); a path that is not a regular
    file (a device, a FIFO) is refused unread.
    """
    if data == "mos2":
        frame = read_csv(mos2_data_path())
        space = _mos2_space(frame)
        fixed = (x is not None and list(x) != space.names) or (y is not None and y != space.property.name)
        if fixed or y_lower is not None or y_upper is not None:
            raise UserInputError("the built-in mos2 dataset has fixed columns and limits; x=, y=, y_lower= and y_upper= apply to a CSV file")
    else:
        path = Path(data)
        if path.suffix.lower() != ".csv" and not path.exists():
            raise UserInputError(f"unknown dataset {data!r}: give one of {', '.join(BUILTIN)} or a CSV file")
        if is_special(path):  # /dev/zero or a pipe would be read forever
            raise UserInputError(f"{path}: is not a regular file; give a CSV file")
        frame = read_csv(path)
        y = y or str(frame.columns[-1])
        x = list(x) if x else [str(c) for c in frame.columns if c != y]
        if not x:
            raise UserInputError(f"{path}: needs at least one design-parameter column besides {y!r}")
        check_names(x, y)
        values = check_finite(frame, [*x, y], str(path))
        lows, highs = values[:, :-1].min(axis=0), values[:, :-1].max(axis=0)
        flat = [n for n, lo, hi in zip(x, lows, highs) if lo == hi]
        if flat:
            raise UserInputError(f"{path}: column(s) {', '.join(flat)} hold a single value and cannot be designed")
        space = DesignSpace(
            path.stem,
            tuple(Parameter(n, float(lo), float(hi)) for n, lo, hi in zip(x, lows, highs)),
            Property(y, lower=y_lower, upper=y_upper),
        )
        if (y_lower is not None and values[:, -1].min() < y_lower) or (y_upper is not None and values[:, -1].max() > y_upper):
            raise UserInputError(f"{path}: column {y!r} has values outside the declared limits {y_lower}:{y_upper}")
    values = check_finite(frame, [*space.names, space.property.name], str(data))
    return Dataset(space, values[:, :-1], values[:, -1])


def dataset_reference(data: str | os.PathLike) -> str:
    """How a training record names its dataset so that it resolves from any folder: a
    built-in name as it is, a CSV as its absolute path."""
    return str(data) if str(data) in BUILTIN else str(Path(data).resolve())


def training_dataset(record: Mapping, space: DesignSpace) -> Dataset | None:
    """The dataset a model was trained on, from its training record (``training_``), read
    with the model's own columns and property limits; None when the record names none.

    A dataset that no longer fits the model's design space is refused in one line.
    Records written before paths were stored absolute resolve from the current folder.
    """
    data = record.get("data")
    if data is None:
        return None
    if not isinstance(data, str) or not data:
        raise UserInputError(f"the training record names its dataset as {data!r}, not a file or built-in name")
    if data in BUILTIN:
        dataset = load_dataset(data)
    else:
        prop = space.property
        dataset = load_dataset(data, space.names, prop.name, y_lower=prop.lower, y_upper=prop.upper)
    if not dataset.space.same_space(space):
        raise UserInputError(f"the models do not belong to their recorded training dataset {data!r}")
    return dataset


def training_split(record: Mapping, space: DesignSpace) -> tuple[Dataset, tuple[np.ndarray, ...]] | None:
    """A model's training dataset (:func:`training_dataset`) with the ``(train, val, test)``
    index arrays of the split its record names; None when the record lacks either."""
    split = record.get("split")
    dataset = training_dataset(record, space) if isinstance(split, Mapping) else None
    if dataset is None:
        return None
    return dataset, split_indices(len(dataset), split["seed"], split["val_fraction"], split["test_fraction"])


def split_indices(n: int, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1):
    """Shuffle ``range(n)`` with ``seed`` into disjoint (train, val, test) index arrays.

    Every model of a set uses the same split, so the test rows stay unseen by all of them.
    """
    seed = check_seed(seed)
    if n < 10:
        raise UserInputError(f"a dataset needs at least 10 rows to split into train/validation/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    n_val = max(1, int(round(val_fraction * n)))
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
