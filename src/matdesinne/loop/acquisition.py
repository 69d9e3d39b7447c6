"""Which designed candidates to label next: spread over the candidate set, weighted by doubt.

The rule (:func:`select_batch`), in range-normalised coordinates ``u`` (each parameter's
range has length 1, see :mod:`~matdesinne.loop.coords`): pick, one at a time, the candidate
that maximises

    score(i) = sigma(i) * d(i),     d(i) = min over labelled-or-picked j of |u(i) - u(j)|,

where ``sigma`` is the model's predicted std (ensemble plus learned correction). With
nothing labelled yet, the first pick is the most uncertain candidate. Candidates already
labelled (or asked) are never picked again (matched by :func:`~matdesinne.loop.coords.design_keys`),
and neither is any candidate closer than ``min_distance`` to a labelled or picked design.

Why this rule:

- *Spread* (``d``): every candidate already satisfies the current model, so the batch is
  most informative, and least redundant, when it covers the candidate set rather than
  clustering where the sampler is densest. Greedy farthest-point selection (Gonzalez's
  k-center heuristic) covers a set to within twice the best possible radius, costs
  ``O(n * batch * dim)``, and needs no tuning.
- *Doubt* (``sigma``): among equally far candidates, one the model is unsure of teaches it
  more. Multiplying (rather than adding) keeps the rule free of units and of a trade-off
  weight, and a candidate the model is certain of and that sits next to a label scores ~0.
- Together they are a cheap stand-in for greedy maximum-determinant (DPP MAP) batch
  selection: adding ``i`` to a batch with a stationary kernel raises the log-determinant by
  about ``log sigma(i)^2 + log(1 - k(d(i))^2)``, which grows with both ``sigma`` and the
  distance to the nearest member, as the product above does.
- The batch doubles as the candidates proposed for the truth, so only candidates (designs
  the model believes meet the target) are ever picked: exploration never costs a label on
  a design the model thinks is off-target.

References
----------
T. F. Gonzalez, "Clustering to minimize the maximum intercluster distance", Theor. Comput.
Sci. 38, 293-306 (1985).
A. Kulesza and B. Taskar, "Determinantal point processes for machine learning", Found.
Trends Mach. Learn. 5, 123-286 (2012).
L. Chen, G. Zhang and H. Zhou, "Fast greedy MAP inference for determinantal point process
to improve recommendation diversity", NeurIPS (2018).
T. Kathuria, A. Deshpande and P. Kohli, "Batched Gaussian process bandit optimization via
determinantal point processes", NeurIPS (2016).
"""

from __future__ import annotations

import numpy as np

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.loop.coords import design_keys, to_unit

#: Default exclusion radius around labelled and picked designs, in unit coordinates.
MIN_DISTANCE = 0.02

#: The closed loop's default: pick among the tenth of the candidates the model can best
#: vouch for: before any truth is known, the lowest ensemble std; after, the closest to a
#: design whose truth is known (where the learned correction is exact). A campaign's batch
#: is also its honest test (proposed before its truth is known), so this places batches,
#: and judges the model, where DFT has taught it, while farthest-point spread among the
#: picks keeps them diverse. ``confident=1`` explores instead (spread times std).
CONFIDENT = 0.1


def select_batch(
    x: np.ndarray,
    std: np.ndarray,
    space: DesignSpace,
    batch: int,
    labelled: np.ndarray | None = None,
    min_distance: float = MIN_DISTANCE,
    confident: float = 1.0,
) -> np.ndarray:
    """Indices of up to ``batch`` rows of ``x`` to label next, in the order picked.

    ``x`` (n, dim): candidate designs in physical units; ``std`` (n,): their predicted std
    (property units; only ratios matter); ``labelled`` (m, dim): designs already labelled
    or asked for, which are never picked again and which the picks stay ``min_distance``
    (Euclidean, unit coordinates) away from. Fewer than ``batch`` indices come back when
    fewer candidates are eligible. Deterministic: ties go to the earlier row.

    ``confident`` < 1 exploits instead: only that fraction of the candidates with the lowest
    ``std`` is eligible (of those not already ``min_distance`` from a labelled design), and among them the picks are spread from each other by distance
    alone (labelled designs still keep them ``min_distance`` away; see :data:`CONFIDENT`).
    Pass as ``std`` whatever measures doubt: a campaign passes the distance to the nearest
    design whose truth it knows.

    Example::

        cands = design(models, target=0.6).candidates
        pick = select_batch(cands[space.names].to_numpy(), cands["gap_std"].to_numpy(), space, 10)
        cands.iloc[pick]
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 0:
        raise UserInputError(f"the batch size must be a positive whole number, got {batch!r}")
    u = to_unit(x, space)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if len(std) != len(u):
        raise UserInputError(f"expected one std per candidate, got {len(std)} for {len(u)} candidates")
    if not (isinstance(confident, (int, float)) and 0 < confident <= 1):
        raise UserInputError(f"confident={confident!r} must be a fraction in (0, 1]")
    weight = np.where(np.isfinite(std), np.maximum(std, 0.0), 0.0) + 1e-12  # all-zero std: pure farthest-point
    keys = design_keys(x, space)
    taken = set() if labelled is None or len(labelled) == 0 else set(design_keys(labelled, space))
    first = {k: i for i, k in reversed(list(enumerate(keys)))}  # each design's first row
    eligible = np.array([first[k] == i and k not in taken for i, k in enumerate(keys)], dtype=bool)
    eligible &= np.isfinite(u).all(1)
    nearest = np.full(len(u), np.inf)
    if taken:
        for row in to_unit(labelled, space):
            nearest = np.minimum(nearest, np.linalg.norm(u - row, axis=1))
    if confident < 1:  # exploiting: keep clear of labelled designs, but spread only among the picks
        eligible &= nearest >= min_distance
        nearest = np.full(len(u), np.inf)
        if eligible.any():  # the confident fraction of what is left, so a batch never comes back empty
            eligible &= weight <= np.quantile(weight[eligible], confident)
        weight = np.ones_like(weight)  # within the confident set: spread alone
    picks: list[int] = []
    while len(picks) < batch:
        eligible &= nearest >= min_distance
        if not eligible.any():
            break
        score = weight * np.where(np.isinf(nearest), 1.0, nearest)  # nothing labelled: sigma alone
        i = int(np.argmax(np.where(eligible, score, -np.inf)))
        picks.append(i)
        eligible[i] = False
        nearest = np.minimum(nearest, np.linalg.norm(u - u[i], axis=1))
    return np.asarray(picks, dtype=np.int64)
