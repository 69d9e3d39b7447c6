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

from matdesinne.models.nn import mlp
from matdesinne.models.generator import Generator


class CINN(Generator):
    """Conditional INN sampler of p(x | y), trained by maximum likelihood.

    Parameters
    ----------
    blocks : number of FrEIA ``AllInOneBlock`` affine couplings (each with a fixed
        random permutation, so every coordinate is transformed).
    hidden, layers : width and depth of each coupling's subnetwork.
    clamp : soft clamp of the log-scales, for stable inversion.
    bounded, y_noise, and the training settings (epochs, batch_size, lr, weight_decay,
        patience, seed, device) : see :class:`~matdesinne.models.generator.Generator`; the
        validation score is the negative log-likelihood.
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
        self._set_params(locals())

    def _build_module(self) -> nn.Module:
        inn = ff.SequenceINN(self.space_.dim)
        for _ in range(self.blocks):
            inn.append(
                fm.AllInOneBlock, cond=0, cond_shape=(self.cond_dim,), affine_clamping=self.clamp,
                subnet_constructor=lambda d_in, d_out: mlp(d_in, d_out, self.hidden, self.layers, zero_last=True),
            )
        return inn

    def _loss(self, xs, cond, gen, progress):
        """Negative log-likelihood per dimension, in standardised units (up to a constant)."""
        z, log_jac = self.module_(xs, c=[cond])
        return (0.5 * (z**2).sum(1) - log_jac).mean() / xs.shape[1]

    def _draw(self, cond, source):
        z = source.normal(len(cond), self.space_.dim).to(cond.device)
        xs, _ = self.module_(z, c=[cond], rev=True)
        return xs

    def encode(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Map design parameters (n, dim) with their property (n,) to latents z (n, dim)."""
        self._check_fitted()
        with torch.inference_mode():
            z, _ = self.module_(self._standardized(x), c=[self._condition(y)])
        return z.double().cpu().numpy()
