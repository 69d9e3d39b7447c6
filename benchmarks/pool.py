"""DFT checks pooled: per target, the DFT error of the candidates of one or more
``benchmarks/dft.py`` runs, with its standard error.

    python benchmarks/pool.py out/dft-a [out/dft-b ...] [--window 0.1] [--json out.json]

Each folder is a ``benchmarks/dft.py --out`` folder. Only the designs of its
``candidates.csv`` count, whatever else its store holds, and only finished calculations.
Per target, over all folders, and then over every target: the number of candidates, the
DFT MAE against the target ± its standard error (the spread of the misses over √n), the
median miss, the signed mean (DFT − target), how many lie within ``--window`` of the
target, and how many are on the wrong side of the metal/insulator line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from matdesinne.errors import UserInputError
from matdesinne.io import read_csv, write_json
from matdesinne.validation.store import design_key


def finished(folder: Path) -> pd.DataFrame:
    """The finished DFT results of ``folder``'s own candidates: ``target`` and ``dft_gap``."""
    candidates, results = folder / "candidates.csv", folder / "results.csv"
    for path in (candidates, results):
        if not path.is_file():
            raise UserInputError(f"{path} does not exist: is {folder} a benchmarks/dft.py output folder?")
    asked, done = read_csv(candidates), read_csv(results)
    names = [c for c in asked.columns if c in done.columns and c != "target" and not c.endswith("_pred")]
    mine = {design_key(v) for v in asked[names].to_numpy(float)}
    keys = np.array([design_key(v) in mine for v in done[names].to_numpy(float)], dtype=bool)
    return done[keys & (done["status"] == "ok").to_numpy()][["target", "dft_gap"]]


def pooled(target: np.ndarray, gap: np.ndarray, window: float) -> dict:
    miss = gap - target
    wrong = np.where(target <= 0, gap > 0, gap <= 0)
    n = len(miss)
    return {"n": n, "mae": float(np.abs(miss).mean()),
            "se": float(np.abs(miss).std(ddof=1) / np.sqrt(n)) if n > 1 else None,
            "median": float(np.median(np.abs(miss))), "signed": float(miss.mean()),
            "within": int((np.abs(miss) <= window).sum()), "wrong_side": int(wrong.sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="benchmarks/dft.py output folders")
    ap.add_argument("--window", type=float, default=0.1, help="count the candidates within this of the target")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    try:
        rows = pd.concat([finished(folder) for folder in args.folders], ignore_index=True)
    except UserInputError as err:
        print(f"pool.py: {err}", file=sys.stderr)
        return 2
    target, gap = np.round(rows["target"].to_numpy(float), 6) + 0.0, rows["dft_gap"].to_numpy(float)
    groups = {f"{t:g}": target == t for t in np.unique(target)}
    groups["all"] = np.ones(len(rows), dtype=bool)
    report = {"folders": [str(f) for f in args.folders], "window": args.window, "by_target": {}}
    print(f"| target | n | DFT MAE ± se | median | signed | within ±{args.window:g} | wrong side |")
    print("|---|---|---|---|---|---|---|")
    for name, rows_of in groups.items():
        if not rows_of.any():
            continue
        entry = report["by_target"][name] = pooled(target[rows_of], gap[rows_of], args.window)
        se = "" if entry["se"] is None else f" ± {entry['se']:.3f}"
        print(f"| {name} | {entry['n']} | {entry['mae']:.3f}{se} | {entry['median']:.3f} | {entry['signed']:+.3f} | "
              f"{entry['within']} | {entry['wrong_side']} |")
    if args.json:
        write_json(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
