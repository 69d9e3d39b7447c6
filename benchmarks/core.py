"""Core benchmark: surrogate accuracy on held-out rows, and design yield, accuracy and speed.

    python benchmarks/core.py [--models DIR] [--n 10000] [--repeats 3] [--methods cinn matdesinne-cinn]
                              [--fit-rows N] [--json out.json]

Held-out rows are the test split recorded in the surrogate's checkpoint: no model of the
set trained on them or chose an epoch with them. Beside the paper's circular metric (the
candidates scored by the surrogate that localized them) it prints honest ones: the
candidates scored by independent evaluators fitted here on the same training rows, which
never touch generation, each with its own held-out error printed so a reader can judge it:
- ``gp``: a Gaussian process, a different model family;
- ``trees``: gradient-boosted trees, a different model family;
- ``mlp-256``: an MLP ensemble of another width and seed; the same family as the
  surrogate, so its errors may correlate with the surrogate's.
The full method comparison (the paper's Table 1) is ``matdesinne benchmark``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from datetime import date

import numpy as np

from matdesinne.materials import training_split
from matdesinne.evaluation.evaluators import GaussianProcessEvaluator, TreesEvaluator, held_out_report
from matdesinne.evaluation import forward_metrics
from matdesinne.models import EnsembleSurrogate, load_models
from matdesinne.pipeline import design, generator_of


def fmt(v, digits=4):
    return "n/a" if v is None else f"{v:.{digits}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="models folder (default: shipped MoS2 models)")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--targets", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per target; the median is shown")
    ap.add_argument("--methods", nargs="+", default=["cinn", "matdesinne-cinn"], help="`matdesinne design` methods")
    ap.add_argument("--fit-rows", type=int, default=None,
                    help="fit the independent evaluators on this many training rows (default: all)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    models = load_models(args.models)
    record = models.surrogate.training_
    split = record["split"]
    data, (train, val, test) = training_split(record, models.space)
    prop = data.space.property
    unit = prop.unit

    print(f"# matdesinne core benchmark, {date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch threads {__import__('torch').get_num_threads()}")
    print(f"models: {models.directory}; held-out test rows: {len(test)} (split seed {split['seed']})\n")

    sur = forward_metrics(models.surrogate, data.x[test], data.y[test])
    sur["near"] = held_out_report(lambda x: models.surrogate.predict(x)[0], data.x[test], data.y[test],
                                  args.targets)["near"]
    print("### Surrogate on held-out rows\n")
    print(f"| MAE all ({unit}) | MAE {prop.name}=0 | MAE {prop.name}>0 | RMSE | metal/insulator accuracy | "
          "false metal | false insulator |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {fmt(sur['mae'])} | {fmt(sur.get('mae_at_floor'))} | {fmt(sur.get('mae_above_floor'))} | {fmt(sur['rmse'])} | "
          f"{fmt(sur.get('floor_accuracy'), 3)} | {fmt(sur.get('floor_false_negative'), 3)} | {fmt(sur.get('floor_false_positive'), 3)} |")
    print("\n(false metal: gapped row predicted at 0; false insulator: metallic row predicted above 0.01)")
    print("MAE within ±0.1 of each target: " + ", ".join(f"{t}: {fmt(v['mae'])} ({v['rows']} rows)"
                                                          for t, v in sur["near"].items()) + "\n")

    fit = train
    if args.fit_rows is not None and args.fit_rows < len(train):
        fit = np.sort(np.random.default_rng(0).choice(train, args.fit_rows, replace=False))
    gp = GaussianProcessEvaluator(seed=1).fit(data.x[fit], data.y[fit], data.space)
    trees = TreesEvaluator(seed=1).fit(data.x[fit], data.y[fit], data.space)
    mlp = EnsembleSurrogate(hidden=256, seed=123, device="cpu")
    mlp.fit(data.x[fit], data.y[fit], data.space, data.x[val], data.y[val])
    evaluators = {"gp": gp.predict, "trees": trees.predict, "mlp-256": lambda x: mlp.predict(x)[0]}
    evaluator_info = {}
    print(f"Independent evaluators, fitted here on {len(fit)} of the same training rows (MAE on held-out rows):\n")
    print("| evaluator | all | " + " | ".join(f"within ±0.1 of {t:g}" for t in args.targets) + " |")
    print("|---|---|" + "---|" * len(args.targets))
    for name, evaluate in evaluators.items():
        info = evaluator_info[name] = held_out_report(evaluate, data.x[test], data.y[test], args.targets)
        print(f"| {name} | {info['mae']:.4f} | " + " | ".join(fmt(v["mae"]) for v in info["near"].values()) + " |")
    print()

    design(models, args.targets[0], n=min(args.n, 1000), seed=99)  # warm-up: first-call overheads
    rows = []
    print(f"### Design, {args.n} samples per target (seconds: median of {args.repeats} runs)\n")
    print(f"| method | target ({unit}) | kept | candidates | MAE vs surrogate | MAE vs gp | MAE vs trees | MAE vs mlp-256 | "
          "generate s | down-select s | localize s | total s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        generating = models if generator_of(method) == "cinn" else load_models(args.models, generator=generator_of(method))
        for t in args.targets:
            runs = [design(generating, t, n=args.n, method=method, seed=seed) for seed in range(args.repeats)]
            first = runs[0]
            x = first.candidates[data.space.names].to_numpy()
            indep = {name: float(np.abs(ev(x) - t).mean()) if len(x) else None for name, ev in evaluators.items()}
            secs = {k: statistics.median(r.summary["seconds"][k] for r in runs) for k in first.summary["seconds"]}
            row = {
                "method": method, "target": t, "n_kept": first.summary["n_kept"],
                "n_candidates": first.summary["n_candidates"], "mae_surrogate": first.summary["mae_surrogate"],
                "mae_independent": indep, "seconds": secs,
            }
            rows.append(row)
            print(f"| {method} | {t:g} | {row['n_kept']} | {row['n_candidates']} | {fmt(row['mae_surrogate'])} | "
                  f"{fmt(indep['gp'])} | {fmt(indep['trees'])} | {fmt(indep['mlp-256'])} | {secs['generate']:.3f} | {secs['downselect']:.3f} | "
                  f"{secs['localize']:.3f} | {secs['total']:.3f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"surrogate_test": sur, "evaluator_rows": int(len(fit)), "independent_evaluators": evaluator_info,
                       "design": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
