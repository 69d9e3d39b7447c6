"""What every sampler of p(x | y) shares: coordinates, conditioning, seeded training and sampling.

A family (cINN, INN, MDN, cVAE) supplies its network (``_build_module``), its training
loss (``_loss``) and how it draws standardised samples (``_draw``); this base does the rest.
"""

from __future__ import annotations

import abc
from dataclasses import asdict
from typing import Sequence

import numpy as np
import torch

from matdesinne.data.datasets import check_seed
from matdesinne.data import schema
from matdesinne.data.design_space import DesignSpace, Property
from matdesinne.errors import UserInputError
from matdesinne.models.base import Estimator, Standardizer, resolve_device
from matdesinne.models.fitting import Progress, fit_module, seeded
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
    #: The learning-rate schedule of training (see :func:`~matdesinne.models.fitting.fit_module`);
    #: a family whose constructor takes ``lr_schedule`` sets it per model.
    lr_schedule: str = "plateau"
    #: Whether the family can condition on several properties at once.
    vector_conditions: bool = True
    _more_properties_key = "conditions"
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

    @property
    def cond_dim(self) -> int:
        """How many properties the generator conditions on (1, or 1 + len(``also_``))."""
        return len(self.y_scaler_.mean)

    @property
    def conditions_(self) -> tuple:
        """The properties conditioned on: the space's own, then ``also_``."""
        return (self.space_.property, *getattr(self, "also_", ()))

    def _condition(self, y, device: torch.device | None = None) -> torch.Tensor:
        """Property values (n,) or (n, k), or one row -> standardised condition, shape (n, k)."""
        ys = (np.asarray(y, dtype=np.float64).reshape(-1, self.cond_dim) - self.y_scaler_.mean) / self.y_scaler_.std
        return torch.as_tensor(ys, dtype=torch.float32, device=device or self.device_)

    # --- several conditions -------------------------------------------------------------
    #: Bins of the first property over which :meth:`condition_for` looks up the others.
    QUANTILE_BINS = 20

    def _fit_quantiles(self, y: np.ndarray) -> None:
        """For each equal-count bin of the first property: the 10th, 50th and 90th percentile
        of every further property among the training rows in it."""
        edges = np.unique(np.quantile(y[:, 0], np.linspace(0, 1, self.QUANTILE_BINS + 1)))
        which = np.clip(np.searchsorted(edges, y[:, 0], side="right") - 1, 0, max(len(edges) - 2, 0))
        table = []
        for b in range(max(len(edges) - 1, 1)):
            rows = y[which == b, 1:] if (which == b).any() else y[:, 1:]
            table.append(np.quantile(rows, [0.1, 0.5, 0.9], axis=0).T.tolist())  # (k - 1, 3)
        self.quantile_edges_, self.quantiles_ = edges, np.asarray(table)

    def condition_for(self, first: float, wants: dict | None = None) -> np.ndarray:
        """A full condition vector (k,) for the first property at ``first``: each further
        property at a given value, or ``"low"`` / ``"high"`` / ``"typical"`` (its 10th /
        90th percentile / median among the training rows whose first property is near
        ``first``; the default is typical)."""
        wants = wants or {}
        vector = [float(first)]
        if self.cond_dim == 1:
            return np.asarray(vector)
        b = int(np.clip(np.searchsorted(self.quantile_edges_, first, side="right") - 1, 0, len(self.quantiles_) - 1))
        for j, prop in enumerate(self.conditions_[1:]):
            want = wants.get(prop.name, "typical")
            column = {"low": 0, "typical": 1, "high": 2}
            vector.append(float(self.quantiles_[b, j, column[want]]) if isinstance(want, str) else float(want))
        return np.asarray(vector)

    def _extra_state(self) -> dict:
        if self.cond_dim == 1:
            return {}
        return {"conditions": [asdict(p) for p in self.conditions_[1:]],
                "quantile_edges": self.quantile_edges_.tolist(), "quantiles": self.quantiles_.tolist()}

    def _load_extra_state(self, state: dict) -> None:
        state = schema.fields(state, "extra", (), ("conditions", "quantile_edges", "quantiles"))
        self.also_ = tuple(Property.from_dict(p, f"extra.conditions[{i}]")
                           for i, p in enumerate(state.get("conditions", [])))
        if self.also_:
            edges = np.asarray(state["quantile_edges"], dtype=np.float64)
            table = np.asarray(state["quantiles"], dtype=np.float64)
            if edges.ndim != 1 or table.shape != (max(len(edges) - 1, 1), len(self.also_), 3) or not np.isfinite(table).all():
                raise ValueError("extra.quantiles do not match extra.quantile_edges and extra.conditions")
            self.quantile_edges_, self.quantiles_ = edges, table

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
    def fit(self, x: np.ndarray, y: np.ndarray, space: DesignSpace, x_val: np.ndarray, y_val: np.ndarray,
            also: Sequence[Property] = (), progress: Progress | None = None):
        """Train on (x, y); (x_val, y_val) picks the best epoch. Returns self.

        ``y`` is (n,), or (n, 1 + len(also)) to condition on further properties ``also``
        as well (e.g. the strain energy beside the band gap); ``sample`` then takes a
        vector of targets, see :meth:`condition_for`. With ``progress`` (see
        :class:`~matdesinne.models.fitting.Progress`) the fit saves its progress as it goes
        and resumes from a save of the same key."""
        also = tuple(also)
        y, y_val = np.asarray(y, dtype=np.float64), np.asarray(y_val, dtype=np.float64)
        y, y_val = y.reshape(len(y), -1), y_val.reshape(len(y_val), -1)
        if y.shape[1] != 1 + len(also) or y_val.shape[1] != 1 + len(also):
            raise UserInputError(f"expected {1 + len(also)} property column(s), got {y.shape[1]} and {y_val.shape[1]}")
        if also and not self.vector_conditions:
            raise UserInputError(f"{type(self).__name__} conditions on one property only")
        self._prepare(x, y[:, 0], space)
        self.also_ = also
        if also:
            self.y_scaler_ = Standardizer.fit(y)
            self._fit_quantiles(y)
        device = resolve_device(self.device)
        xs, ys = self._standardized(x, device), self._condition(y, device)
        xv, yv = self._standardized(x_val, device), self._condition(y_val, device)
        gen = torch.Generator(device=device).manual_seed(self.seed + 1)
        val_gen = torch.Generator(device=device)
        yv = yv + self.y_noise * torch.randn(yv.shape, generator=val_gen.manual_seed(VALIDATION_SEED), device=device)
        with seeded(self.seed):
            self.module_ = self._build_module().to(device)

        def batch_loss(idx: torch.Tensor, done: float) -> torch.Tensor:
            idx = idx[0]
            cond = ys[idx] + self.y_noise * torch.randn(len(idx), 1, generator=gen, device=device)
            return self._loss(xs[idx], cond, gen, done)

        def val_score() -> float:
            return float(self._loss(xv, yv, val_gen.manual_seed(VALIDATION_SEED), 1.0))

        self.training_ = fit_module(
            self.module_, batch_loss, val_score, len(xs), epochs=self.epochs, batch_size=self.batch_size,
            lr=self.lr, weight_decay=self.weight_decay, patience=self.patience, seed=self.seed,
            device=device, desc=self.kind, schedule=self.lr_schedule, rngs=(gen,), progress=progress,
        )
        self.training_["validation"] = {"loss": self.training_["val_score"]}
        return self

    def sample(self, target, n: int, seed: int = 0, latent: str = "normal") -> np.ndarray:
        """Draw ``n`` samples of x given ``y = target``: array (n, dim), physical units.
        ``target`` is the first property's value, or for a generator of several conditions
        a full vector (see :meth:`condition_for`, which a single value goes through).
        ``seed`` (0 to 2**32 - 1) fixes the samples, on any device; ``latent`` is
        ``"normal"`` (i.i.d.) or ``"sobol"`` (quasi-random, see :mod:`~matdesinne.models.latent`)."""
        self._check_fitted()
        if n <= 0:
            raise UserInputError(f"the number of samples must be positive, got {n}")
        seed = check_seed(seed)
        if latent not in LATENTS:
            raise UserInputError(f"latent={latent!r} is not one of {', '.join(LATENTS)}")
        vector = np.asarray(target, dtype=np.float64).reshape(-1)
        if len(vector) == 1:
            vector = self.condition_for(float(vector[0]))
        if len(vector) != self.cond_dim:
            raise UserInputError(f"expected {self.cond_dim} target value(s), got {len(vector)}")
        cond = self._condition(np.tile(vector, (n, 1)))
        with torch.inference_mode():
            xs = self._draw(cond, LatentSource(latent, seed))
        return self._physical(xs)
