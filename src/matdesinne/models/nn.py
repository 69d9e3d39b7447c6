"""Network building blocks shared by the models: a plain MLP and a batched ensemble of MLPs."""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(d_in: int, d_out: int, hidden: int, layers: int, zero_last: bool = False) -> nn.Sequential:
    """``layers`` SiLU hidden layers of width ``hidden``; optionally a zero-initialised
    output layer (for a coupling block that starts as the identity)."""
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(d_in, hidden), nn.SiLU()]
        d_in = hidden
    last = nn.Linear(d_in, d_out)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


class BatchedMLP(nn.Module):
    """``members`` independent MLPs evaluated together.

    All members live in one network (weights of shape (members, in, out)), so the whole
    ensemble costs one batched matrix product per layer.
    Input (members, n, d_in) or (n, d_in) (shared by all members); output (members, n)
    for one output, else (members, n, d_out).
    """

    def __init__(self, members: int, d_in: int, hidden: int, layers: int, d_out: int = 1):
        super().__init__()
        sizes = [d_in] + [hidden] * layers + [d_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # the nn.Linear default initialisation, per member
            self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound)))
        self.members = members
        self.d_out = d_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if x.dim() == 3 else x.unsqueeze(0).expand(self.members, -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = nn.functional.silu(h)  # smooth, so the localizer's gradients are too
        return h.squeeze(-1) if self.d_out == 1 else h
