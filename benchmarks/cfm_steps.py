"""CFM sampling: accuracy and time against the number of ODE steps and the solver.

    python benchmarks/cfm_steps.py [--space mos2] [--targets 0.5 1.0] [--n 10000] [--json out.json]

For the shipped CFM, per solver and step count: the seconds to draw ``--n`` raw samples,
and per target their MAE under the independent GP evaluator (fitted on the training
rows, as in ``matdesinne benchmark``) and the fraction that down-selection keeps. It
reports; the shipped default (20 Euler steps) was chosen at held-aside targets under the
surrogate, not with these targets or this evaluator (see the README's CFM section).
``--solvers``, ``--steps`` and ``--fit-rows`` (the GP fitted on a seeded subset of the
training rows) shrink it for a quick check.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from matdesinne.evaluation.evaluators import GaussianProcessEvaluator
from matdesinne.io import write_json
from matdesinne.materials import training_split
from matdesinne.models import load_models
from matdesinne.pipeline import downselect

PER_STEP = {"euler": 1, "midpoint": 2, "rk4": 4}  # network evaluations per ODE step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="mos2")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.5, 1.0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solvers", nargs="+", choices=list(PER_STEP), default=list(PER_STEP))
    ap.add_argument("--steps", type=int, nargs="+", default=[2, 5, 10, 20, 40])
    ap.add_argument("--fit-rows", type=int, default=None, help="fit the GP on this many training rows (default: all)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    models = load_models(space=args.space, generator="cfm")
    cfm, space = models.generator, models.space
    data, (train, _, _) = training_split(models.surrogate.training_, space)
    if args.fit_rows is not None and args.fit_rows < len(train):
        train = np.sort(np.random.default_rng(args.seed).choice(train, args.fit_rows, replace=False))
    gp = GaussianProcessEvaluator(seed=args.seed + 1).fit(data.x[train], data.y[train], space)
    print(f"| solver | steps | evaluations | seconds | " + " | ".join(f"MAE gp @ {t:g} | kept @ {t:g}" for t in args.targets) + " |")
    print("|---|---|---|---|" + "---|---|" * len(args.targets))
    rows = []
    for solver in args.solvers:
        for steps in args.steps:
            cfm.solver, cfm.steps = solver, steps
            cells = []
            seconds = []
            by_target = {}
            for t in args.targets:
                start = time.perf_counter()
                x = cfm.sample(t, args.n, seed=args.seed)
                seconds.append(time.perf_counter() - start)
                mae = float(np.abs(gp.predict(x) - t).mean())
                kept = float(downselect(x, models.surrogate, t, space).kept.mean())
                by_target[f"{t:g}"] = {"mae_gp": mae, "kept": kept}
                cells += [f"{mae:.3f}", f"{kept:.2f}"]
            rows.append({"solver": solver, "steps": steps, "evaluations": steps * PER_STEP[solver],
                         "seconds": float(np.median(seconds)), "targets": by_target})
            print(f"| {solver} | {steps} | {steps * PER_STEP[solver]} | {np.median(seconds):.2f} | " + " | ".join(cells)
                  + " |", flush=True)
    if args.json:
        write_json({"space": space.name, "n": args.n, "seed": args.seed, "gp_rows": int(len(train)), "rows": rows},
                   args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
