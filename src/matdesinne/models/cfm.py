"""Conditional flow matching (CFM; Lipman et al. 2023, Tong et al. 2024).

A velocity field ``v(x_t, y, t)`` is learnt by regression on straight paths from a
Gaussian sample ``x_0`` to a data point ``x_1``: ``x_t = (1 - t) x_0 + t x_1 + sigma eps``
with target velocity ``x_1 - x_0`` (the independent-coupling conditional flow matching
loss). Sampling integrates ``dx/dt = v(x, y*, t)`` from ``x_0 ~ N(0, I)`` at ``t = 0`` to
``t = 1`` with a fixed-step solver (torchdiffeq), ``steps`` steps.

Example::

    cfm = CFM(steps=20).fit(x, y, space, x_val, y_val)
    samples = cfm.sample(1.0, 10_000, seed=0)        # (10000, dim), physical units

References: Lipman, Chen, Ben-Hamu, Nickel, Le, "Flow matching for generative modeling"
(ICLR 2023); Tong et al., "Improving and generalizing flow-based generative models with
minibatch optimal transport" (TMLR 2024).
"""

from __future__ import annotations

import torch
from torch import nn
from torchdiffeq import odeint

from matdesinne.errors import UserInputError
from matdesinne.models.fitting import SCHEDULES
from matdesinne.models.generator import Generator
from matdesinne.models.nn import mlp

#: Fixed-step solvers of torchdiffeq that CFM samples with.
SOLVERS = ("euler", "midpoint", "rk4")
#: The most ODE steps a CFM samples with (the ODE has converged long before).
MAX_STEPS = 10_000


class _Velocity(nn.Module):
    """``v(x, y, t)``: an MLP on ``[x (dim), y (conditions), t (1)]`` -> velocity (dim).
    With ``unconditional``, a further input says whether ``y`` is given (1) or dropped (0,
    ``y`` zeroed), so that one network learns both ``v(x, y, t)`` and ``v(x, t)``."""

    def __init__(self, dim: int, hidden: int, layers: int, conditions: int = 1, unconditional: bool = False):
        super().__init__()
        self.unconditional = unconditional
        self.net = mlp(dim + 1 + conditions + int(unconditional), dim, hidden, layers)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, t: torch.Tensor, given: torch.Tensor | None = None) -> torch.Tensor:
        """``given`` (n, 1): 1 where ``cond`` is given, 0 where dropped (default: all given)."""
        t = t.expand(len(x), 1)
        if not self.unconditional:
            return self.net(torch.cat([x, cond, t], 1))
        given = torch.ones_like(t) if given is None else given
        return self.net(torch.cat([x, cond * given, given, t], 1))


class CFM(Generator):
    """Conditional flow-matching sampler of p(x | y).

    Parameters
    ----------
    hidden, layers : the velocity MLP's width and depth.
    sigma : std of the Gaussian path around the straight line (0: straight paths).
    steps : ODE steps when sampling (a setting of sampling, not of training; change it
        after loading with ``cfm.steps = k``).
    solver : ``"euler"``, ``"midpoint"`` or ``"rk4"`` (evaluations per step: 1, 2, 4). The
        default, 20 Euler steps, had the least error at held-aside targets among the
        samplers of 20 evaluations (see the README's CFM section).
    cond_dropout : the fraction of training rows whose condition is dropped, so that the
        network also learns the unconditional velocity (classifier-free guidance; 0: none).
    guidance : the guidance weight ``w`` of sampling (a setting of sampling, like
        ``steps``): the velocity ``v(x, t) + w (v(x, y, t) - v(x, t))``. 1 samples p(x | y)
        as learnt; above 1 sharpens it toward designs typical of ``y``, trading diversity
        for accuracy. Other than 1 needs ``cond_dropout > 0``. Ho & Salimans,
        "Classifier-free diffusion guidance" (2022); for flow matching, Zheng et al.,
        "Guided flows for generative modeling and decision making" (2023).
    bounded : see :class:`~matdesinne.models.generator.Generator`. Off by default for CFM:
        straight paths from a Gaussian to logit coordinates learnt a much blurrier
        conditional (MoS2, held-aside targets: surrogate raw MAE 0.23-0.28 eV bounded,
        0.15-0.19 eV unbounded, 200 epochs each). About 3 % of raw samples then fall
        outside the box; the pipeline's down-selection drops them, raw samples keep them.
    lr_schedule : ``"plateau"`` (halve the learning rate when the validation loss stalls,
        with early stopping after ``patience`` epochs) or ``"cosine"`` (decay it to 0 over all
        ``epochs``, with no early stopping, keeping the last weights), see :func:`~matdesinne.models.fitting.fit_module`.
        Only CFM takes this setting. On a long fixed schedule the
        flow-matching loss is too noisy to show a plateau and the rate stays at ``lr``;
        ``train`` then uses ``"cosine"``, which sharpened the samples (MoS2, held-aside
        targets: see the README's CFM section).
    y_noise, and the training settings (epochs, batch_size, lr, weight_decay, patience,
        seed, device) : see :class:`~matdesinne.models.generator.Generator`.
    """

    kind = "cfm"
    SAMPLING_PARAMS = ("steps",)
    _may_be_zero = Generator._may_be_zero | {"sigma", "cond_dropout", "guidance"}
    _params_added_later = {"cond_dropout": 0.0, "guidance": 1.0, "lr_schedule": "plateau"}

    def __init__(
        self,
        hidden: int = 128,
        layers: int = 4,
        sigma: float = 0.0,
        steps: int = 20,
        solver: str = "euler",
        cond_dropout: float = 0.0,
        guidance: float = 1.0,
        bounded: bool = False,
        lr_schedule: str = "plateau",
        y_noise: float = 0.05,
        epochs: int = 400,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 40,
        seed: int = 0,
        device: str = "auto",
    ):
        self._set_params(locals())

    def _check_params(self) -> None:
        super()._check_params()
        if not 1 <= self.steps <= MAX_STEPS:
            raise UserInputError(f"CFM: steps must be from 1 to {MAX_STEPS}, got {self.steps!r}")
        if self.solver not in SOLVERS:
            raise UserInputError(f"CFM: solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if not 0 <= self.cond_dropout < 1:
            raise UserInputError(f"CFM: cond_dropout must be in [0, 1), got {self.cond_dropout!r}")
        if self.lr_schedule not in SCHEDULES:
            raise UserInputError(f"CFM: lr_schedule must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}")
        if self.guidance != 1 and self.cond_dropout == 0:
            raise UserInputError("CFM: guidance other than 1 needs a model trained with cond_dropout > 0")

    def _build_module(self) -> nn.Module:
        return _Velocity(self.space_.dim, self.hidden, self.layers, self.cond_dim, self.cond_dropout > 0)

    def _loss(self, xs, cond, gen, progress):
        n, d = xs.shape
        x0 = torch.randn(n, d, generator=gen, device=gen.device).to(xs.device)
        t = torch.rand(n, 1, generator=gen, device=gen.device).to(xs.device)
        xt = (1 - t) * x0 + t * xs
        if self.sigma > 0:
            xt = xt + self.sigma * torch.randn(n, d, generator=gen, device=gen.device).to(xs.device)
        given = None
        if self.cond_dropout > 0:
            given = (torch.rand(n, 1, generator=gen, device=gen.device) >= self.cond_dropout).float().to(xs.device)
        v = self.module_(xt, cond, t, given)
        return (v - (xs - x0)).pow(2).mean()

    def _draw(self, cond, source):
        self._check_params()
        x0 = source.normal(len(cond), self.space_.dim).to(cond.device)
        grid = torch.tensor([0.0, 1.0], device=cond.device)
        if self.guidance == 1:
            velocity = lambda t, x: self.module_(x, cond, t.reshape(1, 1))
        else:  # both velocities in one batch
            given = torch.cat([torch.ones(len(cond), 1), torch.zeros(len(cond), 1)]).to(cond.device)
            both = torch.cat([cond, cond])

            def velocity(t, x):
                v_cond, v_free = self.module_(torch.cat([x, x]), both, t.reshape(1, 1), given).chunk(2)
                return v_free + self.guidance * (v_cond - v_free)
        path = odeint(velocity, x0, grid, method=self.solver, options={"step_size": 1.0 / self.steps})
        return path[-1]
