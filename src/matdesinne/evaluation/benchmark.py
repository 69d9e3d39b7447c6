"""``matdesinne benchmark``: the paper's Table 1, and the numbers that tell a user something.

For each method x target it reports the paper's circular metric (MAE under the surrogate
that localized the candidates) beside honest ones:
- MAE under independent evaluators fitted on the training rows only;
- how many samples fall inside the design space and survive down-selection;
- diversity (energy distance to the training rows near the target, nearest-neighbour
  distance, near-duplicates) and novelty (distance to the nearest training row);
- a dataset-lookup baseline that returns training rows near the target;
- the top-k re-simulation error of Ren et al. (2020) on targets drawn from held-out rows.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from matdesinne import __version__
from matdesinne.materials import training_split
from matdesinne.errors import UserInputError
from matdesinne.evaluation.evaluators import GaussianProcessEvaluator, TreesEvaluator, held_out_report
from matdesinne.evaluation.metrics import duplicate_fraction, energy_distance, nn_distance, normalized, novelty
from matdesinne.models.zoo import load_models
from matdesinne.pipeline.design import check_sample_count, check_trained_range, design, downselect, generator_of
from matdesinne.plotting import colour, pyplot, save_png
from matdesinne.text import fmt

#: The paper's Table 1 rows, in its order, then CFM (raw and through the pipeline); the lookup baseline is added.
METHODS = ("mdn", "cvae", "inn", "cinn", "matdesinne-inn", "matdesinne-cinn", "cfm", "matdesinne-cfm")
LOOKUP = "lookup"
TOPK = (1, 10, 100)


def _diversity(x: np.ndarray, reference: np.ndarray, train: np.ndarray, space, seed: int) -> dict:
    xn = normalized(x, space)
    return {
        "energy_distance": energy_distance(xn, normalized(reference, space), seed=seed),
        "nn_distance": nn_distance(xn, seed=seed),
        "duplicate_fraction": duplicate_fraction(xn),
        "novelty": novelty(xn, normalized(train, space)),
    }


def _verdict(record: dict, lookup: dict) -> str:
    """Does a method beat simply returning training rows near the target?"""
    if record["method"] == LOOKUP:
        return "baseline"
    wins = []
    if record["mae_independent"] is not None and record["mae_independent"] < lookup["mae_true"]:
        wins.append("accuracy")
    distinct = record["n_candidates"] * (1 - record["duplicate_fraction"])
    if distinct > lookup["n_candidates"] and record["novelty"] > 0:
        wins.append("diversity and novelty")
    return "beats lookup on " + " and on ".join(wins) if wins else "does NOT beat lookup"


def run_benchmark(
    models_dir: str | os.PathLike | None = None,
    targets: Sequence[float] = (0.0, 0.5, 1.0),
    n: int = 10000,
    seed: int = 0,
    tolerance: float = 0.1,
    topk_targets: int = 100,
    device: str = "cpu",
    allow_mixed: bool = False,
    space_spec: str | os.PathLike | None = None,
) -> dict:
    """Run every method on every target and return a JSON-able result (see module doc)."""
    if topk_targets < 0:
        raise UserInputError(f"topk_targets={topk_targets} must not be negative")
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise UserInputError(f"tolerance={tolerance} must be a positive number")
    alone = load_models(models_dir, generator=None, allow_mixed=allow_mixed, space=space_spec)
    surrogate, space = alone.surrogate, alone.space
    # The methods whose generator the folder holds (a material may ship only some).
    methods = [m for m in METHODS if (alone.directory / f"{generator_of(m)}.json").is_file()]
    if not methods:
        raise UserInputError(f"{alone.directory}: holds no generator to benchmark; train one (matdesinne train)")
    check_sample_count(n, space.dim, surrogate.members)
    check_trained_range(surrogate, targets, "targets")
    models = {kind: load_models(models_dir, generator=kind, device=device, allow_mixed=allow_mixed, space=space_spec)
              for kind in dict.fromkeys(map(generator_of, methods))}
    any_set = next(iter(models.values()))
    surrogate = any_set.surrogate
    found = training_split(surrogate.training_, space)
    if found is None:
        raise UserInputError(f"{any_set.directory}: the surrogate's checkpoint records no training data and split "
                             "to benchmark on")
    data, (train, _, test) = found
    x_train, y_train = data.x[train], data.y[train]

    steps = 2 + len(methods) * len(targets) + (len(methods) + 1) * (1 if topk_targets else 0)
    bar = tqdm(total=steps, desc="benchmark", unit="step", disable=None)
    evaluators = {}
    for ev in (GaussianProcessEvaluator(seed=(seed + 1) % 2**32), TreesEvaluator(seed=(seed + 1) % 2**32)):
        evaluators[ev.name] = ev.fit(x_train, y_train, space)
        bar.update()
    primary = "gp"
    ev_reports = {name: {"name": name, "family": ev.family, **held_out_report(ev.predict, data.x[test], data.y[test], targets)}
                  for name, ev in evaluators.items()}

    def scores(x: np.ndarray, target: float) -> dict:
        return {name: (float(np.abs(ev.predict(x) - target).mean()) if len(x) else None) for name, ev in evaluators.items()}

    results = []
    for t in targets:
        t0 = time.perf_counter()
        near = np.abs(y_train - t) <= tolerance
        rows = x_train[near]
        lookup_seconds = time.perf_counter() - t0
        pred = surrogate.predict(rows)[0]
        by = scores(rows, t)
        lookup = {
            "method": LOOKUP, "target": float(t), "n_candidates": int(near.sum()),
            "mae_surrogate": float(np.abs(pred - t).mean()) if len(rows) else None,
            "mae_independent": by[primary], "mae_independent_by": by,
            "mae_true": float(np.abs(y_train[near] - t).mean()) if len(rows) else None,
            "kept_fraction": 1.0, "in_bounds_fraction": 1.0,
            **_diversity(rows, rows, x_train, space, seed),
            "seconds": {"lookup": lookup_seconds, "total": lookup_seconds},
        }
        lookup["verdict"] = _verdict(lookup, lookup)
        block = [lookup]
        for method in methods:
            models_m = models[generator_of(method)]
            res = design(models_m, t, n=n, method=method, tolerance=tolerance, seed=seed, allow_extrapolation=True)
            s, x = res.summary, res.candidates[space.names].to_numpy()
            kept = s["n_kept"] / n
            if method == generator_of(method):  # raw samples: what down-selection would keep
                kept = float(downselect(x, surrogate, t, space, tolerance).kept.mean())
            by = scores(x, t)
            block.append({
                "method": method, "target": float(t), "n_candidates": s["n_candidates"],
                "mae_surrogate": s["mae_surrogate"], "mae_independent": by[primary], "mae_independent_by": by,
                "kept_fraction": kept, "in_bounds_fraction": s["n_in_bounds"] / n,
                **_diversity(x, rows, x_train, space, seed), "seconds": s["seconds"],
            })
            block[-1]["verdict"] = _verdict(block[-1], lookup)
            bar.update()
        results += block

    topk = {}
    if topk_targets:
        rng = np.random.default_rng(seed)
        picks = data.y[test][rng.choice(len(test), min(topk_targets, len(test)), replace=False)]
        gp = evaluators[primary]
        for method in (*methods, LOOKUP):
            best = {k: [] for k in TOPK}
            fallback = 0
            for i, yt in enumerate(picks):
                for k in TOPK:
                    if method == LOOKUP:
                        pool = np.flatnonzero(np.abs(y_train - yt) <= tolerance)
                        chosen = np.random.default_rng(seed + i).choice(pool, min(k, len(pool)), replace=False)
                        err = np.abs(y_train[chosen] - yt)  # lookup rows carry their true value
                    else:
                        res = design(models[generator_of(method)], float(yt), n=k, method=method,
                                     tolerance=tolerance, seed=seed + i, allow_extrapolation=True)
                        x = res.candidates[space.names].to_numpy()
                        if len(x) == 0:  # nothing survived: judge the raw samples instead
                            fallback += 1
                            x = models[generator_of(method)].generator.sample(float(yt), k, seed=seed + i)
                        err = np.abs(gp.predict(x) - yt)
                    best[k].append(float(err.min()) if len(err) else np.nan)
            topk[method] = {f"T={k}": float(np.nanmean(v)) for k, v in best.items()}
            topk[method]["raw_fallbacks"] = fallback
            bar.update()
    bar.close()

    return {
        "date": str(date.today()),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": __import__("torch").get_num_threads(), "device": device},
        "matdesinne_version": __version__,
        "space": space.name,
        "property": {"name": space.property.name, "unit": space.property.unit},
        "settings": {"targets": list(map(float, targets)), "n": n, "seed": seed, "tolerance": tolerance,
                     "topk_targets": topk_targets, "models": str(any_set.directory)},
        "independent_evaluator": ev_reports[primary],
        "independent_evaluators": ev_reports,
        "results": results,
        "topk": topk,
    }


# --- reports ---------------------------------------------------------------------------
def _f(v, digits: int = 3) -> str:
    return fmt(v, f".{digits}f")


def _property(result: dict) -> tuple[str, str]:
    """The benchmarked property's name and unit (reports written before they were recorded: the MoS2 gap)."""
    prop = result.get("property") or {"name": "band_gap", "unit": "eV"}
    return prop["name"].replace("_", " "), prop["unit"]


def to_markdown(result: dict, command: str = "") -> str:
    ev = result["independent_evaluators"]
    name, unit = _property(result)
    lines = [
        f"Benchmark of {result['date']}, on {result['machine']['cores']} cores ({result['machine']['cpu']}), "
        f"matdesinne {result['matdesinne_version']}, {result['settings']['n']} samples per method and target.",
    ]
    if command:
        lines.append(f"Command: `{command}`")
    lines += ["", f"Independent evaluators, fitted on the training rows only; their own MAE ({unit}) on held-out rows:", "",
              "| evaluator | family | all | " + " | ".join(f"near {t}" for t in ev["gp"]["near"]) + " |",
              "|---|---|---|" + "---|" * len(ev["gp"]["near"])]
    for rep in ev.values():
        lines.append(f"| {rep['name']} | {rep['family']} | {_f(rep['mae'])} | "
                     + " | ".join(f"{_f(v['mae'])} ({v['rows']} rows)" for v in rep["near"].values()) + " |")
    lines += ["", "| method | target | candidates | MAE surrogate | MAE gp | MAE trees | in bounds | kept | energy dist | "
              "NN dist | duplicates | novelty | seconds | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["results"]:
        by = r["mae_independent_by"]
        true = f" (true {_f(r['mae_true'])})" if "mae_true" in r else ""
        lines.append(
            f"| {r['method']} | {r['target']:g} | {r['n_candidates']} | {_f(r['mae_surrogate'])} | {_f(by['gp'])}{true} | "
            f"{_f(by['trees'])} | {_f(r['in_bounds_fraction'], 2)} | {_f(r['kept_fraction'], 2)} | "
            f"{_f(r['energy_distance'])} | {_f(r['nn_distance'])} | {_f(r['duplicate_fraction'], 3)} | "
            f"{_f(r['novelty'])} | {_f(r['seconds']['total'], 2)} | {r['verdict']} |")
    if result["topk"]:
        lines += ["", f"Top-k re-simulation error (Ren et al. 2020; {unit}, under the gp evaluator): mean over "
                  f"{result['settings']['topk_targets']} held-out targets of the best of T samples.", "",
                  "| method | " + " | ".join(TOPK_LABELS) + " | targets judged on raw samples |", "|---|" + "---|" * (len(TOPK) + 1)]
        for method, row in result["topk"].items():
            lines.append(f"| {method} | " + " | ".join(_f(row[k]) for k in TOPK_LABELS) + f" | {row['raw_fallbacks']} |")
    lines += ["", "Distances are in normalised design units (each parameter's range = 1). Energy distance "
              "compares the candidates with the training rows within the tolerance of the target; novelty "
              "is the mean distance to the nearest training row; lookup's 'true' MAE uses the rows' own DFT values."]
    return "\n".join(lines) + "\n"


TOPK_LABELS = tuple(f"T={k}" for k in TOPK)


def plot(result: dict, path: str | os.PathLike) -> None:
    """Bar charts: MAE under the surrogate (circular) and under the gp evaluator (honest)."""
    plt = pyplot()
    targets = result["settings"]["targets"]
    name, unit = _property(result)
    methods = list(dict.fromkeys(r["method"] for r in result["results"]))  # those benchmarked, lookup too
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    width = 0.8 / len(methods)
    for ax, key, title in ((axes[0], "mae_surrogate", "MAE vs the localization surrogate (circular)"),
                           (axes[1], "mae_independent", "MAE vs the independent GP evaluator")):
        for i, m in enumerate(methods):
            vals = [next((r[key] for r in result["results"] if r["method"] == m and r["target"] == t), None) for t in targets]
            ax.bar(np.arange(len(targets)) + (i - len(methods) / 2 + 0.5) * width,
                   [np.nan if v is None else v for v in vals], width, label=m, color=colour(i))
        ax.set_xticks(np.arange(len(targets)), [f"{t:g} {unit}" for t in targets])
        ax.set_xlabel(f"target {name}")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    near = result["independent_evaluator"]["near"]
    for j, t in enumerate(targets):
        own = near.get(f"{t:g}", {}).get("mae")
        if own is not None:
            axes[1].hlines(own, j - 0.45, j + 0.45, colors="black", linestyles="--",
                           label="GP's own error near target" if j == 0 else None)
    axes[0].set_ylabel(f"mean absolute error ({unit})")
    axes[1].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    save_png(fig, path, dpi=120)


def write_report(result: dict, out: str | os.PathLike, command: str = "") -> list[Path]:
    """Write benchmark.json, benchmark.md and benchmark.png as the folder ``out``, all or nothing."""
    from matdesinne.io import atomic_folder, write_json, write_text

    names = ["benchmark.json", "benchmark.md", "benchmark.png"]
    with atomic_folder(out) as work:
        write_json(result, work / names[0])
        write_text(to_markdown(result, command), work / names[1])
        plot(result, work / names[2])
    return [Path(out) / name for name in names]
