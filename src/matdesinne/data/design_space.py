"""Design spaces: which parameters a design has, their units and bounds, and the target property."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping

import numpy as np

from matdesinne.errors import UserInputError


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


@dataclass(frozen=True)
class DesignSpace:
    """A named box of design parameters mapped to one property."""

    name: str
    parameters: tuple[Parameter, ...]
    property: Property

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
        return cls(
            name=str(d["name"]),
            parameters=tuple(Parameter(**p) for p in d["parameters"]),
            property=Property(**d["property"]),
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
