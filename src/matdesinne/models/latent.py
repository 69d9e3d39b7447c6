"""Where a generator's random numbers come from when it samples: i.i.d. draws, or
quasi-random ones that fill the latent space evenly.

``normal`` is PyTorch's seeded CPU generator. ``sobol`` draws a scrambled Sobol' sequence
(``torch.quasirandom.SobolEngine``, one per block of numbers a family asks for) and maps
it through the normal quantile function. This is the space-filling latent draw of iPage
(Zhang, Bi, Fung 2022). Its n points are then stratified in every latent coordinate:
exactly one per 1/n of probability when n is a power of 2.
"""

from __future__ import annotations

import torch

#: The latent draws a generator's ``sample`` accepts.
LATENTS = ("normal", "sobol")

#: Sobol' values are kept this far inside (0, 1), so the quantile function stays finite.
_EDGE = 1e-7


class LatentSource:
    """Random numbers for one call of ``sample``, all on the CPU (the same seed gives the
    same samples on any device).

    >>> LatentSource("sobol", seed=0).normal(1024, 6).shape
    torch.Size([1024, 6])
    """

    def __init__(self, kind: str = "normal", seed: int = 0):
        if kind not in LATENTS:
            raise ValueError(f"latent={kind!r} is not one of {', '.join(LATENTS)}")
        self.kind = kind
        self.generator = torch.Generator().manual_seed(seed)

    def uniform(self, n: int, d: int) -> torch.Tensor:
        """Shape (n, d), uniform on (0, 1)."""
        if self.kind == "normal":
            return torch.rand(n, d, generator=self.generator)
        # Each block gets its own scramble, drawn from the seeded generator.
        scramble = int(torch.randint(2**31 - 1, (1,), generator=self.generator))
        engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=scramble)
        return engine.draw(n, dtype=torch.float64).clamp(_EDGE, 1 - _EDGE).float()

    def normal(self, n: int, d: int) -> torch.Tensor:
        """Shape (n, d), standard normal."""
        if self.kind == "normal":
            return torch.randn(n, d, generator=self.generator)
        return torch.special.ndtri(self.uniform(n, d).double()).float()
