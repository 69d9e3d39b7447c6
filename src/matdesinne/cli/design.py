"""``matdesinne design``: candidates with a target property."""

from __future__ import annotations

from matdesinne.cli import args as a


def add_parser(sub, name: str):
    from matdesinne.models.zoo import GENERATORS

    methods = [*(f"matdesinne-{k}" for k in GENERATORS), *GENERATORS]
    p = sub.add_parser(name, help="propose candidates with a target property")
    p.add_argument("--target", type=a.finite_float, required=True, help="target property value, e.g. a band gap in eV")
    p.add_argument("--n", type=a.positive_int, default=10000, help="posterior samples to draw (default: 10000)")
    p.add_argument("--method", choices=methods, default="matdesinne-cinn",
                   help="matdesinne-<generator> runs the whole pipeline; <generator> gives raw samples")
    a.add_models(p)
    p.add_argument("--tolerance", type=a.positive_float, default=0.1,
                   help="down-selection window around the target (default: 0.1)")
    a.add_constrain(p)
    a.add_seed(p, "the latent draw")
    p.add_argument("--latent", choices=["normal", "sobol"], default="normal",
                   help="latent draws: i.i.d. normal, or scrambled Sobol' mapped to normal (space-filling)")
    p.add_argument("--allow-extrapolation", action="store_true", help="allow a target outside the trained range")
    p.add_argument("--out", type=a.out_file, required=True, help="candidates CSV to write")
    p.add_argument("--summary", type=a.out_file, help="summary JSON to write")
    a.add_device(p)
    return p


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
    result = design(
        models, args.target, n=args.n, method=args.method, tolerance=args.tolerance,
        constraints=constraints, seed=args.seed, allow_extrapolation=args.allow_extrapolation, latent=args.latent,
    )
    write_csv(result.candidates, args.out)
    if args.summary is not None:
        write_json(result.summary, args.summary)
    s = result.summary
    print(
        f"{s['n_candidates']} candidates for {s['property']} = {s['target']:g} {s['unit']} "
        f"({s['n_kept']} of {s['n_generated']} samples kept), surrogate MAE {fmt(s['mae_surrogate'], '.4f')} "
        f"{s['unit']}, {s['seconds']['total']:.2f} s -> {args.out}"
    )
