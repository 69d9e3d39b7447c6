"""Conditional invertible neural network (cINN; Ardizzone et al. 2019) from FrEIA blocks.

Design parameters ``x`` map bijectively to a latent ``z`` of the same size, with the
property ``y`` fed to every affine coupling block as a condition. Training maximises the
likelihood of ``x`` given ``y``; sampling draws ``z ~ N(0, I)`` and inverts at ``y = y*``,
giving samples of the posterior p(x | y*).
"""

from __future__ import annotations

import FrEIA.framework as ff
import FrEIA.modules as fm
import numpy as np
import torch
from torch import nn

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.models.base import Estimator, Standardizer, fit_module, resolve_device, seeded


#: The box is shrunk by this fraction of each range on both sides before the logit, so
#: rows that sit exactly on a bound map to finite coordinates.
BOX_MARGIN = 1e-3


class CINN(Estimator):
    """Conditional INN sampler of p(x | y).

    Parameters
    ----------
    blocks : number of FrEIA ``AllInOneBlock`` affine couplings (each with a fixed
        random permutation, so every coordinate is transformed).
    hidden, layers : width and depth of each coupling's subnetwork.
    clamp : soft clamp of the log-scales, for stable inversion.
    bounded : model each parameter as the logit of its position inside the design-space
        box rather than its raw value, so that every sample lands inside the bounds
        (to within ``BOX_MARGIN`` of the range) instead of being wasted outside.
    y_noise : std of Gaussian noise added to the standardised condition in training.
        It smooths the point mass at y = 0 (64 % of MoS2 gaps) so that conditioning at 0
        and just above 0 are both well defined.
    epochs, batch_size, lr, weight_decay, patience, seed, device : as for the surrogate;
        the weights kept are those with the best validation negative log-likelihood.
    """

    kind = "cinn"

    def __init__(
        self,
        blocks: int = 8,
        hidden: int = 256,
        layers: int = 2,
        clamp: float = 2.0,
        bounded: bool = True,
        y_noise: float = 0.05,
        epochs: int = 400,
        batch_size: int = 256,
        lr: float = 5e-4,
        weight_decay: float = 1e-5,
        patience: int = 40,
        seed: int = 0,
        device: str = "auto",
    ):
        self.blocks = blocks
        self.hidden = hidden
        self.layers = layers
        self.clamp = clamp
        self.bounded = bounded
        self.y_noise = y_noise
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.device = device

    def _build_module(self) -> nn.Module:
        hidden, layers = self.hidden, self.layers

        def subnet(d_in: int, d_out: int) -> nn.Module:
            mods: list[nn.Module] = []
            for _ in range(layers):
                mods += [nn.Linear(d_in, hidden), nn.SiLU()]
                d_in = hidden
            last = nn.Linear(d_in, d_out)
            nn.init.zeros_(last.weight)  # each block starts as the identity: stable early training
            nn.init.zeros_(last.bias)
            return nn.Sequential(*mods, last)

        inn = ff.SequenceINN(self.space_.dim)
        for _ in range(self.blocks):
            inn.append(fm.AllInOneBlock, cond=0, cond_shape=(1,), subnet_constructor=subnet, affine_clamping=self.clamp)
        return inn

    def _coords(self, x: np.ndarray) -> np.ndarray:
        """Physical design parameters (n, dim) -> the unstandardised coordinates the flow models."""
        x = np.asarray(x, dtype=np.float64)
        if not self.bounded:
            return x
        lows, highs = self.space_.lows, self.space_.highs
        u = BOX_MARGIN + (1 - 2 * BOX_MARGIN) * np.clip((x - lows) / (highs - lows), 0.0, 1.0)
        return np.log(u) - np.log1p(-u)

    def _standardized(self, x: np.ndarray) -> torch.Tensor:
        xs = (self._coords(x) - self.x_scaler_.mean) / self.x_scaler_.std
        return torch.as_tensor(xs, dtype=torch.float32, device=self.device_)

    def _physical(self, xs: torch.Tensor) -> np.ndarray:
        """Standardised flow coordinates (n, dim) -> physical design parameters."""
        x_mean, x_std = self.x_scaler_.tensors(xs.device)
        t = (xs * x_std + x_mean).double()
        if not self.bounded:
            return t.cpu().numpy()
        u = (torch.sigmoid(t).cpu().numpy() - BOX_MARGIN) / (1 - 2 * BOX_MARGIN)
        return self.space_.lows + u * (self.space_.highs - self.space_.lows)

    def _nll(self, xs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per dimension, in standardised units (up to a constant)."""
        z, log_jac = self.module_(xs, c=[cond])
        return (0.5 * (z**2).sum(1) - log_jac).mean() / xs.shape[1]

    def fit(self, x: np.ndarray, y: np.ndarray, space: DesignSpace, x_val: np.ndarray, y_val: np.ndarray):
        """Maximum-likelihood training on (x, y); (x_val, y_val) picks the best epoch. Returns self."""
        self._prepare(x, y, space)
        self.x_scaler_ = Standardizer.fit(self._coords(x))
        device = resolve_device(self.device)

        def tensors(xa, ya):
            xs = (self._coords(xa) - self.x_scaler_.mean) / self.x_scaler_.std
            ys = (np.asarray(ya).reshape(-1, 1) - self.y_scaler_.mean) / self.y_scaler_.std
            return (torch.as_tensor(xs, dtype=torch.float32, device=device),
                    torch.as_tensor(ys, dtype=torch.float32, device=device))

        xs, ys = tensors(x, y)
        xv, yv = tensors(x_val, y_val)
        noise_gen = torch.Generator(device=device).manual_seed(self.seed + 1)
        # A fixed noise draw for validation keeps the score comparable between epochs.
        yv_noisy = yv + self.y_noise * torch.randn(yv.shape, generator=noise_gen, device=device)
        with seeded(self.seed):
            self.module_ = self._build_module().to(device)

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            idx = idx[0]
            cond = ys[idx] + self.y_noise * torch.randn(len(idx), 1, generator=noise_gen, device=device)
            return self._nll(xs[idx], cond)

        self.training_ = fit_module(
            self.module_, batch_loss, lambda: float(self._nll(xv, yv_noisy)), len(xs), epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            patience=self.patience, seed=self.seed, device=device, desc="cinn",
        )
        self.training_["validation"] = {"nll_per_dim": self.training_["best_val_score"]}
        return self

    def sample(self, target: float, n: int, seed: int = 0) -> np.ndarray:
        """Draw ``n`` posterior samples of x given ``y = target``: array (n, dim), physical units.

        The latent draw uses a CPU generator, so a seed gives the same z on any device.
        """
        self._check_fitted()
        if n <= 0:
            raise UserInputError(f"the number of samples must be positive, got {n}")
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.space_.dim, generator=gen).to(self.device_)
        y_std = (target - self.y_scaler_.mean[0]) / self.y_scaler_.std[0]
        cond = torch.full((n, 1), float(y_std), device=self.device_)
        with torch.inference_mode():
            xs, _ = self.module_(z, c=[cond], rev=True)
        return self._physical(xs)

    def encode(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Map design parameters (n, dim) with their property (n,) to latents z (n, dim)."""
        self._check_fitted()
        xs = self._standardized(x)
        ys = torch.as_tensor((np.asarray(y).reshape(-1, 1) - self.y_scaler_.mean) / self.y_scaler_.std, dtype=torch.float32, device=self.device_)
        with torch.inference_mode():
            z, _ = self.module_(xs, c=[ys])
        return z.double().cpu().numpy()
