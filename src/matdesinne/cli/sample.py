"""``matdesinne sample``: space-filling design points of a design space, to label with DFT."""

from __future__ import annotations

from matdesinne.cli import args as a


def add_parser(sub, name: str):
    p = sub.add_parser(name, help="space-filling design points (scipy.stats.qmc) of a design space")
    a.add_space(p)
    p.add_argument("--n", type=a.positive_int, required=True, help="number of points")
    p.add_argument("--method", choices=["sobol", "lhs", "uniform"], default="sobol",
                   help="scrambled Sobol', Latin hypercube or i.i.d. uniform (default: sobol)")
    a.add_seed(p, "the draw")
    a.add_constrain(p)
    p.add_argument("--out", type=a.out_file, required=True,
                   help="points CSV to write; a record of how it was drawn goes beside it (.json)")
    return p


def run(args) -> None:
    import time

    from matdesinne.data.sampling import sample_space
    from matdesinne.io import check_distinct, write_csv, write_json
    from matdesinne.materials import material

    found = material(args.space)
    space = a.constrained(found.space(), args.constrain)
    record = args.out.with_suffix(".json")
    check_distinct([args.out, record], [found.source] if found.source else [])
    points = sample_space(space, args.n, args.method, args.seed)
    write_json({"space": found.name, "space_file": None if found.source is None else str(found.source),
                "n": args.n, "method": args.method, "seed": args.seed, "constrain": args.constrain,
                "date": time.strftime("%Y-%m-%d")}, record)
    write_csv(points, args.out)
    print(f"wrote {len(points)} {args.method} points of {found.name} to {args.out} (how: {record})")
