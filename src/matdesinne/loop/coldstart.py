"""A new material from zero: spend a calculation budget where the targets are, then train
and design. ``matdesinne loop --space my.toml --targets 0.5 1.0 --budget 400 --out DIR``.

The campaign, in one folder ``DIR``:

1. a Sobol' seed of the box (``seed_points``, default a quarter of the budget);
2. the engine computes it (:class:`~matdesinne.validation.engine.Engine`; GPAW by default:
   band gap and strain energy into ``DIR/data.db``, the dataset ``DIR/data.csv`` with its
   provenance ``DIR/data.json``);
3. round after round, an acquisition rule (:mod:`matdesinne.loop.rules`; default
   ``straddle``) picks ``batch`` points aimed at the targets' level sets, and the engine
   computes them, until the budget is spent;
4. ``train`` fits the surrogate and the cINN on the dataset into ``DIR/models`` (a folder
   that ``design --models DIR/models`` uses);
5. ``DIR/candidates-<target>.csv``: designs for each target.

The budget counts every calculation (the engine's reference structures included) and is
never exceeded: a round's points are written to ``DIR/points.csv`` before any is computed,
and no new point is planned until the engine has computed all planned ones. Killed at any
moment (``kill -9`` included), the same command resumes: planned points are read back, the
engine's store keeps every finished calculation, and a plan interrupted before it was
written is made again, identically (the rules are deterministic for a seed).
``DIR/coldstart.json`` holds the settings and, per round, the calls spent and the running
estimate of each target's error.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from matdesinne.data.sampling import sample_space
from matdesinne.data.splits import MIN_ROWS
from matdesinne.errors import UserInputError
from matdesinne.io import check_folder, ensure_dir, read_csv, read_json, write_csv, write_json
from matdesinne.loop.coords import to_unit
from matdesinne.loop.rules import rule as rule_named
from matdesinne.materials import Material, builtin_names
from matdesinne.text import fmt
from matdesinne.validation.engine import Engine

STATE_FILE = "coldstart.json"
POINTS_FILE = "points.csv"
FORMAT = "matdesinne-coldstart"
#: Candidate points drawn (Sobol') for a rule to choose among, per round.
POOL = 4096

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ColdStartSettings:
    """What fixes a cold start. ``budget``: calculations in all; ``seed_points``: the Sobol'
    seed (default: a quarter of the budget, at least 8); ``batch``: points per round
    (default: a tenth of the budget, at least 4); ``rule``: the acquisition rule's name;
    ``tolerance``: the window around a target for the running error estimate; ``seed``:
    every draw's; ``epochs``/``augment``: passed to ``train`` (None: its defaults)."""

    targets: tuple[float, ...]
    budget: int
    seed_points: int | None = None
    batch: int | None = None
    rule: str = "straddle"
    tolerance: float = 0.1
    seed: int = 0
    n_design: int = 10000
    epochs: int | None = None
    augment: int | None = None

    def __post_init__(self):
        whole = (("budget", self.budget, 2), ("seed_points", self.seed_points, 1), ("batch", self.batch, 1),
                 ("n_design", self.n_design, 1))
        for name, value, least in whole:
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least):
                raise UserInputError(f"{name}={value!r} must be a whole number of at least {least}")
        if not self.targets or any(not np.isfinite(t) for t in self.targets):
            raise UserInputError("targets must be one or more finite values")
        if not self.tolerance > 0:
            raise UserInputError(f"tolerance={self.tolerance!r} must be positive")
        rule_named(self.rule)  # an unknown rule: one line, before any work

    @property
    def seed_size(self) -> int:
        return self.seed_points if self.seed_points is not None else max(8, self.budget // 4)

    @property
    def batch_size(self) -> int:
        return self.batch if self.batch is not None else max(4, self.budget // 10)

    def to_dict(self) -> dict:
        return {**asdict(self), "targets": [float(t) for t in self.targets]}


class ColdStart:
    """A cold-start campaign of ``material`` in folder ``out`` (see the module's note)."""

    def __init__(self, material: Material, settings: ColdStartSettings, engine: Engine, out: str | os.PathLike,
                 force: bool = False):
        self.material, self.settings, self.engine = material, settings, engine
        self.out = check_folder(out)
        self.space = material.space(engine.properties[0] if engine.properties[0] in
                                    [p.name for p in material.properties] else None)
        lower, upper = self.space.property.lower, self.space.property.upper
        for t in settings.targets:
            if (lower is not None and t < lower) or (upper is not None and t > upper):
                raise UserInputError(f"target {t:g} lies outside {self.space.property.name}'s limits {lower}:{upper}")
        if settings.budget - engine.extra_calls() < MIN_ROWS:  # train splits the rows: before any calculation
            raise UserInputError(f"budget={settings.budget} leaves fewer than the {MIN_ROWS} design points that "
                                 f"training needs (the engine spends {engine.extra_calls()} of its own); "
                                 f"give at least {MIN_ROWS + engine.extra_calls()}")
        self.state = self._open(force)

    def _open(self, force: bool) -> dict:
        path = self.out / STATE_FILE
        saved = read_json(path) if path.is_file() else None
        if saved is not None and saved.get("format") != FORMAT:
            raise UserInputError(f"{path}: not a matdesinne cold-start file")
        if saved is not None and not force:
            stored = saved.get("settings", {})
            differ = [k for k, v in self.settings.to_dict().items() if stored.get(k) != v]
            if differ:
                raise UserInputError(f"{self.out}: holds a cold start with other {', '.join(differ)}; use another "
                                     "out, or --force to start afresh there (finished calculations are kept)")
            return saved
        return {"format": FORMAT, "settings": self.settings.to_dict(), "material": self.material.name,
                "space_file": None if self.material.source is None else str(self.material.source),
                "rounds": [], "started": time.time()}

    # -- the points asked for so far ------------------------------------------------------------
    def points(self) -> pd.DataFrame:
        path = self.out / POINTS_FILE
        return read_csv(path) if path.is_file() else pd.DataFrame(columns=[*self.space.names, "round"])

    def _plan(self, points: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        """The next round's points (design columns and ``round``), within the budget."""
        s = self.settings
        room = s.budget - self.engine.extra_calls() - len(points)
        rnd = int(points["round"].max()) + 1 if len(points) else 0
        if rnd == 0:
            new = sample_space(self.space, min(s.seed_size, room), "sobol", seed=s.seed)
        else:
            pool = sample_space(self.space, POOL, "sobol", seed=(s.seed + 7919 * rnd) % 2**32)
            x, y = self._unit(rows), rows[self.space.property.name].to_numpy(float)
            picked = rule_named(s.rule).select(x, y, self.space.property.lower, s.targets, self._unit(pool),
                                               min(s.batch_size, room), seed=s.seed + rnd)
            new = pool.iloc[picked].reset_index(drop=True)
        return new[self.space.names].assign(round=rnd)

    def _unit(self, frame: pd.DataFrame) -> np.ndarray:
        return to_unit(frame[self.space.names].to_numpy(float), self.space)

    def estimates(self, rows: pd.DataFrame) -> dict[str, float | None]:
        """The running estimate of each target's error (see
        :meth:`~matdesinne.loop.rules.Straddle.estimates`) on the rows computed so far."""
        from matdesinne.loop.rules import Straddle

        pool = sample_space(self.space, 1024, "sobol", seed=self.settings.seed)
        return Straddle().estimates(self._unit(rows), rows[self.space.property.name].to_numpy(float),
                                    self.space.property.lower, self.settings.targets, self._unit(pool),
                                    self.settings.tolerance, self.settings.seed)

    def _save(self) -> None:
        write_json(self.state, self.out / STATE_FILE)

    # -- the campaign ------------------------------------------------------------------------------
    def spend(self, echo: Echo, progress: bool = True) -> pd.DataFrame:
        """Plan and compute rounds until the budget is spent; returns the computed rows."""
        from tqdm.auto import tqdm

        ensure_dir(self.out)
        s = self.settings
        with tqdm(total=s.budget, unit="call", desc="cold start", disable=None if progress else True) as bar:
            while True:
                points = self.points()
                computed = self.engine.compute(points[self.space.names], self.out) if len(points) else None
                rows = computed.rows if computed is not None else pd.DataFrame(columns=self.space.names)
                spent = computed.calls if computed is not None else 0
                bar.n = spent
                if len(points):
                    self._record(points, rows, spent, bar, echo)
                if s.budget - self.engine.extra_calls() - len(points) <= 0:
                    return rows
                planned = self._plan(points, rows)
                write_csv(pd.concat([points, planned], ignore_index=True), self.out / POINTS_FILE)  # before computing

    def _record(self, points: pd.DataFrame, rows: pd.DataFrame, spent: int, bar, echo: Echo) -> None:
        """The round just computed, in the state file and on the bar, once."""
        rnd = int(points["round"].max())
        if any(r["round"] == rnd for r in self.state["rounds"]):
            return
        prop = self.space.property
        y = rows[prop.name].to_numpy(float) if len(rows) else np.array([])
        estimates = self.estimates(rows) if len(rows) else {}
        near = {f"{t:g}": int(np.sum(np.abs(y - t) <= self.settings.tolerance)) for t in self.settings.targets}
        gapped = int(np.sum(y > prop.lower)) if prop.lower is not None else len(y)
        self.state["rounds"].append({"round": rnd, "points": int(len(points)), "computed": int(len(rows)),
                                     "calls": int(spent), "gapped": gapped, "near_target": near,
                                     "estimated_error": estimates})
        self._save()
        line = ", ".join(f"{t}: ±{fmt(e)}" for t, e in estimates.items())
        bar.set_postfix_str(line or "no model yet", refresh=False)
        bar.refresh()
        echo(f"round {rnd}: {spent}/{self.settings.budget} calls, {len(rows)} rows ({gapped} gapped; near the "
             f"targets: {', '.join(f'{t} {n}' for t, n in near.items())}); estimated error near each target "
             f"{line or '-'} {prop.unit}")

    def finish(self, echo: Echo, device: str = "auto") -> dict:
        """Train the surrogate and the cINN on the dataset, then design each target."""
        from matdesinne.models import load_models
        from matdesinne.models.train import train_models
        from matdesinne.pipeline import design

        s = self.settings
        models = self.out / "models"
        echo(f"training the surrogate and the cINN on {self.out / 'data.csv'} -> {models}")
        options = {k: v for k, v in (("epochs", s.epochs), ("augment", s.augment)) if v is not None}
        if self.material.source is not None or self.material.name in builtin_names():
            where = {"space": str(self.material.source or self.material.name)}
        else:  # a space of no file (say, a test's): the CSV's columns, the property's floor
            where = {"x": list(self.space.names), "y_lower": self.space.property.lower}
        train_models(str(self.out / "data.csv"), y=",".join(self.engine.properties), kinds=["surrogate", "cinn"],
                     out=models, seed=s.seed, split_seed=0, device=device, **where, **options)
        loaded = load_models(models)
        counts = {}
        for t in s.targets:
            found = design(loaded, t, n=s.n_design, seed=s.seed).candidates
            write_csv(found, self.out / f"candidates-{t:g}.csv")
            counts[f"{t:g}"] = int(len(found))
            echo(f"target {t:g}: {len(found)} candidates -> {self.out / f'candidates-{t:g}.csv'}")
        self.state["candidates"] = counts
        self.state["models"] = str(models)
        self._save()
        return self.state


def cold_start(material: Material, settings: ColdStartSettings, engine: Engine, out: str | os.PathLike, *,
               force: bool = False, echo: Echo = lambda line: None, progress: bool = True,
               device: str = "auto") -> dict:
    """Run a whole cold start (see the module's note); returns the state written to
    ``out/coldstart.json``."""
    campaign = ColdStart(material, settings, engine, out, force=force)
    campaign.spend(echo, progress)
    return campaign.finish(echo, device)

