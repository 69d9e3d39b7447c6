"""A campaign in a folder: ``matdesinne loop`` (DFT computed here, with GPAW on Dask) and
``matdesinne loop ask`` / ``tell`` (the truth computed elsewhere: VASP, Quantum ESPRESSO,
an experiment).

The folder holds everything, and nothing else is needed to resume:

- ``campaign.json``: the campaign's settings, its state (every row asked and told; see
  :meth:`~matdesinne.loop.campaign.Campaign.state_dict`), the per-round table and the DFT
  calls spent. It is rewritten, atomically, after every ask and every tell.
- ``dft.db``: the DFT results (:class:`~matdesinne.validation.store.ResultStore`, an ASE
  database; ``ase db dft.db`` browses it), one per design, committed as each arrives;
  ``dft.csv`` beside it is the table of the latest batch.
- at the end: ``candidates-<target>.csv`` (designed with the final model) and ``campaign.png``.
- with ask/tell: ``ask-<round>.csv`` (the batch, with its ``id`` column) and, where the
  design space has a structure builder, ``ask-<round>/`` (the structures and index.csv).

Killed at any moment, the same command picks up: the state says which rows are asked and
which are told, and the store holds every finished DFT result, so nothing finished is
computed twice and nothing told is lost.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from matdesinne.materials import training_split
from matdesinne.errors import UserInputError
from matdesinne.io import check_distinct, check_folder, ensure_dir, read_csv, read_json, write_csv, write_json
from matdesinne.loop.campaign import Campaign
from matdesinne.models import ModelSet
from matdesinne.pipeline.goals import Goals
from matdesinne.text import fmt
from matdesinne.validation.runner import Echo, quiet

CAMPAIGN_FILE = "campaign.json"
STORE_FILE = "dft.db"
#: The DFT check of the shipped candidates: its own store, so that none is ever told back.
SHIPPED_STORE = "shipped.db"
#: Shipped candidates checked with DFT per target at a campaign's end (the honest score).
SHIPPED_CHECK = 10
FORMAT = "matdesinne-loop"
#: The paper's reported DFT error of its candidates (eV): a reference line in campaign.png.
PAPER_MAE = 0.1

@dataclass(frozen=True)
class LoopSettings:
    """What fixes a campaign: changing any of these on a later run conflicts with it.
    (``rounds`` and the cluster may change: a campaign may be extended or moved.)"""

    targets: tuple[float, ...]
    batch: int
    seed: int
    tolerance: float
    n_samples: int
    update: str
    confident: float
    models: str
    dft: dict | None  # DFT settings, None for ask/tell
    calibration: float | None  # the calibration's offset (eV), None without
    goals: list | None = None  # further goals beside every target (Goals.to_records()), None without

    def to_dict(self) -> dict:
        return {**asdict(self), "targets": list(self.targets)}  # as JSON reads it back


def _conflicts(stored: dict, wanted: dict) -> list[str]:
    """The settings that differ; DFT settings only when both sides run DFT (ask/tell has none)."""
    both_dft = stored.get("dft") is not None and wanted.get("dft") is not None
    return [f.name for f in fields(LoopSettings)
            if (f.name != "dft" or both_dft) and stored.get(f.name) != wanted.get(f.name)]


def open_campaign(out: str | os.PathLike, models: ModelSet, settings: LoopSettings | None, *,
                  force: bool = False) -> tuple[Campaign, dict]:
    """The campaign kept in folder ``out``, or a new one from ``settings``.

    ``settings=None`` (``loop tell``, a later ``loop ask``) requires a stored campaign. A
    stored campaign whose settings differ from ``settings`` is refused in one line unless
    ``force``, which starts a new campaign (the DFT store is kept: a design computed
    before is not computed again). Returns the campaign and the file's other content.
    """
    out = check_folder(out)
    path = out / CAMPAIGN_FILE
    saved = read_json(path) if path.is_file() else None
    if saved is not None and saved.get("format") != FORMAT:
        raise UserInputError(f"{path}: not a matdesinne campaign file")
    if saved is not None and settings is not None and not force:
        stored = saved.get("settings", {})
        differ = _conflicts(stored, settings.to_dict())
        if differ:
            was = ", ".join(f"{k} {stored.get(k)!r}" for k in differ)
            raise UserInputError(f"{out}: holds a campaign with other {', '.join(differ)} ({was}); "
                                 "use another out=, or force=True to start a new campaign there")
    if saved is not None and (settings is None or not force):
        try:
            return Campaign.from_state(models, saved["state"]), saved
        except (UserInputError, KeyError) as err:
            raise UserInputError(f"{path}: {err}") from None
    if settings is None:
        raise UserInputError(f"{out}: holds no campaign yet; start one with targets= (and a batch=)")
    goals = None if settings.goals is None else Goals.from_records(settings.goals)
    campaign = Campaign(models, settings.targets, tolerance=settings.tolerance, n_samples=settings.n_samples,
                        seed=settings.seed, update=settings.update, confident=settings.confident, goals=goals)
    return campaign, {"format": FORMAT, "settings": settings.to_dict(), "dft_calls": 0, "started": time.time()}


def save_campaign(out: Path, campaign: Campaign, meta: dict) -> dict:
    """Rewrite ``out/campaign.json`` (atomically): settings, state, per-round table."""
    rounds = campaign.records()
    meta = {**meta, "format": FORMAT, "rounds": rounds.to_dict("records"), "updates": campaign.updates,
            "state": campaign.state_dict()}
    write_json(meta, out / CAMPAIGN_FILE)
    return meta


def lookup_baseline(models: ModelSet, targets: Sequence[float], tolerance: float) -> dict[str, float | None]:
    """The true error of returning training rows within ``tolerance`` of each target
    (property units), the baseline a campaign has to beat; None where no data is recorded."""
    found = training_split(models.surrogate.training_, models.space)
    if found is None:
        return {f"{t:g}": None for t in targets}
    data, (train, _, _) = found
    y = data.y[train]
    out = {}
    for t in targets:
        near = np.abs(y - t) <= tolerance
        out[f"{t:g}"] = float(np.abs(y[near] - t).mean()) if near.any() else None
    return out


def _round_lines(rounds: pd.DataFrame, calls: dict, unit: str) -> list[str]:
    """One line per round and target: DFT spent, the batch's DFT error, the model's error."""
    lines = []
    for r in rounds.itertuples():
        spent = sum(v for k, v in calls.items() if k <= r.round)
        lines.append(f"round {r.round}, target {r.target:g} {unit}: {r.told}/{r.asked} computed, {spent} DFT calls "
                     f"so far; DFT MAE vs target {fmt(r.mae_vs_target)} {unit}, wrong side {r.wrong_side}; model "
                     f"error vs DFT before {fmt(r.model_mae_before)}, after {fmt(r.model_mae_after_cv)} {unit} "
                     f"(held out, update {r.method or '-'})" + _goal_line(r))
    return lines


def _goal_line(r) -> str:
    """The round's further-goal figures (see Campaign.records), or nothing."""
    fields = r._asdict()
    if "goals_met" not in fields:
        return ""
    medians = ", ".join(f"{k[:-len('_median')]} median {fmt(v, '.4g')}" for k, v in fields.items() if k.endswith("_median"))
    return f"; every goal met (DFT) by {fmt(fields['goals_met'], '.0%')} of the batch, {medians}"


def run_loop(
    out: str | os.PathLike,
    models: ModelSet,
    settings: LoopSettings,
    *,
    rounds: int = 3,
    calibration=None,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    check: int = SHIPPED_CHECK,
    echo: Echo = quiet,
    progress: bool = True,
) -> dict:
    """Run a closed-loop campaign with DFT in folder ``out`` until ``rounds`` rounds are
    told: each round asks ``settings.batch`` designs per target, computes them with GPAW
    (:func:`~matdesinne.validation.validate`, the store ``out/dft.db``), tells the
    calibrated gaps, and updates the model. Then writes the final candidates and
    ``campaign.png``, and checks ``check`` of each target's shipped candidates with DFT
    (:func:`check_shipped`; 0 skips it). Resumes whatever an earlier, interrupted run
    left. Returns the content of ``campaign.json``."""
    from matdesinne.validation import validate
    from matdesinne.validation.labelling import STRAIN_ENERGY, add_strain_energy

    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds <= 0:
        raise UserInputError(f"rounds={rounds!r} must be a positive whole number")
    if isinstance(check, bool) or not isinstance(check, (int, np.integer)) or check < 0:
        raise UserInputError(f"check={check!r} must be a whole number, 0 or more")
    if settings.dft is None:
        raise UserInputError("a loop that runs DFT needs DFT settings")
    campaign, meta = open_campaign(out, models, settings, force=force)  # refuses before the folder exists
    out = ensure_dir(out)
    prop, unit = models.space.property.name, models.space.property.unit
    meta["lookup_mae"] = lookup_baseline(models, settings.targets, settings.tolerance)
    calls: dict[int, int] = {int(k): v for k, v in meta.get("calls_by_round", {}).items()}
    reported = {int(r) for r in meta.get("reported_rounds", [])}
    start = time.perf_counter()
    while True:
        pending = campaign.pending
        if len(pending):
            run = validate(pending, models.space, out / STORE_FILE, settings=settings.dft, calibration=calibration,
                           scheduler=scheduler, workers=workers, source=f"round {int(pending['round'].max())}",
                           echo=lambda line: echo(line) if line.startswith("DFT") else None,  # progress, not tables
                           progress=progress, report=False, build=models.builder)
            energy = f"dft_{STRAIN_ENERGY}"
            if STRAIN_ENERGY in campaign.properties and models.material is not None:  # learnt too: DFT gives it
                run = add_strain_energy(run, models.material, pending, out / STORE_FILE, settings=settings.dft,
                                        calibration=calibration, scheduler=scheduler, workers=workers)
            # The store answers by design (a result may come from an earlier run), not by row.
            res = run.results.assign(key=_keys(run.results, models.space))
            wanted = ["key", "status", "dft_gap", *([energy] if energy in res else [])]
            mine = pending.assign(key=_keys(pending, models.space)).merge(res[wanted], on="key")
            for rnd, n in mine["round"].value_counts().items():
                calls[int(rnd)] = max(calls.get(int(rnd), 0), int(n))
            ok = mine[mine["status"] == "ok"]
            told = pd.DataFrame({"id": ok["id"].to_numpy(), prop: ok["dft_gap"].to_numpy(dtype=float)})
            if energy in ok:
                told[STRAIN_ENERGY] = ok[energy].to_numpy(dtype=float)
            if len(told):
                campaign.tell(told)
            meta.update(dft_calls=int(sum(calls.values())), calls_by_round={str(k): v for k, v in calls.items()})
            meta = save_campaign(out, campaign, meta)
            table = campaign.records()
            for rnd in sorted(set(table["round"]) - reported):
                if (table[table["round"] == rnd]["told"] > 0).any() or rnd in calls:
                    for line in _round_lines(table[table["round"] == rnd], calls, unit):
                        echo(line)
                    reported.add(int(rnd))
            meta["reported_rounds"] = sorted(reported)
        if campaign.round >= rounds:
            break
        campaign.ask(settings.batch)
        meta = save_campaign(out, campaign, meta)
    meta["seconds_this_run"] = time.perf_counter() - start
    meta["candidates"] = write_candidates(out, campaign)
    meta = save_campaign(out, campaign, meta)
    if check:
        meta["shipped"] = check_shipped(out, campaign, models, settings, check, calibration=calibration,
                                        scheduler=scheduler, workers=workers, echo=echo, progress=progress)
        meta = save_campaign(out, campaign, meta)
    plot_campaign(meta, out / "campaign.png", unit)
    return meta


def check_shipped(out: Path, campaign: Campaign, models: ModelSet, settings: LoopSettings, per_target: int, *,
                  calibration=None, scheduler: str | None = None, workers: int | None = None, echo: Echo = quiet,
                  progress: bool = True) -> dict[str, dict]:
    """The honest score of a campaign: DFT of a seeded random sample of ``per_target`` rows
    of each ``candidates-<target>.csv`` it ships, in their own store ``out/shipped.db``
    (``shipped.csv`` beside it), never told to the campaign. The per-round table scores the
    batches the campaign chose to learn from, which after the first round sit near designs
    whose DFT is known; these are the designs a user gets. Returns, per target, ``n``,
    ``ok``, ``dft_mae_vs_target``, ``wrong_side`` and ``surrogate_mae_vs_dft`` (property
    units), and echoes a line each. Resumable like every validation."""
    from matdesinne.validation import validate

    rng = np.random.default_rng([settings.seed, 2])  # its own stream: the campaign's draws are untouched
    picked = []
    for t in campaign.targets:
        frame = read_csv(out / f"candidates-{t:g}.csv")
        take = np.sort(rng.choice(len(frame), size=min(per_target, len(frame)), replace=False))
        picked.append(frame.iloc[take].assign(target=t))
    frame = pd.concat(picked, ignore_index=True)
    if not len(frame):
        return {}
    run = validate(frame, models.space, out / SHIPPED_STORE, settings=settings.dft, calibration=calibration,
                   scheduler=scheduler, workers=workers, source="shipped candidates",
                   echo=lambda line: echo(line) if line.startswith("DFT") else None, progress=progress, report=False,
                   build=models.builder)
    unit = models.space.property.unit
    shipped = {}
    for name, group in run.summary["by_target"].items():
        keep = ("n", "ok", "dft_mae_vs_target", "wrong_side", "surrogate_mae_vs_dft")
        shipped[name] = {k: group.get(k) for k in keep}
        echo(f"shipped candidates, target {name} {unit}: DFT MAE vs target {fmt(group.get('dft_mae_vs_target'))} "
             f"{unit} on {group['ok']} of {group['n']} drawn at random (never told), wrong side "
             f"{group.get('wrong_side')}, surrogate error vs DFT {fmt(group['surrogate_mae_vs_dft'])} {unit}")
    return shipped


def _keys(frame: pd.DataFrame, space) -> list[str]:
    """The store's identity of each row's design (:func:`~matdesinne.validation.store.design_key`)."""
    from matdesinne.validation.store import design_key

    values = np.clip(frame[space.names].to_numpy(dtype=float), space.lows, space.highs)
    return [design_key(v) for v in values]


def write_candidates(out: Path, campaign: Campaign) -> dict[str, int]:
    """``candidates-<target>.csv`` per target, designed with the campaign's current model."""
    counts = {}
    for t in campaign.targets:
        frame = campaign.candidates(t)
        write_csv(frame, out / f"candidates-{t:g}.csv")
        counts[f"{t:g}"] = int(len(frame))
    return counts


def ask_files(out: str | os.PathLike, models: ModelSet, settings: LoopSettings | None, batch: int, *,
              fmt_structures: str = "extxyz", force: bool = False) -> tuple[pd.DataFrame, list[Path]]:
    """``loop ask``: the next batch (``batch`` per target) as ``ask-<round>.csv`` with an ``id``
    column, and its structures in ``ask-<round>/`` where the design space has a builder."""
    campaign, meta = open_campaign(out, models, settings, force=force)  # refuses before the folder exists
    out = ensure_dir(out)
    frame = campaign.ask(batch)
    rnd = int(frame["round"].iloc[0]) if len(frame) else campaign.round - 1
    paths = [out / f"ask-{rnd}.csv"]
    write_csv(frame, paths[0])
    found = models.material
    if found is not None and found.builder is not None and len(frame):
        from matdesinne.validation import build_structures, write_structures

        atoms = build_structures(frame, models.space, str(paths[0]), found.builder)
        paths += write_structures(atoms, frame, out / f"ask-{rnd}", fmt_structures)
    save_campaign(out, campaign, meta)
    return frame, paths


def tell_file(out: str | os.PathLike, models: ModelSet, results: str | os.PathLike) -> tuple[dict, pd.DataFrame]:
    """``loop tell``: ingest ``results`` (a CSV with ``id`` and ``<property>`` columns), update
    the model, save the campaign. Returns the update's record and the per-round table."""
    out = check_folder(out)
    check_distinct([out / CAMPAIGN_FILE], [results])
    campaign, meta = open_campaign(out, models, None)
    frame = read_csv(results)
    try:
        record = campaign.tell(frame)
    except UserInputError as err:
        raise UserInputError(f"{results}: {err}") from None
    save_campaign(out, campaign, meta)
    return record, campaign.records()


def plot_campaign(meta: dict, path: Path, unit: str) -> None:
    """DFT MAE of each round's batch against cumulative DFT calls, one line per target, with
    the paper's ≈ 0.1 eV and each target's lookup baseline as reference lines."""
    from matdesinne.plotting import colour, pyplot, save_png

    plt = pyplot()
    rounds = pd.DataFrame(meta["rounds"])
    calls = {int(k): v for k, v in meta.get("calls_by_round", {}).items()}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    targets = meta["settings"]["targets"]
    for i, t in enumerate(targets):
        g = rounds[(rounds["target"] == t) & rounds["mae_vs_target"].notna()].sort_values("round") if len(rounds) else rounds
        per_round = [calls.get(int(r), 0) for r in g["round"]] if len(g) else []
        x = np.cumsum(per_round) if per_round else []
        ax.plot(x, g["mae_vs_target"] if len(g) else [], marker="o", color=colour(i), label=f"target {t:g} {unit}")
        base = meta.get("lookup_mae", {}).get(f"{t:g}")
        if base is not None:
            ax.axhline(base, color=colour(i), ls=":", lw=1, label=f"lookup of published rows, {t:g} {unit}")
    ax.axhline(PAPER_MAE, color="grey", ls="--", lw=1, label=f"paper ≈ {PAPER_MAE:g} {unit}")
    ax.set(xlabel="cumulative DFT calls (both targets)", ylabel=f"DFT MAE of the batch vs target ({unit})",
           title="closed loop: each batch judged before its DFT was known", ylim=(0, None))
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)
