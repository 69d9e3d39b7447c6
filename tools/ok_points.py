"""Collect the designs that DFT computed successfully into a point file for ``matdesinne label``.

    python tools/ok_points.py OUT.csv --made-by "how the runs were made" RUN.csv [RUN.csv ...]

Each RUN.csv is a DFT results table (``validate``'s results.csv, a loop's dft.csv): the rows
with ``status == ok`` keep the design columns of ``--space`` (default ws2), in order, at full
precision. OUT.csv gets them; OUT.json records ``--made-by``, the runs and the date, for
``tools/join_points.py`` to carry along. Both are written only once every run has been read.
"""

import argparse
import datetime
import sys
from pathlib import Path

import pandas as pd

from matdesinne.errors import UserInputError
from matdesinne.io import check_distinct, check_writable, read_csv, write_csv, write_json
from matdesinne.materials import material


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--made-by", required=True, help="the commands that made the runs, for the record")
    ap.add_argument("--space", default="ws2")
    args = ap.parse_args(argv)
    record = args.out.with_suffix(".json")
    try:
        check_distinct([args.out, record], args.runs)
        columns = list(material(args.space).space().names)
        frames = []
        for run in args.runs:
            rows = read_csv(run)
            missing = [c for c in ["status", *columns] if c not in rows.columns]
            if missing:
                raise UserInputError(f"{run} has no column {missing[0]!r}: not a DFT results table of {args.space}")
            frames.append(rows[rows.status == "ok"][columns])
        points = pd.concat(frames, ignore_index=True)
        for path in (args.out, record):  # both writable before either is replaced
            check_writable(path)
        # The record first: a points file never stands beside another run's record.
        record.unlink(missing_ok=True)
        write_csv(points, args.out)
        write_json({"made_by": args.made_by, "runs": [str(r) for r in args.runs],
                    "date": str(datetime.date.today())}, record)
    except UserInputError as err:
        print(f"ok_points.py: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({len(points)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
