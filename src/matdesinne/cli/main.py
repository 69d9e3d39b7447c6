"""``matdesinne`` command line: train, design, predict, benchmark, analyze, structures, validate, calibrate.

Every user mistake ends as one line on stderr and exit code 2, before any output file is
touched; outputs are written to a temporary file and renamed into place.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from matdesinne import __version__
from matdesinne.errors import UserInputError
from matdesinne.models.zoo import GENERATORS
from matdesinne.pipeline.design import METHODS

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (no usage block) as a UserInputError."""

    def error(self, message: str):
        raise UserInputError(f"{self.prog}: {message} (see --help)")


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}" if minimum == 1
                                         else f"must be {minimum} or more, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _count(text: str) -> int:
    return _whole_number(text, 0)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _columns(text: str) -> list[str]:
    cols = [c.strip() for c in text.split(",") if c.strip()]
    if not cols:
        raise argparse.ArgumentTypeError("expected comma-separated column names")
    return cols


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="matdesinne", description="Inverse materials design with invertible neural networks.")
    parser.add_argument("--version", action="version", version=f"matdesinne {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    device = dict(choices=["auto", "cpu", "cuda"], default="auto", help="where to compute (default: auto)")

    p = sub.add_parser("train", help="train models on the built-in MoS2 data or your own CSV")
    p.add_argument("--data", default="mos2", help="'mos2' (built in) or a CSV file with a header")
    p.add_argument("--x", type=_columns, help="design-parameter columns, comma-separated (default: all but --y)")
    p.add_argument("--y", help="property column (default: the last column)")
    p.add_argument("--y-lower", type=_finite_float, help="the property's physical lower limit, e.g. 0 for a band gap (CSV only)")
    p.add_argument("--y-upper", type=_finite_float, help="the property's physical upper limit (CSV only)")
    p.add_argument("--model", choices=["all", "surrogate", *GENERATORS], default="all",
                   help="which model to train; all = the surrogate and every generator (default: all)")
    p.add_argument("--out", type=Path, default=Path("models"), help="folder for the checkpoints (default: models)")
    p.add_argument("--epochs", type=_positive_int, help="maximum epochs (default: each model's own)")
    p.add_argument("--augment", type=int, default=200_000,
                   help="surrogate-labelled uniform design points added to the cINN's training set (default: 200000; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation and shuffling (default: 0)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation/test split (default: 0)")
    p.add_argument("--device", **device)

    p = sub.add_parser("design", help="propose candidates with a target property")
    p.add_argument("--target", type=_finite_float, required=True, help="target property value, e.g. a band gap in eV")
    p.add_argument("--n", type=_positive_int, default=10000, help="posterior samples to draw (default: 10000)")
    p.add_argument("--method", choices=METHODS, default="matdesinne-cinn",
                   help="matdesinne-<generator> runs the whole pipeline; <generator> gives raw samples")
    p.add_argument("--models", type=Path, help="models folder (default: the shipped MoS2 models)")
    p.add_argument("--tolerance", type=_finite_float, default=0.1, help="down-selection window around the target (default: 0.1)")
    p.add_argument("--constrain", action="append", default=[], metavar="P=LO:HI",
                   help="narrow a parameter's range, e.g. efield=-0.5:0.5 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draw (default: 0)")
    p.add_argument("--allow-extrapolation", action="store_true", help="allow a target outside the trained range")
    p.add_argument("--out", type=Path, required=True, help="candidates CSV to write")
    p.add_argument("--summary", type=Path, help="summary JSON to write")
    p.add_argument("--device", **device)

    p = sub.add_parser("predict", help="predict the property of design rows with the surrogate")
    p.add_argument("--in", dest="inp", type=Path, required=True, help="CSV with the design-parameter columns")
    p.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    p.add_argument("--models", type=Path, help="models folder (default: the shipped MoS2 models)")
    p.add_argument("--device", **device)
    p = sub.add_parser("benchmark", help="the paper's Table 1 with honest, independent metrics")
    p.add_argument("--targets", type=_finite_float, nargs="+", default=[0.0, 0.5, 1.0], help="target values (default: 0 0.5 1.0)")
    p.add_argument("--n", type=_positive_int, default=10000, help="samples per method and target (default: 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and of the evaluators (default: 0)")
    p.add_argument("--models", type=Path, help="models folder holding every generator (default: the shipped MoS2 models)")
    p.add_argument("--tolerance", type=_finite_float, default=0.1, help="down-selection and lookup window (default: 0.1)")
    p.add_argument("--topk-targets", type=int, default=100, help="held-out targets for the top-k error (default: 100; 0: skip)")
    p.add_argument("--out", type=Path, required=True, help="folder for benchmark.json, benchmark.md, benchmark.png")
    p.add_argument("--device", **device)
    p = sub.add_parser("structures", help="atomic structures (ASE) from a candidates CSV")
    p.add_argument("candidates", type=Path, help="CSV with the design-parameter columns, e.g. from `design`")
    p.add_argument("--format", choices=["cif", "poscar", "extxyz"], default="extxyz", help="file format (default: extxyz)")
    p.add_argument("--models", type=Path, help="models folder whose design space the rows belong to (default: shipped MoS2)")
    p.add_argument("--out", type=Path, required=True, help="folder for the structures and index.csv")

    dft = dict(default="standard", metavar="standard|fast|FILE.json",
               help="DFT settings: a preset or a JSON file of settings (default: standard)")
    cluster = [("--scheduler", dict(metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://host:8786 "
                                                            "(default: a local cluster)")),
               ("--workers", dict(type=_positive_int, help="local cluster size, one single-threaded worker each "
                                                           "(default: one per core)"))]
    p = sub.add_parser("validate", help="DFT band gaps (GPAW) of candidates; resumable, parallel on Dask")
    p.add_argument("candidates", type=Path, help="CSV with the design-parameter columns, e.g. from `design`")
    p.add_argument("--out", type=Path, required=True, help="results database (.db); results.csv etc. are written beside it")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--limit", type=_positive_int, help="validate the first N candidates")
    pick.add_argument("--sample", type=_positive_int, help="validate N candidates drawn at random (see --seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default: 0)")
    p.add_argument("--settings", **dft)
    p.add_argument("--calibration", metavar="FILE|none",
                   help="calibration from `matdesinne calibrate` (default: the models folder's "
                        "calibration-<settings>.json if there is one; none: raw gaps clipped at 0)")
    p.add_argument("--models", type=Path, help="models folder: design space and surrogate (default: shipped MoS2)")
    for flag, kw in cluster:
        p.add_argument(flag, **kw)
    p.add_argument("--retry-failed", action="store_true", help="recompute candidates recorded as failed")
    p.add_argument("--force", action="store_true",
                   help="discard an existing --out made for another design space or other settings")

    p = sub.add_parser("calibrate", help="fit the DFT gap correction on dataset rows and judge it on others")
    p.add_argument("--data", default="mos2", help="'mos2' (built in) or a CSV file whose last column is the gap")
    p.add_argument("--rows", type=_positive_int, default=24, help="dataset rows to fit on (default: 24)")
    p.add_argument("--holdout", type=_count, default=40, help="other dataset rows to judge the fit on (default: 40)")
    p.add_argument("--seed", type=int, default=0, help="seed of the row draw (default: 0)")
    p.add_argument("--settings", **dft)
    p.add_argument("--out", type=Path, required=True, help="calibration JSON to write")
    p.add_argument("--store", type=Path, help="DFT results database; its .csv and .png figure go beside it (default: the --out path with .db)")
    for flag, kw in cluster:
        p.add_argument(flag, **kw)
    p.add_argument("--force", action="store_true", help="discard an existing --store made with other settings")

    p = sub.add_parser("analyze", help="figures, metal-insulator transitions and an HTML report")
    p.add_argument("--targets", type=_finite_float, nargs="+", default=[0.0, 0.5, 1.0], help="targets to generate (default: 0 0.5 1.0)")
    p.add_argument("--n", type=_positive_int, default=10000, help="samples per target (default: 10000)")
    p.add_argument("--models", type=Path, help="models folder (default: the shipped MoS2 models)")
    p.add_argument("--candidates", type=Path, nargs="+", default=[], help="candidate CSVs to analyse instead of generating")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and UMAP (default: 0)")
    p.add_argument("--mit-limit", type=_positive_int, default=300, help="insulating candidates searched per target (default: 300)")
    p.add_argument("--out", type=Path, required=True, help="folder for the figures, tables and report.html")
    return parser


def cmd_structures(args) -> None:
    from matdesinne.io import read_csv
    from matdesinne.models import EnsembleSurrogate, default_models_dir
    from matdesinne.validation import build_structures, write_structures

    space = EnsembleSurrogate.load(args.models or default_models_dir()).space_
    frame = read_csv(args.candidates)
    atoms = build_structures(frame, space, str(args.candidates))
    write_structures(atoms, frame, args.out, args.format)
    print(f"wrote {len(atoms)} structures ({args.format}) and index.csv to {args.out}/")


def _say(line: str) -> None:
    print(line, flush=True)  # progress lines of long runs reach a log file as they happen


def _require_dft() -> None:
    """One line, not a traceback, when the optional DFT extra is missing."""
    import importlib.util

    missing = [m for m in ("gpaw", "distributed") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserInputError(f"DFT needs the optional extra ({', '.join(missing)} not installed): run `make dft`, "
                             "or install the system packages listed in the README and `pip install -e .[dft]`")


def cmd_validate(args) -> None:
    from matdesinne.io import read_csv
    from matdesinne.models import EnsembleSurrogate, default_models_dir
    from matdesinne.validation.calibration import Calibration, shipped_calibration
    from matdesinne.validation.dft import resolve_settings
    from matdesinne.validation.runner import select_rows, validate

    _require_dft()
    models_dir = args.models or default_models_dir()
    surrogate = EnsembleSurrogate.load(models_dir)
    settings = resolve_settings(args.settings)
    if args.calibration is None:
        default = shipped_calibration(models_dir, settings.name)
        calibration = Calibration.load(default) if default.is_file() else None
    elif args.calibration == "none":
        calibration = None
    else:
        calibration = Calibration.load(args.calibration)
    frame = read_csv(args.candidates)
    rows = select_rows(len(frame), args.limit, args.sample, args.seed)
    try:
        run = validate(frame, surrogate.space_, args.out, settings=settings, calibration=calibration, rows=rows,
                       scheduler=args.scheduler, workers=args.workers, force=args.force,
                       retry_failed=args.retry_failed, predict=lambda x: surrogate.predict(x)[0],
                       source=str(args.candidates), echo=_say)
    except KeyboardInterrupt:
        print(f"interrupted: finished results are kept in {args.out}; run the same command again to resume",
              file=sys.stderr)
        raise
    print("wrote " + ", ".join(map(str, run.paths)))


def cmd_calibrate(args) -> None:
    from matdesinne.validation.runner import calibrate

    _require_dft()
    try:
        calibration = calibrate(args.out, data=args.data, rows=args.rows, holdout=args.holdout, seed=args.seed, settings=args.settings,
                  store=args.store, scheduler=args.scheduler, workers=args.workers, force=args.force, echo=_say)
    except KeyboardInterrupt:
        print("interrupted: finished DFT results are kept; run the same command again to resume", file=sys.stderr)
        raise
    store = args.store or args.out.with_suffix(".db")
    print(f"wrote {calibration.source}, and {store}, {store.with_suffix('.csv')}, {store.with_suffix('.png')}")


def cmd_analyze(args) -> None:
    from matdesinne.analysis.report import analyze

    result = analyze(args.out, args.models, args.targets, n=args.n, candidates=args.candidates,
                     seed=args.seed, mit_limit=args.mit_limit)
    for t, s in result["mit"].items():
        print(f"target {t}: {s['pairs']} metal-insulator pairs, {s['safe_from_mit']} candidates safe from MIT")
    print(f"wrote {args.out}/report.html, analysis.json, mit_pairs.csv and figures")


def cmd_benchmark(args) -> None:
    from matdesinne.evaluation.benchmark import run_benchmark, write_report
    from matdesinne.io import check_folder
    from matdesinne.models import resolve_device

    check_folder(args.out)  # before minutes of work, not after
    result = run_benchmark(args.models, args.targets, n=args.n, seed=args.seed, tolerance=args.tolerance,
                           topk_targets=args.topk_targets, device=str(resolve_device(args.device)))
    command = "matdesinne " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["benchmark"] else ""
    paths = write_report(result, args.out, command)
    print(paths[1].read_text())
    print("wrote " + ", ".join(map(str, paths)))


def cmd_train(args) -> None:
    import logging

    from matdesinne.models.train import train_models

    # Training progress: a bar on a terminal, else a log line every tenth of the epochs.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    kinds = ["surrogate", *GENERATORS] if args.model == "all" else [args.model]
    records = train_models(
        data=args.data, x=args.x, y=args.y, kinds=kinds, out=args.out, epochs=args.epochs,
        seed=args.seed, split_seed=args.split_seed, device=args.device, augment=args.augment,
        y_lower=args.y_lower, y_upper=args.y_upper,
    )
    for kind, record in records.items():
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in record["validation"].items() if isinstance(v, float))
        print(f"{kind}: {record['epochs_run']} epochs in {record['seconds']:.1f} s; validation: {metrics}")
    print(f"saved to {args.out}/")


def cmd_design(args) -> None:
    from matdesinne.data.design_space import parse_constraint
    from matdesinne.io import check_writable, write_csv, write_json
    from matdesinne.models import load_models
    from matdesinne.pipeline import design, generator_of

    check_writable(args.out)
    if args.summary is not None:
        check_writable(args.summary)
        if args.summary.resolve() == args.out.resolve():
            raise UserInputError("--out and --summary must be different files")
    constraints = dict(parse_constraint(c) for c in args.constrain)
    models = load_models(args.models, generator=generator_of(args.method), device=args.device)
    result = design(
        models, args.target, n=args.n, method=args.method, tolerance=args.tolerance,
        constraints=constraints, seed=args.seed, allow_extrapolation=args.allow_extrapolation,
    )
    write_csv(result.candidates, args.out)
    if args.summary is not None:
        write_json(result.summary, args.summary)
    s = result.summary
    mae = "n/a" if s["mae_surrogate"] is None else f"{s['mae_surrogate']:.4f}"
    print(
        f"{s['n_candidates']} candidates for {s['property']} = {s['target']:g} {s['unit']} "
        f"({s['n_kept']} of {s['n_generated']} samples kept), surrogate MAE {mae} {s['unit']}, "
        f"{s['seconds']['total']:.2f} s -> {args.out}"
    )


def cmd_predict(args) -> None:
    from matdesinne.data.datasets import check_finite
    from matdesinne.io import check_writable, read_csv, write_csv
    from matdesinne.models import load_models

    check_writable(args.out)
    frame = read_csv(args.inp)
    models = load_models(args.models, device=args.device)
    space = models.space
    x = check_finite(frame, space.names, str(args.inp))
    pred, std = models.surrogate.predict(x)
    out = frame.copy()
    out[f"{space.property.name}_pred"] = pred
    out[f"{space.property.name}_std"] = std
    write_csv(out, args.out)
    outside = int((~space.contains(x)).sum())
    note = f"; {outside} row(s) lie outside the design space, where predictions extrapolate" if outside else ""
    print(f"predicted {space.property.name} for {len(out)} rows -> {args.out}{note}")


COMMANDS = {"train": cmd_train, "design": cmd_design, "predict": cmd_predict, "benchmark": cmd_benchmark,
            "analyze": cmd_analyze, "structures": cmd_structures, "validate": cmd_validate,
            "calibrate": cmd_calibrate}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error, 130 interrupted)."""
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except UserInputError as err:
        print(f"matdesinne: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("matdesinne: interrupted", file=sys.stderr)
        return 130
    return 0
