"""``matdesinne design``: candidates with a target property."""

from __future__ import annotations

import argparse

from matdesinne.cli import args as a


def add_parser(sub, name: str):
    from matdesinne.models.zoo import GENERATORS

    methods = [*(f"matdesinne-{k}" for k in GENERATORS), *GENERATORS]
    p = sub.add_parser(name, help="propose candidates with a target property (and further goals)")
    p.add_argument("--target", action="append", required=True, metavar="[P=]V",
                   help="target value of the space's property (e.g. 1.0), or P=V for property P; repeatable")
    a.add_further_goals(p)
    p.add_argument("--travel", type=a.nonnegative_float, default=0.1,
                   help="how far --minimize/--maximize may move a candidate, in the design box scaled to unit side "
                        "(default: 0.1; 0 keeps localized designs, more trades diversity for the objective)")
    p.add_argument("--n", type=a.positive_int, default=10000, help="posterior samples to draw (default: 10000)")
    p.add_argument("--method", choices=methods, default="matdesinne-cinn",
                   help="matdesinne-<generator> runs the whole pipeline; <generator> gives raw samples")
    a.add_models(p)
    p.add_argument("--tolerance", type=a.positive_float, default=0.1,
                   help="down-selection window around the target (default: 0.1)")
    p.add_argument("--max-std", type=a.positive_float, default=None, metavar="S",
                   help="drop candidates whose surrogate members disagree by more than S (ensemble std of the "
                        "space's property, in its unit; default: only extreme uncertainty is dropped)")
    a.add_constrain(p)
    a.add_seed(p, "the latent draw")
    p.add_argument("--latent", choices=["normal", "sobol"], default="normal",
                   help="latent draws: i.i.d. normal, or scrambled Sobol' mapped to normal (space-filling)")
    p.add_argument("--allow-extrapolation", action="store_true", help="allow a target outside the trained range")
    p.add_argument("--out", type=a.out_file, required=True, help="candidates CSV to write")
    p.add_argument("--summary", type=a.out_file, help="summary JSON to write")
    a.add_device(p)
    return p


def goals_of(args, default: str):
    """The command line's goals: a plain number when one bare target is all there is
    (the single-goal pipeline), else :class:`~matdesinne.pipeline.goals.Goals`."""
    from matdesinne.pipeline.goals import Goals

    from matdesinne.errors import UserInputError

    for text in args.target:
        if "=" not in text:  # a bare value: a number, as before goals existed
            try:
                a.finite_float(text)
            except argparse.ArgumentTypeError as err:
                hint = "" if "finite" in str(err) else "; or write PROPERTY=VALUE, e.g. --target band_gap=1.0"
                raise UserInputError(f"argument --target: {err}{hint}") from None
    if len(args.target) == 1 and "=" not in args.target[0] and not (args.min or args.max or args.minimize or args.maximize):
        return float(args.target[0])
    return Goals.parse(args.target, args.min, args.max, args.minimize, args.maximize, default=default)


def run(args) -> None:
    from matdesinne.io import check_distinct, check_writable, write_csv, write_json
    from matdesinne.models import load_models
    from matdesinne.pipeline import design, generator_of
    from matdesinne.text import fmt

    check_writable(args.out)
    if args.summary is not None:
        check_writable(args.summary)
    check_distinct([args.out, args.summary], [])
    constraints = a.parse_constraints(args.constrain)
    models = load_models(args.models, generator=generator_of(args.method), device=args.device,
                         allow_mixed=args.allow_mixed, space=args.space)
    check_distinct([args.out, args.summary], models.files)
    target = goals_of(args, models.space.property.name)
    result = design(
        models, target, n=args.n, method=args.method, tolerance=args.tolerance,
        constraints=constraints, seed=args.seed, allow_extrapolation=args.allow_extrapolation, latent=args.latent,
        travel=args.travel, max_std=args.max_std,
    )
    write_csv(result.candidates, args.out)
    if args.summary is not None:
        write_json(result.summary, args.summary)
    s = result.summary
    for g in s.get("goals", []):
        spread = g["spread"] or {}
        line = f"  {g['goal']}: " + (f"reached by {g['reached_fraction']:.0%} of localized samples; "
                                     if g["reached_fraction"] is not None else "")
        if spread:
            line += f"candidates' median {spread['median']:.4g} (range {spread['min']:.4g} to {spread['max']:.4g})"
        if g.get("median_before_slide") is not None:
            line += f", median {g['median_before_slide']:.4g} before sliding"
        print(line)
    print(
        f"{s['n_candidates']} candidates for {s['property']} = {s['target']:g} {s['unit']} "
        f"({s['n_kept']} of {s['n_generated']} samples kept), surrogate MAE {fmt(s['mae_surrogate'], '.4f')} "
        f"{s['unit']}, {s['seconds']['total']:.2f} s -> {args.out}"
    )
