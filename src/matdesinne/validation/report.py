"""Tables, summary and figures of DFT validation, in the style of the paper's figure 3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matdesinne.data.design_space import DesignSpace
from matdesinne.plotting import colour, pyplot, save_png
from matdesinne.text import MISSING, fmt
from matdesinne.validation.calibration import corrected
from matdesinne.validation.result import Status, StoredResult


def results_frame(results: list[StoredResult], space: DesignSpace, calibration=None) -> pd.DataFrame:
    """One row per stored result, by candidate: the design parameters, ``target``,
    ``<property>_pred``, ``dft_gap_raw``, ``dft_gap`` (calibrated; raw clipped at 0 without a
    calibration), ``dft_energy`` (total energy per atom), ``status``, ``error``,
    ``seconds``, the band edges' k-points ``vbm_k1..3`` and ``cbm_k1..3`` (fractional, in
    the reciprocal basis) and ``direct`` (1 for a direct gap, 0 indirect). Gaps and
    energies in eV, NaN where missing."""
    prop = space.property.name
    columns = ["candidate", *space.names, "target", f"{prop}_pred", "dft_gap_raw", "dft_gap", "dft_energy", "status",
               "error", "seconds", *EDGE_COLUMNS]
    if not results:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({
        "candidate": [r.candidate for r in results],
        **{name: [float(r.inputs[name]) for r in results] for name in space.names},
        "target": np.array([r.target for r in results], dtype=np.float64),
        f"{prop}_pred": np.array([r.pred for r in results], dtype=np.float64),
        "dft_gap_raw": np.array([r.result.gap_raw for r in results], dtype=np.float64),
        "dft_energy": np.array([r.result.energy for r in results], dtype=np.float64),
        "status": [r.result.status.value for r in results],
        "error": [r.result.error for r in results],
        "seconds": np.array([r.result.seconds for r in results], dtype=np.float64),
        **_edge_columns([r.result for r in results]),
    })
    raw = frame["dft_gap_raw"].to_numpy(dtype=np.float64)
    frame["dft_gap"] = calibration.apply(raw) if calibration is not None else corrected(raw)
    return frame[columns].sort_values("candidate", kind="stable").reset_index(drop=True)


#: The band edges' columns of a results table.
EDGE_COLUMNS = [*(f"vbm_k{i}" for i in (1, 2, 3)), *(f"cbm_k{i}" for i in (1, 2, 3)), "direct"]


def _edge_columns(results) -> dict[str, np.ndarray]:
    """``vbm_k1..3``, ``cbm_k1..3`` and ``direct`` (1.0 / 0.0) of each result, NaN where unknown."""
    def k(point, i):
        return np.nan if point is None else float(point[i])

    out = {f"{edge}_k{i + 1}": np.array([k(getattr(r, f"{edge}_k"), i) for r in results], dtype=np.float64)
           for edge in ("vbm", "cbm") for i in range(3)}
    out["direct"] = np.array([np.nan if r.direct is None else float(r.direct) for r in results], dtype=np.float64)
    return out


def _groups(results: pd.DataFrame) -> list[tuple[str, float | None, pd.DataFrame]]:
    """``(name, target, rows)`` per target (to 1e-6 eV), in increasing order; the rows without
    a target form one more group, called ``all`` when no row has one."""
    target = results["target"].to_numpy(dtype=np.float64)
    has = np.isfinite(target)
    if not has.any():
        return [("all", None, results)]
    rounded = np.round(target, 6) + 0.0  # + 0.0: a target of -0 is the target 0
    groups = [(f"{t:g}", float(t), results[rounded == t]) for t in np.unique(rounded[has])]
    if not has.all():
        groups.append(("no target", None, results[~has]))
    return groups


def _mean(values) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if values.size else None


def summarize(results: pd.DataFrame, space: DesignSpace) -> dict:
    """Per target (or ``all`` without targets): counts, DFT MAE vs target, the fraction on the
    wrong side of the metal/insulator line (target 0 but DFT gapped, or target > 0 but DFT
    metallic), and the surrogate's error against DFT on the same candidates. Gaps in eV; a
    value with no rows to average is None (null in JSON), never NaN."""
    pred_col = f"{space.property.name}_pred"
    groups = {}
    for name, t, group in _groups(results):
        ok = group[group["status"] == Status.OK.value]
        dft = ok["dft_gap"].to_numpy(dtype=np.float64)
        pred = ok[pred_col].to_numpy(dtype=np.float64)
        direct = ok["direct"].to_numpy(dtype=np.float64) if "direct" in ok else np.array([])
        entry = {"n": int(len(group)), "ok": int(len(ok)), "failed": int(len(group) - len(ok)),
                 "direct": int(np.nansum(direct)) if np.isfinite(direct).any() else None,
                 "dft_gap_mean": _mean(dft), "dft_gap_std": float(dft.std()) if dft.size else None,
                 "seconds_median": float(np.median(ok["seconds"])) if len(ok) else None}
        if t is not None:
            entry["dft_mae_vs_target"] = _mean(np.abs(dft - t))
            wrong = (dft > 0) if t <= 0 else (dft <= 0)
            entry["wrong_side"] = int(wrong.sum())
            entry["wrong_side_fraction"] = _mean(wrong)
        has_pred = np.isfinite(pred)
        entry["surrogate_mae_vs_dft"] = _mean(np.abs(pred[has_pred] - dft[has_pred]))
        groups[name] = entry
    ok = int((results["status"] == Status.OK.value).sum())
    return {"property": space.property.name, "unit": space.property.unit, "n": int(len(results)),
            "ok": ok, "failed": int(len(results)) - ok, "by_target": groups}


def to_text(summary: dict, space: DesignSpace) -> str:
    """A plain-text table of :func:`summarize`'s output."""
    unit = space.property.unit
    lines = [f"{'target':>9} {'n':>5} {'ok':>5} {'failed':>6} {'DFT MAE vs target':>18} "
             f"{'wrong side':>10} {'surrogate MAE vs DFT':>21} {'direct gap':>10}"]
    for name, g in summary["by_target"].items():
        wrong = MISSING if "wrong_side" not in g else f"{g['wrong_side']}/{g['ok']}"
        direct = MISSING if g.get("direct") is None else f"{g['direct']}/{g['ok']}"
        lines.append(f"{name:>9} {g['n']:>5} {g['ok']:>5} {g['failed']:>6} "
                     f"{fmt(g.get('dft_mae_vs_target')):>15} {unit} {wrong:>10} {fmt(g['surrogate_mae_vs_dft']):>18} {unit} "
                     f"{direct:>10}")
    store = summary.get("store") or {}
    if store.get("n", 0) > summary["n"]:
        lines.append(f"(this table covers the {summary['n']} designs asked for; the store {store.get('path', '')} "
                     f"holds {store['n']} results in all, {store['ok']} ok)")
    if summary.get("structures_per_minute"):
        lines.append(f"{summary['computed_this_run']} structures computed in {summary['wall_seconds']:.0f} s "
                     f"({summary['structures_per_minute']:.1f} per minute)")
    return "\n".join(lines)


def plot_validation(results: pd.DataFrame, summary: dict, space: DesignSpace, path: str | Path) -> None:
    """Three panels: DFT gaps per target against the target; surrogate vs DFT on the same
    candidates; the fraction on the wrong side of the metal/insulator line."""
    plt = pyplot()
    unit = space.property.unit
    pred_col = f"{space.property.name}_pred"
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    groups = [(n, t, g[g["status"] == Status.OK.value]) for n, t, g in _groups(results)]
    dft_all = results.loc[results["status"] == Status.OK.value, "dft_gap"].to_numpy(dtype=np.float64)
    top = max(1.0, float(np.nanmax(dft_all)) if dft_all.size else 1.0) * 1.05
    bins = np.linspace(0, top, 31)
    ax = axes[0]
    for k, (name, t, g) in enumerate(groups):
        mae = summary["by_target"][name].get("dft_mae_vs_target")
        label = f"target {name}: n={len(g)}" + (f", MAE {mae:.3f} {unit}" if mae is not None else "")
        ax.hist(g["dft_gap"], bins=bins, alpha=0.6, color=colour(k), label=label)
        if t is not None:
            ax.axvline(t, color=colour(k), ls="--", lw=1.5)
    ax.set(xlabel=f"DFT band gap ({unit})", ylabel="candidates", title="(a) DFT gaps of candidates (dashed: target)")
    ax.legend(fontsize=8)

    ax = axes[1]
    for k, (name, _, g) in enumerate(groups):
        ax.scatter(g[pred_col], g["dft_gap"], s=14, alpha=0.8, color=colour(k), label=f"target {name}")
    ax.plot([0, top], [0, top], color="grey", lw=1)
    ax.set(xlabel=f"surrogate prediction ({unit})", ylabel=f"DFT band gap ({unit})", xlim=(0, top), ylim=(0, top),
           title="(b) surrogate vs DFT on the same candidates")
    errors = [g["surrogate_mae_vs_dft"] for g in summary["by_target"].values() if g["surrogate_mae_vs_dft"] is not None]
    if errors:
        ax.text(0.03, 0.95, "MAE " + ", ".join(f"{e:.3f}" for e in errors) + f" {unit}", transform=ax.transAxes, va="top")

    ax = axes[2]
    names = [n for n, t, _ in groups if t is not None]
    fractions = [100 * (summary["by_target"][n]["wrong_side_fraction"] or 0.0) for n in names]
    ax.bar(names, fractions, color=[colour(k) for k in range(len(names))])
    for k, (n, f) in enumerate(zip(names, fractions)):
        g = summary["by_target"][n]
        ax.text(k, f, f"{g['wrong_side']}/{g['ok']}", ha="center", va="bottom")
    ax.set_ylim(0, max(5.0, 1.25 * max(fractions, default=0.0)))
    ax.set(xlabel=f"target ({unit})", ylabel="% of candidates",
           title="(c) wrong side of the metal/insulator line")
    if not names:
        ax.text(0.5, 0.5, "no targets in the candidates file", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    save_png(fig, path)


def plot_calibration(calibration, path: str | Path) -> None:
    """Published against calibrated gaps, fit and held-out rows."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.6))
    top = 0.1
    for k, (part, marker) in enumerate((("fit", "o"), ("holdout", "s"))):
        d = getattr(calibration, part)
        if not d["rows"]:
            continue
        top = max(top, max(d["published"]), max(d["calibrated"]))
        ax.scatter(d["published"], d["calibrated"], color=colour(k), marker=marker, alpha=0.8,
                   label=f"{part}: {len(d['rows'])} rows, MAE {d['mae']:.3f} eV")
    top *= 1.05
    ax.plot([0, top], [0, top], color="grey", lw=1)
    ax.set(xlabel="published gap (eV)", ylabel=f"max(0, raw − {calibration.offset:.3f}) (eV)",
           xlim=(-0.02, top), ylim=(-0.02, top), title="DFT calibration")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
