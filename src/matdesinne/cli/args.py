"""Argument types and option groups that several commands share.

Each type turns a bad value into a one-line usage error before any work starts.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

#: Seeds are NumPy/PyTorch seeds: 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1


def whole_number(text: str, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}" if minimum == 1
                                         else f"must be {minimum} or more, got {value}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def count(text: str) -> int:
    return whole_number(text, 0)


def seed(text: str) -> int:
    return whole_number(text, 0, MAX_SEED)


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    value = finite_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction above 0 and at most 1, got {text}")
    return value


def columns(text: str) -> list[str]:
    cols = [c.strip() for c in text.split(",") if c.strip()]
    if not cols:
        raise argparse.ArgumentTypeError("expected comma-separated column names")
    repeated = sorted({c for c in cols if cols.count(c) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"column(s) {', '.join(repeated)} named more than once")
    return cols


def out_file(text: str) -> Path:
    """An output file name; a trailing '/' names a folder, so it is refused."""
    if text.endswith("/"):
        raise argparse.ArgumentTypeError(f"{text!r} ends with '/', so it names a folder; give a file name")
    if not text:
        raise argparse.ArgumentTypeError("expected a file name")
    return Path(text)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="where to compute (default: auto: a CUDA GPU if there is one)")


def add_seed(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--seed", type=seed, default=0, help=f"seed of {what}, 0 to {MAX_SEED} (default: 0)")


def add_space(parser: argparse.ArgumentParser) -> None:
    from matdesinne.materials import DEFAULT, builtin_names

    parser.add_argument("--space", metavar="NAME|FILE.toml", default=DEFAULT,
                        help=f"design space: a built-in material ({', '.join(builtin_names())}) or a TOML space file "
                             f"(default: {DEFAULT})")


def add_models(parser: argparse.ArgumentParser, what: str = "models folder", optional: bool = False) -> None:
    """``--models``, ``--space`` and ``--allow-mixed``; ``optional`` for a command that works
    without models (see :func:`optional_models`), whose ``what`` says what it does with them."""
    from matdesinne.materials import DEFAULT, builtin_names

    names = ", ".join(builtin_names())
    if optional:
        parser.add_argument("--models", type=Path, help=what)
        parser.add_argument("--space", metavar="NAME|FILE.toml",
                            help=f"design space: a built-in material ({names}) or a TOML space file "
                                 f"(default: the --models' space, else {DEFAULT}); no trained models needed")
    else:
        parser.add_argument("--models", type=Path, help=f"{what} (default: the models the --space ships)")
        parser.add_argument("--space", metavar="NAME|FILE.toml",
                            help=f"the models' design space: a built-in material ({names}), whose shipped models "
                                 "are the default, or a TOML space file (its structure builder)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="use a models folder whose members come from different training runs")


def optional_models(args, shipped: bool = True):
    """``(models, material)`` for a command that builds or computes structures, which needs a
    space's builder, not trained models: the surrogate of ``--models`` (with ``shipped``, else
    of the models the ``--space`` ships) and its material (None for a space that has none),
    or, with no models, None and the material of ``--space`` (default: MoS2)."""
    from matdesinne.materials import DEFAULT, material
    from matdesinne.models import load_models

    if args.models is None:
        found = material(args.space or DEFAULT)
        if not shipped or found.models is None:
            return None, found
    models = load_models(args.models, generator=None, allow_mixed=args.allow_mixed, space=args.space)
    return models, models.material


def add_dft(parser: argparse.ArgumentParser, cluster: bool = True) -> None:
    """The DFT settings option and, with ``cluster``, where the calculations run."""
    parser.add_argument("--settings", default="standard", metavar="standard|fast|FILE.json",
                        help="DFT settings: a preset or a JSON file of settings (default: standard)")
    if cluster:
        parser.add_argument("--scheduler", metavar="ADDRESS",
                            help="run on an existing Dask cluster, e.g. tcp://host:8786 (default: a local cluster)")
        parser.add_argument("--workers", type=positive_int,
                            help="local cluster size, one single-threaded worker each (default: one per core)")


def add_further_goals(parser: argparse.ArgumentParser, unset_is_none: bool = False) -> None:
    """``--min``, ``--max`` (bounds) and ``--minimize`` / ``--maximize`` (one objective);
    with ``unset_is_none``, bounds not given are None (to tell "not given" from "none")."""
    default = None if unset_is_none else []
    parser.add_argument("--min", action="append", default=default, metavar="P=V", help="goal: P >= V (repeatable)")
    parser.add_argument("--max", action="append", default=default, metavar="P=V", help="goal: P <= V (repeatable)")
    objective = parser.add_mutually_exclusive_group()
    objective.add_argument("--minimize", metavar="P",
                           help="rank and slide candidates toward low P: a predicted property (e.g. strain_energy) "
                                "or 'strain' (mean absolute lattice strain, %%)")
    objective.add_argument("--maximize", metavar="P", help="as --minimize, toward high P")


def add_constrain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--constrain", action="append", default=[], metavar="P=LO:HI",
                        help="narrow a parameter's range, e.g. efield=-0.5:0.5 (repeatable, once per parameter)")


def parse_constraints(texts: list[str]) -> dict[str, tuple[float, float]]:
    """``["efield=-0.5:0.5", ...]`` as a dict; a parameter constrained twice is refused."""
    from matdesinne.data.design_space import parse_constraint
    from matdesinne.errors import UserInputError

    out: dict[str, tuple[float, float]] = {}
    for text in texts:
        name, limits = parse_constraint(text)
        if name in out:
            raise UserInputError(f"--constrain names {name!r} twice; give one range per parameter")
        out[name] = limits
    return out


def constrained(space, texts: list[str]):
    """``space`` narrowed by ``--constrain`` texts."""
    return space.constrain(parse_constraints(texts)) if texts else space
