"""Closed-loop benchmark: MoS2 at 0.5 and 1.0 eV, 3 rounds x 20 DFT calls per target, GPAW
`standard` settings with the shipped calibration. Prints the per-round table, both update
methods' cross-validated errors, diversity of the final candidates against today's, and
timings.

    python benchmarks/loop.py [--out out/loop-benchmark] [--rounds 3] [--batch 20] [--workers 2]

The campaign folder is resumable: run the same command again after an interruption. A
fresh folder measures the campaign's wall time; a resumed one says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np

from matdesinne.evaluation.metrics import duplicate_fraction, nn_distance, normalized
from matdesinne.loop.acquisition import CONFIDENT
from matdesinne.loop.runner import CAMPAIGN_FILE, LoopSettings, run_loop
from matdesinne.models import load_models
from matdesinne.pipeline import design
from matdesinne.text import fmt
from matdesinne.validation import resolve_calibration, resolve_settings


def seconds(call, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/loop-benchmark"))
    parser.add_argument("--targets", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--settings", default="standard")
    parser.add_argument("--confident", type=float, default=CONFIDENT)
    parser.add_argument("--update", choices=["auto", "residual", "refit"], default="auto")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--check", type=int, default=10,
                        help="shipped candidates per target checked with DFT at the end, never told (default: 10)")
    args = parser.parse_args()

    models = load_models()
    dft = resolve_settings(args.settings)
    calibration = resolve_calibration(None, models.directory, dft)
    settings = LoopSettings(targets=tuple(args.targets), batch=args.batch, seed=0, tolerance=0.1, n_samples=10000,
                            update=args.update, confident=args.confident, models=os.path.realpath(models.directory),
                            dft=dft.to_dict(), calibration=None if calibration is None else calibration.offset)
    fresh = not (args.out / CAMPAIGN_FILE).is_file()
    start = time.perf_counter()
    meta = run_loop(args.out, models, settings, rounds=args.rounds, calibration=calibration, workers=args.workers,
                    check=args.check, echo=lambda line: print(line, flush=True), progress=False)
    wall = time.perf_counter() - start

    print(f"\nClosed-loop benchmark of {date.today()}, {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
          f"GPAW {dft.name} settings, calibration offset {fmt(settings.calibration)} eV, batch {args.batch} per target, "
          f"pick among the {args.confident:g} most confident, update {args.update}.")
    print(f"Command: python benchmarks/loop.py --out {args.out} --rounds {args.rounds} --batch {args.batch} "
          f"--confident {args.confident:g} --update {args.update}\n")
    print("| round | target (eV) | DFT calls so far | DFT MAE of the batch vs target (eV) | wrong side | "
          "model MAE vs DFT before (eV) | after, held out (eV) | update |")
    print("|---|---|---|---|---|---|---|---|")
    calls = {int(k): v for k, v in meta["calls_by_round"].items()}
    for r in meta["rounds"]:
        spent = sum(v for k, v in calls.items() if k <= r["round"])
        print(f"| {r['round']} | {r['target']:g} | {spent} | {fmt(r['mae_vs_target'])} | {r['wrong_side']}/{r['told']} | "
              f"{fmt(r['model_mae_before'])} | {fmt(r['model_mae_after_cv'])} | {r['method']} |")
    print("\nBoth updates, cross-validated on the DFT rows told so far (MAE, eV):\n")
    print("| tell | rows | residual GP | refit | kept |")
    print("|---|---|---|---|---|")
    for u in meta["updates"]:
        print(f"| {u['tell']} | {u['told']} | {fmt(u['scores'].get('residual'))} | {fmt(u['scores'].get('refit'))} | "
              f"{u['method']} |")
    print("\nLookup baseline (true MAE of published training rows within 0.1 eV): "
          + ", ".join(f"{t} eV: {fmt(v)}" for t, v in meta["lookup_mae"].items()))

    from matdesinne.loop.runner import open_campaign

    campaign, _ = open_campaign(args.out, models, None)
    space = models.space
    print("\n| target (eV) | final candidates | distinct | NN distance | today's candidates | today's NN distance | "
          "design s (final model) | design s (today) |")
    print("|---|---|---|---|---|---|---|---|")
    for t in args.targets:
        final = campaign.candidates(t)
        today = design(models, t, n=10000, seed=0).candidates
        xf, xt = (normalized(f[space.names].to_numpy(), space) for f in (final, today))
        slow = seconds(lambda: campaign.candidates(t))
        fast = seconds(lambda: design(models, t, n=10000, seed=0))
        print(f"| {t:g} | {len(final)} | {round(len(final) * (1 - duplicate_fraction(xf)))} | {fmt(nn_distance(xf))} | "
              f"{len(today)} | {fmt(nn_distance(xt))} | {slow:.2f} | {fast:.2f} |")
    print(f"\nDFT calls: {meta['dft_calls']}; wall time of this run: {wall / 60:.1f} min"
          + ("" if fresh else " (resumed: an earlier run did part of the work)"))
    print(f"Files: {args.out}/campaign.json, campaign.png, candidates-<target>.csv, dft.db")


if __name__ == "__main__":
    main()
