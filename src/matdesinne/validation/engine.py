"""The seam between matdesinne and a code that computes properties: an :class:`Engine`.

An engine takes design points and returns their properties. Everything that spends a
calculation budget (the cold-start campaign of :mod:`matdesinne.loop.coldstart`) talks to
this interface only, so another DFT code, an ML potential for cheap screening, or an
analytic function in a test plugs in without touching the rest.

Contract of :meth:`Engine.compute`:

- ``points``: a DataFrame with the space's design columns, one row per design, in the
  order they were first asked for; every call passes *all* points asked so far (the
  earlier ones first, in the same order), so an engine with a resumable store computes
  only the new ones, and a campaign killed at any moment loses nothing on the next call.
- returns a DataFrame with one row per finished design (the design columns, then one
  column per property); a design that failed is simply absent.
- ``calls``: how many calculations the engine has spent on these points in all (finished
  or failed, its own reference calculations included), which the campaign's budget counts.

:class:`GPAWEngine` is the first implementation: ``label``'s band gap and strain energy,
computed with GPAW on Dask into a resumable results store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from matdesinne.materials import Material


@dataclass(frozen=True)
class Computed:
    """What an engine returns: the finished rows (design columns, then properties) and the
    calculations spent on the points in all (``calls``), with its ``provenance`` (JSON-ready)."""

    rows: pd.DataFrame
    calls: int
    provenance: dict = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """Computes properties of design points; see the module's contract."""

    #: The property columns it computes, in order.
    properties: tuple[str, ...]

    def compute(self, points: pd.DataFrame, folder: Path) -> Computed:
        """Compute every point of ``points`` not computed yet (results kept in ``folder``)."""
        ...

    def extra_calls(self) -> int:
        """Calculations spent besides one per point (e.g. a reference structure), for budgeting."""
        ...


@dataclass
class GPAWEngine:
    """``label``'s band gap and strain energy with GPAW (see
    :func:`~matdesinne.validation.labelling.label`), into ``<folder>/data.db``: the dataset
    ``data.csv`` grows by appending, so its fixed split keeps its test rows."""

    material: Material
    settings: str | os.PathLike = "standard"
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = False
    properties: tuple[str, ...] = ("band_gap", "strain_energy")

    def compute(self, points: pd.DataFrame, folder: Path) -> Computed:
        from matdesinne.io import read_csv
        from matdesinne.validation.labelling import label

        out = Path(folder) / "data.db"
        data = label(points, self.material, out, settings=self.settings, workers=self.workers,
                     scheduler=self.scheduler, progress=self.progress)
        results = read_csv(out.with_name("data_results.csv"))
        return Computed(data, int(len(results)), {"engine": "gpaw", "store": str(out), "settings": str(self.settings)})

    def extra_calls(self) -> int:
        return 1  # the material's reference structure, for the strain energy's zero


@dataclass
class FunctionEngine:
    """An engine that evaluates a Python function: ``function(x)``, x (n, dim) in the order
    of ``names``, returns (n,) values of ``properties[0]`` (or (n, k) of all). For analytic
    test spaces whose truth is known, and for cheap screening models. Results are kept in
    ``<folder>/function.csv``, so it resumes like a DFT store; the dataset is
    ``<folder>/data.csv``."""

    names: tuple[str, ...]
    function: object
    properties: tuple[str, ...] = ("band_gap",)

    def compute(self, points: pd.DataFrame, folder: Path) -> Computed:
        import numpy as np

        from matdesinne.io import read_csv, write_csv

        store = Path(folder) / "function.csv"
        names = list(self.names)
        done = read_csv(store) if store.is_file() else pd.DataFrame(columns=[*names, *self.properties])
        new = points[names].merge(done[names], how="left", indicator=True)
        new = new[new["_merge"] == "left_only"][names].drop_duplicates()
        if len(new):
            values = np.asarray(self.function(new.to_numpy(dtype=float)), dtype=float).reshape(len(new), -1)
            done = pd.concat([done, new.assign(**{p: values[:, j] for j, p in enumerate(self.properties)})],
                             ignore_index=True)
            write_csv(done, store)
        rows = points[names].merge(done, on=names, how="left").dropna().reset_index(drop=True)
        write_csv(rows, Path(folder) / "data.csv")
        return Computed(rows, int(len(done)), {"engine": "function"})

    def extra_calls(self) -> int:
        return 0
