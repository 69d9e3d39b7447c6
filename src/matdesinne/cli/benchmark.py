"""``matdesinne benchmark``: the paper's Table 1 with honest, independent metrics."""

from __future__ import annotations

import sys
from pathlib import Path

from matdesinne.cli import args as a


def add_parser(sub, name: str):
    p = sub.add_parser(name, help="the paper's Table 1 with honest, independent metrics")
    p.add_argument("--targets", type=a.finite_float, nargs="+", default=[0.0, 0.5, 1.0], help="target values (default: 0 0.5 1.0)")
    p.add_argument("--n", type=a.positive_int, default=10000, help="samples per method and target (default: 10000)")
    a.add_seed(p, "sampling and of the evaluators")
    a.add_models(p, "models folder holding every generator")
    p.add_argument("--tolerance", type=a.positive_float, default=0.1, help="down-selection and lookup window (default: 0.1)")
    p.add_argument("--topk-targets", type=a.count, default=100, help="held-out targets for the top-k error (default: 100; 0: skip)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for benchmark.json, benchmark.md, benchmark.png, written whole: a new or empty "
                        "folder, or an earlier output of matdesinne, which is replaced")
    a.add_device(p)
    return p


def run(args) -> None:
    from matdesinne.evaluation.benchmark import run_benchmark, write_report
    from matdesinne.io import check_output_folder
    from matdesinne.models import resolve_device

    check_output_folder(args.out)  # before minutes of work, not after
    result = run_benchmark(args.models, args.targets, n=args.n, seed=args.seed, tolerance=args.tolerance,
                           topk_targets=args.topk_targets, device=str(resolve_device(args.device)),
                           allow_mixed=args.allow_mixed, space_spec=args.space)
    command = "matdesinne " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["benchmark"] else ""
    paths = write_report(result, args.out, command)
    print(paths[1].read_text())
    print("wrote " + ", ".join(map(str, paths)))
