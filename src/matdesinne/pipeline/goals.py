"""Several goals at once: targets, bounds and one objective over predicted properties and
functions of the design itself.

A goal names a *quantity*: a property the surrogate predicts (``band_gap``,
``strain_energy``) or a design function computed exactly from x (``strain``, see
:data:`DESIGN_FUNCTIONS`). Kinds:

- ``target``  ``P=V``: within the tolerance of V (an equality for the localizer);
- ``min`` / ``max`` ``P=V``: P >= V / P <= V (inequalities, active only when violated);
- ``minimize`` / ``maximize`` ``P``: the objective that candidates slide along afterwards.

:func:`localize_goals` moves every sample onto all equalities and active inequalities at
once with the minimum-norm Gauss-Newton step ``du = -J^T (J J^T)^-1 r``; :func:`slide`
then lowers the objective with steps projected onto the null space of the active
constraints' Jacobian, restoring feasibility after each step, within ``travel`` (a
distance in the unit box of the design space) of where localization left the sample.

Example::

    goals = Goals.parse(["band_gap=1.0"], minimize="strain_energy")
    result = design(models, goals)          # matdesinne.pipeline.design
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.materials import LATTICE
from matdesinne.models.surrogate import EnsembleSurrogate

KINDS = ("target", "min", "max", "minimize", "maximize")


def mean_lattice_strain(x: torch.Tensor, space: DesignSpace) -> torch.Tensor:
    """Mean absolute lattice strain in %: ``100 * mean_i |x_i - e_i| / |e_i|`` over the
    space's lattice parameters ``i`` (a, b, c, alpha, beta, gamma) that have an equilibrium
    ``e_i``. ``x`` (..., dim) in physical units -> (...,); differentiable."""
    index = [i for i, p in enumerate(space.parameters) if p.name in LATTICE and p.equilibrium]
    if not index:
        raise UserInputError(f"design function 'strain' needs lattice parameters with an equilibrium; "
                             f"space {space.name!r} has none")
    eq = torch.as_tensor([space.parameters[i].equilibrium for i in index], dtype=x.dtype, device=x.device)
    return 100 * ((x[..., index] - eq).abs() / eq.abs()).mean(-1)


#: Quantities computed exactly from the design, with their units.
DESIGN_FUNCTIONS: dict[str, tuple[Callable[[torch.Tensor, DesignSpace], torch.Tensor], str]] = {
    "strain": (mean_lattice_strain, "%"),
}


@dataclass(frozen=True)
class Goal:
    """One goal: ``kind`` (one of :data:`KINDS`), the ``quantity`` it is about, and its
    ``value`` (None for an objective)."""

    kind: str
    quantity: str
    value: float | None = None

    def __str__(self) -> str:
        if self.kind in ("minimize", "maximize"):
            return f"{self.kind} {self.quantity}"
        return f"{self.quantity} {dict(target='=', min='>=', max='<=')[self.kind]} {self.value:g}"


def _pair(text: str, flag: str, default: str | None) -> tuple[str, float]:
    """``"P=V"`` (or a bare ``V`` when ``default`` names P) -> (P, V), refused in one line."""
    name, sep, value = str(text).partition("=")
    if not sep:
        name, value = default, text
    name = (name or "").strip()
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not name or not math.isfinite(number):
        raise UserInputError(f"{flag} {text!r}: write PROPERTY=VALUE with a finite value, e.g. {flag} band_gap=1.0")
    return name, number


@dataclass(frozen=True)
class Goals:
    """A set of goals; build it with :meth:`parse` and check it against models with
    :meth:`check`."""

    items: tuple[Goal, ...]

    @classmethod
    def parse(cls, targets: Sequence[str] = (), minimum: Sequence[str] = (), maximum: Sequence[str] = (),
              minimize: str | None = None, maximize: str | None = None, default: str | None = None) -> "Goals":
        """Goals from command-line text: ``targets=["band_gap=1.0"]``, ``minimum=["band_gap=0.2"]``,
        ``maximize="band_gap"``... A bare target value is about ``default`` (the space's
        property). Refused in one line: bad syntax, a quantity targeted twice, a target
        outside its own bounds, a lower bound above an upper one, two objectives, and an
        objective that is also targeted."""
        items = [Goal("target", *_pair(t, "--target", default)) for t in targets]
        items += [Goal("min", *_pair(t, "--min", None)) for t in minimum]
        items += [Goal("max", *_pair(t, "--max", None)) for t in maximum]
        objectives = [Goal(k, q.strip()) for k, q in (("minimize", minimize), ("maximize", maximize)) if q is not None]
        if len(objectives) > 1:
            raise UserInputError("give one objective: --minimize or --maximize, not both")
        if any(not g.quantity for g in objectives):
            raise UserInputError("--minimize/--maximize needs a property or design-function name")
        goals = cls(tuple(items + objectives))
        goals._check_consistent()
        return goals

    def to_records(self) -> list[list]:
        """JSON-able: ``[[kind, quantity, value], ...]`` (value None for an objective)."""
        return [[g.kind, g.quantity, g.value] for g in self.items]

    @classmethod
    def from_records(cls, records) -> "Goals":
        """The goals of :meth:`to_records`, checked as :meth:`parse` checks; a damaged record is
        refused in one line."""
        try:
            items = tuple(Goal(str(k), str(q), None if v is None else float(v)) for k, q, v in records)
        except (TypeError, ValueError):
            raise UserInputError(f"goals must be [kind, quantity, value] records, got {records!r}") from None
        if any(g.kind not in KINDS or (g.value is None) != (g.kind in ("minimize", "maximize")) for g in items):
            raise UserInputError(f"goals must be [kind, quantity, value] records with kinds {', '.join(KINDS)}, "
                                 f"got {records!r}")
        goals = cls(items)
        goals._check_consistent()
        return goals

    def plus(self, *goals: Goal) -> "Goals":
        """These goals with ``goals`` added in front, checked as :meth:`parse` checks."""
        combined = Goals((*goals, *self.items))
        combined._check_consistent()
        return combined

    def _check_consistent(self) -> None:
        seen: dict[tuple[str, str], float] = {}
        for g in self.items:
            if g.kind in ("target", "min", "max") and (g.kind, g.quantity) in seen:
                raise UserInputError(f"{g.quantity} has two {g.kind} goals; give one")
            seen[(g.kind, g.quantity)] = g.value
        for (kind, q), v in seen.items():
            lo, hi = seen.get(("min", q), -math.inf), seen.get(("max", q), math.inf)
            if lo > hi:
                raise UserInputError(f"contradictory bounds: {q} >= {lo:g} and {q} <= {hi:g}")
            if kind == "target" and not lo <= v <= hi:
                raise UserInputError(f"contradictory goals: {q} = {v:g} lies outside its bounds {lo:g} to {hi:g}")
        if self.objective is not None and ("target", self.objective.quantity) in seen:
            raise UserInputError(f"{self.objective.quantity} is both a target and the objective; drop one")

    @property
    def targets(self) -> list[Goal]:
        return [g for g in self.items if g.kind == "target"]

    @property
    def constraints(self) -> list[Goal]:
        """Targets and bounds, in order."""
        return [g for g in self.items if g.kind in ("target", "min", "max")]

    @property
    def objective(self) -> Goal | None:
        return next((g for g in self.items if g.kind in ("minimize", "maximize")), None)

    @property
    def quantities(self) -> list[str]:
        return list(dict.fromkeys(g.quantity for g in self.items))

    def target_of(self, quantity: str) -> float | None:
        return next((g.value for g in self.targets if g.quantity == quantity), None)

    def check(self, surrogate: EnsembleSurrogate) -> None:
        """Refuse, in one line, a quantity that is neither a predicted property nor a design
        function, and goals without a target on the property the generator samples for."""
        properties = [p.name for p in surrogate.properties_]
        for q in self.quantities:
            if q not in properties and q not in DESIGN_FUNCTIONS:
                raise UserInputError(f"unknown property {q!r}: the models predict {', '.join(properties)}; "
                                     f"design functions: {', '.join(DESIGN_FUNCTIONS)}")
            if q in DESIGN_FUNCTIONS:
                mean_lattice_strain(torch.zeros(1, surrogate.space_.dim), surrogate.space_)  # refuses a space without
        if self.target_of(properties[0]) is None:
            raise UserInputError(f"give a target for {properties[0]} (e.g. --target {properties[0]}=1.0): "
                                 "the generator samples designs for it")


class Quantities:
    """Values and gradients of goal quantities in the unit box of ``space``.

    ``u`` (n, dim) is the design rescaled so each parameter's full range is 1;
    :meth:`__call__` returns values (n, m) and their gradients in ``u`` (n, m, dim) for
    ``names`` (m quantities). A floored property's mean is flat where every member sits
    below the floor; its gradient is then the members' raw slope, as in
    :func:`~matdesinne.pipeline.design.localize`.
    """

    def __init__(self, surrogate: EnsembleSurrogate, space: DesignSpace, names: Sequence[str]):
        self.surrogate, self.space, self.names = surrogate, space, list(names)
        device = surrogate.device_
        self.lows = torch.as_tensor(space.lows, dtype=torch.float32, device=device)
        self.span = torch.as_tensor(space.highs - space.lows, dtype=torch.float32, device=device)
        self.index = {p.name: j for j, p in enumerate(surrogate.properties_)}

    def __call__(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, grads = [], []
        wanted = list(dict.fromkeys(self.index[q] for q in self.names if q in self.index))
        raw = member_grads = None
        if wanted:
            # One leaf per member, so one backward pass gives every member's gradient.
            ua = u.detach().unsqueeze(0).repeat(self.surrogate.members, 1, 1).requires_grad_(True)
            raw = self.surrogate.raw_all(self.lows + ua * self.span)
            member_grads = dict(zip(wanted, _output_gradients(raw, ua, wanted)))
        for q in self.names:
            if q in self.index:
                j = self.index[q]
                grad_raw = member_grads[j]
                members = raw[..., j].detach()
                clipped = self.surrogate.clip(members, j)
                live = (clipped == members).float().unsqueeze(-1)
                g = (grad_raw * live).mean(0)
                flat = g.norm(dim=1) < 1e-8
                g[flat] = grad_raw.mean(0)[flat]
                values.append(clipped.mean(0))
                grads.append(g)
            else:
                leaf = u.detach().clone().requires_grad_(True)
                value = DESIGN_FUNCTIONS[q][0](self.lows + leaf * self.span, self.space)
                (g,) = torch.autograd.grad(value.sum(), leaf)
                values.append(value.detach())
                grads.append(g)
        return torch.stack(values, 1), torch.stack(grads, 1)

    def values(self, u: torch.Tensor) -> torch.Tensor:
        """The values alone (n, m), as :meth:`__call__` gives them, for a fraction of its cost."""
        with torch.no_grad():
            x = self.lows + u * self.span
            raw = self.surrogate.raw_all(x) if any(q in self.index for q in self.names) else None
            return torch.stack([self.surrogate.clip(raw[..., self.index[q]], self.index[q]).mean(0) if q in self.index
                                else DESIGN_FUNCTIONS[q][0](x, self.space) for q in self.names], 1)


def _output_gradients(raw: torch.Tensor, leaf: torch.Tensor, columns: Sequence[int]) -> torch.Tensor:
    """The gradients of ``raw[..., j].sum()`` in ``leaf`` for each output column ``j``:
    (len(columns), *leaf.shape). Several columns share one batched backward pass: the same
    arithmetic as a pass per column, with less Python overhead (torch loops over the columns
    inside it for the ops that have no batching rule)."""
    if len(columns) == 1:
        (g,) = torch.autograd.grad(raw[..., columns[0]].sum(), leaf)
        return g.unsqueeze(0)
    seeds = torch.zeros(len(columns), *raw.shape, dtype=raw.dtype, device=raw.device)
    for k, j in enumerate(columns):
        seeds[k, ..., j] = 1.0
    (g,) = torch.autograd.grad(raw, leaf, grad_outputs=seeds, is_grads_batched=True)
    return g


def design_function_values(x: np.ndarray, space: DesignSpace, name: str) -> np.ndarray:
    """A design function (:data:`DESIGN_FUNCTIONS`) of designs ``x`` (n, dim), shape (n,)."""
    return DESIGN_FUNCTIONS[name][0](torch.tensor(np.asarray(x, dtype=np.float64)), space).numpy()


def _residuals(goals: Sequence[Goal], values: torch.Tensor, atol: float,
               hold: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals r (n, m) of the constraint goals and which rows are active (n, m): a target
    always, a bound when violated or within ``hold`` of it (its residual then aims ``atol``
    inside it)."""
    r = torch.zeros_like(values)
    active = torch.zeros_like(values, dtype=torch.bool)
    for i, g in enumerate(goals):
        v = values[:, i]
        if g.kind == "target":
            r[:, i], active[:, i] = v - g.value, True
        elif g.kind == "min":
            active[:, i] = v < g.value + hold
            r[:, i] = torch.where(active[:, i], v - (g.value + atol), torch.zeros_like(v))
        else:
            active[:, i] = v > g.value - hold
            r[:, i] = torch.where(active[:, i], v - (g.value - atol), torch.zeros_like(v))
    return r, active


def goal_met(goal: Goal, values, tolerance: float):
    """Which ``values`` (a NumPy array or a tensor) meet a constraint ``goal``: a target
    within ``tolerance``, a bound exactly."""
    if goal.kind == "target":
        return abs(values - goal.value) <= tolerance
    return values >= goal.value if goal.kind == "min" else values <= goal.value


def _satisfied(goals: Sequence[Goal], values: torch.Tensor, atol: float) -> torch.Tensor:
    ok = torch.ones(len(values), dtype=torch.bool, device=values.device)
    for i, g in enumerate(goals):
        ok &= goal_met(g, values[:, i], atol)
    return ok


def _min_norm_step(jac: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``-J^T (J J^T)^-1 r`` per sample: J (n, m, dim), r (n, m) -> (n, dim). Rows of
    inactive goals are zero in both; a small ridge keeps the solve defined."""
    gram = jac @ jac.transpose(1, 2)
    ridge = 1e-6 * gram.diagonal(dim1=1, dim2=2).mean(1, keepdim=True).clamp(min=1e-12)
    gram = gram + torch.diag_embed(ridge.expand(-1, gram.shape[1]))
    a = torch.linalg.solve(gram, r.unsqueeze(-1))
    return -(jac.transpose(1, 2) @ a).squeeze(-1)


def _project_out(jac: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``g`` (n, dim) minus its part in the row space of J (n, m, dim): the component that
    leaves every active constraint unchanged to first order."""
    return g + _min_norm_step(jac, (jac @ g.unsqueeze(-1)).squeeze(-1))


def _gauss_newton_step(u: torch.Tensor, goals: Sequence[Goal], values: torch.Tensor, jac: torch.Tensor, atol: float,
                       max_step_size: float, hold: float = 0.0) -> torch.Tensor:
    """One damped minimum-norm step of ``u`` (n, dim) toward every constraint goal, from
    their ``values`` (n, m) and slopes ``jac`` (n, m, dim) at ``u``; capped at
    ``max_step_size`` and kept in the unit box. Bounds within ``hold`` of their edge are
    held (see :func:`_residuals`)."""
    r, rows = _residuals(goals, values, atol, hold)
    jac = jac * rows.unsqueeze(-1)
    step = _min_norm_step(jac, r)
    # Drop the directions that push through an active bound of the box, then re-solve.
    pinned = ((u <= 0) & (step < 0)) | ((u >= 1) & (step > 0))
    step = _min_norm_step(jac * (~pinned).unsqueeze(1), r)
    norm = step.norm(dim=1, keepdim=True)
    step = step * torch.clamp(max_step_size / (norm + 1e-12), max=1.0)
    return (u + step).clamp(0, 1)


def _gauss_newton(u: torch.Tensor, goals: Sequence[Goal], quantities: Quantities, atol: float,
                  steps: int, max_step_size: float):
    """Move each row of ``u`` (n, dim) onto every constraint goal (the first ``len(goals)``
    of ``quantities``' names). Returns (u, satisfied (n,), values (n, m), jac (n, m, dim)),
    the last two for every quantity at the returned ``u``."""
    u = u.clone()
    done = torch.zeros(len(u), dtype=torch.bool, device=u.device)
    last_values = last_jac = None
    active = torch.arange(len(u), device=u.device)
    m = len(goals)
    for step in range(steps + 1):
        if len(active) == 0:
            break
        values, jac = _first_evaluation(u, goals, quantities, atol) if step == 0 < steps else quantities(u[active])
        if last_values is None:
            last_values, last_jac = values.clone(), jac.clone()
        else:
            last_values[active], last_jac[active] = values, jac
        ok = _satisfied(goals, values[:, :m], atol)
        done[active[ok]] = True
        active, values, jac = active[~ok], values[~ok, :m], jac[~ok, :m]
        if len(active) == 0:
            break
        if step == steps:
            break
        u[active] = _gauss_newton_step(u[active], goals, values, jac, atol, max_step_size)
    if last_values is None:  # no rows
        last_values, last_jac = quantities(u)
    return u, done, last_values, last_jac


def _first_evaluation(u: torch.Tensor, goals: Sequence[Goal], quantities: Quantities, atol: float):
    """``quantities(u)`` where it will be used: few samples start on every goal, and the
    others' further quantities (an objective's slopes) would be recomputed after their next
    step, so those get the goals' quantities alone (the rest of their row stays zero)."""
    m = len(goals)
    if m == 0 or len(quantities.names) == m:
        return quantities(u)
    head_values, head_jac = Quantities(quantities.surrogate, quantities.space, quantities.names[:m])(u)
    values = torch.zeros(len(u), len(quantities.names), dtype=head_values.dtype, device=u.device)
    jac = torch.zeros(len(u), len(quantities.names), u.shape[1], dtype=head_jac.dtype, device=u.device)
    values[:, :m], jac[:, :m] = head_values, head_jac
    on = _satisfied(goals, head_values, atol)
    if on.any():
        values[on], jac[on] = quantities(u[on])
    return values, jac


def localize_goals(u: torch.Tensor, goals: Sequence[Goal], quantities: Quantities, atol: float,
                   max_steps: int = 30, max_step_size: float = 0.05):
    """Gauss-Newton onto every target and violated bound at once (see the module's notes).

    ``u`` (n, dim) in the unit box; ``quantities`` computes the goals' quantities first (any
    after them, such as an objective, are evaluated along). Returns ``(u_new (n, dim),
    converged (n,), values (n, m), jac (n, m, dim))``, the last two at ``u_new``.
    """
    return _gauss_newton(u, goals, quantities, atol, max_steps, max_step_size)


def slide(u: torch.Tensor, goals: Sequence[Goal], objective: Goal, quantities: Quantities, atol: float,
          travel: float, steps: int = 8, slack: float = 5.0, at_start: tuple | None = None) -> torch.Tensor:
    """Lower (``minimize``) or raise (``maximize``) the objective from feasible points ``u``
    (n, dim) while keeping every constraint goal. ``quantities`` computes the constraint
    goals' quantities and then the objective's, last.

    Each step combines a move of length ``h`` along the objective's gradient projected onto
    the null space of the constraints active there with the Gauss-Newton correction of
    their residuals, so one evaluation per step suffices. A step is kept only if the sample
    stays within ``slack * atol`` of every constraint, improves, and stays within
    ``travel`` of its start (distance in the unit box); otherwise its ``h`` halves. A sample
    stops when it reaches the edge of that ball, or when ``h`` falls below ``travel / 50``. A final
    Gauss-Newton step on the constraints alone, from the last values and slopes, brings the
    samples that ended outside ``atol`` back onto their targets; with bounds, it is kept only
    where it broke none.
    ``at_start`` may hand in ``quantities(u)`` already computed (values, jac). Returns the new ``u``.
    """
    sign = 1.0 if objective.kind == "minimize" else -1.0
    m = len(goals)
    start = u.clone()
    u = u.clone()
    values, jac = quantities(u) if at_start is None else (at_start[0].clone(), at_start[1].clone())
    h = torch.full((len(u),), travel / 2, device=u.device)
    live = torch.arange(len(u), device=u.device)
    edge = 0.99 * travel  # a sample this far from its start has reached the edge of its ball
    for step in range(steps):
        if len(live) == 0:
            break
        ul, vl, jl = u[live], values[live], jac[live]
        phi, grad = sign * vl[:, m], sign * jl[:, m]
        direction, correction = -grad, torch.zeros_like(grad)
        if goals:
            r, rows = _residuals(goals, vl[:, :m], atol)
            # Targets always bind; a bound binds when the sample sits on it (or beyond).
            near = rows | torch.stack([(vl[:, i] - g.value).abs() <= 2 * atol if g.kind != "target"
                                       else torch.ones_like(rows[:, i]) for i, g in enumerate(goals)], 1)
            binding = jl[:, :m] * near.unsqueeze(-1)
            direction = -_project_out(binding, grad)
            correction = _min_norm_step(jl[:, :m] * rows.unsqueeze(-1), r)
        pinned = ((ul <= 0) & (direction < 0)) | ((ul >= 1) & (direction > 0))
        direction = direction * ~pinned
        norm = direction.norm(dim=1, keepdim=True)
        moving = norm[:, 0] > 1e-9
        trial = (ul + direction / (norm + 1e-12) * h[live].unsqueeze(1) + correction).clamp(0, 1)
        offset = trial - start[live]
        far = offset.norm(dim=1, keepdim=True)
        trial = (start[live] + offset * torch.clamp(travel / (far + 1e-12), max=1.0)).clamp(0, 1)
        # Values and gradients at once: most trial steps are kept (about four in five), so a
        # separate gradient pass at the kept points would cost more than the rejected ones waste.
        # A trial that ends the sample's slide if kept (on the edge of its ball, or the last
        # step) needs its values only: the final correction below may use the slopes one step old.
        new_values, new_jac = values[live].clone(), jac[live].clone()
        last = moving & (((trial - start[live]).norm(dim=1) >= edge) | (step == steps - 1))
        going = moving & ~last
        if going.any():
            new_values[going], new_jac[going] = quantities(trial[going])
        if last.any():
            new_values[last] = quantities.values(trial[last])
        ok = _satisfied(goals, new_values[:, :m], slack * atol) if goals else torch.ones_like(moving)
        accept = ok & moving & (sign * new_values[:, m] < phi)
        took = live[accept]
        u[took], values[took], jac[took] = trial[accept], new_values[accept], new_jac[accept]
        h[live[~accept]] /= 2
        # A sample that reached the edge of its travel ball is done: it could only creep along it.
        at_edge = (u[live] - start[live]).norm(dim=1) >= edge
        live = live[(h[live] >= travel / 50) & moving & ~at_edge]
    if goals:
        # Kept steps end within slack * atol of every constraint, where the linearization is
        # accurate: one Gauss-Newton step from the values and slopes at hand (no new slopes)
        # brings them back within atol of their targets, to second order. A step toward a
        # target may still cross a bound the objective pressed the sample against, so with
        # bounds it holds them, is checked (values alone) and is kept only where it broke
        # nothing; elsewhere the sample stays where the slide left it.
        off = torch.nonzero(~_satisfied(goals, values[:, :m], atol)).squeeze(1)
        if len(off):
            moved = _gauss_newton_step(u[off], goals, values[off, :m], jac[off, :m], atol, travel, hold=2 * atol)
            if all(g.kind == "target" for g in goals):
                u[off] = moved
            else:
                good = _satisfied(goals, quantities.values(moved)[:, :m], atol)
                u[off[good]] = moved[good]
    return u
