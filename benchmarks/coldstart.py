"""Cold start: an acquisition rule against space-filling alone, at the same budget, on a
design space whose truth is known exactly.

    python benchmarks/coldstart.py [--budgets 60 120] [--seeds 0 1 2] [--targets 0.6 1.2]
                                   [--json benchmarks/results/coldstart-synthetic.json]

The space: 4 parameters in [0, 1], a floored smooth function with about a third of the box
at the floor 0 (a metal) and the rest rising to ~2 (a gap). Each rule spends the budget
(a Sobol' seed of a quarter of it, then rounds of a tenth) through the same
:class:`~matdesinne.loop.coldstart.ColdStart` that ``matdesinne loop --budget`` runs; then
an ensemble surrogate (the pipeline's, 3 members) trains on the rows it computed. Scored on
4,000 fresh uniform points: the surrogate's MAE on the points whose true value lies within
±0.05 of each target (where designs for that target land), and the fraction of the budget
spent within ±0.1 of a target. A DFT comparison runs the same two rules through the GPAW
engine (``matdesinne loop --budget N --rule ...``); it is not part of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from matdesinne.data import Parameter, Property
from matdesinne.loop.coldstart import ColdStart, ColdStartSettings
from matdesinne.materials import Material
from matdesinne.models import EnsembleSurrogate
from matdesinne.validation.engine import FunctionEngine

NAMES = ("p0", "p1", "p2", "p3")


def truth(x: np.ndarray) -> np.ndarray:
    """The synthetic 'DFT': floored at 0 over about a third of the box, curved elsewhere."""
    x = np.asarray(x, dtype=np.float64)
    raw = 2.2 * x[:, 0] + 1.2 * x[:, 1] ** 2 + 0.4 * np.sin(4.0 * x[:, 2]) - 0.6 * x[:, 0] * x[:, 3] - 0.9
    return np.maximum(0.0, raw)


MATERIAL = Material("synthetic4", tuple(Parameter(n, 0.0, 1.0, "") for n in NAMES), (Property("gap", "eV", lower=0.0),))


def run_one(rule: str, budget: int, seed: int, targets: tuple[float, ...], test_x: np.ndarray, folder: Path) -> dict:
    settings = ColdStartSettings(targets=targets, budget=budget, rule=rule, seed=seed)
    engine = FunctionEngine(NAMES, truth, ("gap",))
    start = time.perf_counter()
    rows = ColdStart(MATERIAL, settings, engine, folder).spend(lambda line: None, progress=False)
    seconds = time.perf_counter() - start
    x, y = rows[list(NAMES)].to_numpy(float), rows["gap"].to_numpy(float)
    order = np.random.default_rng(seed).permutation(len(y))
    stop, fit = order[: max(2, len(y) // 10)], order[max(2, len(y) // 10):]
    space = MATERIAL.space()
    model = EnsembleSurrogate(members=3, seed=seed, device="cpu").fit(x[fit], y[fit], space, x[stop], y[stop])
    pred = model.predict(test_x)[0]
    true = truth(test_x)
    near_budget = float(np.mean(np.min(np.abs(y[:, None] - np.array(targets)[None, :]), axis=1) <= 0.1))
    out = {"rule": rule, "budget": budget, "seed": seed, "rows": int(len(y)), "near_target_fraction": near_budget,
           "acquisition_seconds": seconds}
    for t in targets:
        band = np.abs(true - t) <= 0.05
        out[f"mae_near_{t:g}"] = float(np.abs(pred[band] - true[band]).mean())
        out[f"test_points_near_{t:g}"] = int(band.sum())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=int, nargs="+", default=[60, 120])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--targets", type=float, nargs="+", default=[0.6, 1.2])
    ap.add_argument("--rules", nargs="+", default=["straddle", "space-filling"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    targets = tuple(args.targets)
    test_x = np.random.default_rng(12345).uniform(size=(4000, len(NAMES)))
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for budget in args.budgets:
            for seed in args.seeds:
                for rule in args.rules:
                    runs.append(run_one(rule, budget, seed, targets, test_x, Path(scratch) / f"{rule}-{budget}-{seed}"))
    cols = ["near_target_fraction", *(f"mae_near_{t:g}" for t in targets)]
    summary = []
    print(f"# cold start on a 4-parameter synthetic space, {date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; mean ± standard error over seeds {args.seeds}")
    print("| budget | rule | budget spent within ±0.1 of a target | " + " | ".join(f"surrogate MAE near {t:g}" for t in targets) + " |")
    print("|---|---|---|" + "---|" * len(targets))
    for budget in args.budgets:
        for rule in args.rules:
            mine = [r for r in runs if r["budget"] == budget and r["rule"] == rule]
            entry = {"budget": budget, "rule": rule, "seeds": len(mine)}
            cells = []
            for c in cols:
                values = np.array([r[c] for r in mine])
                mean, se = float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None
                entry[c] = {"mean": mean, "se": se}
                cells.append(f"{mean:.3f}" + (f" ± {se:.3f}" if se is not None else ""))
            summary.append(entry)
            print(f"| {budget} | {rule} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"date": str(date.today()), "targets": list(targets), "summary": summary,
                                         "runs": runs}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
