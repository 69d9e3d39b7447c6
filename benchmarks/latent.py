"""Quasi-random against i.i.d. latent draws: what ``--latent sobol`` does to yield, diversity
and coverage of the shipped models' candidates.

    python benchmarks/latent.py [--space mos2] [--method matdesinne-cinn] [--targets 0.5 1.0]
                                [--n 10000] [--seeds 0 1 2] [--json out.json]

Per target and latent draw, means over seeds of:
- the raw samples' in-box and kept fractions;
- the candidates' count;
- the nearest-neighbour distance (diversity);
- the energy distance to the training rows within ±0.1 of the target (lower: closer to the
  data's own level set);
- coverage gap: the mean distance from each of those training rows to its nearest
  candidate (lower: the candidates leave fewer of the data's designs unrepresented).
Distances are in normalised design units (each parameter's range = 1).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from matdesinne.evaluation.metrics import _nearest, energy_distance, nn_distance, normalized
from matdesinne.io import write_json
from matdesinne.materials import training_split
from matdesinne.models import load_models
from matdesinne.pipeline import design, generator_of

COLUMNS = ("in_box", "kept", "candidates", "nn_distance", "energy_distance_to_data", "coverage_gap")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="mos2")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.5, 1.0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--method", default="matdesinne-cinn", help="a pipeline method, e.g. matdesinne-cfm")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    models = load_models(space=args.space, generator=generator_of(args.method))
    space = models.space
    data, (train, _, _) = training_split(models.surrogate.training_, space)
    x_train, y_train = data.x[train], data.y[train]
    print(f"{space.name}, {args.method}, {args.n} samples, seeds {args.seeds}")
    print("| target | latent | in box | kept | candidates | NN dist | energy dist to data | coverage gap |")
    print("|---|---|---|---|---|---|---|---|")
    table = []
    for t in args.targets:
        rows = normalized(x_train[np.abs(y_train - t) <= 0.1], space)
        for latent in ("normal", "sobol"):
            runs = []
            for seed in args.seeds:
                res = design(models, t, n=args.n, method=args.method, seed=seed, latent=latent)
                s, x = res.summary, normalized(res.candidates[space.names].to_numpy(), space)
                covered = float(_nearest(rows, x).mean()) if len(x) else float("nan")
                runs.append((s["n_in_bounds"] / args.n, s["n_kept"] / args.n, len(x), nn_distance(x),
                             energy_distance(x, rows), covered))
            m = [statistics.mean(col) for col in zip(*runs)]
            table.append({"target": t, "latent": latent, **dict(zip(COLUMNS, m))})
            print(f"| {t:g} | {latent} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.0f} | {m[3]:.4f} | {m[4]:.4f} | {m[5]:.3f} |",
                  flush=True)
    if args.json:
        write_json({"space": space.name, "method": args.method, "n": args.n, "seeds": args.seeds, "rows": table},
                   args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
