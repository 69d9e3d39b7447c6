"""Space-filling design points in a design space's box, with ``scipy.stats.qmc``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from matdesinne.data.datasets import check_seed
from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError

#: ``sobol``: scrambled Sobol' points (low discrepancy; balanced when n is a power of 2);
#: ``lhs``: a Latin hypercube (each parameter's range cut into n strata, one point each);
#: ``uniform``: i.i.d. uniform points.
METHODS = ("sobol", "lhs", "uniform")


def sample_space(space: DesignSpace, n: int, method: str = "sobol", seed: int = 0) -> pd.DataFrame:
    """``n`` design points (rows) of ``space``'s parameters (columns), inside its box,
    reproducible for a given ``seed``.

    >>> sample_space(space, 256, "sobol", seed=0).shape
    (256, space.dim)
    """
    seed = check_seed(seed)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise UserInputError(f"n={n} must be a whole number of at least 1")
    if method not in METHODS:
        raise UserInputError(f"method={method!r} is not one of {', '.join(METHODS)}")
    from scipy.stats import qmc

    rng = np.random.default_rng(seed)
    if method == "sobol":
        with warnings.catch_warnings():  # n need not be a power of 2: the points stay space-filling
            warnings.simplefilter("ignore", UserWarning)
            unit = qmc.Sobol(space.dim, scramble=True, seed=rng).random(int(n))
    elif method == "lhs":
        unit = qmc.LatinHypercube(space.dim, seed=rng).random(int(n))
    else:
        unit = rng.random((int(n), space.dim))
    return pd.DataFrame(qmc.scale(unit, space.lows, space.highs), columns=space.names)
