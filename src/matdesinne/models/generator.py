"""What every sampler of p(x | y) shares: coordinates, conditioning, seeded training and sampling.

A family (cINN, INN, MDN, cVAE) supplies its network (``_build_module``), its training
loss (``_loss``) and how it draws standardised samples (``_draw``); this base does the rest.
"""

from __future__ import annotations

import abc

import numpy as np
import torch

from matdesinne.data.datasets import check_seed
from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.models.base import Estimator, resolve_device
from matdesinne.models.fitting import fit_module, seeded
from matdesinne.models.latent import LATENTS, LatentSource

#: The box is shrunk by this fraction of each range on both sides before the logit, so
#: rows that sit exactly on a bound map to finite coordinates.
BOX_MARGIN = 1e-3

#: Seed of the fixed random draws that make a validation score comparable between epochs.
VALIDATION_SEED = 12345


class Generator(Estimator):
    """Base of conditional samplers. Subclasses keep these settings among their own:

    bounded : model each parameter as the logit of its position inside the design-space
        box rather than its raw value, so samples land inside the bounds (to within
        ``BOX_MARGIN`` of the range) instead of being wasted outside.
    y_noise : std of Gaussian noise on the standardised condition in training. It smooths
        a point mass of the property (64 % of MoS2 gaps are exactly 0), so conditioning at
        0 and just above 0 are both well defined.
    epochs, batch_size, lr, weight_decay, patience, seed, device : training, see
        :class:`~matdesinne.models.base.Estimator`; the validation score is the family's
        own loss on the validation rows (with fixed noise draws).
    """

    bounded: bool
    y_noise: float
    _may_be_zero = Estimator._may_be_zero | {"y_noise"}

    # --- coordinates --------------------------------------------------------------------
    def _coords(self, x: np.ndarray) -> np.ndarray:
        """Physical design parameters (n, dim) -> the unstandardised coordinates modelled."""
        x = np.asarray(x, dtype=np.float64)
        if not self.bounded:
            return x
        lows, highs = self.space_.lows, self.space_.highs
        u = BOX_MARGIN + (1 - 2 * BOX_MARGIN) * np.clip((x - lows) / (highs - lows), 0.0, 1.0)
        return np.log(u) - np.log1p(-u)

    def _standardized(self, x: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
        xs = (self._coords(x) - self.x_scaler_.mean) / self.x_scaler_.std
        return torch.as_tensor(xs, dtype=torch.float32, device=device or self.device_)

    def _condition(self, y, device: torch.device | None = None) -> torch.Tensor:
        """Property values (n,) or a scalar -> standardised condition, shape (n, 1)."""
        ys = (np.asarray(y, dtype=np.float64).reshape(-1, 1) - self.y_scaler_.mean) / self.y_scaler_.std
        return torch.as_tensor(ys, dtype=torch.float32, device=device or self.device_)

    def _physical(self, xs: torch.Tensor) -> np.ndarray:
        """Standardised coordinates (n, dim) -> physical design parameters."""
        x_mean, x_std = self.x_scaler_.tensors(xs.device)
        t = (xs * x_std + x_mean).double()
        if not self.bounded:
            return t.cpu().numpy()
        u = (torch.sigmoid(t).cpu().numpy() - BOX_MARGIN) / (1 - 2 * BOX_MARGIN)
        return self.space_.lows + u * (self.space_.highs - self.space_.lows)

    # --- what a family supplies ---------------------------------------------------------
    @abc.abstractmethod
    def _loss(self, xs: torch.Tensor, cond: torch.Tensor, gen: torch.Generator, progress: float) -> torch.Tensor:
        """Training loss on a batch of standardised x (b, dim) and noisy condition (b, 1).

        ``gen`` drives any randomness; ``progress`` runs from 0 to 1 over training (for
        loss-weight ramps) and is 1 for validation.
        """

    @abc.abstractmethod
    def _draw(self, cond: torch.Tensor, source: LatentSource) -> torch.Tensor:
        """Standardised samples (n, dim) for conditions ``cond`` (n, 1), with every random
        number from ``source`` (CPU tensors: move them to the device)."""

    # --- training and sampling ----------------------------------------------------------
    def fit(self, x: np.ndarray, y: np.ndarray, space: DesignSpace, x_val: np.ndarray, y_val: np.ndarray):
        """Train on (x, y); (x_val, y_val) picks the best epoch. Returns self."""
        self._prepare(x, y, space)
        device = resolve_device(self.device)
        xs, ys = self._standardized(x, device), self._condition(y, device)
        xv, yv = self._standardized(x_val, device), self._condition(y_val, device)
        gen = torch.Generator(device=device).manual_seed(self.seed + 1)
        val_gen = torch.Generator(device=device)
        yv = yv + self.y_noise * torch.randn(yv.shape, generator=val_gen.manual_seed(VALIDATION_SEED), device=device)
        with seeded(self.seed):
            self.module_ = self._build_module().to(device)
        steps_per_epoch = max(1, len(xs) // self.batch_size)
        total_steps, step = self.epochs * steps_per_epoch, [0]

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            idx = idx[0]
            cond = ys[idx] + self.y_noise * torch.randn(len(idx), 1, generator=gen, device=device)
            step[0] += 1
            return self._loss(xs[idx], cond, gen, min(1.0, step[0] / total_steps))

        def val_score() -> float:
            return float(self._loss(xv, yv, val_gen.manual_seed(VALIDATION_SEED), 1.0))

        self.training_ = fit_module(
            self.module_, batch_loss, val_score, len(xs), epochs=self.epochs, batch_size=self.batch_size,
            lr=self.lr, weight_decay=self.weight_decay, patience=self.patience, seed=self.seed,
            device=device, desc=self.kind,
        )
        self.training_["validation"] = {"loss": self.training_["best_val_score"]}
        return self

    def sample(self, target: float, n: int, seed: int = 0, latent: str = "normal") -> np.ndarray:
        """Draw ``n`` samples of x given ``y = target``: array (n, dim), physical units.
        ``seed`` (0 to 2**32 - 1) fixes the samples, on any device; ``latent`` is
        ``"normal"`` (i.i.d.) or ``"sobol"`` (quasi-random, see :mod:`~matdesinne.models.latent`)."""
        self._check_fitted()
        if n <= 0:
            raise UserInputError(f"the number of samples must be positive, got {n}")
        seed = check_seed(seed)
        if latent not in LATENTS:
            raise UserInputError(f"latent={latent!r} is not one of {', '.join(LATENTS)}")
        cond = self._condition(np.full(n, float(target)))
        with torch.inference_mode():
            xs = self._draw(cond, LatentSource(latent, seed))
        return self._physical(xs)
