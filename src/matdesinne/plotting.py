"""Matplotlib set-up shared by every figure: a headless backend, one palette, atomic PNG files."""

from __future__ import annotations

import os

#: Okabe-Ito colours, distinguishable with the common colour-vision deficiencies; every
#: figure cycles through them in this order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999", "#000000")


def colour(i: int) -> str:
    """The ``i``-th colour of :data:`PALETTE`, cycling."""
    return PALETTE[i % len(PALETTE)]


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` as PNG through a temporary file, then close it."""
    from matdesinne.io import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        pyplot().close(fig)
