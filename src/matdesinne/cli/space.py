"""``matdesinne space check``: read a design-space file, print it, build its structures."""

from __future__ import annotations


def add_parser(sub, name: str):
    p = sub.add_parser(name, help="design spaces: `space check FILE.toml` prints one and builds its corners")
    actions = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    check = actions.add_parser("check", help="print a space and build its reference and corner structures")
    check.add_argument("space", metavar="NAME|FILE.toml", help="a built-in material or a TOML space file")
    return p


def run(args) -> None:
    from matdesinne.errors import UserInputError
    from matdesinne.materials import LATTICE, material
    from matdesinne.materials.spacefile import check_corners

    found = material(args.space)
    print(f"{found.name}" + (f" ({found.source})" if found.source else " (built in)"))
    for p in found.parameters:
        eq = "" if p.equilibrium is None else f", reference {p.equilibrium:.6g}"
        print(f"  {p.name:8s} {p.low:10.6g} .. {p.high:<10.6g} {p.unit}{eq}")
    for prop in found.properties:
        limits = ", ".join(f"{k} {v:g}" for k, v in (("lower", prop.lower), ("upper", prop.upper)) if v is not None)
        print(f"  property {prop.name} ({prop.unit or 'no unit'}{', ' + limits if limits else ''})")
    if found.builder is None:
        print("no structure builder")
        return
    reference = found.builder.reference
    corners = 2 ** sum(p.name in LATTICE for p in found.parameters)
    print(f"reference {reference.get_chemical_formula()}: {len(reference)} atoms, cell "
          + " ".join(f"{v:.4g}" for v in reference.cell.cellpar()))
    maps = found.symmetries()
    print("symmetry images (designs that build the same crystal; train learns them): "
          + (", ".join(m.name for m in maps) if maps else "none"))
    try:
        check_corners(found.parameters, found.builder, found.name)
    except UserInputError as err:
        if found.source is not None:
            raise
        # A built-in space is its data's box: say so, do not refuse it.
        print(f"note: {err}; structures there are refused")
        return
    print(f"all {corners} corners build")
