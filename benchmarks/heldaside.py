"""Held-aside check of generator checkpoints: raw accuracy under the surrogate, and yield.

    python benchmarks/heldaside.py [MODELS_DIR ...] [--generator cfm]
        [--targets 0.25 0.75 1.25] [--seeds 0 1 2] [--n 10000] [--json out.json]

For each models folder (default: the shipped MoS2 models), draws ``--n`` raw samples of
``--generator`` at every target and seed, and prints the MAE of the folder's surrogate on
them and the fraction that down-selection keeps, then their means over all draws.

This is how checkpoints and sampler settings are chosen, so that ``matdesinne benchmark``
(targets 0 / 0.5 / 1 eV, independent evaluators) and DFT stay untouched by the choice:
the targets sit between the benchmark's, and only the surrogate scores them. A folder
loads as ``design`` loads it: a generator retrained into a copy of the shipped folder
(``matdesinne train --model cfm --out COPY``) is checked against the surrogate it trained with.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from matdesinne.errors import UserInputError
from matdesinne.io import write_json
from matdesinne.models import load_models
from matdesinne.models.zoo import GENERATORS
from matdesinne.pipeline import downselect


def check(directory, generator: str, targets, seeds, n: int) -> tuple[float, float, list[dict]]:
    """Print one line per (seed, target) and return the mean (MAE, kept fraction) and the draws."""
    models = load_models(directory, generator=generator)
    draws = []
    for seed in seeds:
        for t in targets:
            x = models.generator.sample(t, n, seed=seed)
            sel = downselect(x, models.surrogate, t, models.space)
            draws.append({"seed": seed, "target": t, "mae": float(np.abs(sel.pred - t).mean()),
                          "kept": float(sel.kept.mean())})
            print(f"  seed {seed}, target {t:g}: surrogate MAE {draws[-1]['mae']:.4f}, kept {draws[-1]['kept']:.3f}",
                  flush=True)
    return float(np.mean([d["mae"] for d in draws])), float(np.mean([d["kept"] for d in draws])), draws


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=[None], help="models folders (default: the shipped MoS2 models)")
    ap.add_argument("--generator", default="cfm", choices=sorted(GENERATORS))
    ap.add_argument("--targets", type=float, nargs="+", default=[0.25, 0.75, 1.25])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    try:
        rows = []
        for directory in args.models:
            print(f"{directory or 'shipped models'} ({args.generator}):")
            rows.append((directory or "shipped models", *check(directory, args.generator, args.targets, args.seeds, args.n)))
    except UserInputError as err:
        print(f"heldaside.py: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # it writes nothing, so there is nothing to clean up
        print("heldaside.py: interrupted", file=sys.stderr)
        return 130
    draws = len(args.targets) * len(args.seeds)
    print(f"\n| models | mean surrogate MAE ({draws} draws) | mean kept |\n|---|---|---|")
    for name, mae, kept, _ in rows:
        print(f"| {name} | {mae:.4f} | {kept:.3f} |")
    if args.json:
        write_json({"generator": args.generator, "n": args.n,
                    "models": [{"models": name, "mean_mae": mae, "mean_kept": kept, "draws": each}
                               for name, mae, kept, each in rows]}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
