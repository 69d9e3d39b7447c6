"""Train/validation/test splits fixed by row identity, so that a test row stays a test row.

A split is drawn once, over the rows a dataset has at that time, and then recorded (in the
dataset's provenance JSON, and in every model's training record). When the dataset grows,
the rows it had keep their fold: rows appended later go to training (they are counted as
``added``), so no test row ever becomes a training row and no new row slips into the old
test set. Each recorded fold carries a digest of its rows' designs
(:func:`design_key`), so a dataset whose first rows were edited, dropped or reordered is
refused in one line instead of being split silently in another way.

Example::

    split = Split.draw(len(x), seed=0)             # 80/10/10 over today's rows
    train, val, test = split.indices(x)            # the same test rows tomorrow, after appending
    record = split.to_dict(x)                      # JSON: seed, fractions, rows, digests
    Split.from_dict(record).indices(x_grown)       # refuses if x_grown's first rows changed
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from matdesinne.errors import UserInputError

#: Fewer rows than this cannot be split into non-empty train, validation and test folds.
MIN_ROWS = 10


def design_key(values: Iterable[float]) -> str:
    """A stable identity for one design point: a hash of its values to 10 significant digits."""
    text = ",".join(f"{float(v):.10g}" for v in values)
    # The "d" keeps an all-digit digest a string: ASE refuses strings that read as numbers.
    return "d" + hashlib.sha1(text.encode()).hexdigest()[:16]


def fold_digest(x: np.ndarray, index: np.ndarray) -> str:
    """SHA-256 of the sorted design keys of rows ``index`` of ``x`` (n, dim): the fold's identity,
    whatever order its rows come in."""
    keys = sorted(design_key(row) for row in np.asarray(x, dtype=np.float64)[index])
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


@dataclass(frozen=True)
class Split:
    """A seeded 3-way split of a dataset's first ``rows`` rows; rows after them train.

    ``val_digest`` and ``test_digest`` (see :func:`fold_digest`) pin the folds' rows; None in
    records written before digests existed, where only the row count is checked.
    """

    seed: int
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    rows: int | None = None
    val_digest: str | None = None
    test_digest: str | None = None

    @classmethod
    def draw(cls, n: int, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1) -> "Split":
        """A new split over ``n`` rows (digests are added by :meth:`to_dict`)."""
        from matdesinne.data.datasets import check_seed

        seed = check_seed(seed)
        if n < MIN_ROWS:
            raise UserInputError(f"a dataset needs at least {MIN_ROWS} rows to split into train/validation/test, got {n}")
        return cls(seed, float(val_fraction), float(test_fraction), int(n))

    def folds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(train, val, test)`` indices of the first ``rows`` rows, drawn with ``seed``."""
        order = np.random.default_rng(self.seed).permutation(self.rows)
        n_test = max(1, int(round(self.test_fraction * self.rows)))
        n_val = max(1, int(round(self.val_fraction * self.rows)))
        return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]

    def indices(self, x: np.ndarray, source: str = "the dataset") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(train, val, test)`` index arrays for the rows of ``x`` (n, dim), n ≥ ``rows``:
        the recorded folds of the first ``rows`` rows, and every later row in train.
        Refuses in one line a dataset with fewer rows, or whose recorded folds changed."""
        n = len(x)
        if self.test_digest is None and n != self.rows:  # an old record: nothing pins its rows
            raise UserInputError(f"{source} has {n} rows, but the models' split was drawn over {self.rows} and "
                                 "records no row identities: the dataset changed since they were trained")
        if self.rows is None or n < self.rows:
            raise UserInputError(f"{source} has {n} rows, but its recorded split was drawn over {self.rows}: "
                                 "rows were removed, so its test rows cannot be recovered")
        train, val, test = self.folds()
        for name, fold, digest in (("validation", val, self.val_digest), ("test", test, self.test_digest)):
            if digest is not None and fold_digest(x, fold) != digest:
                raise UserInputError(f"{source}: its first {self.rows} rows are not the ones its recorded split was "
                                     f"drawn over (the {name} rows differ): rows were edited or reordered")
        added = np.arange(self.rows, n)
        return np.concatenate([train, added]), val, test

    def to_dict(self, x: np.ndarray) -> dict:
        """The split as a JSON record, with the digests of its folds in ``x`` (n, dim) and the
        counts of each fold there (``added``: rows after ``rows``, which train)."""
        train, val, test = self.indices(x)
        return {"seed": self.seed, "val_fraction": self.val_fraction, "test_fraction": self.test_fraction,
                "rows": self.rows, "val_sha256": fold_digest(x, val), "test_sha256": fold_digest(x, test),
                "n_train": len(train), "n_val": len(val), "n_test": len(test), "added": len(x) - self.rows}

    @classmethod
    def from_dict(cls, record: Mapping, source: str = "the split record") -> "Split":
        """A split from :meth:`to_dict`'s record. A record written before splits were fixed
        (no ``rows``) was drawn over all ``n_train + n_val + n_test`` rows."""
        try:
            rows = record.get("rows")
            if rows is None:
                rows = int(record["n_train"]) + int(record["n_val"]) + int(record["n_test"])
            return cls(int(record["seed"]), float(record["val_fraction"]), float(record["test_fraction"]), int(rows),
                       record.get("val_sha256"), record.get("test_sha256"))
        except (KeyError, TypeError, ValueError) as err:
            raise UserInputError(f"{source}: not a split record ({type(err).__name__}: {err})") from None

    def same_draw(self, other: "Split") -> bool:
        """Whether ``other`` asks for the same seed and fractions."""
        return (self.seed, self.val_fraction, self.test_fraction) == (other.seed, other.val_fraction, other.test_fraction)
