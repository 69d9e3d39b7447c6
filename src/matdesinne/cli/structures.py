"""``matdesinne structures``: atomic structures (ASE) of candidates."""

from __future__ import annotations

from pathlib import Path

from matdesinne.cli import args as a


def add_parser(sub, name: str):
    p = sub.add_parser(name, help="atomic structures (ASE) from a candidates CSV")
    p.add_argument("candidates", type=Path, help="CSV with the design-parameter columns, e.g. from `design`")
    p.add_argument("--format", choices=["cif", "poscar", "extxyz"], default="extxyz", help="file format (default: extxyz)")
    a.add_models(p, "models folder whose design space the rows belong to (optional: the --space's structure "
                    "builder is all it takes)", optional=True)
    p.add_argument("--out", type=Path, required=True,
                   help="folder for the structures and index.csv, written whole: a new or empty folder, or an "
                        "earlier output of matdesinne, which is replaced")
    return p


def run(args) -> None:
    from matdesinne.io import check_output_folder, check_outside, read_csv
    from matdesinne.validation import build_structures, write_structures

    check_output_folder(args.out)
    check_outside([args.candidates], args.out)
    # A structure needs the space's builder, not a model: models are read only when named,
    # for the space they were trained on.
    models, found = a.optional_models(args, shipped=False)
    space = found.space() if models is None else models.space
    frame = read_csv(args.candidates)
    atoms = build_structures(frame, space, str(args.candidates), None if found is None else found.builder)
    write_structures(atoms, frame, args.out, args.format)
    print(f"wrote {len(atoms)} structures ({args.format}) and index.csv to {args.out}/")
