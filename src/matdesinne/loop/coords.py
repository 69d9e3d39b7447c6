"""Range-normalised design coordinates, shared by the residual model and the acquisition.

Every parameter's range in the design space is mapped to [0, 1], so a distance or a
length scale means the same in every direction (a fraction of each range), whatever the
parameters' units (Å, degrees, V/Å).
"""

from __future__ import annotations

import numpy as np
import torch

from matdesinne.data.design_space import DesignSpace

#: Decimals of the unit coordinates that make a design's key: 1e-6 of each range.
KEY_DECIMALS = 6


def to_unit(x: np.ndarray, space: DesignSpace) -> np.ndarray:
    """Design parameters ``x`` (n, dim) in physical units -> unit coordinates (n, dim)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, space.dim)
    return (x - space.lows) / (space.highs - space.lows)


def to_unit_tensor(x: torch.Tensor, space: DesignSpace) -> torch.Tensor:
    """:func:`to_unit` for a tensor of any leading shape (..., dim), in float64, differentiably."""
    lows = torch.as_tensor(space.lows, dtype=torch.float64, device=x.device)
    span = torch.as_tensor(space.highs - space.lows, dtype=torch.float64, device=x.device)
    return (x.double() - lows) / span


def design_keys(x: np.ndarray, space: DesignSpace, decimals: int = KEY_DECIMALS) -> list[str]:
    """A stable text key per design row of ``x`` (n, dim): its unit coordinates rounded to
    ``decimals`` places. Two rows with one key are the same design for the loop's purposes
    (1e-6 of every range apart at most), whatever float noise a CSV round trip added.

    Example: ``design_keys(np.array([[0.5, 0.25, 1.0]]), space)`` -> ``["0.5,0.25,1.0"]`` in a
    unit box.
    """
    unit = np.round(to_unit(x, space), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return [",".join(repr(float(v)) for v in row) for row in unit]
