"""Tabular datasets: the built-in MoS2 band-gap data and any user CSV."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from matdesinne.data.design_space import DesignSpace, Parameter, Property
from matdesinne.errors import UserInputError
from matdesinne.io import read_csv

#: Unstrained 1H-MoS2 (paper, Methods): lattice constants in Å, angles in degrees, field in V/Å.
MOS2_EQUILIBRIUM = {"a": 3.16, "b": 3.16, "c": 12.30, "alpha": 90.0, "beta": 90.0, "gamma": 120.0}
MOS2_UNITS = {"a": "Å", "b": "Å", "c": "Å", "alpha": "deg", "beta": "deg", "gamma": "deg", "efield": "V/Å"}
MOS2_STRAIN = 0.20  # the design space samples ±20 % of each equilibrium lattice parameter
MOS2_FIELD = 1.0  # and fields of ±1 V/Å

BUILTIN = ("mos2",)


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


def check_finite(frame: pd.DataFrame, columns: Sequence[str], source: str) -> np.ndarray:
    """Return ``frame[columns]`` as float64 (n, k), refusing text, NaN and inf with a clear message."""
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
    declare the property's physical limits (say 0 for a band gap).
    """
    if data == "mos2":
        frame = read_csv(mos2_data_path())
        space = _mos2_space(frame)
        fixed = (x is not None and list(x) != space.names) or (y is not None and y != space.property.name)
        if fixed or y_lower is not None or y_upper is not None:
            raise UserInputError("the built-in mos2 dataset has fixed columns and limits; --x/--y/--y-lower/--y-upper apply to a CSV file")
    else:
        path = Path(data)
        if path.suffix.lower() != ".csv" and not path.exists():
            raise UserInputError(f"unknown dataset {data!r}: give one of {', '.join(BUILTIN)} or a CSV file")
        frame = read_csv(path)
        y = y or str(frame.columns[-1])
        x = list(x) if x else [str(c) for c in frame.columns if c != y]
        if y in x:
            raise UserInputError(f"column {y!r} cannot be both a design parameter and the property")
        if not x:
            raise UserInputError(f"{path}: needs at least one design-parameter column besides {y!r}")
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


def split_indices(n: int, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1):
    """Shuffle ``range(n)`` with ``seed`` into disjoint (train, val, test) index arrays.

    Every model of a set uses the same split, so the test rows stay unseen by all of them.
    """
    if n < 10:
        raise UserInputError(f"a dataset needs at least 10 rows to split into train/validation/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    n_val = max(1, int(round(val_fraction * n)))
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
