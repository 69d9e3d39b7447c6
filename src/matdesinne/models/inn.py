"""Invertible neural network with bi-directional training (INN; Ardizzone et al. 2019).

The network maps zero-padded design parameters ``[x, 0]`` to ``[y, z]``. Training fits
the forward output ``y`` (L2), pushes the joint ``[y, z]`` toward ``p(y) N(0, I)`` (MMD),
and, running backwards from ``[y, z ~ N(0, I)]``, pushes generated ``x`` toward the data
(MMD), with the backward weight ramped up over training. Sampling inverts ``[y*, z]``.
"""

from __future__ import annotations

import FrEIA.framework as ff
import FrEIA.modules as fm
import torch
from torch import nn

from matdesinne.models.nn import mlp
from matdesinne.models.generator import Generator


def mmd(a: torch.Tensor, b: torch.Tensor, scales=(0.05, 0.2, 0.9)) -> torch.Tensor:
    """Maximum mean discrepancy between samples ``a`` (n, d) and ``b`` (m, d), with a sum of
    inverse multiquadratic kernels ``s / (s + |u - v|^2)`` (heavy tails keep gradients alive
    between distant sets)."""
    def kernel(u, v):
        d2 = torch.cdist(u, v).pow(2)
        return sum(s / (s + d2) for s in scales)

    return kernel(a, a).mean() + kernel(b, b).mean() - 2 * kernel(a, b).mean()


class INN(Generator):
    """Bi-directionally trained INN sampler of p(x | y).

    Parameters
    ----------
    blocks, hidden, layers, clamp : FrEIA ``AllInOneBlock`` couplings as in the cINN,
        acting on ``dim + pad`` dimensions.
    pad : dimensions of small noise appended to x. They give the latent z room beyond x's
        own size; on the synthetic test problem pad 3 beat pad 1 clearly.
    w_y, w_z, w_x : weights of the forward L2 fit of y, the MMD of ``[y, z]`` against the
        prior, and the backward MMD on x. ``w_x`` ramps up as ``progress ** 2`` (the paper:
        "weight coefficients for each loss are initialized" and raised in training).
    pad_noise : std of noise put in the padding, so the network cannot hide information there.
    bounded, y_noise, and the training settings (epochs, batch_size, lr, weight_decay,
        patience, seed, device) : see :class:`~matdesinne.models.generator.Generator`.
    """

    kind = "inn"
    _may_be_zero = Generator._may_be_zero | {"pad", "w_y", "w_z", "w_x", "pad_noise"}
    vector_conditions = False  # y is part of its output, one property wide

    def __init__(
        self,
        blocks: int = 8,
        hidden: int = 256,
        layers: int = 2,
        clamp: float = 2.0,
        pad: int = 3,
        w_y: float = 20.0,
        w_z: float = 1.0,
        w_x: float = 1.0,
        pad_noise: float = 1e-2,
        bounded: bool = True,
        y_noise: float = 0.05,
        epochs: int = 400,
        batch_size: int = 512,
        lr: float = 5e-4,
        weight_decay: float = 1e-5,
        patience: int = 40,
        seed: int = 0,
        device: str = "auto",
    ):
        self._set_params(locals())

    @property
    def _width(self) -> int:
        return self.space_.dim + self.pad

    def _build_module(self) -> nn.Module:
        inn = ff.SequenceINN(self._width)
        for _ in range(self.blocks):
            inn.append(
                fm.AllInOneBlock, affine_clamping=self.clamp,
                subnet_constructor=lambda d_in, d_out: mlp(d_in, d_out, self.hidden, self.layers, zero_last=True),
            )
        return inn

    def _randn(self, n: int, d: int, gen: torch.Generator, device) -> torch.Tensor:
        return torch.randn(n, d, generator=gen, device=gen.device).to(device)

    def _loss(self, xs, cond, gen, progress):
        n, dim, dev = len(xs), self.space_.dim, xs.device
        x_pad = torch.cat([xs, self.pad_noise * self._randn(n, self.pad, gen, dev)], 1)
        out, _ = self.module_(x_pad)
        y_out, z_out = out[:, :1], out[:, 1:]
        loss_y = (y_out - cond).pow(2).mean()
        # y enters the latent MMD detached: the L2 term alone shapes the y output.
        prior = torch.cat([cond, self._randn(n, self._width - 1, gen, dev)], 1)
        loss_z = mmd(torch.cat([y_out.detach(), z_out], 1), prior)
        x_back, _ = self.module_(prior, rev=True)
        loss_x = mmd(x_back[:, :dim], xs)
        return self.w_y * loss_y + self.w_z * loss_z + self.w_x * progress**2 * loss_x

    def _draw(self, cond, source):
        z = source.normal(len(cond), self._width - 1).to(cond.device)
        x_back, _ = self.module_(torch.cat([cond, z], 1), rev=True)
        return x_back[:, : self.space_.dim]
