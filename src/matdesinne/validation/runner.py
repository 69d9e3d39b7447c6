"""``validate``: DFT band gaps of candidates, fanned out on Dask, resumable, results.csv kept.

Structures are built in this process (a builder that fails is a failed row at once); the
calculations run on Dask workers, an embedded local cluster with one single-threaded
worker per core unless a scheduler address is given. Each finished result is committed to
the :class:`~matdesinne.validation.store.ResultStore` as it arrives, and ``<store>.csv`` is
rewritten beside it, so an interrupted run loses nothing and a re-run computes only the rest.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.io import check_writable, write_csv, write_json
from matdesinne.validation.calibration import Calibration, fit_offset, rows_report
from matdesinne.validation.dft import DFTSettings, compute_gap, resolve_settings
from matdesinne.validation.report import plot_validation, results_frame, summarize, to_text
from matdesinne.validation.store import ResultStore, design_key
from matdesinne.validation.structures import builder_for, check_in_range


@dataclass
class Validation:
    """What a validation run leaves: every stored result, its summary, and the files written."""

    results: pd.DataFrame
    summary: dict
    paths: list[Path]


def select_rows(n: int, limit: int | None = None, sample: int | None = None, seed: int = 0) -> np.ndarray:
    """Rows of a candidates file to validate: the first ``limit``, a seeded random ``sample``
    (in file order), or all."""
    if limit is not None and sample is not None:
        raise UserInputError("give --limit or --sample, not both")
    if limit is not None:
        return np.arange(min(limit, n))
    if sample is not None:
        return np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    return np.arange(n)


def check_scheduler(address: str, workers: int | None = None, timeout: float = 5.0) -> None:
    """Fail in one line, and fast, if nothing listens at a tcp:// scheduler address."""
    if workers is not None:
        raise UserInputError("--workers sizes the local cluster; a --scheduler's cluster brings its own workers")
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls"):
        return  # other comms (inproc, ucx) are left to Dask
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise UserInputError(f"--scheduler {address!r}: expected an address like tcp://host:8786")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise UserInputError(f"cannot reach the Dask scheduler at {address} ({err.strerror or err})") from None


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[object]:
    """A Dask client: on the cluster at ``scheduler`` (see :func:`check_scheduler` for a fast
    one-line failure), or on an embedded local cluster of ``workers`` single-threaded worker
    processes (default: one per core)."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as err:
            raise UserInputError(f"cannot connect to the Dask scheduler at {scheduler} ({err})") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # The scheduler's HTTP server takes a free port (":0"), so runs side by side do not clash.
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def _failed(reason: str) -> dict:
    return {"status": "failed", "dft_gap_raw": float("nan"), "error": reason, "seconds": 0.0, "host": "", "versions": {}}


def validate(
    frame: pd.DataFrame,
    space: DesignSpace,
    out: str | os.PathLike,
    *,
    settings: str | DFTSettings = "standard",
    calibration: Calibration | None = None,
    rows: Sequence[int] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    retry_failed: bool = False,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    source: str = "candidates",
    echo: Callable[[str], None] = lambda line: None,
    progress: bool = True,
    report: bool = True,
) -> Validation:
    """Compute the DFT band gap of ``frame``'s candidates (all, or ``rows``) into the store ``out``.

    ``frame`` holds the design columns of ``space`` and optionally ``target`` and
    ``<property>_pred`` (else ``predict(x)`` fills the latter). Writes ``out`` (an ASE/SQLite
    database), ``<out stem>.csv`` after every result, and, with ``report``, the summary
    ``<stem>_summary.json`` and the figure ``<stem>.png``. Gaps are in eV.
    """
    from tqdm.auto import tqdm

    settings = resolve_settings(settings)
    out = Path(out)
    if out.suffix != ".db":
        raise UserInputError(f"--out {out}: name the results database with a .db suffix, e.g. results.db")
    csv_path = out.with_suffix(".csv")
    paths = [out, csv_path]
    if report:
        paths += [out.with_name(out.stem + "_summary.json"), out.with_suffix(".png")]
    for path in paths:
        check_writable(path)
    if calibration is not None:
        calibration.check_applies(space, settings)
    if scheduler is not None:
        check_scheduler(scheduler, workers)  # before any work, not after the resumed rows
    build = builder_for(space)
    rows = np.arange(len(frame)) if rows is None else np.asarray(rows, dtype=int)
    x = check_in_range(frame, space, source, rows)
    prop = space.property.name
    target = _column(frame, "target", source)
    pred = _column(frame, f"{prop}_pred", source)
    if pred is None and predict is not None:
        pred = np.full(len(frame), np.nan)
        pred[rows] = predict(x[rows])

    store = ResultStore(out, {"design_space": space.to_dict(), "settings": settings.to_dict()}, force=force)
    records = store.records()
    if retry_failed:
        store.delete(r["row_id"] for r in records if r["status"] != "ok")
        records = [r for r in records if r["status"] == "ok"]
    done = {r["key"] for r in records}
    wanted: dict[str, int] = {}  # key -> row; a design listed twice is computed once
    for i in rows:
        wanted.setdefault(design_key(x[i]), int(i))
    pending = {k: i for k, i in wanted.items() if k not in done}
    resumed = len(wanted) - len(pending)
    echo(f"DFT of {len(wanted)} {source} rows with GPAW, settings {settings.name!r} "
         f"(PW {settings.cutoff:g} eV, {settings.kpoints}x{settings.kpoints} k-points, {settings.xc})"
         + (f"; {resumed} finished result(s) already in {out}, kept" if resumed else ""))
    echo(f"calibration: {calibration.describe()}" if calibration is not None
         else f"no calibration: dft_gap is the raw Kohn-Sham gap clipped at 0 {space.property.unit}")

    def finish(i: int, key: str, atoms, result: dict) -> None:
        record = {"candidate": i, "key": key, "inputs": dict(zip(space.names, map(float, x[i]))),
                  "target": np.nan if target is None else target[i], "pred": np.nan if pred is None else pred[i],
                  **result}
        record["row_id"] = store.add(record, atoms)
        records.append(record)
        write_csv(results_frame(records, space, calibration), csv_path)

    start = time.perf_counter()
    computed = 0
    with tqdm(total=len(wanted), initial=resumed, unit="structure", desc="DFT", disable=None if progress else True) as bar:
        jobs = {}
        for key, i in pending.items():
            try:
                jobs[key] = (i, build(dict(zip(space.names, x[i]))))
            except Exception as err:  # noqa: BLE001 -- a structure that cannot be built is a failed row
                reason = str(err) if isinstance(err, UserInputError) else f"{type(err).__name__}: {err}"
                finish(i, key, None, _failed(f"no structure: {reason}"))
                bar.update()
        if jobs:
            from distributed import as_completed

            every = max(1, len(jobs) // 10)
            with dask_client(scheduler, workers) as client:
                futures = {client.submit(compute_gap, atoms, settings.to_dict(), pure=False): key
                           for key, (i, atoms) in jobs.items()}
                for future in as_completed(futures):
                    key = futures[future]
                    i, atoms = jobs[key]
                    try:
                        result = future.result()
                    except Exception as err:  # noqa: BLE001 -- e.g. a worker that died on this structure
                        result = _failed(f"{type(err).__name__}: {err}")
                    finish(i, key, atoms, result)
                    computed += 1
                    bar.update()
                    if progress and bar.disable and computed % every == 0:  # no bar off a terminal: a line
                        rate = 60.0 * computed / (time.perf_counter() - start)
                        echo(f"DFT: {len(wanted) - len(jobs) + computed}/{len(wanted)} done, {rate:.1f} structures per minute")
    elapsed = time.perf_counter() - start

    results = results_frame(records, space, calibration)
    write_csv(results, csv_path)
    summary = summarize(results, space)
    summary.update(settings=settings.to_dict(), calibration=None if calibration is None else calibration.summary(),
                   computed_this_run=computed, resumed=resumed, wall_seconds=elapsed,
                   structures_per_minute=60.0 * computed / elapsed if computed and elapsed > 0 else None)
    if report:
        write_json(summary, paths[2])
        plot_validation(results, summary, space, paths[3])
    echo(to_text(summary, space))
    return Validation(results, summary, paths)


def _column(frame: pd.DataFrame, name: str, source: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    if not pd.api.types.is_numeric_dtype(frame[name]):
        raise UserInputError(f"{source}: column {name!r} is not numeric")
    return frame[name].to_numpy(dtype=np.float64)


def calibrate(
    out: str | os.PathLike,
    *,
    data: str = "mos2",
    rows: int = 24,
    holdout: int = 40,
    seed: int = 0,
    settings: str | DFTSettings = "standard",
    store: str | os.PathLike | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    echo: Callable[[str], None] = lambda line: None,
    progress: bool = True,
) -> Calibration:
    """Fit ``gap = max(0, raw − offset)`` on ``rows`` seeded random dataset rows, judge it on
    ``holdout`` other rows, and save it to ``out`` (JSON) with its residuals. The DFT results
    go to ``store`` (default ``<out stem>.db``; a calibration interrupted resumes like
    ``validate``), with ``<store stem>.csv`` and the figure ``<store stem>.png`` beside it."""
    from matdesinne.data.datasets import load_dataset
    from matdesinne.validation.report import plot_calibration

    out = Path(out)
    if out.suffix != ".json":
        raise UserInputError(f"--out {out}: name the calibration file with a .json suffix")
    store = Path(store) if store is not None else out.with_suffix(".db")
    figure = store.with_suffix(".png")
    for path in (out, figure):
        check_writable(path)
    settings = resolve_settings(settings)
    dataset = load_dataset(data)
    if rows + holdout > len(dataset):
        raise UserInputError(f"--rows {rows} + --holdout {holdout} exceed the {len(dataset)} dataset rows")
    order = np.random.default_rng(seed).permutation(len(dataset))
    fit_rows, held_rows = order[:rows], order[rows:rows + holdout]
    run = validate(dataset.frame(), dataset.space, store, settings=settings,
                   rows=np.concatenate([fit_rows, held_rows]), scheduler=scheduler, workers=workers, force=force,
                   source=f"dataset {data}", echo=echo, progress=progress, report=False)
    ok = run.results[run.results["status"] == "ok"].drop_duplicates("candidate", keep="last").set_index("candidate")
    prop = dataset.space.property.name

    def part(selected: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kept = np.array([r for r in selected if r in ok.index], dtype=int)
        return kept, ok.loc[kept, "dft_gap_raw"].to_numpy(float), dataset.y[kept].astype(float)

    fit_kept, fit_raw, fit_pub = part(fit_rows)
    if fit_kept.size == 0:
        raise UserInputError("no fit row finished its DFT calculation; see " + str(run.paths[1]))
    offset = fit_offset(fit_raw, fit_pub)
    held_kept, held_raw, held_pub = part(held_rows)
    failed = run.results.loc[run.results["status"] != "ok", ["candidate", "error"]]
    calibration = Calibration(
        offset=offset, space=dataset.space.name, settings=settings.to_dict(), seed=seed,
        fit=rows_report(fit_kept, fit_raw, fit_pub, offset), holdout=rows_report(held_kept, held_raw, held_pub, offset),
        failed=[{"row": int(r), "error": e} for r, e in failed.itertuples(index=False)],
    )
    calibration.save(out)
    plot_calibration(calibration, figure)
    echo(f"{prop}: {calibration.describe()}")
    return calibration
