"""``label``: make a dataset with DFT. Each design point gets its band gap and its strain
energy, computed on Dask into the resumable results store of ``validate``.

The strain energy is the total energy per atom of the design minus that of the material's
reference structure (its equilibrium cell at zero field), computed once in the same store
with the same settings: the price of the strain (and of the field) in eV/atom.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from matdesinne.data.splits import MIN_ROWS, Split
from matdesinne.errors import UserInputError
from matdesinne.io import check_distinct, read_json, write_csv, write_json
from matdesinne.materials import Material
from matdesinne.models.manifest import file_sha256
from matdesinne.validation.calibration import Calibration
from matdesinne.validation.dft import engine_versions, settings_file
from matdesinne.validation.report import EDGE_COLUMNS
from matdesinne.validation.runner import Echo, Outputs, quiet, validate
from matdesinne.validation.result import Status
from matdesinne.validation.store import design_key

#: The properties ``label`` computes, by the names a space declares them with.
GAP, STRAIN_ENERGY = "band_gap", "strain_energy"


def reference_design(found: Material) -> dict[str, float]:
    """The material's reference as a design: every parameter at its equilibrium (0 field)."""
    return {p.name: float(p.equilibrium or 0.0) for p in found.parameters}


def reference_result(results: pd.DataFrame, found: Material, space, hint: str = "") -> pd.Series:
    """The stored result of ``found``'s reference structure among ``results`` (its
    ``dft_energy`` is the zero of the strain energy), found by its design: a store may hold
    other designs too. A missing or failed one is refused in one line ending in ``hint``."""
    reference = reference_design(found)
    wanted = design_key([reference[n] for n in space.names])
    keys = [design_key(v) for v in results[space.names].to_numpy(float)]
    ref = results.iloc[keys.index(wanted)] if wanted in keys else None
    if ref is None or ref["status"] != Status.OK.value:
        raise UserInputError(f"the reference structure of {found.name} failed: "
                             f"{'not computed' if ref is None else ref['error']}{hint}")
    return ref


def label(
    points: pd.DataFrame,
    found: Material,
    out: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    settings: str | os.PathLike = "standard",
    calibration: Calibration | None = None,
    relax_ions: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    echo: Echo = quiet,
    progress: bool = True,
    provenance: Mapping | None = None,
) -> pd.DataFrame:
    """Compute ``band_gap`` (eV; calibrated with ``calibration``, else the raw gap clipped at
    0) and ``strain_energy`` (eV/atom) of every row of ``points`` (the design columns of
    ``found``), and return them as a dataset that ``train`` reads.

    Writes the store ``out`` (.db), ``<stem>_results.csv`` (every result, failures with
    their reason), the dataset ``<stem>.csv`` (finished rows only) and ``<stem>.json`` (its
    provenance: settings, versions, reference energy, counts, and ``provenance``). A run
    killed at any point resumes: finished results are kept, failed ones are not retried.
    """
    out = Path(out)
    outputs = Outputs.of(out, report=False, results="_results")
    dataset_csv, record = out.with_suffix(".csv"), out.with_suffix(".json")
    check_distinct([outputs.store, outputs.csv, dataset_csv, record],
                   [p for p in (*inputs, settings_file(settings)) if p])
    wanted = [p.name for p in found.properties if p.name not in (GAP, STRAIN_ENERGY)]
    if wanted:
        raise UserInputError(f"label computes {GAP} and {STRAIN_ENERGY}; the space's {', '.join(wanted)} "
                             "needs your own DFT code (see loop ask/tell)")
    if found.builder is None:
        raise UserInputError(f"space {found.name!r} has no structure; label needs one")
    space = run_space(found)
    reference = reference_design(found)
    frame = pd.concat([points[space.names], pd.DataFrame([reference])], ignore_index=True)
    echo(f"labelling {len(points)} design points of {found.name} (+ its reference structure)")
    start = time.perf_counter()
    run = validate(frame, space, outputs.store, inputs=inputs, settings=settings, calibration=calibration,
                   scheduler=scheduler, workers=workers, force=force, source="points", echo=echo, progress=progress,
                   report=False, build=found.builder, relax_ions=relax_ions, results="_results")
    # The store may hold other runs' results too: answer each point by its design.
    results = run.results
    row_of = {design_key(v): i for i, v in enumerate(results[space.names].to_numpy(float))}
    ref = reference_result(results, found, space, f"; see {outputs.csv}")
    ref_energy = float(ref["dft_energy"])
    keys = list(dict.fromkeys(design_key(v) for v in points[space.names].to_numpy(float)))
    everything = results.iloc[[row_of[k] for k in keys if k in row_of]]
    mine = everything[everything["status"] == Status.OK.value]
    data = mine[space.names].reset_index(drop=True)
    data[GAP] = mine["dft_gap"].to_numpy(float)
    data[STRAIN_ENERGY] = mine["dft_energy"].to_numpy(float) - ref_energy
    split = dataset_split(record, data[space.names].to_numpy(float), str(dataset_csv))  # may refuse: before writing
    write_csv(data, dataset_csv)
    failed = len(keys) - len(data)
    write_json({
        "space": found.name, "space_file": None if found.source is None else str(found.source),
        "settings": run.summary["settings"], "relax_ions": relax_ions,
        "calibration": None if calibration is None else calibration.summary(),
        "reference_design": reference, "reference_energy_per_atom": ref_energy,
        "points": len(points), "distinct_points": len(keys),
        "labelled": len(data), "failed": failed, "versions": engine_versions(),
        "band_edges": {"file": str(outputs.csv), "columns": EDGE_COLUMNS,
                       "direct": int(mine["direct"].sum()) if mine["direct"].notna().all() else None},
        "dft_seconds": float(everything["seconds"].sum() + ref["seconds"]), "wall_seconds_this_run": time.perf_counter() - start,
        "date": time.strftime("%Y-%m-%d"), **dict(provenance or {}),
        "split": split,
    }, record)
    echo(f"labelled {len(data)} of {len(points)} points ({failed} failed, listed in {outputs.csv}); "
         f"dataset {dataset_csv}, provenance {record}")
    return data


def dataset_split(record: Path, x, source: str) -> dict | None:
    """The dataset's fixed split (see :class:`~matdesinne.data.splits.Split`) for its
    provenance ``record``: the one an earlier run recorded there, extended to the rows
    appended since (they train), else a new one (seed 0, 80/10/10); None for fewer rows
    than a split needs. A dataset whose earlier rows changed is refused in one line, so
    that no test row becomes a training row: append new points at the end of the file."""
    earlier = read_json(record).get("split") if record.is_file() else None
    if earlier is not None:
        split = Split.from_dict(earlier, str(record))
    elif len(x) >= MIN_ROWS:
        split = Split.draw(len(x), 0)
    else:
        return None
    try:
        return split.to_dict(x)
    except UserInputError as err:
        raise UserInputError(f"{err}; keep the earlier points first and in order, append new ones after "
                             f"them (the DFT results are kept in the store)") from None


def file_record(path: str | os.PathLike) -> dict:
    """A file as provenance: its path, SHA-256 and, if ``sample`` wrote one, its own record."""
    path = Path(path)
    record = {"file": str(path.resolve()), "sha256": file_sha256(path)}
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            record["made_by"] = read_json(sidecar)
        except UserInputError:
            pass
    return record


def add_strain_energy(
    run,
    found: Material,
    candidates: pd.DataFrame,
    store: str | os.PathLike,
    *,
    settings,
    calibration: Calibration | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    echo: Echo = quiet,
    predict=None,
):
    """Beside a validation ``run`` in ``store``: compute the reference structure of ``found``
    with the same settings, once, in ``<stem>_reference.db`` (and ``.csv``), and add ``dft_strain_energy``
    (eV/atom, the design's energy per atom minus the reference's) to the run's results
    table (rewritten) and summary (``summary["strain_energy"]``, also in the summary file).
    Returns the updated run; ``run`` itself where ``found`` declares no strain energy.
    Where ``candidates`` (the validated file) has a ``strain_energy_pred`` column it is
    carried over (else ``predict(x)``, x (n, dim), fills it when given), and the summary
    includes the surrogate's MAE against DFT."""
    if STRAIN_ENERGY not in [p.name for p in found.properties]:
        return run
    space = run_space(found)
    reference = pd.DataFrame([reference_design(found)])
    outputs = Outputs.of(store)
    # Its own store beside the candidates', so their tables and reports hold candidates only.
    ref_store = outputs.store.with_name(outputs.store.stem + "_reference.db")
    ref_run = validate(reference, space, ref_store, settings=settings, calibration=calibration, scheduler=scheduler,
                       workers=workers, source="reference", echo=echo, progress=False, report=False,
                       build=found.builder)
    ref_energy = float(reference_result(ref_run.results, found, space)["dft_energy"])
    results = run.results.copy()
    results[f"dft_{STRAIN_ENERGY}"] = results["dft_energy"].astype(float) - ref_energy
    if f"{STRAIN_ENERGY}_pred" not in candidates and predict is not None:
        results[f"{STRAIN_ENERGY}_pred"] = predict(results[space.names].to_numpy(float))
    elif f"{STRAIN_ENERGY}_pred" in candidates:
        # By design, not row number: the store may also hold other files' candidates.
        pred = dict(zip((design_key(v) for v in candidates[space.names].to_numpy(float)),
                        candidates[f"{STRAIN_ENERGY}_pred"].to_numpy(float)))
        results[f"{STRAIN_ENERGY}_pred"] = [pred.get(design_key(v), float("nan"))
                                            for v in results[space.names].to_numpy(float)]
    write_csv(results, outputs.csv)
    ok = results[results["status"] == Status.OK.value]
    energies = ok[f"dft_{STRAIN_ENERGY}"].to_numpy(float)
    entry = {"reference_energy_per_atom": ref_energy, "n": int(len(energies)),
             "median": float(pd.Series(energies).median()) if len(energies) else None,
             "mean": float(energies.mean()) if len(energies) else None}
    if f"{STRAIN_ENERGY}_pred" in ok:
        entry["mae_surrogate_vs_dft"] = float((ok[f"{STRAIN_ENERGY}_pred"].astype(float) - energies).abs().mean(skipna=True))
    if outputs.summary.exists():
        summary = read_json(outputs.summary)
        summary[STRAIN_ENERGY] = entry
        write_json(summary, outputs.summary)
    return dataclasses.replace(run, results=results, summary={**run.summary, STRAIN_ENERGY: entry})


def run_space(found: Material):
    """The space ``label`` and validation compute in: the band gap's, where there is one."""
    return found.space(GAP if GAP in [p.name for p in found.properties] else None)
