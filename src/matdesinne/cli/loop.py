"""``matdesinne loop``: closed-loop design. Propose candidates, compute them with DFT, learn from
the results, repeat; or ``loop ask`` / ``loop tell`` for a DFT code matdesinne does not run."""

from __future__ import annotations

import os
from pathlib import Path

from matdesinne.cli import args as a
from matdesinne.errors import UserInputError
from matdesinne.loop.acquisition import CONFIDENT

INTERRUPTED = "finished DFT results and told rows are kept; run the same command again to resume"

#: Built-in defaults of the options a stored campaign may fill in instead.
DEFAULTS = {"targets": None, "goals": None, "batch": 20, "seed": 0, "tolerance": 0.1, "n": 10000, "update": "auto", "confident": CONFIDENT}


def _campaign_options(p, new: bool) -> None:
    """Options of every loop action; with ``new``, those that start a campaign."""
    p.add_argument("--out", type=Path, help="the campaign folder (created; resumed if it holds one)")
    a.add_models(p)
    if not new:
        return
    p.add_argument("--targets", type=a.finite_float, nargs="+", help="target values, e.g. 0.5 1.0 (a new campaign)")
    a.add_further_goals(p, unset_is_none=True)  # beside every target, e.g. --minimize strain_energy
    p.add_argument("--batch", type=a.positive_int, help="designs per target per round (default: 20)")
    p.add_argument("--tolerance", type=a.positive_float, help="down-selection window around each target (default: 0.1)")
    p.add_argument("--n", type=a.positive_int, help="generator samples per target per design (default: 10000)")
    p.add_argument("--update", choices=["auto", "residual", "refit"],
                   help="how results teach the model (default: auto: the one with the lower cross-validated error)")
    p.add_argument("--confident", type=a.fraction,
                   help="pick each batch, spread out, among this fraction of the candidates: the most certain ones, "
                        "then those closest to designs with known DFT (default: 0.1; 1: explore, by spread x std)")
    p.add_argument("--seed", type=a.seed, help="the campaign's seed, 0 to 4294967295 (default: 0)")
    p.add_argument("--force", action="store_true", help="start a new campaign in a folder that holds another one")


def add_parser(sub, name: str):
    p = sub.add_parser(name, help="closed-loop design with DFT in the loop; `loop ask` / `loop tell` for your own DFT code",
                       description="Run a campaign with GPAW here, or with `loop ask` / `loop tell` exchange batches "
                                   "with a DFT code (or experiment) that matdesinne does not run.")
    _campaign_options(p, new=True)
    p.add_argument("--rounds", type=a.positive_int, default=3, help="rounds to run (default: 3)")
    p.add_argument("--budget", type=a.positive_int,
                   help="a cold start: a new material from zero with this many DFT calls in all (no models needed; "
                        "with --space FILE.toml): a Sobol' seed, then rounds aimed at the targets, then train and "
                        "design into --out")
    p.add_argument("--rule", choices=["straddle", "space-filling"], default="straddle",
                   help="a cold start's acquisition rule (default: straddle, aimed at the targets' level sets)")
    p.add_argument("--seed-points", type=a.positive_int,
                   help="a cold start's Sobol' seed size (default: a quarter of the budget)")
    p.add_argument("--epochs", type=a.positive_int, help="a cold start's training epochs (default: train's)")
    p.add_argument("--augment", type=a.count, help="a cold start's augmented generator points (default: train's)")
    p.add_argument("--check", type=a.count, default=10,
                   help="at the end, compute DFT for this many of each target's shipped candidates, drawn at random "
                        "and never told back: the campaign's honest score (default: 10; 0 skips it)")
    a.add_dft(p)
    p.add_argument("--calibration", metavar="FILE|none",
                   help="DFT gap calibration (default: the models folder's calibration-<settings>.json if any)")
    p.set_defaults(action="run")
    actions = p.add_subparsers(dest="action", parser_class=type(p), metavar="{ask,tell}")
    ask = actions.add_parser("ask", help="write the next batch: ask-<round>.csv with an id column, and its structures")
    _campaign_options(ask, new=True)
    ask.add_argument("--format", choices=["cif", "poscar", "extxyz"], default="extxyz",
                     help="the structures' file format (default: extxyz)")
    tell = actions.add_parser("tell", help="ingest results (columns id and the property) and update the model")
    tell.add_argument("results", type=Path, help="a CSV with columns id and the property, e.g. id,band_gap")
    _campaign_options(tell, new=False)
    return p


def _settings(args, models, dft: dict | None, calibration):
    """The campaign's settings: the command line's, else a stored campaign's, else the defaults."""
    from matdesinne.io import read_json
    from matdesinne.loop.runner import CAMPAIGN_FILE, LoopSettings

    path = args.out / CAMPAIGN_FILE
    stored = read_json(path).get("settings", {}) if path.is_file() and not args.force else {}
    given = {"targets": args.targets, "goals": _goal_records(args), "batch": args.batch, "seed": args.seed, "tolerance": args.tolerance,
             "n": args.n, "update": args.update, "confident": args.confident}
    stored_names = {"n": "n_samples"}
    value = {k: v if v is not None else stored.get(stored_names.get(k, k), DEFAULTS[k]) for k, v in given.items()}
    if value["targets"] is None:
        raise UserInputError(f"{args.out} holds no campaign yet: give --targets")
    return LoopSettings(targets=tuple(float(t) for t in value["targets"]), goals=value["goals"], batch=int(value["batch"]),
                        seed=int(value["seed"]), tolerance=float(value["tolerance"]), n_samples=int(value["n"]),
                        update=str(value["update"]), confident=float(value["confident"]),
                        models=os.path.realpath(models.directory),
                        dft=dft, calibration=None if calibration is None else calibration.offset)


def _goal_records(args) -> list | None:
    """The further goals on the command line as records, None when none is given."""
    from matdesinne.pipeline.goals import Goals

    if not (args.min or args.max or args.minimize or args.maximize):
        return None
    return Goals.parse((), args.min or (), args.max or (), args.minimize, args.maximize).to_records()


def _say(line: str) -> None:
    print(line, flush=True)


def run(args) -> None:
    from matdesinne.io import check_folder
    from matdesinne.models import load_models

    if args.out is None:
        raise UserInputError("loop: the following arguments are required: --out")
    check_folder(args.out)
    if args.action not in ("ask", "tell") and getattr(args, "budget", None) is not None:
        _cold_start(args)
        return
    models = load_models(args.models, allow_mixed=args.allow_mixed, space=args.space)
    if args.action == "tell":
        _tell(args, models)
    elif args.action == "ask":
        _ask(args, models)
    else:
        _run(args, models)


def _run(args, models) -> None:
    from matdesinne.cli.dft import _require_dft
    from matdesinne.loop.runner import run_loop
    from matdesinne.validation import resolve_calibration, resolve_settings

    _require_dft()
    dft = resolve_settings(args.settings)
    calibration = resolve_calibration(args.calibration, models.directory, dft)
    if calibration is not None:
        calibration.check_applies(models.space, dft)
    settings = _settings(args, models, dft.to_dict(), calibration)
    meta = run_loop(args.out, models, settings, rounds=args.rounds, calibration=calibration, scheduler=args.scheduler,
                    workers=args.workers, force=args.force, check=args.check, echo=_say)
    print(f"{meta['dft_calls']} DFT calls; candidates: "
          + ", ".join(f"{t}: {n}" for t, n in meta["candidates"].items())
          + f"; wrote {args.out}/campaign.json, campaign.png, candidates-<target>.csv, dft.db"
          + (", shipped.db (the DFT check of the candidates)" if args.check else ""))


def _cold_start(args) -> None:
    from matdesinne.cli.dft import _require_dft
    from matdesinne.loop.coldstart import ColdStartSettings, cold_start
    from matdesinne.materials import DEFAULT, material
    from matdesinne.validation import resolve_settings
    from matdesinne.validation.engine import GPAWEngine

    if args.models is not None:
        raise UserInputError("--budget starts a material from zero and trains its own models; leave out --models")
    if args.targets is None:
        raise UserInputError("a cold start needs --targets")
    found = material(args.space or DEFAULT)
    if found.builder is None:
        raise UserInputError(f"space {found.name!r} has no structure: a cold start computes with DFT, give a TOML "
                             "space with a structure file")
    settings = ColdStartSettings(targets=tuple(args.targets), budget=args.budget, seed_points=args.seed_points,
                                 batch=args.batch, rule=args.rule, tolerance=args.tolerance or DEFAULTS["tolerance"],
                                 seed=args.seed or 0, n_design=args.n or DEFAULTS["n"], epochs=args.epochs,
                                 augment=args.augment)
    resolve_settings(args.settings)  # a bad settings file: one line, before any work
    _require_dft()
    engine = GPAWEngine(found, settings=args.settings, workers=args.workers, scheduler=args.scheduler)
    state = cold_start(found, settings, engine, args.out, force=args.force, echo=_say)
    print(f"{state['rounds'][-1]['calls']} of {args.budget} DFT calls spent; models in {state['models']} "
          f"(`matdesinne design --models {state['models']} --target ...`); candidates: "
          + ", ".join(f"{t}: {n}" for t, n in state["candidates"].items()))


def _ask(args, models) -> None:
    from matdesinne.loop.runner import ask_files

    settings = _settings(args, models, None, None) if args.targets is not None or args.force else None
    batch = args.batch or (settings.batch if settings else DEFAULTS["batch"])
    frame, paths = ask_files(args.out, models, settings, batch, fmt_structures=args.format, force=args.force)
    print(f"asked {len(frame)} designs (round {int(frame['round'].iloc[0]) if len(frame) else '-'}); "
          f"compute {' and '.join(p.name for p in models.surrogate.properties_)} for each id, then `matdesinne loop tell --out {args.out} RESULTS.csv`; "
          "wrote " + ", ".join(str(p) for p in paths if p.suffix == ".csv"))


def _tell(args, models) -> None:
    from matdesinne.loop.runner import tell_file
    from matdesinne.text import fmt

    record, rounds = tell_file(args.out, models, args.results)
    scores = ", ".join(f"{k} {fmt(v)}" for k, v in record["scores"].items())
    print(f"told {record['rows']} rows ({record['told']} in all); model updated by {record['method']} "
          f"(cross-validated MAE: {scores})")
    print(rounds.to_string(index=False))
