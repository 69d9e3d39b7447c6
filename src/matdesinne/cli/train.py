"""``matdesinne train``: fit the surrogate and the generators on a dataset."""

from __future__ import annotations

import sys
from pathlib import Path

from matdesinne.cli import args as a

INTERRUPTED = "the models in the folder are unchanged; run the same command again to resume training where it stopped"


def add_parser(sub, name: str):
    from matdesinne.models.zoo import GENERATORS

    from matdesinne.materials import DEFAULT, builtin_names

    p = sub.add_parser(name, help="train models on a built-in dataset or your own CSV")
    p.add_argument("--data", help=f"a built-in dataset ({', '.join(builtin_names())}) or a CSV file with a header "
                                  f"(default: the --space's built-in data, else {DEFAULT})")
    p.add_argument("--space", metavar="NAME|FILE.toml",
                   help="the design space a CSV belongs to (a built-in material or a TOML space file): its columns, "
                        "bounds and properties, instead of the CSV's own")
    p.add_argument("--x", type=a.columns, help="design-parameter columns, comma-separated (default: all but --y)")
    p.add_argument("--y", help="property column, or several comma-separated (band_gap,strain_energy): the generators "
                               "learn the first, the surrogate predicts all (default: the last column, or the "
                               "space's first property)")
    p.add_argument("--y-lower", type=a.finite_float, help="the property's physical lower limit, e.g. 0 for a band gap (CSV only)")
    p.add_argument("--y-upper", type=a.finite_float, help="the property's physical upper limit (CSV only)")
    p.add_argument("--model", choices=["all", "surrogate", *GENERATORS], default="all",
                   help="which model to train; all = the surrogate and every generator (default: all)")
    p.add_argument("--out", type=Path, default=Path("models"),
                   help="folder for the checkpoints; they appear there together when training ends (default: models)")
    p.add_argument("--epochs", type=a.positive_int, help="maximum epochs (default: each model's own)")
    p.add_argument("--members", type=a.positive_int,
                   help="networks in the surrogate's ensemble (default: 5); more give a steadier mean and std")
    p.add_argument("--augment", type=a.count, default=200_000,
                   help="surrogate-labelled uniform design points added to the generators' training set "
                        "(default: 200000; 0: none)")
    a.add_seed(p, "initialisation and shuffling")
    p.add_argument("--no-symmetry", dest="symmetry", action="store_false",
                   help="train on the rows alone, without their images under the material's symmetries "
                        "(designs that build the same crystal: same gap and energy; pass this for a property "
                        "that is not the same there)")
    p.add_argument("--split-seed", type=a.seed, default=0, help="seed of the train/validation/test split (default: 0)")
    a.add_device(p)
    return p


def run(args) -> None:
    import logging

    from matdesinne.models.train import train_models

    # Training progress: a bar on a terminal, else a log line every tenth of the epochs.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    kinds = None if args.model == "all" else [args.model]
    from matdesinne.errors import UserInputError
    from matdesinne.materials import DEFAULT, material

    data = args.data
    if data is None:
        found = material(args.space or DEFAULT)
        if found.data is None:
            raise UserInputError(f"space {found.name!r} has no built-in data; give --data, e.g. from `matdesinne label`")
        data = found.name
    records = train_models(
        data=data, space=args.space, x=args.x, y=args.y, **({"kinds": kinds} if kinds else {}), out=args.out, epochs=args.epochs,
        members=args.members, seed=args.seed, split_seed=args.split_seed, device=args.device, augment=args.augment,
        y_lower=args.y_lower, y_upper=args.y_upper, symmetry=args.symmetry,
    )
    for kind, record in records.items():
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in record["validation"].items() if isinstance(v, float))
        print(f"{kind}: {record['epochs_run']} epochs in {record['seconds']:.1f} s; validation: {metrics}")
    print(f"saved to {args.out}/")
