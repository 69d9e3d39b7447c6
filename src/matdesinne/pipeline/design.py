"""The MatDesINNe pipeline: generate -> down-select -> localize -> candidates.

Each stage is a plain function on arrays, so it can be used alone; :func:`design` runs
them in order and times them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
import torch

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.models.surrogate import EnsembleSurrogate
from matdesinne.models.zoo import GENERATORS, ModelSet
from matdesinne.pipeline.goals import (
    DESIGN_FUNCTIONS, Goals, Quantities, design_function_values, goal_met, localize_goals, slide,
)

PIPELINE_PREFIX = "matdesinne-"
#: A generator's name gives its raw samples; "matdesinne-<generator>" runs the whole pipeline.
METHODS = (*(PIPELINE_PREFIX + k for k in GENERATORS), *GENERATORS)


def generator_of(method: str) -> str:
    """The generator kind a method samples from: "matdesinne-inn" -> "inn"."""
    if method not in METHODS:
        raise UserInputError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    return method.removeprefix(PIPELINE_PREFIX)


def generate(generator, target, n: int, seed: int = 0, latent: str = "normal") -> np.ndarray:
    """Posterior samples x ~ p(x | y = target) from the generator: array (n, dim); ``target``
    is a value, or a vector for a generator of several conditions; ``latent`` is
    ``"normal"`` (i.i.d.) or ``"sobol"`` (quasi-random latent draws)."""
    return generator.sample(target, n, seed=seed, latent=latent)


@dataclass
class Selection:
    """Which samples down-selection kept, and why the others went (boolean masks, shape (n,))."""

    kept: np.ndarray
    in_bounds: np.ndarray
    near_target: np.ndarray
    confident: np.ndarray
    pred: np.ndarray
    std: np.ndarray


def downselect(
    x: np.ndarray,
    surrogate: EnsembleSurrogate,
    target: float,
    space: DesignSpace,
    tolerance: float = 0.1,
    max_std: float | None = None,
) -> Selection:
    """Keep samples inside ``space``'s bounds, predicted within ``tolerance`` of ``target``,
    and with an ensemble std no larger than the surrogate's ``std_threshold_`` (the 99th
    percentile of its std on validation rows) or ``max_std``, whichever is smaller."""
    max_std = _max_std_used(surrogate, max_std)
    pred, std = surrogate.predict(x)
    in_bounds = space.contains(x)
    near = np.abs(pred - target) <= tolerance
    confident = std <= max_std
    return Selection(in_bounds & near & confident, in_bounds, near, confident, pred, std)


def localize(
    x: np.ndarray,
    surrogate: EnsembleSurrogate,
    target: float,
    space: DesignSpace,
    atol: float = 0.005,
    max_steps: int = 30,
    max_step_size: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Move each sample onto the surrogate's level set ``f(x) = target``, as little as needed.

    Every sample has its own loss ``(f(x) - target)^2 / 2``; its step is the damped
    Gauss-Newton (minimum-norm) step ``-(f - target) g / |g|^2``, ``g = grad f``, taken in
    design coordinates scaled so each parameter's full range is 1, capped at
    ``max_step_size`` in that scale, and projected onto ``space``'s bounds (gradient
    components that push against an active bound are dropped first). A sample stops as
    soon as ``|f(x) - target| <= atol``; no batch average ever shrinks a step.

    Returns ``(x_new, converged)``: shapes (n, dim) and (n,).

    Where every ensemble member already sits below a floored property (deep in the metal,
    when a gap is wanted), the floored mean is flat; the members' raw-score slope then
    gives the direction out.
    """
    device = surrogate.device_
    # The mean prediction and its slope (with the floored-members fallback) in the unit box.
    quantity = Quantities(surrogate, space, [surrogate.space_.property.name])
    lows, span = quantity.lows, quantity.span
    u = ((torch.as_tensor(x, dtype=torch.float32, device=device) - lows) / span).clamp(0, 1)
    converged = torch.zeros(len(u), dtype=torch.bool, device=device)
    moved = torch.zeros(len(u), dtype=torch.bool, device=device)
    active = torch.arange(len(u), device=device)
    for _ in range(max_steps + 1):
        if len(active) == 0:
            break
        ua_now = u[active]
        values, grads = quantity(ua_now)
        with torch.no_grad():
            resid = values[:, 0] - target
            done = resid.abs() <= atol
            converged[active[done]] = True
            keep = ~done
            active, ua_now = active[keep], ua_now[keep]
            if len(active) == 0:
                break
            resid, g = resid[keep], grads[keep, 0]
            direction = -resid.unsqueeze(1) * g
            # Drop components that would push through an active bound, then re-solve.
            pinned = ((ua_now <= 0) & (direction < 0)) | ((ua_now >= 1) & (direction > 0))
            g = torch.where(pinned, torch.zeros_like(g), g)
            step = -resid.unsqueeze(1) * g / (g.pow(2).sum(1, keepdim=True) + 1e-12)
            norm = step.norm(dim=1, keepdim=True)
            step = step * torch.clamp(max_step_size / (norm + 1e-12), max=1.0)
            u[active] = (ua_now + step).clamp(0, 1)
            moved[active] = True
    moved = moved.cpu().numpy()
    # Samples never stepped come back bit-identical; float32 rounding in the unit box can
    # put a moved one a hair past a bound, so snap those back.
    x_new = np.array(x, dtype=np.float64, copy=True)
    x_new[moved] = np.clip((lows + u * span).double().cpu().numpy()[moved], space.lows, space.highs)
    return x_new, converged.cpu().numpy()


def check_trained_range(surrogate: EnsembleSurrogate, targets, argument: str = "target", hint: str = "") -> None:
    """Refuse, in one line naming ``argument``, the first target outside the property range
    the surrogate was trained on (``y_range_``); ``hint`` ends the message."""
    prop = surrogate.space_.property
    lo, hi = surrogate.y_range_
    for t in targets:
        if not lo <= t <= hi:
            raise UserInputError(f"{argument}={t:g} lies outside the {prop.name} range the models were "
                                 f"trained on ({lo:g} to {hi:g} {prop.unit}){hint}")


#: Peak bytes per sample, beyond the per-sample arrays: the float32 copies of each sample
#: that localization makes per ensemble member (inputs, activations' gradients, outputs).
BYTES_PER_SAMPLE_PER_MEMBER_DIM = 24


def check_sample_count(n: int, dim: int, members: int) -> None:
    """Refuse, before allocating, ``n`` samples that cannot fit in this machine's memory."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise UserInputError(f"the number of samples must be a positive whole number, got n={n!r}")
    need = int(n) * dim * (8 * 8 + BYTES_PER_SAMPLE_PER_MEMBER_DIM * members)
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > have:
        raise UserInputError(f"n={n} samples need about {need / 2**30:,.0f} GiB of memory, more than this "
                             f"machine's {have / 2**30:.0f} GiB; ask for fewer, or run several times with different seed=")


def _check_request(models: ModelSet, method: str, n: int, tolerance: float) -> str:
    """Refuse, in one line, a method the models cannot run, a sample count that does not fit
    in memory, and a tolerance that is not positive; returns the method's generator kind."""
    kind = generator_of(method)
    if models.generator.kind != kind:
        raise UserInputError(f"method {method!r} needs the {kind} generator, but the models hold a {models.generator.kind}")
    check_sample_count(n, models.space.dim, models.surrogate.members)
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise UserInputError(f"the tolerance must be a positive number, got {tolerance}")
    return kind


@dataclass
class DesignResult:
    """Candidates (a DataFrame in the dataset's own column names) and a JSON-able summary."""

    candidates: pd.DataFrame
    summary: dict = field(default_factory=dict)


def design(
    models: ModelSet,
    target: float | Goals,
    n: int = 10000,
    method: str = "matdesinne-cinn",
    tolerance: float = 0.1,
    constraints: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
    atol: float | None = None,
    max_std: float | None = None,
    allow_extrapolation: bool = False,
    latent: str = "normal",
    travel: float = 0.1,
) -> DesignResult:
    """Design ``n`` samples for ``target`` and return the candidates.

    ``target`` is a value of the space's property, or several :class:`~matdesinne.pipeline.goals.Goals`
    (targets, bounds, an objective; see :func:`design_for_goals`, which also uses ``travel``).

    ``method="cinn"`` (or any generator's name) returns the raw posterior samples, scored
    by the surrogate; ``"matdesinne-cinn"`` also down-selects and localizes them. The
    method's generator must be the one in ``models``. ``constraints`` narrows
    parameters' ranges (``{"efield": (-0.5, 0.5)}``); both down-selection and
    localization stay inside them. ``atol`` is how close localization must bring the
    surrogate's prediction to the target (default ``tolerance / 20``). ``latent="sobol"``
    draws the generator's latent space quasi-randomly (see :mod:`~matdesinne.models.latent`).
    ``max_std`` makes down-selection drop candidates whose surrogate members disagree more
    than that (the ensemble std of the space's property, in its unit); the surrogate's own
    ``std_threshold_`` (extreme uncertainty) applies in any case. Lower values trade
    candidates for accuracy: the ensemble std tracks the error of the mean prediction. Raw
    samples are not down-selected, so a raw method refuses ``max_std``.
    """
    if isinstance(target, Goals):
        return design_for_goals(models, target, n=n, method=method, tolerance=tolerance, constraints=constraints,
                                seed=seed, atol=atol, allow_extrapolation=allow_extrapolation, latent=latent,
                                travel=travel, max_std=max_std)
    space = models.space
    prop = space.property
    if not np.isfinite(target):
        raise UserInputError(f"the target must be a finite number, got {target}")
    kind = _check_request(models, method, n, tolerance)
    _check_max_std(max_std, method, kind)
    if not allow_extrapolation:
        check_trained_range(models.surrogate, [target], hint="; pass allow_extrapolation=True to try anyway")
    box = space.constrain(constraints or {})
    atol = tolerance / 20 if atol is None else atol
    seconds = {"generate": 0.0, "downselect": 0.0, "localize": 0.0}

    t0 = time.perf_counter()
    x = generate(models.generator, target, n, seed=seed, latent=latent)
    seconds["generate"] = time.perf_counter() - t0
    n_in_bounds = int(box.contains(x).sum())

    if method == kind:  # raw samples
        pred, std = models.surrogate.predict(x)
        seconds["downselect"] = 0.0
        n_kept = n
        converged = np.ones(n, dtype=bool)
    else:
        t0 = time.perf_counter()
        sel = downselect(x, models.surrogate, target, box, tolerance, max_std)
        seconds["downselect"] = time.perf_counter() - t0
        n_kept = int(sel.kept.sum())
        t0 = time.perf_counter()
        x, converged = localize(x[sel.kept], models.surrogate, target, box, atol=atol)
        # A candidate must still pass down-selection where localization left it.
        final = downselect(x, models.surrogate, target, box, tolerance, max_std)
        ok = converged & final.kept
        x, pred, std = x[ok], final.pred[ok], final.std[ok]
        seconds["localize"] = time.perf_counter() - t0
    seconds["total"] = sum(seconds.values())

    frame = pd.DataFrame(x, columns=space.names)
    frame[f"{prop.name}_pred"] = pred
    frame[f"{prop.name}_std"] = std
    if len(models.surrogate.properties_) > 1:  # the further properties too, as design_for_goals writes them
        for name, (mean, spread) in list(models.surrogate.predict_all(x).items())[1:]:
            frame[f"{name}_pred"], frame[f"{name}_std"] = mean, spread
    frame["target"] = float(target)
    err = np.abs(pred - target)
    summary = {
        "method": method,
        "target": float(target),
        "property": prop.name,
        "unit": prop.unit,
        "tolerance": float(tolerance),
        "atol": float(atol),
        "max_std": _max_std_used(models.surrogate, max_std),
        "constraints": {k: list(v) for k, v in (constraints or {}).items()},
        "seed": int(seed),
        "latent": latent,
        "models": str(models.directory),
        "n_requested": int(n),
        "n_generated": int(n),
        "n_in_bounds": n_in_bounds,
        "n_kept": n_kept,
        "n_candidates": int(len(frame)),
        "mae_surrogate": float(err.mean()) if len(err) else None,
        "max_error_surrogate": float(err.max()) if len(err) else None,
        "mean_std": float(std.mean()) if len(std) else None,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
    }
    return DesignResult(frame, summary)


def _check_max_std(max_std: float | None, method: str, kind: str) -> None:
    if max_std is not None and not (np.isfinite(max_std) and max_std > 0):
        raise UserInputError(f"max_std must be a positive number, got {max_std}")
    if max_std is not None and method == kind:
        raise UserInputError(f"max_std applies to down-selection, which raw samples ({method}) skip; "
                             f"use matdesinne-{method}")


def _max_std_used(surrogate: EnsembleSurrogate, max_std: float | None) -> float:
    """The std cap on the space's property that down-selection applied."""
    return float(surrogate.std_threshold_ if max_std is None else min(max_std, surrogate.std_threshold_))


def _quantity_columns(models: ModelSet, x: np.ndarray, goals: Goals) -> tuple[dict, dict]:
    """Every predicted property's (mean, std) and every design function the goals use, for ``x``."""
    predicted = models.surrogate.predict_all(x)
    exact = {q: design_function_values(x, models.space, q) for q in goals.quantities if q in DESIGN_FUNCTIONS}
    return predicted, exact


def _spread(values: np.ndarray) -> dict | None:
    if not len(values):
        return None
    q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    return dict(zip(("min", "q25", "median", "q75", "max"), map(float, q)))


def condition_of(generator, goals: Goals) -> np.ndarray:
    """The condition vector a generator samples at for ``goals``: the targets' values; for
    a property it conditions on but no goal targets, the low (``--minimize``) or high
    (``--maximize``) end of that property among training rows at the first target, else
    its typical value there (see :meth:`~matdesinne.models.generator.Generator.condition_for`)."""
    objective = goals.objective
    wants: dict = {}
    for prop in generator.conditions_[1:]:
        value = goals.target_of(prop.name)
        if value is not None:
            wants[prop.name] = value
        elif objective is not None and objective.quantity == prop.name:
            wants[prop.name] = "low" if objective.kind == "minimize" else "high"
    return generator.condition_for(goals.target_of(generator.space_.property.name), wants)


def design_for_goals(
    models: ModelSet,
    goals: Goals,
    n: int = 10000,
    method: str = "matdesinne-cinn",
    tolerance: float = 0.1,
    constraints: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
    atol: float | None = None,
    allow_extrapolation: bool = False,
    latent: str = "normal",
    travel: float = 0.1,
    max_std: float | None = None,
) -> DesignResult:
    """Design ``n`` samples that meet several ``goals`` and return the candidates, ranked by
    the objective when there is one.

    The generator samples for the target on the space's property; down-selection keeps
    those predicted within ``tolerance`` of it; :func:`~matdesinne.pipeline.goals.localize_goals`
    then brings each onto every target (within ``atol``, default ``tolerance / 20``) and
    inside every bound at once, and :func:`~matdesinne.pipeline.goals.slide` moves it along
    the feasible set to improve the objective, at most ``travel`` from where it was (a
    distance in the design box scaled to unit side: 0 keeps the localized samples, larger
    values trade diversity for the objective). A candidate must meet every goal under the
    surrogate (targets within ``tolerance``) with a confident prediction of every property
    it uses (the space's property's ensemble std at most ``max_std``, as in :func:`design`).

    Columns: the design, ``<p>_pred`` and ``<p>_std`` of every predicted property, each
    design function the goals use (e.g. ``strain`` in %), and ``target``. The summary's
    ``goals`` gives per goal the fraction of localized samples that reached it, the
    surrogate's MAE (targets) and the spread of its quantity over the candidates.
    """
    space, surrogate = models.space, models.surrogate
    goals.check(surrogate)
    primary = space.property
    target = goals.target_of(primary.name)
    kind = _check_request(models, method, n, tolerance)
    _check_max_std(max_std, method, kind)
    cap = _max_std_used(surrogate, max_std)
    if not (np.isfinite(travel) and travel >= 0):
        raise UserInputError(f"travel must be 0 or a positive number, got {travel}")
    if not allow_extrapolation:
        check_trained_range(surrogate, [target], hint="; pass allow_extrapolation=True to try anyway")
    box = space.constrain(constraints or {})
    atol = tolerance / 20 if atol is None else atol
    seconds = {"generate": 0.0, "downselect": 0.0, "localize": 0.0, "slide": 0.0}
    constraint_goals, objective = goals.constraints, goals.objective
    condition = condition_of(models.generator, goals)
    clock = time.perf_counter()
    x = generate(models.generator, condition, n, seed=seed, latent=latent)
    seconds["generate"] = time.perf_counter() - clock
    n_in_bounds = int(box.contains(x).sum())
    reached: dict[str, float | None] = {}
    before_slide = None
    if method == kind:  # raw samples, scored
        n_kept = n
    else:
        clock = time.perf_counter()
        sel = downselect(x, surrogate, target, box, tolerance, cap)
        seconds["downselect"] = time.perf_counter() - clock
        n_kept = int(sel.kept.sum())
        clock = time.perf_counter()
        names = [g.quantity for g in constraint_goals]
        quantities = Quantities(surrogate, box, names)
        # With an objective, localization evaluates it along, so the slide starts from its values.
        both = Quantities(surrogate, box, [*names, objective.quantity]) if objective is not None else quantities
        lows, span = quantities.lows, quantities.span
        u = ((torch.as_tensor(x[sel.kept], dtype=torch.float32, device=surrogate.device_) - lows) / span).clamp(0, 1)
        u, converged, values, jac = localize_goals(u, constraint_goals, both, atol)
        seconds["localize"] = time.perf_counter() - clock
        if objective is not None and len(u):
            clock = time.perf_counter()
            before_slide = values[converged][:, -1].cpu().numpy()
            u[converged] = slide(u[converged], constraint_goals, objective, both, atol, travel,
                                 at_start=(values[converged], jac[converged]))
            seconds["slide"] = time.perf_counter() - clock
        x = np.clip((lows + u * span).double().detach().cpu().numpy(), box.lows, box.highs)
        converged = converged.cpu().numpy()
    predicted, exact = _quantity_columns(models, x, goals)
    keep = np.ones(len(x), dtype=bool)
    if method != kind:  # the pipeline's candidates meet every goal, confidently predicted
        keep &= converged & box.contains(x)
        for j, p in enumerate(surrogate.properties_):
            if j == 0 or p.name in goals.quantities:
                keep &= predicted[p.name][1] <= (cap if j == 0 else surrogate.std_thresholds_[j])
        for g in constraint_goals:
            got = predicted[g.quantity][0] if g.quantity in predicted else exact[g.quantity]
            met = goal_met(g, got, tolerance)
            reached[str(g)] = float(met.mean()) if len(met) else None
            keep &= met
    frame = pd.DataFrame(x[keep], columns=space.names)
    for name, (mean, std) in predicted.items():
        frame[f"{name}_pred"], frame[f"{name}_std"] = mean[keep], std[keep]
    for name, values in exact.items():
        frame[name] = values[keep]
    frame["target"] = float(target)
    if objective is not None:
        column = f"{objective.quantity}_pred" if objective.quantity in predicted else objective.quantity
        frame = frame.sort_values(column, ascending=objective.kind == "minimize", kind="stable").reset_index(drop=True)
    seconds["total"] = sum(seconds.values())
    per_goal = []
    for g in goals.items:
        values = frame[f"{g.quantity}_pred" if g.quantity in predicted else g.quantity].to_numpy()
        entry = {"goal": str(g), "kind": g.kind, "quantity": g.quantity, "value": g.value,
                 "reached_fraction": reached.get(str(g)), "spread": _spread(values)}
        if g.kind == "target":
            entry["mae_surrogate"] = float(np.abs(values - g.value).mean()) if len(values) else None
        if g is objective and before_slide is not None:
            entry["median_before_slide"] = float(np.median(before_slide)) if len(before_slide) else None
        per_goal.append(entry)
    err = np.abs(frame[f"{primary.name}_pred"].to_numpy() - target)
    summary = {
        "method": method, "target": float(target), "property": primary.name, "unit": primary.unit,
        "goals": per_goal, "condition": {p.name: float(v) for p, v in zip(models.generator.conditions_, condition)},
        "travel": float(travel), "tolerance": float(tolerance), "atol": float(atol),
        "max_std": cap,
        "constraints": {k: list(v) for k, v in (constraints or {}).items()}, "seed": int(seed), "latent": latent,
        "models": str(models.directory), "n_requested": int(n), "n_generated": int(n), "n_in_bounds": n_in_bounds,
        "n_kept": n_kept, "n_candidates": int(len(frame)),
        "mae_surrogate": float(err.mean()) if len(err) else None,
        "max_error_surrogate": float(err.max()) if len(err) else None,
        "mean_std": float(frame[f"{primary.name}_std"].mean()) if len(frame) else None,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
    }
    return DesignResult(frame, summary)
