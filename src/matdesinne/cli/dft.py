"""``matdesinne validate`` and ``matdesinne calibrate``: DFT band gaps with GPAW on Dask."""

from __future__ import annotations

from pathlib import Path

from matdesinne.cli import args as a
from matdesinne.errors import UserInputError

INTERRUPTED = "finished DFT results are kept; run the same command again to resume"


def add_parser(sub, name: str):
    from matdesinne.materials import DEFAULT, builtin_names

    if name == "validate":
        p = sub.add_parser(name, help="DFT band gaps (GPAW) of candidates; resumable, parallel on Dask")
        p.add_argument("candidates", type=Path, help="CSV with the design-parameter columns, e.g. from `design`")
        p.add_argument("--out", type=a.out_file, required=True,
                       help="results database (.db); results.csv etc. are written beside it")
        pick = p.add_mutually_exclusive_group()
        pick.add_argument("--limit", type=a.positive_int, help="validate the first N candidates")
        pick.add_argument("--sample", type=a.positive_int, help="validate N candidates drawn at random (see --seed)")
        a.add_seed(p, "--sample")
        a.add_dft(p)
        p.add_argument("--calibration", metavar="FILE|none",
                       help="calibration from `matdesinne calibrate` (default: the models folder's "
                            "calibration-<settings>.json if there is one; none: raw gaps clipped at 0)")
        a.add_models(p, "models folder: design space and surrogate, whose predictions go beside the DFT results "
                        "(default: the models the --space ships, if it ships any; else no predictions)", optional=True)
        p.add_argument("--retry-failed", action="store_true", help="recompute candidates recorded as failed")
        p.add_argument("--force", action="store_true",
                       help="discard an existing --out made for another design space or other settings")
    else:
        p = sub.add_parser(name, help="fit the DFT gap correction on dataset rows and judge it on others")
        p.add_argument("--data", default=DEFAULT, help=f"a built-in dataset ({', '.join(builtin_names())}) or a CSV file "
                                                       "whose last column is the gap")
        p.add_argument("--rows", type=a.positive_int, default=24, help="dataset rows to fit on (default: 24)")
        p.add_argument("--holdout", type=a.count, default=40, help="other dataset rows to judge the fit on (default: 40)")
        a.add_seed(p, "the row draw")
        a.add_dft(p)
        p.add_argument("--out", type=a.out_file, required=True, help="calibration JSON to write")
        p.add_argument("--store", type=a.out_file,
                       help="DFT results database; its .csv and .png figure go beside it (default: the --out path with .db)")
        p.add_argument("--force", action="store_true", help="discard an existing --store made with other settings")
    return p


def _say(line: str) -> None:
    print(line, flush=True)  # progress lines of long runs reach a log file as they happen


def _require_dft() -> None:
    """One line, not a traceback, when the optional DFT extra is missing."""
    import importlib.util

    missing = [m for m in ("gpaw", "distributed") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserInputError(f"DFT needs the optional extra ({', '.join(missing)} not installed): run `make dft`, "
                             "or install the system packages listed in the README and `pip install -e .[dft]`")


def run(args) -> None:
    _require_dft()
    (_validate if args.command == "validate" else _calibrate)(args)


def _validate(args) -> None:
    from matdesinne.io import read_csv
    from matdesinne.validation import Calibration, resolve_calibration, resolve_settings, select_rows, validate
    from matdesinne.validation.labelling import add_strain_energy, run_space

    # DFT needs the space's builder, not models: where there are some (named, or shipped with
    # the space), their predictions go beside the DFT results, else those columns stay NaN.
    models, found = a.optional_models(args)
    surrogate = None if models is None else models.surrogate
    if models is not None:
        calibration = resolve_calibration(args.calibration, models.directory, resolve_settings(args.settings))
    else:  # no models folder, so no calibration kept in one: only a named file
        calibration = None if args.calibration in (None, "none") else Calibration.load(args.calibration)
    inputs = [args.candidates, *([] if models is None else models.files),
              *([found.source] if found is not None and found.source is not None else [])]
    frame = read_csv(args.candidates)
    rows = select_rows(len(frame), args.limit, args.sample, args.seed)
    run = validate(frame, run_space(found) if surrogate is None else surrogate.space_, args.out, inputs=inputs,
                   settings=args.settings, calibration=calibration, rows=rows, scheduler=args.scheduler,
                   workers=args.workers, force=args.force, retry_failed=args.retry_failed,
                   predict=None if surrogate is None else lambda x: surrogate.predict(x)[0],
                   source=str(args.candidates), echo=_say, build=None if found is None else found.builder)
    if found is not None and found.builder is not None:
        energy_model = surrogate is not None and "strain_energy" in [p.name for p in surrogate.properties_]
        run = add_strain_energy(run, found, frame, args.out, settings=args.settings, calibration=calibration,
                                scheduler=args.scheduler, workers=args.workers, echo=_say,
                                predict=(lambda x: surrogate.predict_all(x)["strain_energy"][0]) if energy_model else None)
    energy = run.summary.get("strain_energy")
    if energy is not None and energy["n"]:
        mae = energy.get("mae_surrogate_vs_dft")
        print(f"DFT strain energy of {energy['n']} candidates: median {energy['median']:.4f} eV/atom"
              + (f"; surrogate MAE {mae:.4f} eV/atom" if mae is not None else ""))
    print("wrote " + ", ".join(map(str, run.paths)))


def _calibrate(args) -> None:
    from matdesinne.validation.runner import calibrate

    calibration = calibrate(args.out, data=args.data, rows=args.rows, holdout=args.holdout, seed=args.seed,
                            settings=args.settings, store=args.store, scheduler=args.scheduler, workers=args.workers,
                            force=args.force, echo=_say)
    store = args.store or args.out.with_suffix(".db")
    print(f"wrote {calibration.source}, and {store}, {store.with_suffix('.csv')}, {store.with_suffix('.png')}")
