"""Mixture density network (MDN; Bishop 1994): y -> a Gaussian mixture over x.

An MLP maps the condition to mixture logits, component means and full covariances (as
lower-triangular Cholesky factors with a positive diagonal). Training maximises the
likelihood of x; sampling picks a component and draws from it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from matdesinne.models.nn import mlp
from matdesinne.models.generator import Generator


class MDN(Generator):
    """Mixture density network sampler of p(x | y).

    Parameters
    ----------
    components : number of Gaussian components.
    hidden, layers : the MLP from condition to mixture parameters.
    min_scale : floor on the Cholesky diagonal, in standardised units (keeps the
        likelihood bounded when a component collapses onto a few rows).
    bounded, y_noise, and the training settings (epochs, batch_size, lr, weight_decay,
        patience, seed, device) : see :class:`~matdesinne.models.generator.Generator`.
    """

    kind = "mdn"

    def __init__(
        self,
        components: int = 10,
        hidden: int = 256,
        layers: int = 3,
        min_scale: float = 1e-3,
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
        d, k = self.space_.dim, self.components
        return mlp(self.cond_dim, k * (1 + d + d * (d + 1) // 2), self.hidden, self.layers)

    def _mixture(self, cond: torch.Tensor):
        """Mixture parameters for conditions (n, 1): logits (n, k), means (n, k, d), scale_tril (n, k, d, d)."""
        d, k = self.space_.dim, self.components
        out = self.module_(cond)
        logits, means, tril_flat = out.split([k, k * d, k * d * (d + 1) // 2], dim=1)
        rows, cols = torch.tril_indices(d, d, device=cond.device)
        tril = torch.zeros(len(cond), k, d, d, device=cond.device)
        tril[:, :, rows, cols] = tril_flat.view(len(cond), k, -1)
        diag = nn.functional.softplus(torch.diagonal(tril, dim1=-2, dim2=-1)) + self.min_scale
        tril = torch.tril(tril, -1) + torch.diag_embed(diag)
        return logits, means.view(len(cond), k, d), tril

    def _loss(self, xs, cond, gen, progress):
        logits, means, tril = self._mixture(cond)
        mixture = MixtureSameFamily(Categorical(logits=logits), MultivariateNormal(means, scale_tril=tril))
        return -mixture.log_prob(xs).mean() / xs.shape[1]

    def _draw(self, cond, source):
        logits, means, tril = self._mixture(cond)
        n, d = len(cond), self.space_.dim
        u = source.uniform(n, 1).to(cond.device)  # which component
        eps = source.normal(n, d).unsqueeze(-1).to(cond.device)
        cdf = torch.softmax(logits, 1).cumsum(1)
        comp = (u > cdf).sum(1).clamp(max=self.components - 1)
        pick = torch.arange(n, device=cond.device)
        return means[pick, comp] + (tril[pick, comp] @ eps).squeeze(-1)
