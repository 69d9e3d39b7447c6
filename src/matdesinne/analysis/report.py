"""``matdesinne analyze``: figures, the MIT table, sensitivities, and a self-contained HTML report."""

from __future__ import annotations

import base64
import html
import os
from datetime import date
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from matdesinne import __version__
from matdesinne.analysis import figures
from matdesinne.analysis.mit import find_transitions
from matdesinne.analysis.sensitivity import sensitivity
from matdesinne.data.datasets import check_finite
from matdesinne.materials import LATTICE, training_dataset
from matdesinne.errors import UserInputError
from matdesinne.io import (atomic_folder, check_output_folder, check_outside, read_csv, write_csv, write_json,
                           write_text)
from matdesinne.models.zoo import load_models
from matdesinne.pipeline.design import design
from matdesinne.pipeline.goals import DESIGN_FUNCTIONS, design_function_values

UMAP_ROWS = 3000  # rows per UMAP: enough to show structure, quick on 2 cores
STRAIN_LIMIT = 7.0  # % strain: the paper's MIT examples need 6-7 %
#: Fewest candidates per target that the UMAP embedding works with (its neighbourhood is 15).
MIN_EMBED_ROWS = 20


def _candidates_from_files(paths: Sequence[Path], space) -> dict[float, np.ndarray]:
    out: dict[float, list[np.ndarray]] = {}
    for path in paths:
        frame = read_csv(path)
        if "target" not in frame.columns:
            raise UserInputError(f"{path}: needs a 'target' column, as `matdesinne design` writes")
        x = check_finite(frame, space.names, str(path))
        t = check_finite(frame, ["target"], str(path))[:, 0]
        for value in np.unique(t):
            out.setdefault(float(value), []).append(x[t == value])
    return {t: np.vstack(v) for t, v in out.items()}


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def analyze(
    out: str | os.PathLike,
    models_dir: str | os.PathLike | None = None,
    targets: Sequence[float] = (0.0, 0.5, 1.0),
    n: int = 10000,
    candidates: Sequence[str | os.PathLike] = (),
    seed: int = 0,
    mit_limit: int = 300,
    allow_extrapolation: bool = False,
    allow_mixed: bool = False,
    space_spec: str | os.PathLike | None = None,
) -> dict:
    """Generate (or read) candidates; write figures, tables, ``analysis.json`` and ``report.html``.

    ``out`` is written whole or not at all: a new or empty folder, or an earlier output of
    matdesinne, which is replaced. Each target needs at least :data:`MIN_EMBED_ROWS`
    candidates for its embedding.
    """
    check_output_folder(out)
    check_outside(candidates, out)
    if not candidates and n < MIN_EMBED_ROWS:
        raise UserInputError(f"n={n} is too few: the embedding needs at least {MIN_EMBED_ROWS} candidates per target")
    models = load_models(models_dir, allow_mixed=allow_mixed, space=space_spec)
    space, surrogate, prop = models.space, models.surrogate, models.space.property
    record = surrogate.training_
    data = training_dataset(record, space)
    given = _candidates_from_files([Path(c) for c in candidates], space) if candidates else None  # fail early
    bar = tqdm(total=6, desc="analyze", unit="step", disable=None)

    if given is not None:
        generated = given
    else:
        generated = {float(t): design(models, t, n=n, seed=seed, allow_extrapolation=allow_extrapolation)
                     .candidates[space.names].to_numpy() for t in targets}
    few = {t: len(x) for t, x in generated.items() if len(x) < MIN_EMBED_ROWS}
    if few:
        t, k = next(iter(few.items()))
        raise UserInputError(f"target {t:g} has {k} candidate(s); the embedding needs at least {MIN_EMBED_ROWS} "
                             "per target" + ("" if given is not None else ", so draw more with n="))
    bar.update()
    with atomic_folder(out) as work:
        result = _write_analysis(work, models, data, generated, seed, mit_limit, bar)
    bar.close()
    return result


def _pareto_inputs(models, generated: dict):
    """(second quantity, its unit, training rows or None, {target: (property, second)}) for
    the Pareto figure: the surrogate's second property, else the ``strain`` design
    function; None for a space with neither."""
    space, surrogate = models.space, models.surrogate
    if len(surrogate.properties_) > 1:
        second = surrogate.properties_[1]
        name, unit = second.name, second.unit

        def values(x):
            every = surrogate.predict_all(x)
            return every[space.property.name][0], every[name][0]
    elif any(p.name in LATTICE and p.equilibrium for p in space.parameters):
        name, unit = "strain", DESIGN_FUNCTIONS["strain"][1]

        def values(x):
            return surrogate.predict(x)[0], design_function_values(x, space, "strain")
    else:
        return None
    rows = None
    record = surrogate.training_
    try:
        first = training_dataset(record, space)
        other = training_dataset(record, space, name) if name != "strain" else None
    except UserInputError:
        first = other = None
    if first is not None and name == "strain":
        rows = (first.y, design_function_values(first.x, space, "strain"))
    elif first is not None and other is not None:
        rows = (first.y, other.y)
    return name, unit, rows, {t: values(x) for t, x in generated.items()}


def _write_analysis(out: Path, models, data, generated: dict, seed: int, mit_limit: int, bar) -> dict:
    space, surrogate, prop = models.space, models.surrogate, models.space.property
    floor = prop.lower
    nonzero = [t for t in sorted(generated) if floor is None or t > floor]

    files, captions = {}, {}
    if data is not None:
        rows = np.random.default_rng(seed).choice(len(data), min(UMAP_ROWS, len(data)), replace=False)
        emb = figures.embed(data.x[rows], space, seed)
        files["dataset"] = out / "fig2_dataset.png"
        captions["dataset"] = figures.fig_dataset(space, data.y, emb, data.y[rows], files["dataset"])
        bar.update()
        files["coverage"] = out / "fig4_coverage.png"
        captions["coverage"] = figures.fig_coverage(space, data.x, data.y, generated, files["coverage"])
    bar.update()
    pareto = _pareto_inputs(models, generated)
    if pareto is not None:
        files["pareto"] = out / "fig7_pareto.png"
        captions["pareto"] = figures.fig_pareto(prop, *pareto, files["pareto"])
    caption = figures.fig_strain(space, generated, out / "fig5_strain.png")
    if caption:
        files["strain"], captions["strain"] = out / "fig5_strain.png", caption

    mit_frames, safe_frames, summary_mit, sens = [], [], {}, {}
    if floor is not None and floor in generated and nonzero:
        embeddings = {}
        rng = np.random.default_rng(seed)
        for t in nonzero:
            metal, ins = generated[floor], generated[t]
            take_m = rng.choice(len(metal), min(UMAP_ROWS // 2, len(metal)), replace=False)
            take_i = rng.choice(len(ins), min(UMAP_ROWS // 2, len(ins)), replace=False)
            both = np.vstack([metal[take_m], ins[take_i]])
            embeddings[t] = (figures.embed(both, space, seed), np.arange(len(both)) < len(take_m))
        files["mit"] = out / "fig6_mit.png"
        captions["mit"] = figures.fig_mit(embeddings, files["mit"], prop.unit)
        bar.update()
        for t in nonzero:
            result = find_transitions(generated[t], surrogate, t, limit=mit_limit, seed=seed)
            pairs = result.pairs
            mit_frames.append(pairs)
            safe = pd.DataFrame(result.safe, columns=space.names)
            safe.insert(0, "target", float(t))
            safe_frames.append(safe)
            strain_cols = [f"delta_{p.name}" for p in space.parameters if p.equilibrium]
            small = int((pairs[strain_cols].abs().max(axis=1) <= STRAIN_LIMIT).sum()) if len(pairs) and strain_cols else None
            summary_mit[f"{t:g}"] = {
                "insulators_searched": int(min(mit_limit, len(generated[t]))), "pairs": int(len(pairs)),
                f"pairs_within_{STRAIN_LIMIT:g}pct_strain": small,
                "pairs_monotone_line": int(pairs["line_monotone"].sum()) if len(pairs) else 0,
                "safe_from_mit": int(len(result.safe)),
                "most_common_change": pairs["changed"].value_counts().head(3).to_dict() if len(pairs) else {},
            }
            sens[f"{t:g}"] = sensitivity(surrogate, generated[t])
    bar.update()
    mit_table = pd.concat(mit_frames, ignore_index=True) if mit_frames else pd.DataFrame()
    write_csv(mit_table, out / "mit_pairs.csv")
    # Insulating candidates that no change of at most two parameters turns metallic.
    write_csv(pd.concat(safe_frames, ignore_index=True) if safe_frames else pd.DataFrame(columns=["target", *space.names]),
              out / "mit_safe.csv")

    result = {
        "date": str(date.today()), "matdesinne_version": __version__, "models": str(models.directory),
        "design_space": space.name, "targets": sorted(generated),
        "candidates": {f"{t:g}": int(len(x)) for t, x in sorted(generated.items())},
        "data_share_at_floor": float(np.mean(data.y <= floor)) if data is not None and floor is not None else None,
        "mit": summary_mit, "sensitivity": sens,
        "figures": {k: p.name for k, p in files.items()}, "tables": {"mit_pairs": "mit_pairs.csv", "mit_safe": "mit_safe.csv"},
    }
    write_json(result, out / "analysis.json")
    write_text(_html(result, files, captions, mit_table, space), out / "report.html")
    bar.update()
    return result


def _html(result: dict, files: dict, captions: dict, mit: pd.DataFrame, space) -> str:
    prop = space.property
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>matdesinne analysis: {esc(space.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45;color:#222}"
        "figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#444;font-size:.92em}"
        "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "th{background:#f3f3f3}</style></head><body>",
        f"<h1>Design insight: {esc(space.name)}, {esc(prop.name)}</h1>",
        f"<p>matdesinne {esc(result['matdesinne_version'])}, {esc(result['date'])}. Candidates per target: "
        + ", ".join(f"{esc(k)} {esc(prop.unit)}: {v}" for k, v in result["candidates"].items()) + ".</p>",
    ]
    for key, path in files.items():
        parts.append(f"<figure><img src='{_img(path)}' alt='{esc(key)} figure'>"
                     f"<figcaption>{esc(captions[key])}</figcaption></figure>")
    if result["sensitivity"]:
        parts.append(f"<h2>Sensitivity of {esc(prop.name)} under the surrogate</h2>"
                     f"<p>Mean absolute change of {esc(prop.name)} ({esc(prop.unit)}) per step of each parameter, "
                     "at the candidates of each target (central differences). Claims of switching by a "
                     "parameter with a tiny sensitivity deserve scepticism.</p><table><tr><th>parameter</th><th>step</th>"
                     + "".join(f"<th>at {esc(t)} {esc(prop.unit)}</th>" for t in result["sensitivity"]) + "</tr>")
        for p in space.names:
            first = next(iter(result["sensitivity"].values()))[p]
            parts.append(f"<tr><td>{esc(p)}</td><td>{esc(first['step'])}</td>"
                         + "".join(f"<td>{v[p]['mean_abs_change']:.4f}</td>" for v in result["sensitivity"].values()) + "</tr>")
        parts.append("</table>")
    if result["mit"]:
        parts.append("<h2>Metal-insulator transitions</h2><p>For each insulating candidate, the smallest change of "
                     "at most two parameters that the surrogate says closes the gap. Changes (insulator minus metal) are in % strain of the "
                     "equilibrium value, or in the parameter's unit (a field in V/Å). 'monotone' means the surrogate's "
                     "gap rises steadily along the straight line between the two ends. The full ranked table is "
                     "<code>mit_pairs.csv</code>; candidates safe from MIT are in <code>mit_safe.csv</code>.</p><ul>")
        for t, s in result["mit"].items():
            parts.append(f"<li>{esc(t)} {esc(prop.unit)}: {s['pairs']} pairs from {s['insulators_searched']} candidates, "
                         f"{s.get(f'pairs_within_{STRAIN_LIMIT:g}pct_strain')} within {STRAIN_LIMIT:g} % strain, "
                         f"{s['pairs_monotone_line']} with a monotone line; {s['safe_from_mit']} safe from MIT "
                         f"(no such change reaches a metal). Most common: {esc(str(s['most_common_change']))}</li>")
        parts.append("</ul>")
        cols = ["target", "changed", *[f"delta_{n}" for n in space.names], f"{prop.name}_metal", f"{prop.name}_insulator", "line_monotone"]
        top = mit.groupby("target").head(10)[cols]
        parts.append(top.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0))
    parts.append("</body></html>")
    return "\n".join(parts)
