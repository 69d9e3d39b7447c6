"""``matdesinne analyze``: figures, metal-insulator transitions and an HTML report."""

from __future__ import annotations

from pathlib import Path

from matdesinne.cli import args as a

INTERRUPTED = "the output folder is unchanged"


def add_parser(sub, name: str):
    p = sub.add_parser(name, help="figures, metal-insulator transitions and an HTML report")
    p.add_argument("--targets", type=a.finite_float, nargs="+", default=[0.0, 0.5, 1.0], help="targets to generate (default: 0 0.5 1.0)")
    p.add_argument("--n", type=a.positive_int, default=10000, help="samples per target (default: 10000)")
    a.add_models(p)
    p.add_argument("--candidates", type=Path, nargs="+", default=[], help="candidate CSVs to analyse instead of generating")
    a.add_seed(p, "sampling and UMAP")
    p.add_argument("--mit-limit", type=a.positive_int, default=300, help="insulating candidates searched per target (default: 300)")
    p.add_argument("--allow-extrapolation", action="store_true", help="allow targets outside the trained range")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for the figures, tables and report.html, written whole: a new or empty folder, "
                        "or an earlier output of matdesinne, which is replaced")
    return p


def run(args) -> None:
    from matdesinne.analysis.report import analyze

    result = analyze(args.out, args.models, args.targets, n=args.n, candidates=args.candidates,
                     seed=args.seed, mit_limit=args.mit_limit, allow_extrapolation=args.allow_extrapolation,
                     allow_mixed=args.allow_mixed, space_spec=args.space)
    for t, s in result["mit"].items():
        print(f"target {t}: {s['pairs']} metal-insulator pairs, {s['safe_from_mit']} candidates safe from MIT")
    print(f"wrote {args.out}/report.html, analysis.json, mit_pairs.csv and figures")
