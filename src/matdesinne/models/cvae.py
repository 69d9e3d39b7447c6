"""Conditional variational autoencoder (cVAE; Sohn et al. 2015).

An encoder q(z | x, y) gives a diagonal Gaussian over a latent z; a decoder p(x | z, y)
reconstructs x. Training maximises the evidence lower bound
``-alpha |x - x_hat|^2 - beta KL(q(z | x, y) || N(0, I))``; sampling decodes
``z ~ N(0, I)`` at ``y = y*``.
"""

from __future__ import annotations

import torch
from torch import nn

from matdesinne.models.nn import mlp
from matdesinne.models.generator import Generator


class _EncoderDecoder(nn.Module):
    def __init__(self, dim: int, latent: int, hidden: int, layers: int, conditions: int = 1):
        super().__init__()
        self.encoder = mlp(dim + conditions, 2 * latent, hidden, layers)
        self.decoder = mlp(latent + conditions, dim, hidden, layers)


class CVAE(Generator):
    """Conditional VAE sampler of p(x | y).

    Parameters
    ----------
    latent : size of z.
    hidden, layers : each of the encoder and decoder MLPs.
    alpha, beta : weights of the reconstruction error and of the KL term.
    bounded, y_noise, and the training settings (epochs, batch_size, lr, weight_decay,
        patience, seed, device) : see :class:`~matdesinne.models.generator.Generator`.
    """

    kind = "cvae"
    _may_be_zero = Generator._may_be_zero | {"alpha", "beta"}

    def __init__(
        self,
        latent: int = 6,
        hidden: int = 256,
        layers: int = 3,
        alpha: float = 1.0,
        beta: float = 0.05,
        bounded: bool = True,
        y_noise: float = 0.05,
        epochs: int = 400,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 40,
        seed: int = 0,
        device: str = "auto",
    ):
        self._set_params(locals())

    def _build_module(self) -> nn.Module:
        return _EncoderDecoder(self.space_.dim, self.latent, self.hidden, self.layers, self.cond_dim)

    def _loss(self, xs, cond, gen, progress):
        mu, log_var = self.module_.encoder(torch.cat([xs, cond], 1)).chunk(2, dim=1)
        eps = torch.randn(mu.shape, generator=gen, device=gen.device).to(mu.device)
        z = mu + (0.5 * log_var).exp() * eps
        x_hat = self.module_.decoder(torch.cat([z, cond], 1))
        recon = (xs - x_hat).pow(2).sum(1)
        kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)
        return (self.alpha * recon + self.beta * kl).mean() / xs.shape[1]

    def _draw(self, cond, source):
        z = source.normal(len(cond), self.latent).to(cond.device)
        return self.module_.decoder(torch.cat([z, cond], 1))
