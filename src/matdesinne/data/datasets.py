"""Tabular datasets: design parameters mapped to a property, read from a CSV."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from matdesinne.data import schema
from matdesinne.data.design_space import DesignSpace, Parameter, Property, check_names
from matdesinne.errors import UserInputError
from matdesinne.io import is_special, read_csv

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


def read_dataset(
    path: str | os.PathLike,
    x: Sequence[str] | None = None,
    y: str | None = None,
    y_lower: float | None = None,
    y_upper: float | None = None,
    space: DesignSpace | None = None,
) -> Dataset:
    """A dataset from a user CSV.

    With ``space``, its columns and property are the space's, and every row must lie in its
    box (up to CSV round-off). Without, ``y`` names the property column (default: the last column) and ``x`` the
    design parameters (default: every other column); the design-space bounds are the data's
    own min and max, and its name is the file's stem; ``y_lower``/``y_upper`` declare the
    property's physical limits (say 0 for a band gap). Parameters may not repeat or take a
    name that the outputs reserve (see
    :func:`~matdesinne.data.design_space.reserved_columns`); a path that is not a regular
    file (a device, a FIFO) is refused unread.
    """
    path = Path(path)
    if is_special(path):  # /dev/zero or a pipe would be read forever
        raise UserInputError(f"{path}: is not a regular file; give a CSV file")
    frame = read_csv(path)
    if space is None:
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
        return dataset_from(frame, space, str(path))
    return dataset_from(frame, space, str(path), inside=True)


def dataset_from(frame: pd.DataFrame, space: DesignSpace, source: str, inside: bool = False) -> Dataset:
    """The rows of ``frame`` as a dataset of ``space``: its design columns and property, all
    finite and within the property's limits, and with ``inside`` within the space's box."""
    prop = space.property
    values = check_finite(frame, [*space.names, prop.name], source)
    y = values[:, -1]
    if (prop.lower is not None and y.min() < prop.lower) or (prop.upper is not None and y.max() > prop.upper):
        raise UserInputError(f"{source}: column {prop.name!r} has values outside the declared limits "
                             f"{prop.lower}:{prop.upper}")
    if inside and not space.contains(values[:, :-1], tolerance=1e-9).all():
        row = int(np.flatnonzero(~space.contains(values[:, :-1], tolerance=1e-9))[0])
        raise UserInputError(f"{source}: data row {row + 1} lies outside design space {space.name!r}")
    return Dataset(space, values[:, :-1], y)


def split_indices(n: int, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1):
    """Shuffle ``range(n)`` with ``seed`` into disjoint (train, val, test) index arrays.

    Every model of a set uses the same split, so the test rows stay unseen by all of them.
    A dataset that may grow keeps its split by row identity: see :class:`~matdesinne.data.splits.Split`.
    """
    from matdesinne.data.splits import Split

    return Split.draw(n, seed, val_fraction, test_fraction).folds()
