"""How far each DFT judge's band gap is from a k-converged reference, and what it costs.

    python benchmarks/judge.py [--out out/judge] [--settings standard accurate reference]
                               [--workers 2] [--json benchmarks/results/judge.json] [--report-only]

The cells: for MoS2 and WS2 each, 6 Sobol' points of the whole design box (sheared cells
and fields included) and 2 designed candidates (the shipped models) at each of 0.1 eV (by
the metal/insulator line), 0.5, 1.0 and 1.5 eV: 28 cells, fixed by the seed. Each judge
computes them into its own resumable store (``<out>/<material>-<judge>.db``, see
``validate``), so an interrupted run, or one that computes only ``--settings standard
accurate`` now and the slow reference later, loses nothing.

Judges: the ``standard`` and ``accurate`` presets; ``reference``, the bands on a 48x48 mesh
computed non-self-consistently on an 18x18 SCF density; ``reference60``, the same at 60x60
on the first ``--converged-cells`` cells of each material, to show the reference itself is
converged. The table gives each judge's raw gap minus the reference's (the k-sampling error;
a coarse mesh can only overestimate) on the cells the reference has finished: of the gap
clipped at 0 (what a user gets; two metals agree) on every cell, and of the raw gap on the
cells where either side has a gap; and the median seconds per structure of each judge in
its store (``standard`` and ``accurate`` run one after the other in one command).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from matdesinne.data.sampling import sample_space
from matdesinne.errors import UserInputError
from matdesinne.models import load_models
from matdesinne.pipeline import design
from matdesinne.validation import validate
from matdesinne.validation.dft import PRESETS, DFTSettings

JUDGES = {
    "standard": PRESETS["standard"],
    "accurate": PRESETS["accurate"],
    "reference": DFTSettings("reference", cutoff=300.0, kpoints=18, edge_mesh=48),
    "reference60": DFTSettings("reference60", cutoff=300.0, kpoints=18, edge_mesh=60),
}
MATERIALS = ("mos2", "ws2")
TARGETS = (0.1, 0.5, 1.0, 1.5)


def cells(name: str, box: int, per_target: int, seed: int) -> pd.DataFrame:
    """The cells of material ``name``: ``box`` Sobol' points, then ``per_target`` designed
    candidates at each of :data:`TARGETS` (a ``kind`` column says which)."""
    models = load_models(space=name)
    frames = [sample_space(models.space, box, "sobol", seed=seed).assign(kind="box", target=np.nan)]
    rng = np.random.default_rng(seed)
    for t in TARGETS:
        found = design(models, t, n=2000, seed=seed).candidates
        take = rng.choice(len(found), size=min(per_target, len(found)), replace=False)
        frames.append(found.iloc[np.sort(take)][models.space.names].assign(kind=f"designed {t:g}", target=t))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/judge"))
    ap.add_argument("--settings", nargs="+", choices=list(JUDGES), default=["standard", "accurate", "reference"])
    ap.add_argument("--materials", nargs="+", choices=list(MATERIALS), default=list(MATERIALS))
    ap.add_argument("--box", type=int, default=6, help="Sobol' cells of the whole box per material")
    ap.add_argument("--per-target", type=int, default=2, help="designed cells per target per material")
    ap.add_argument("--converged-cells", type=int, default=3, help="cells per material that reference60 computes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true", help="compute nothing: report what the stores hold")
    args = ap.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        tables = {}
        for name in args.materials:
            chosen = cells(name, args.box, args.per_target, args.seed)
            models = load_models(space=name, generator=None)
            tables[name] = chosen
            for judge in [] if args.report_only else args.settings:
                rows = chosen.iloc[:args.converged_cells] if judge == "reference60" else chosen
                print(f"{name}: {judge} on {len(rows)} cells", flush=True)
                validate(rows, models.space, args.out / f"{name}-{judge}.db", settings=JUDGES[judge],
                         workers=args.workers, echo=lambda line: print(line, flush=True) if line.startswith("DFT") else None,
                         report=False, build=models.builder, source=f"{name} cells")
    except UserInputError as err:
        print(f"judge: error: {err}", file=sys.stderr)
        return 2
    report = summarize(args.out, tables)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _stored(path: Path) -> pd.DataFrame:
    """Finished results of one judge's store, by design (see ``validate``'s results CSV)."""
    csv = path.with_suffix(".csv")
    if not csv.is_file():
        return pd.DataFrame()
    frame = pd.read_csv(csv)
    return frame[frame["status"] == "ok"]


def summarize(out: Path, tables: dict[str, pd.DataFrame]) -> dict:
    """Per judge: the error against the reference (mean and max of |gap − reference|, on
    every finished cell and on gapped ones) and the median seconds per structure."""
    per_cell = []
    for name, chosen in tables.items():
        keys = chosen.reset_index(drop=True)
        for judge in JUDGES:
            done = _stored(out / f"{name}-{judge}.db")
            for _, r in done.iterrows():
                per_cell.append({"material": name, "cell": int(r["candidate"]), "kind": keys.loc[int(r["candidate"]), "kind"],
                                 "judge": judge, "gap": float(r["dft_gap_raw"]), "seconds": float(r["seconds"]),
                                 "direct": None if pd.isna(r.get("direct")) else bool(r["direct"])})
    cells_done = pd.DataFrame(per_cell)
    report = {"date": str(date.today()), "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "judges": {k: v.to_dict() for k, v in JUDGES.items()}, "by_judge": {},
              "cells": per_cell}
    if cells_done.empty:
        return report
    wide = cells_done.pivot_table(index=["material", "cell"], columns="judge", values="gap")
    for judge in JUDGES:
        if judge not in wide or "reference" not in wide or judge == "reference":
            continue
        both = wide[[judge, "reference"]].dropna()
        gapped = both[(both["reference"] > 0) | (both[judge] > 0)]  # a gap on either side
        seconds = cells_done.loc[cells_done["judge"] == judge, "seconds"]
        # The gap a user gets is the raw gap clipped at 0: two metals agree, whatever their overlap.
        err, err_gapped = both[judge].clip(lower=0) - both["reference"].clip(lower=0), gapped[judge] - gapped["reference"]
        report["by_judge"][judge] = {
            "cells": int(len(both)), "gapped_cells": int(len(gapped)),
            "mean_abs_error": float(err.abs().mean()) if len(err) else None,
            "max_abs_error": float(err.abs().max()) if len(err) else None,
            "mean_abs_error_gapped": float(err_gapped.abs().mean()) if len(err_gapped) else None,
            "max_abs_error_gapped": float(err_gapped.abs().max()) if len(err_gapped) else None,
            "mean_signed_error_gapped": float(err_gapped.mean()) if len(err_gapped) else None,
            "median_seconds": float(seconds.median()) if len(seconds) else None,
            "structures_timed": int(len(seconds)),
        }
    std = report["by_judge"].get("standard", {}).get("median_seconds")
    for entry in report["by_judge"].values():
        entry["cost_vs_standard"] = entry["median_seconds"] / std if std and entry["median_seconds"] else None
    return report


def print_report(report: dict) -> None:
    print(f"# DFT judges against the 48x48 reference, {report['date']}, {report['machine']}, {report['cpu_count']} cores")
    print("| judge | cells | gapped | mean abs error of the gap (eV) | max | gapped, raw gap: mean abs | max | "
          "mean signed | median s | cost vs standard |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def f(v, spec=".4f"):
        return "-" if v is None else format(v, spec)

    for judge, e in report["by_judge"].items():
        print(f"| {judge} | {e['cells']} | {e['gapped_cells']} | {f(e['mean_abs_error'])} | {f(e['max_abs_error'])} | "
              f"{f(e['mean_abs_error_gapped'])} | {f(e['max_abs_error_gapped'])} | {f(e['mean_signed_error_gapped'])} | "
              f"{f(e['median_seconds'], '.1f')} | {f(e['cost_vs_standard'], '.2f')} |")


if __name__ == "__main__":
    raise SystemExit(main())
