"""How many DFT rows a material needs: the surrogate's held-out error against training rows.

    python benchmarks/rows.py --data src/matdesinne/materials/ws2/ws2_data.csv --space ws2 \
        [--sizes 64 128 256 409] [--targets 0.5 1.0 1.5] [--json out.json]

A seeded fifth of the rows is held out once; the training sets are the first N of the
other rows in file order, which for ``matdesinne sample --method sobol`` is the Sobol'
order, so each smaller set is itself space-filling. A tenth of each training set picks
the epoch. Each property of the space is learnt by its own surrogate; the table gives its
MAE on all held-out rows, on those above the property's lower limit (gapped rows, for a
gap), and on those within ±0.1 of each target (the rows count beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date

import numpy as np

from matdesinne.materials import load_dataset, material
from matdesinne.models import EnsembleSurrogate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="labelled CSV, e.g. from `matdesinne label`")
    ap.add_argument("--space", required=True, help="the material's name or TOML file")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="training-set sizes (default: doubling)")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    found = material(args.space)
    print(f"# rows benchmark, {date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.data}")
    result = {"date": str(date.today()), "data": args.data, "space": found.name, "properties": {}}
    for prop in found.properties:
        data = load_dataset(args.data, y=prop.name, space=found)
        rng = np.random.default_rng(args.seed)
        test = np.sort(rng.permutation(len(data))[: len(data) // 5])
        pool = np.setdiff1d(np.arange(len(data)), test)  # file order kept
        sizes = args.sizes or [n for n in (2 ** k for k in range(5, 16)) if n < len(pool)] + [len(pool)]
        y_test = data.y[test]
        gapped = y_test > prop.lower if prop.lower is not None else np.ones(len(test), bool)
        rows = []
        print(f"\n{prop.name} ({prop.unit}); {len(test)} held-out rows, {int(gapped.sum())} above the lower limit")
        near_cols = [f"near {t:g}" for t in args.targets] if prop.lower is not None else []
        print("| rows | MAE all | MAE above limit | " + " | ".join(near_cols) + (" | " if near_cols else "")
              + "seconds |")
        print("|---|---|---|" + "---|" * len(near_cols) + "---|")
        for n in sizes:
            train = pool[:n]
            order = np.random.default_rng(args.seed + 1).permutation(n)
            val, fit = train[order[: max(2, n // 10)]], train[order[max(2, n // 10):]]
            start = time.perf_counter()
            model = EnsembleSurrogate(seed=args.seed, device="cpu").fit(
                data.x[fit], data.y[fit], data.space, data.x[val], data.y[val])
            pred = model.predict(data.x[test])[0]
            err = np.abs(pred - y_test)
            row = {"rows": int(n), "mae": float(err.mean()), "mae_above_limit": float(err[gapped].mean()),
                   "seconds": time.perf_counter() - start, "near": {}}
            for t in args.targets if near_cols else []:
                near = np.abs(y_test - t) <= 0.1
                row["near"][f"{t:g}"] = {"mae": float(err[near].mean()) if near.any() else None, "rows": int(near.sum())}
            rows.append(row)
            near_text = " | ".join("n/a" if v["mae"] is None else f"{v['mae']:.3f} ({v['rows']})"
                                   for v in row["near"].values())
            print(f"| {n} | {row['mae']:.4f} | {row['mae_above_limit']:.4f} | " + (near_text + " | " if near_cols else "")
                  + f"{row['seconds']:.0f} |", flush=True)
        result["properties"][prop.name] = {"unit": prop.unit, "held_out": len(test), "curve": rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
