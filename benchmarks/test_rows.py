"""The surrogate's error on its test rows, and on the test rows that no earlier choice saw.

    python benchmarks/test_rows.py [--space ws2] [--models DIR] [--cv-pool 1325] [--json out.json]

A model set's test rows are the recorded split's (see ``matdesinne.data.splits``). Before
splits were fixed by row identity, a dataset that grew was split afresh, so some of today's
test rows may have been in the pool that an earlier cross-validation used to choose the
models' settings (``benchmarks/surrogate_cv.py`` on the dataset's first ``--cv-pool`` rows,
whose own test rows it left out). This script reports the surrogate's MAE on all test rows,
on those outside that pool (never used for any choice) and on those inside, overall, above
the property's lower limit and near each target.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

from matdesinne.data.splits import Split
from matdesinne.errors import UserInputError
from matdesinne.materials import training_split
from matdesinne.models import load_models


def _maes(pred: np.ndarray, y: np.ndarray, lower: float | None, targets: list[float]) -> dict:
    """MAE on every row, above the lower limit and within 0.1 of each target; n beside each."""
    err = np.abs(pred - y)

    def entry(mask):
        return {"n": int(mask.sum()), "mae": float(err[mask].mean()) if mask.any() else None}

    out = {"all": entry(np.ones(len(y), bool))}
    out["above_limit"] = entry(y > lower) if lower is not None else out["all"]
    for t in targets:
        out[f"near_{t:g}"] = entry(np.abs(y - t) <= 0.1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="ws2", help="a material whose shipped models are scored (default: ws2)")
    ap.add_argument("--models", default=None, help="a models folder instead of the space's shipped one")
    ap.add_argument("--cv-pool", type=int, default=None,
                    help="the dataset's row count when the settings were cross-validated (its train+val rows were the pool)")
    ap.add_argument("--cv-split-seed", type=int, default=0, help="the split seed that cross-validation left out")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        models = load_models(args.models, space=None if args.models else args.space, generator=None)
        found = training_split(models.surrogate.training_, models.space)
        if found is None:
            raise UserInputError("the surrogate records no dataset and split")
        data, (_, _, test) = found
        if args.cv_pool is not None and not 10 <= args.cv_pool <= len(data):
            raise UserInputError(f"--cv-pool {args.cv_pool} must lie between 10 and the dataset's {len(data)} rows")
    except UserInputError as err:
        print(f"test_rows: error: {err}", file=sys.stderr)
        return 2
    pred = models.surrogate.predict(data.x[test])[0]
    prop = models.space.property
    report = {"date": str(date.today()), "space": models.space.name, "data": models.surrogate.training_["data"],
              "rows": len(data), "test_rows": int(len(test)), "targets": args.targets,
              "test": _maes(pred, data.y[test], prop.lower, args.targets)}
    if args.cv_pool is not None:
        train, val, _ = Split.draw(args.cv_pool, args.cv_split_seed).folds()
        pool = np.isin(test, np.concatenate([train, val]))
        report["cv_pool"] = {"rows": args.cv_pool, "split_seed": args.cv_split_seed}
        report["test_outside_pool"] = _maes(pred[~pool], data.y[test][~pool], prop.lower, args.targets)
        report["test_inside_pool"] = _maes(pred[pool], data.y[test][pool], prop.lower, args.targets)
    unit = prop.unit
    print(f"# {models.space.name} surrogate on its {len(test)} test rows ({len(data)} rows in the dataset)")
    print(f"| rows | {' | '.join(report['test'])} |")
    print("|---|" + "---|" * len(report["test"]))
    for name in ("test", "test_outside_pool", "test_inside_pool"):
        if name in report:
            cells = [f"{v['mae']:.4f} {unit} (n={v['n']})" if v["mae"] is not None else f"- (n={v['n']})"
                     for v in report[name].values()]
            print(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
