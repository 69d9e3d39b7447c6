"""Numbers in tables and messages."""

from __future__ import annotations

import math

MISSING = "n/a"


def fmt(value, spec: str = ".3f") -> str:
    """``format(value, spec)``, or ``"n/a"`` for a missing value (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return format(value, spec)
