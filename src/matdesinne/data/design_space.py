"""Design spaces: which parameters a design has, their units and bounds, and the target property."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from matdesinne.data import schema
from matdesinne.errors import UserInputError

#: Columns that matdesinne writes beside the design parameters: the requested target and
#: candidate number (candidates, DFT results), a row id, and the DFT results' own columns.
#: A parameter of one of these names would be overwritten in, or vanish from, those files.
RESERVED_COLUMNS = ("target", "candidate", "id", "dft_gap_raw", "dft_gap", "dft_energy", "status", "error", "seconds")


def reserved_columns(property_name: str) -> tuple[str, ...]:
    """Every column name a design parameter may not take: :data:`RESERVED_COLUMNS` and the
    prediction columns ``<property>_pred`` and ``<property>_std``."""
    return (*RESERVED_COLUMNS, f"{property_name}_pred", f"{property_name}_std")


def check_names(names: Sequence[str], property_name: str) -> None:
    """Refuse, in one line, design-parameter names that repeat, that name the property, or
    that matdesinne's outputs reserve (see :func:`reserved_columns`)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserInputError(f"column {name!r} is named twice among the design parameters")
        seen.add(name)
    if property_name in seen:
        raise UserInputError(f"column {property_name!r} cannot be both a design parameter and the property")
    taken = [n for n in names if n in reserved_columns(property_name)]
    if taken:
        raise UserInputError(
            f"design parameter {taken[0]!r} has a name that matdesinne writes into its own outputs "
            f"(reserved: {', '.join(reserved_columns(property_name))}); rename that column"
        )


@dataclass(frozen=True)
class Parameter:
    """One design parameter.

    ``low``/``high`` bound the region the models know (the training data's box);
    ``equilibrium`` is the unstrained value, where one exists (strain is relative to it).
    """

    name: str
    low: float
    high: float
    unit: str = ""
    equilibrium: float | None = None

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise UserInputError(
                f"parameter {self.name!r} needs finite bounds with low < high, got {self.low}:{self.high}"
            )


@dataclass(frozen=True)
class Property:
    """The target property.

    ``lower``/``upper`` are physical limits (a band gap is never negative). A limit that
    the data reaches with a point mass (64 % of MoS2 gaps are exactly 0) makes the
    surrogate treat those rows as censored: "at or beyond the limit".
    """

    name: str
    unit: str = ""
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        limits = [v for v in (self.lower, self.upper) if v is not None]
        if not all(math.isfinite(v) for v in limits) or (len(limits) == 2 and self.lower >= self.upper):
            raise UserInputError(
                f"property {self.name!r} needs finite limits with lower < upper, got {self.lower}:{self.upper}"
            )

    @classmethod
    def from_dict(cls, d: Mapping, field: str = "property") -> "Property":
        """The inverse of ``dataclasses.asdict``, every field checked (a ``ValueError`` names
        the first bad one, as ``field.<key>``)."""
        d = schema.fields(d, field, ("name", "unit", "lower", "upper"))
        return cls(schema.text(d["name"], f"{field}.name", empty=False), schema.text(d["unit"], f"{field}.unit"),
                   schema.optional_number(d["lower"], f"{field}.lower"),
                   schema.optional_number(d["upper"], f"{field}.upper"))


@dataclass(frozen=True)
class DesignSpace:
    """A named box of design parameters mapped to one property."""

    name: str
    parameters: tuple[Parameter, ...]
    property: Property

    def __post_init__(self):
        if not self.parameters:
            raise UserInputError(f"design space {self.name!r} needs at least one design parameter")
        check_names(self.names, self.property.name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def dim(self) -> int:
        return len(self.parameters)

    @property
    def lows(self) -> np.ndarray:
        """Lower bounds, shape (dim,)."""
        return np.array([p.low for p in self.parameters], dtype=np.float64)

    @property
    def highs(self) -> np.ndarray:
        """Upper bounds, shape (dim,)."""
        return np.array([p.high for p in self.parameters], dtype=np.float64)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise UserInputError(f"{name!r} is not a parameter of design space {self.name!r} (it has {', '.join(self.names)})")

    def contains(self, x: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
        """Boolean mask, shape (n,): which rows of ``x`` (n, dim) lie inside the bounds, each
        widened by ``tolerance`` times the parameter's range."""
        x = np.asarray(x)
        slack = tolerance * (self.highs - self.lows)
        return np.all((x >= self.lows - slack) & (x <= self.highs + slack), axis=1)

    def constrain(self, limits: Mapping[str, tuple[float, float]]) -> "DesignSpace":
        """A copy with some parameters' ranges narrowed, e.g. ``{"efield": (-0.5, 0.5)}``.

        A range that reaches outside the current bounds is refused: the models know
        nothing there, so it cannot be a narrowing.
        """
        params = {p.name: p for p in self.parameters}
        for name, (lo, hi) in limits.items():
            p = self.parameter(name)
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
                raise UserInputError(f"constraint on {name!r} needs finite LO < HI, got {lo}:{hi}")
            if lo < p.low or hi > p.high:
                raise UserInputError(
                    f"constraint {name}={lo:g}:{hi:g} lies outside the design space, "
                    f"where {name} ranges {p.low:g}:{p.high:g}"
                )
            params[name] = replace(p, low=float(lo), high=float(hi))
        return replace(self, parameters=tuple(params[n] for n in self.names))

    def same_space(self, other: "DesignSpace") -> bool:
        """True when both describe the same parameters and property (bounds may differ)."""
        return (
            self.name == other.name
            and self.names == other.names
            and self.property.name == other.property.name
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "parameters": [asdict(p) for p in self.parameters],
            "property": asdict(self.property),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "DesignSpace":
        """The inverse of :meth:`to_dict`. Read from a file, so every field is checked: a
        ``ValueError`` (``UserInputError`` for bad bounds or names) names the first bad one."""
        d = schema.fields(d, "design_space", ("name", "parameters", "property"))
        if not isinstance(d["parameters"], list):
            raise ValueError("design_space.parameters must be a list")
        parameters = []
        for i, p in enumerate(d["parameters"]):
            where = f"design_space.parameters[{i}]"
            p = schema.fields(p, where, ("name", "low", "high", "unit", "equilibrium"))
            parameters.append(Parameter(
                schema.text(p["name"], f"{where}.name", empty=False), schema.number(p["low"], f"{where}.low"),
                schema.number(p["high"], f"{where}.high"), schema.text(p["unit"], f"{where}.unit"),
                schema.optional_number(p["equilibrium"], f"{where}.equilibrium"),
            ))
        return cls(
            name=schema.text(d["name"], "design_space.name", empty=False),
            parameters=tuple(parameters),
            property=Property.from_dict(d["property"], "design_space.property"),
        )


def parse_constraint(text: str) -> tuple[str, tuple[float, float]]:
    """Parse ``"efield=-0.5:0.5"`` into ``("efield", (-0.5, 0.5))``."""
    name, sep, rng = text.partition("=")
    lo_text, sep2, hi_text = rng.partition(":")
    if not sep or not sep2 or not name.strip():
        raise UserInputError(f"constraint {text!r} is not of the form PARAM=LO:HI")
    try:
        return name.strip(), (float(lo_text), float(hi_text))
    except ValueError:
        raise UserInputError(f"constraint {text!r} is not of the form PARAM=LO:HI with numbers LO and HI") from None
