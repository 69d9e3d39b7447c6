"""Strict checks of values read back from JSON (checkpoints, design spaces, manifests).

A file that was edited by hand or damaged must be refused with a message naming the field,
not turned into a model that behaves strangely later. Each check raises ``ValueError``
(the caller adds which file it was); ``bool`` never passes for a number, since JSON
``true`` is not a size.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np


def short(value: Any) -> str:
    """``repr(value)`` cut to 40 characters (an int of 5,000 digits has no repr at all)."""
    try:
        shown = repr(value)
    except ValueError:
        return "a number too long to show"
    return shown if len(shown) <= 40 else shown[:37] + "..."


def number(value: Any, field: str, *, minimum: float | None = None, positive: bool = False) -> float:
    """``value`` as a finite float; refuses text, booleans, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{field} must be a number, got {short(value)}")
    try:
        out = float(value)
    except OverflowError:  # an integer too large for a float
        raise ValueError(f"{field} must be a finite number, got {short(value)}") from None
    if not math.isfinite(out):
        raise ValueError(f"{field} must be a finite number, got {out}")
    if positive and out <= 0:
        raise ValueError(f"{field} must be positive, got {out:g}")
    if minimum is not None and out < minimum:
        raise ValueError(f"{field} must be at least {minimum:g}, got {out:g}")
    return out


def optional_number(value: Any, field: str) -> float | None:
    return None if value is None else number(value, field)


def whole(value: Any, field: str, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    """``value`` as an int in ``minimum..maximum``; refuses floats, text and booleans."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{field} must be a whole number, got {short(value)}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{field} must be from {minimum} to {maximum}, got {short(value)}")
    return int(value)


def text(value: Any, field: str, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise ValueError(f"{field} must be {'a' if empty else 'a non-empty'} string, got {short(value)}")
    return value


def numbers(value: Any, field: str, length: int) -> np.ndarray:
    """A JSON list of ``length`` finite numbers as a float64 array of shape (length,)."""
    if not isinstance(value, list) or len(value) != length:
        size = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
        raise ValueError(f"{field} must be a list of {length} numbers, got {size}")
    return np.array([number(v, f"{field}[{i}]") for i, v in enumerate(value)], dtype=np.float64)


def fields(value: Any, field: str, required: Iterable[str], optional: Iterable[str] = ()) -> Mapping[str, Any]:
    """``value`` as a JSON object holding every ``required`` key and nothing outside
    ``required`` and ``optional``."""
    if not isinstance(value, dict):
        raise ValueError(f"{field} must be a JSON object, got {type(value).__name__}")
    required = list(required)
    missing = [k for k in required if k not in value]
    unknown = [k for k in value if k not in required and k not in optional]
    if missing:
        raise ValueError(f"{field} lacks {', '.join(map(repr, missing))}")
    if unknown:
        raise ValueError(f"{field} has unknown entr{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}")
    return value
