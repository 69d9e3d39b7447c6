"""How strongly the property responds to each design parameter, under the surrogate."""

from __future__ import annotations

import numpy as np


def sensitivity(surrogate, x: np.ndarray) -> dict:
    """Mean |change of the property| per parameter step, by central differences at ``x``.

    The step is 1 % of a nonzero equilibrium value (strain), else 0.1 of the parameter's
    unit (0.1 V/Å for a field), else 1 % of its range."""
    space = surrogate.space_
    out = {}
    for j, p in enumerate(space.parameters):
        if p.equilibrium:
            h, label = 0.01 * p.equilibrium, "per 1 % strain"
        elif p.unit:
            h, label = 0.1, f"per 0.1 {p.unit}"
        else:
            h, label = 0.01 * (p.high - p.low), "per 1 % of its range"
        up, down = x.copy(), x.copy()
        up[:, j] += h
        down[:, j] -= h
        diff = (surrogate.predict(up)[0] - surrogate.predict(down)[0]) / 2
        out[p.name] = {"step": label, "mean_abs_change": float(np.abs(diff).mean()), "mean_change": float(diff.mean())}
    return out
