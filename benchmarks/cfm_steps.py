"""CFM sampling: accuracy and time against the number of ODE steps and the solver.

    python benchmarks/cfm_steps.py [--space mos2] [--targets 0.5 1.0] [--n 10000]

For the shipped CFM, per solver and step count: the seconds to draw ``--n`` raw samples,
and per target their MAE under the independent GP evaluator (fitted on the training
rows, as in ``matdesinne benchmark``) and the fraction that down-selection keeps. It
reports; the shipped default (20 Euler steps) was chosen at held-aside targets under the
surrogate, not with these targets or this evaluator (see the README's CFM section).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from matdesinne.evaluation.evaluators import GaussianProcessEvaluator
from matdesinne.materials import training_split
from matdesinne.models import load_models
from matdesinne.pipeline import downselect


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="mos2")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.5, 1.0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    models = load_models(space=args.space, generator="cfm")
    cfm, space = models.generator, models.space
    data, (train, _, _) = training_split(models.surrogate.training_, space)
    gp = GaussianProcessEvaluator(seed=args.seed + 1).fit(data.x[train], data.y[train], space)
    print(f"| solver | steps | evaluations | seconds | " + " | ".join(f"MAE gp @ {t:g} | kept @ {t:g}" for t in args.targets) + " |")
    print("|---|---|---|---|" + "---|---|" * len(args.targets))
    for solver, per_step in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
        for steps in (2, 5, 10, 20, 40):
            cfm.solver, cfm.steps = solver, steps
            cells = []
            seconds = []
            for t in args.targets:
                start = time.perf_counter()
                x = cfm.sample(t, args.n, seed=args.seed)
                seconds.append(time.perf_counter() - start)
                mae = float(np.abs(gp.predict(x) - t).mean())
                kept = float(downselect(x, models.surrogate, t, space).kept.mean())
                cells += [f"{mae:.3f}", f"{kept:.2f}"]
            print(f"| {solver} | {steps} | {steps * per_step} | {np.median(seconds):.2f} | " + " | ".join(cells) + " |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
