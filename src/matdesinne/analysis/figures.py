"""Figures in the style of the paper (figures 2, 4, 5 and 6), for any design space.

Spaces with lattice parameters get strain groupings (in-plane, out-of-plane,
tensile/compressive, shear; see :func:`~matdesinne.materials.strain_groups`); other design
spaces get per-parameter comparisons instead.
"""

from __future__ import annotations

import numpy as np

from matdesinne.data.design_space import DesignSpace
from matdesinne.materials import strain_groups
from matdesinne.plotting import PALETTE, colour, pyplot, save_png

#: Metals and insulators keep one colour each in every figure.
METAL, INSULATOR = PALETTE[5], PALETTE[0]

def strain(space: DesignSpace, x: np.ndarray, names: list[str], absolute: bool = False) -> np.ndarray:
    """Mean strain (%) of the named parameters relative to their equilibrium values, shape (n,);
    with ``absolute``, the mean of each parameter's absolute strain."""
    cols = [space.names.index(n) for n in names]
    eq = np.array([space.parameter(n).equilibrium for n in names])
    each = 100.0 * (x[:, cols] - eq) / eq
    return (np.abs(each) if absolute else each).mean(1)


def embed(x: np.ndarray, space: DesignSpace, seed: int) -> np.ndarray:
    """2-D UMAP embedding (n, 2) of design points in range-normalised units, seeded."""
    import umap

    u = (x - space.lows) / (space.highs - space.lows)
    return umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1).fit_transform(u)


def fig_dataset(space: DesignSpace, y: np.ndarray, embedding: np.ndarray, y_embedded: np.ndarray, path) -> str:
    """Figure 2: the property's distribution and a UMAP of the design space coloured by it."""
    plt = pyplot()
    prop = space.property
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax0.hist(y, bins=60, color=INSULATOR)
    zero = float(np.mean(y <= prop.lower)) if prop.lower is not None else None
    share = f" ({100 * zero:.0f} % at {prop.lower:g} {prop.unit})" if zero is not None else ""
    ax0.set_title(f"{prop.name} in the data, {len(y)} rows{share}", fontsize=10)
    ax0.set_xlabel(f"{prop.name} ({prop.unit})")
    ax0.set_ylabel("rows")
    sc = ax1.scatter(embedding[:, 0], embedding[:, 1], c=y_embedded, s=3, cmap="viridis")
    fig.colorbar(sc, ax=ax1, label=f"{prop.name} ({prop.unit})")
    ax1.set_title(f"UMAP of the design space ({len(embedding)} rows)", fontsize=10)
    ax1.set_xticks([]), ax1.set_yticks([])
    fig.tight_layout()
    save_png(fig, path)
    caption = f"Distribution of {prop.name} in the training data{share}, and a seeded UMAP of the design space coloured by {prop.name}."
    return caption


def fig_coverage(space: DesignSpace, x_data: np.ndarray, y_data: np.ndarray, generated: dict, path, window: float = 0.1) -> str:
    """Figure 4: where generated candidates lie compared with the training data."""
    plt = pyplot()
    groups = strain_groups(space)
    if len(groups) >= 2:
        gx, gy = list(groups)[:2]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharex=True, sharey=True)
        for ax, title, source in ((axes[0], "training data", None), (axes[1], "generated candidates", generated)):
            for i, t in enumerate(sorted(generated)):
                x = x_data[np.abs(y_data - t) <= window] if source is None else source[t]
                ax.scatter(strain(space, x, groups[gx]), strain(space, x, groups[gy]), s=3, alpha=0.4,
                           color=colour(i), label=f"{space.property.name} = {t:g}")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(f"average {gx} strain (%)")
            ax.legend(markerscale=4, fontsize=8)
        axes[0].set_ylabel(f"average {gy} strain (%)")
        caption = (f"Average {gx} strain against average {gy} strain (% of equilibrium): training rows within "
                   f"±{window:g} of each target (left) and generated candidates (right).")
    else:
        dim = space.dim
        cols = min(dim, 4)
        fig, axes = plt.subplots((dim + cols - 1) // cols, cols, figsize=(3.2 * cols, 2.8 * ((dim + cols - 1) // cols)), squeeze=False)
        for j, p in enumerate(space.parameters):
            ax = axes.flat[j]
            for i, t in enumerate(sorted(generated)):
                shade = colour(i)
                ax.hist(x_data[np.abs(y_data - t) <= window][:, j], bins=30, density=True, histtype="stepfilled", alpha=0.25, color=shade)
                ax.hist(generated[t][:, j], bins=30, density=True, histtype="step", color=shade, label=f"{t:g}")
            ax.set_xlabel(f"{p.name} ({p.unit})" if p.unit else p.name)
        for ax in list(axes.flat)[dim:]:
            ax.set_visible(False)
        axes.flat[0].legend(title="target", fontsize=8)
        caption = "Per-parameter distributions: training rows near each target (filled) against generated candidates (lines)."
    fig.tight_layout()
    save_png(fig, path)
    return caption


def fig_strain(space: DesignSpace, generated: dict, path) -> str | None:
    """Figure 5: distributions of average tensile/compressive and shear strain, signed and absolute."""
    groups = strain_groups(space)
    kinds = [g for g in groups if g.startswith(("tensile", "shear"))]
    if not kinds:
        return None
    plt = pyplot()
    tc, sh = (kinds * 2)[:2] if len(kinds) == 1 else kinds
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    panels = [(tc, False), (sh, False), (tc, True), (sh, True)]
    for ax, (group, absolute) in zip(axes.flat, panels):
        for i, t in enumerate(sorted(generated)):
            x = generated[t]
            if len(x) == 0:
                continue
            ax.hist(strain(space, x, groups[group], absolute), bins=40, histtype="step", lw=1.5, density=True, color=colour(i),
                    label=f"{space.property.name} = {t:g} {space.property.unit}")
        ax.set_xlabel(("average absolute " if absolute else "average ") + f"{group} strain (%)")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    return "Distributions of average tensile/compressive and shear strain of the generated candidates, signed (top) and absolute (bottom)."


def fig_mit(embeddings: dict, path, unit: str) -> str:
    """Figure 6: UMAP of floor (metal) candidates together with candidates at each nonzero target."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(embeddings), figsize=(5.5 * len(embeddings), 4.6), squeeze=False)
    for ax, (t, (emb, is_metal)) in zip(axes.flat, embeddings.items()):
        ax.scatter(emb[is_metal, 0], emb[is_metal, 1], s=3, alpha=0.5, color=METAL, label=f"0 {unit} (metal)")
        ax.scatter(emb[~is_metal, 0], emb[~is_metal, 1], s=3, alpha=0.5, color=INSULATOR, label=f"{t:g} {unit}")
        ax.set_title(f"metal vs {t:g} {unit} candidates", fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
        ax.legend(markerscale=4, fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    return ("UMAP of metallic candidates together with candidates at each nonzero target. Regions where "
            "both colours mix are where a small change of design flips metal and insulator.")


def pareto_front(costs: np.ndarray) -> np.ndarray:
    """Which rows of ``costs`` (n, 2), both to be minimised, no other row dominates: mask (n,)."""
    costs = np.asarray(costs, dtype=np.float64)
    order = np.lexsort((costs[:, 1], costs[:, 0]))
    front = np.zeros(len(costs), dtype=bool)
    best = np.inf
    for i in order:
        if costs[i, 1] < best:
            front[i], best = True, costs[i, 1]
    return front


def fig_pareto(prop, second: str, second_unit: str, rows: tuple[np.ndarray, np.ndarray] | None,
               candidates: dict, path) -> str:
    """The property against a second quantity (a predicted property, or a design function
    such as strain): training rows in grey, candidates per target in colour, and each
    target's non-dominated candidates (closest to the target for the least second
    quantity) outlined. ``candidates`` maps a target to (property, second) arrays."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    if rows is not None:
        ax.scatter(rows[0], rows[1], s=4, color="0.75", label="training rows", rasterized=True)
    for i, (t, (y, s)) in enumerate(sorted(candidates.items())):
        if not len(y):
            continue
        ax.scatter(y, s, s=4, alpha=0.4, color=colour(i), label=f"candidates, {prop.name} = {t:g} {prop.unit}")
        front = pareto_front(np.column_stack([np.abs(y - t), s]))
        ax.scatter(y[front], s[front], s=30, facecolors="none", edgecolors="black", lw=1.0,
                   label="non-dominated" if i == 0 else None)
    ax.set_xlabel(f"{prop.name} ({prop.unit})")
    ax.set_ylabel(f"{second} ({second_unit})" if second_unit else second)
    ax.legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    save_png(fig, path)
    return (f"{prop.name} against {second}: training rows (DFT labels where the data has them), candidates "
            f"(surrogate predictions) and, per target, the non-dominated candidates: none is both closer to the "
            f"target and lower in {second}.")
