"""Which surrogate settings a material's data supports: K-fold cross-validation on the training rows.

    python benchmarks/surrogate_cv.py --data ws2 [--y band_gap,strain_energy] [--folds 5]
                                      [--members 5 10] [--hidden 128 256] [--layers 3 4]
                                      [--weight-decay 0 1e-4] [--json out.json]

The rows that ``matdesinne train`` holds out as its test split (``--split-seed``) are left
out entirely, so choosing settings here never looks at the numbers the shipped models are
scored on. The other rows are cut into ``--folds`` seeded folds; for each setting and fold
the surrogate trains on the rest (a tenth of it picking the epoch, as ``train`` does) and
predicts the fold. The table gives, per setting, the first property's MAE on all rows, on
rows above its lower limit and near each target, and the further properties' MAE, as mean
over folds ± the standard error across folds.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from datetime import date

import numpy as np

from matdesinne.data.datasets import split_indices
from matdesinne.io import write_json
from matdesinne.materials import load_dataset, material
from matdesinne.materials.symmetry import with_images
from matdesinne.models import EnsembleSurrogate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a built-in dataset (ws2) or a labelled CSV with --space")
    ap.add_argument("--space", default=None, help="the material's name or TOML file (for a CSV)")
    ap.add_argument("--y", default=None, help="properties, comma-separated (default: all of the space's)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--members", type=int, nargs="+", default=[5])
    ap.add_argument("--hidden", type=int, nargs="+", default=[128])
    ap.add_argument("--layers", type=int, nargs="+", default=[3])
    ap.add_argument("--weight-decay", type=float, nargs="+", default=[0.0])
    ap.add_argument("--symmetry", choices=["on", "off", "both"], default="both",
                    help="train on the rows and their images under the material's symmetries, as `train` does")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    ap.add_argument("--split-seed", type=int, default=0, help="the train split whose test rows are left out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    found = material(args.space or args.data)
    names = args.y.split(",") if args.y else [p.name for p in found.properties]
    sets = [load_dataset(args.data, y=name, **({"space": found} if args.space else {})) for name in names]
    first = sets[0]
    y_all = np.column_stack([d.y for d in sets])
    train, val, _test = split_indices(len(first), args.split_seed, 0.1, 0.1)
    pool = np.sort(np.concatenate([train, val]))
    folds = np.array_split(np.random.default_rng(args.seed).permutation(pool), args.folds)
    prop = first.space.property
    also = [d.space.property for d in sets[1:]]
    print(f"# surrogate cross-validation, {date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; {args.data}: {len(pool)} rows in {args.folds} folds "
          f"(the {len(_test)} test rows of split seed {args.split_seed} left out)")
    cols = ["MAE all", "MAE above limit", *(f"near {t:g}" for t in args.targets), *(f"{p.name} MAE" for p in also)]
    print("| symmetry | members | hidden | layers | weight decay | " + " | ".join(cols) + " | seconds |")
    print("|---|---|---|---|---|" + "---|" * len(cols) + "---|")
    results = []
    choices = {"on": [True], "off": [False], "both": [False, True]}[args.symmetry]
    maps = found.symmetries()
    for symmetric, members, hidden, layers, wd in itertools.product(choices, args.members, args.hidden, args.layers,
                                                                    args.weight_decay):
        per_fold, start = [], time.perf_counter()
        for k, held in enumerate(folds):
            rest = np.setdiff1d(pool, held)
            order = np.random.default_rng(args.seed + 1 + k).permutation(rest)
            stop, fit = order[: len(rest) // 10], order[len(rest) // 10:]
            model = EnsembleSurrogate(members=members, hidden=hidden, layers=layers, weight_decay=wd,
                                      seed=args.seed, device="cpu")
            x_fit, y_fit = with_images(first.x[fit], y_all[fit], maps if symmetric else (), first.space)
            model.fit(x_fit, y_fit, first.space, first.x[stop], y_all[stop], also=also)
            pred = np.column_stack([mean for mean, _ in model.predict_all(first.x[held]).values()])
            err = np.abs(pred - y_all[held])
            truth = y_all[held, 0]
            above = truth > prop.lower if prop.lower is not None else np.ones(len(held), bool)
            row = [err[:, 0].mean(), err[above, 0].mean()]
            row += [err[np.abs(truth - t) <= 0.1, 0].mean() for t in args.targets]
            row += [np.nanmean(err[:, j]) for j in range(1, err.shape[1])]
            per_fold.append(row)
        per_fold = np.array(per_fold)
        mean, se = per_fold.mean(0), per_fold.std(0, ddof=1) / np.sqrt(len(folds))
        seconds = time.perf_counter() - start
        results.append({"symmetry": symmetric, "members": members, "hidden": hidden, "layers": layers, "weight_decay": wd,
                        "columns": cols, "mean": mean.tolist(), "se": se.tolist(), "seconds": seconds})
        print(f"| {'on' if symmetric else 'off'} | {members} | {hidden} | {layers} | {wd:g} | "
              + " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in zip(mean, se)) + f" | {seconds:.0f} |", flush=True)
    if args.json:  # a fold with no row near a target has no MAE there: null, not NaN
        write_json({"date": str(date.today()), "data": args.data, "rows": int(len(pool)), "folds": args.folds,
                    "results": results}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
