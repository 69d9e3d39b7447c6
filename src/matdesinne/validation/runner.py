"""``validate``: DFT band gaps of candidates, fanned out on Dask, resumable, results.csv kept.

A run has three steps. :func:`plan_validation` checks what the user handed in and decides
which designs to compute, touching no file; :func:`resume` adds what the results store
already holds. :func:`run_validation` builds the structures here (a builder that fails is a
failed row at once), computes them on Dask workers (an embedded local cluster with one
single-threaded worker per core unless a scheduler address is given) and commits each
result to the :class:`~matdesinne.validation.store.ResultStore` as it arrives, rewriting
``<store>.csv`` beside it, so an interrupted run loses nothing and a re-run computes only
the rest. :func:`report_validation` writes the summary and the figure.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from ase import Atoms

from matdesinne.data import schema
from matdesinne.data.datasets import check_seed
from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.io import check_distinct, check_writable, write_csv, write_json
from matdesinne.validation.calibration import Calibration, fit_offset, rows_report
from matdesinne.validation.cluster import check_cluster, dask_client
from matdesinne.validation.dft import DFTSettings, compute_gap, resolve_settings, settings_file
from matdesinne.validation.report import plot_calibration, plot_validation, results_frame, summarize, to_text
from matdesinne.validation.result import DFTResult, Status, StoredResult
from matdesinne.validation.store import ResultStore, design_key
from matdesinne.materials import DEFAULT, builder_for, builtin_names
from matdesinne.materials.material import Builder
from matdesinne.validation.structures import check_in_range

Echo = Callable[[str], None]


def quiet(line: str) -> None:
    """The default ``echo``: say nothing."""


@dataclass(frozen=True)
class Outputs:
    """The files of a validation run, all named after its results database ``store`` (.db):
    ``<stem>.csv``, and with ``report`` the summary ``<stem>_summary.json`` and the figure
    ``<stem>.png``."""

    store: Path
    report: bool = True
    results: str = ""

    @classmethod
    def of(cls, store: str | os.PathLike, report: bool = True, argument: str = "out", results: str = "") -> "Outputs":
        store = Path(store)
        if store.suffix != ".db":
            raise UserInputError(f"{argument}={store}: name the results database with a .db suffix, e.g. results.db")
        return cls(store, report, results)

    @property
    def csv(self) -> Path:
        """The results table, ``<stem><results>.csv``."""
        return self.store.with_name(self.store.stem + self.results + ".csv")

    @property
    def summary(self) -> Path:
        return self.store.with_name(self.store.stem + "_summary.json")

    @property
    def figure(self) -> Path:
        return self.store.with_suffix(".png")

    @property
    def paths(self) -> list[Path]:
        return [self.store, self.csv, *([self.summary, self.figure] if self.report else [])]


def check_outputs(outputs: Sequence[Path], inputs: Iterable[str | os.PathLike | None]) -> None:
    """Before any work: no output is an input or another output, and each can be written."""
    check_distinct(outputs, [p for p in inputs if p])
    for path in outputs:
        check_writable(path)


@dataclass(frozen=True)
class Validation:
    """What a validation run leaves: every stored result, its summary, and the files written."""

    results: pd.DataFrame
    summary: dict
    paths: list[Path]


def select_rows(n: int, limit: int | None = None, sample: int | None = None, seed: int = 0) -> np.ndarray:
    """Rows of a candidates file to validate: the first ``limit``, a seeded random ``sample``
    (in file order), or all."""
    seed = check_seed(seed, "seed=")
    if limit is not None and sample is not None:
        raise UserInputError("give limit= or sample=, not both")
    if limit is not None:
        return np.arange(min(_count(limit, "limit", 1), n))
    if sample is not None:
        size = min(_count(sample, "sample", 1), n)
        return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return np.arange(n)


def _count(value: int, name: str, minimum: int) -> int:
    """The whole-number argument ``name``; a bad one is a one-line error naming it ``name=``."""
    try:
        return schema.whole(value, f"{name}=", minimum=minimum)
    except ValueError as err:
        raise UserInputError(str(err)) from None


@dataclass(frozen=True, eq=False)
class Plan:
    """What one validation run computes.

    ``x`` (n, dim) holds the design parameters of every row of the candidates, clipped into
    the bounds; ``target`` and ``pred`` (n,) the target and the surrogate's prediction in eV,
    NaN where there is none; ``wanted`` maps each design's key to the first row listing it (a
    design listed twice is computed once); ``done`` holds the results the store already has.
    """

    space: DesignSpace
    settings: DFTSettings
    calibration: Calibration | None
    build: Builder
    x: np.ndarray
    target: np.ndarray
    pred: np.ndarray
    wanted: dict[str, int]
    done: tuple[StoredResult, ...] = ()
    relax_ions: bool = False

    @property
    def identity(self) -> dict:
        """What a results store for this run must have been made for (see :class:`ResultStore`)."""
        return {"design_space": self.space.to_dict(), "settings": self.settings.to_dict(),
                **({"relax_ions": True} if self.relax_ions else {})}

    @property
    def pending(self) -> dict[str, int]:
        """Design key -> row, of the wanted designs the store does not hold yet."""
        done = {r.key for r in self.done}
        return {key: row for key, row in self.wanted.items() if key not in done}

    @property
    def resumed(self) -> int:
        return len(self.wanted) - len(self.pending)

    def structure(self, row: int) -> Atoms | DFTResult:
        """The structure of candidate ``row``, or the failed result saying why there is none."""
        try:
            return self.build(dict(zip(self.space.names, self.x[row])))
        except Exception as err:  # noqa: BLE001 -- a structure that cannot be built is a failed row
            reason = str(err) if isinstance(err, UserInputError) else f"{type(err).__name__}: {err}"
            return DFTResult.failed(f"no structure: {reason}")

    def stored(self, key: str, result: DFTResult) -> StoredResult:
        """``result`` with the candidate it belongs to."""
        row = self.wanted[key]
        return StoredResult(row, key, dict(zip(self.space.names, map(float, self.x[row]))), float(self.target[row]),
                            float(self.pred[row]), result)


def plan_validation(
    frame: pd.DataFrame,
    space: DesignSpace,
    settings: DFTSettings,
    calibration: Calibration | None = None,
    rows: Sequence[int] | None = None,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    source: str = "candidates",
    build: Builder | None = None,
    relax_ions: bool = False,
) -> Plan:
    """Check ``frame``'s candidates (all, or ``rows``) and decide what to compute; writes nothing.

    ``frame`` holds the design columns of ``space`` and optionally ``target`` and
    ``<property>_pred``; ``predict(x)``, x of shape (k, dim), fills the predictions it lacks.
    ``build`` makes the structures (default: the space's material's builder).
    """
    build = builder_for(space) if build is None else build
    n = len(frame)
    rows = np.arange(n) if rows is None else np.asarray(rows)
    if rows.size and (not np.issubdtype(rows.dtype, np.integer) or rows.min() < 0 or rows.max() >= n):
        raise UserInputError(f"rows= must be row numbers of the {n} {source} rows, from 0 to {n - 1}")
    rows = rows.astype(np.int64)
    x = check_in_range(frame, space, source, rows)
    target = _column(frame, "target", source)
    pred = _column(frame, f"{space.property.name}_pred", source)
    missing = rows[np.isnan(pred[rows])]
    if predict is not None and missing.size:
        pred[missing] = predict(x[missing])
    wanted: dict[str, int] = {}
    for row in rows:
        wanted.setdefault(design_key(x[row]), int(row))
    return Plan(space, settings, calibration, build, x, target, pred, wanted, relax_ions=relax_ions)


def _column(frame: pd.DataFrame, name: str, source: str) -> np.ndarray:
    """Column ``name`` as float64 (n,); all NaN when ``frame`` has no such column."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    if not pd.api.types.is_numeric_dtype(frame[name]):
        raise UserInputError(f"{source}: column {name!r} is not numeric")
    return frame[name].to_numpy(dtype=np.float64, copy=True)


def resume(plan: Plan, store: ResultStore, retry_failed: bool = False) -> Plan:
    """``plan`` with the results ``store`` already holds for the designs it wants, each
    attached to this run's row (its candidate number, target and prediction). The store
    may hold other designs too (another file's, an earlier batch's): they are not this
    run's, so they are left out of its results and summary. ``retry_failed`` deletes the
    wanted designs' failed results first, so that they are computed again."""
    records = store.records()
    if retry_failed:
        store.delete(r.row_id for r in records if not r.result.ok and r.key in plan.wanted)
        records = [r for r in records if r.result.ok or r.key not in plan.wanted]
    latest = {r.key: r for r in records if r.key in plan.wanted}  # oldest first: the newest wins
    done = tuple(replace(plan.stored(key, r.result), row_id=r.row_id) for key, r in latest.items())
    return replace(plan, done=done)


class Ledger:
    """The results of a run, each committed to the store and ``csv`` rewritten as it arrives."""

    def __init__(self, plan: Plan, store: ResultStore, csv: Path):
        self.plan, self.store, self.csv = plan, store, csv
        self.results: list[StoredResult] = list(plan.done)

    def commit(self, key: str, atoms: Atoms | None, result: DFTResult) -> None:
        stored = self.plan.stored(key, result)
        self.results.append(replace(stored, row_id=self.store.add(stored, atoms)))
        write_csv(self.frame(), self.csv)

    def frame(self) -> pd.DataFrame:
        return results_frame(self.results, self.plan.space, self.plan.calibration)


@dataclass(frozen=True)
class Run:
    """What :func:`run_validation` did: every result (stored before and now), how many
    structures it computed, and its wall time in seconds."""

    results: list[StoredResult]
    computed: int
    seconds: float
    store: dict | None = None  # the whole store's counts after the run (it may hold more designs)


def run_validation(plan: Plan, store: ResultStore, csv: Path, *, scheduler: str | None = None,
                   workers: int | None = None, echo: Echo = quiet, progress: bool = True) -> Run:
    """Compute ``plan``'s pending designs, committing each result to ``store`` and ``csv``."""
    from tqdm.auto import tqdm

    ledger = Ledger(plan, store, csv)
    pending = plan.pending
    start = time.perf_counter()
    jobs: dict[str, Atoms] = {}
    with tqdm(total=len(plan.wanted), initial=plan.resumed, unit="structure", desc="DFT",
              disable=None if progress else True) as bar:
        for key, row in pending.items():
            built = plan.structure(row)
            if isinstance(built, DFTResult):
                ledger.commit(key, None, built)
                bar.update()
            else:
                jobs[key] = built
        if jobs:
            from distributed import as_completed

            every = max(1, len(jobs) // 10)
            with dask_client(scheduler, workers) as client:
                futures = {client.submit(compute_gap, atoms, plan.settings, plan.relax_ions, pure=False): key
                           for key, atoms in jobs.items()}
                for computed, future in enumerate(as_completed(futures), 1):
                    key = futures[future]
                    ledger.commit(key, jobs[key], _outcome(future))
                    bar.update()
                    if progress and bar.disable and computed % every == 0:  # no bar off a terminal: a line
                        rate = 60.0 * computed / (time.perf_counter() - start)
                        echo(f"DFT: {len(plan.wanted) - len(jobs) + computed}/{len(plan.wanted)} done, "
                             f"{rate:.1f} structures per minute")
    return Run(ledger.results, len(jobs), time.perf_counter() - start, store.counts())


def _outcome(future) -> DFTResult:
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 -- e.g. a worker that died on this structure
        return DFTResult.failed(f"{type(err).__name__}: {err}")


def report_validation(plan: Plan, run: Run, outputs: Outputs, echo: Echo = quiet) -> Validation:
    """The final ``<store>.csv``, the summary (and with ``outputs.report`` its JSON and figure)."""
    results = results_frame(run.results, plan.space, plan.calibration)
    write_csv(results, outputs.csv)
    summary = summarize(results, plan.space)
    summary.update(settings=plan.settings.to_dict(),
                   calibration=None if plan.calibration is None else plan.calibration.summary(),
                   computed_this_run=run.computed, resumed=plan.resumed, wall_seconds=run.seconds,
                   store={"path": str(outputs.store), **(run.store or {})},
                   structures_per_minute=60.0 * run.computed / run.seconds if run.computed and run.seconds > 0 else None)
    if outputs.report:
        write_json(summary, outputs.summary)
        plot_validation(results, summary, plan.space, outputs.figure)
    echo(to_text(summary, plan.space))
    return Validation(results, summary, outputs.paths)


def validate(
    frame: pd.DataFrame,
    space: DesignSpace,
    out: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    settings: str | os.PathLike | DFTSettings = "standard",
    calibration: Calibration | None = None,
    rows: Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    retry_failed: bool = False,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    source: str = "candidates",
    echo: Echo = quiet,
    progress: bool = True,
    report: bool = True,
    build: Builder | None = None,
    relax_ions: bool = False,
    results: str = "",
) -> Validation:
    """Compute the DFT band gap of ``frame``'s candidates (all, or ``rows``) into the store ``out``.

    ``frame`` holds the design columns of ``space`` and optionally ``target`` and
    ``<property>_pred`` (``predict(x)`` fills the predictions it lacks). ``inputs`` names the
    files the caller read (the candidates CSV): no output may be one of them (the settings
    and the calibration file count too). Writes ``out`` (an ASE/SQLite database), ``<out stem>.csv``
    after every result, and, with ``report``, the summary ``<stem>_summary.json`` and the
    figure ``<stem>.png``. Gaps are in eV. Every check on what the caller handed in runs
    before the first file is written. ``build`` makes the structures (default: the space's
    material's builder); ``relax_ions`` relaxes the ions at fixed cell first; ``results``
    is added to the results table's stem (``<stem><results>.csv``).
    """
    outputs = Outputs.of(out, report, results=results)
    read = [*inputs, settings_file(settings), None if calibration is None else calibration.source]
    check_outputs(outputs.paths, read)
    settings = resolve_settings(settings)
    if calibration is not None:
        calibration.check_applies(space, settings)
    if workers is not None:
        _count(workers, "workers", 1)
    check_cluster(scheduler, workers)  # before any work, not after the resumed rows
    plan = plan_validation(frame, space, settings, calibration, rows, predict, source, build, relax_ions)

    store = ResultStore(outputs.store, plan.identity, force=force)  # the first file written
    plan = resume(plan, store, retry_failed)
    echo(f"DFT of {len(plan.wanted)} {source} rows with GPAW, settings {settings.name!r} "
         f"(PW {settings.cutoff:g} eV, {settings.kpoints}x{settings.kpoints} k-points, {settings.xc}"
         + (", band edges searched off the mesh" if settings.edges == "search" else "")
         + (f", bands on a {settings.edge_mesh}x{settings.edge_mesh} mesh" if settings.edge_mesh else "") + ")"
         + (f"; {plan.resumed} finished result(s) already in {outputs.store}, kept" if plan.resumed else ""))
    echo(f"calibration: {calibration.describe()}" if calibration is not None
         else f"no calibration: dft_gap is the raw Kohn-Sham gap clipped at 0 {space.property.unit}")
    run = run_validation(plan, store, outputs.csv, scheduler=scheduler, workers=workers, echo=echo, progress=progress)
    return report_validation(plan, run, outputs, echo)


def calibrate(
    out: str | os.PathLike,
    *,
    data: str = DEFAULT,
    rows: int = 24,
    holdout: int = 40,
    seed: int = 0,
    settings: str | os.PathLike | DFTSettings = "standard",
    store: str | os.PathLike | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    echo: Echo = quiet,
    progress: bool = True,
) -> Calibration:
    """Fit ``gap = max(0, raw − offset)`` on ``rows`` seeded random dataset rows, judge it on
    ``holdout`` other rows, and save it to ``out`` (JSON) with its residuals. The DFT results
    go to ``store`` (default ``<out stem>.db``; a calibration interrupted resumes like
    ``validate``), with ``<store stem>.csv`` and the figure ``<store stem>.png`` beside it."""
    from matdesinne.materials import load_dataset, material

    seed = check_seed(seed, "seed=")
    rows, holdout = _count(rows, "rows", 1), _count(holdout, "holdout", 0)
    out = Path(out)
    if out.suffix != ".json":
        raise UserInputError(f"out={out}: name the calibration file with a .json suffix")
    results = Outputs.of(out.with_suffix(".db") if store is None else store, report=False, argument="store")
    data_file = material(data).data if data in builtin_names() else Path(data)
    check_outputs([out, *results.paths, results.figure], [data_file, settings_file(settings)])
    settings = resolve_settings(settings)
    dataset = load_dataset(data)
    if rows + holdout > len(dataset):
        raise UserInputError(f"rows={rows} + holdout={holdout} exceed the {len(dataset)} dataset rows")
    order = np.random.default_rng(seed).permutation(len(dataset))
    fit_rows, held_rows = order[:rows], order[rows:rows + holdout]
    run = validate(dataset.frame(), dataset.space, results.store, inputs=[data_file],
                   settings=settings, rows=np.concatenate([fit_rows, held_rows]), scheduler=scheduler,
                   workers=workers, force=force, source=f"dataset {data}", echo=echo, progress=progress, report=False)
    ok = run.results[run.results["status"] == Status.OK.value]
    ok = ok.drop_duplicates("candidate", keep="last").set_index("candidate")
    prop = dataset.space.property.name

    def part(selected: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kept = np.array([r for r in selected if r in ok.index], dtype=int)
        return kept, ok.loc[kept, "dft_gap_raw"].to_numpy(float), dataset.y[kept].astype(float)

    fit_kept, fit_raw, fit_pub = part(fit_rows)
    if fit_kept.size == 0:
        raise UserInputError(f"no fit row finished its DFT calculation; see {results.csv}")
    offset = fit_offset(fit_raw, fit_pub)
    held_kept, held_raw, held_pub = part(held_rows)
    failed = run.results.loc[run.results["status"] != Status.OK.value, ["candidate", "error"]]
    calibration = Calibration(
        offset=offset, space=dataset.space.name, settings=settings.to_dict(), seed=seed,
        fit=rows_report(fit_kept, fit_raw, fit_pub, offset), holdout=rows_report(held_kept, held_raw, held_pub, offset),
        failed=[{"row": int(r), "error": e} for r, e in failed.itertuples(index=False)],
    )
    calibration.save(out)
    plot_calibration(calibration, results.figure)
    echo(f"{prop}: {calibration.describe()}")
    return calibration
