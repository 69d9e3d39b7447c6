"""Matplotlib set-up shared by every figure: a headless backend and atomic PNG files."""

from __future__ import annotations

import os


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
