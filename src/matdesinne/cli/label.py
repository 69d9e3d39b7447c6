"""``matdesinne label``: DFT labels (band gap, strain energy) of design points: a dataset."""

from __future__ import annotations

import sys
from pathlib import Path

from matdesinne.cli import args as a
from matdesinne.cli.dft import INTERRUPTED  # noqa: F401 -- the resume hint main prints after Ctrl-C


def add_parser(sub, name: str):
    p = sub.add_parser(name, help="DFT band gaps and strain energies of design points (GPAW on Dask), a dataset "
                                  "that train reads; resumable")
    p.add_argument("points", type=Path, help="CSV with the design-parameter columns, e.g. from `sample`")
    a.add_space(p)
    p.add_argument("--out", type=a.out_file, required=True,
                   help="results database (.db); the dataset <stem>.csv, <stem>_results.csv (failures too) and "
                        "the provenance <stem>.json go beside it")
    a.add_dft(p)
    p.add_argument("--calibration", metavar="FILE",
                   help="gap calibration from `matdesinne calibrate` (default: none, raw gaps clipped at 0)")
    p.add_argument("--relax-ions", action="store_true",
                   help="relax the ions at fixed cell before computing (default: fractional coordinates kept)")
    p.add_argument("--force", action="store_true",
                   help="discard an existing --out made for another space or other settings")
    return p


def run(args) -> None:
    from matdesinne.cli.dft import _require_dft, _say
    from matdesinne.errors import UserInputError
    from matdesinne.io import read_csv
    from matdesinne.materials import material
    from matdesinne.validation import Calibration
    from matdesinne.validation.labelling import file_record, label

    _require_dft()
    found = material(args.space)
    calibration = None if args.calibration is None else Calibration.load(args.calibration)  # validate checks it
    points = read_csv(args.points)
    record = file_record(args.points)
    drawn_in = (record.get("made_by") or {}).get("space")
    if drawn_in not in (None, found.name):  # --space has a default; the points say where they belong
        raise UserInputError(f"{args.points} was drawn in space {drawn_in!r} ({args.points.with_suffix('.json')}), "
                             f"not {found.name!r}; pass --space for it")
    inputs = [args.points, *([found.source] if found.source else [])]
    label(points, found, args.out, inputs=inputs, settings=args.settings, calibration=calibration,
          relax_ions=args.relax_ions, scheduler=args.scheduler, workers=args.workers, force=args.force, echo=_say,
          provenance={"command": " ".join(["matdesinne", *sys.argv[1:]]), "points_file": record})
