"""An ask/tell design campaign that learns from any source of truth, round after round.

Each :meth:`Campaign.ask` designs candidates for every target with the current model
(generate -> down-select -> localize) and picks a batch of them to label (see
:mod:`~matdesinne.loop.acquisition`). Whatever computes the truth (a Python function, DFT,
an experiment) labels them, and :meth:`Campaign.tell` hands the values back; the model is
then updated on every row told so far (see :mod:`~matdesinne.loop.update`), and the next
ask designs with it. The conventions follow BayBE (``recommend`` / ``add_measurements``)
and Ax (``get_next_trial`` / ``complete_trial``): ask and tell exchange plain DataFrames
keyed by a stable row ``id``, and a batch may come back in parts.

Everything is a function of the prior models, the seeds and the rows asked and told, so
:meth:`Campaign.state_dict` is a small JSON-able dict and :meth:`Campaign.from_state` picks
the campaign up in another process.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from matdesinne.data import check_seed
from matdesinne.errors import UserInputError
from matdesinne.loop.acquisition import CONFIDENT, MIN_DISTANCE, select_batch
from matdesinne.loop.coords import design_keys, to_unit
from matdesinne.loop.refit import base_rows
from matdesinne.loop.update import METHODS, apply_update, choose_update
from matdesinne.models import EnsembleSurrogate, ModelSet
from matdesinne.pipeline.design import check_trained_range, design
from matdesinne.pipeline.goals import Goal, Goals, design_function_values, goal_met

#: ``update=`` choices: "auto" cross-validates every method of :data:`~matdesinne.loop.update.METHODS`.
UPDATES = ("auto", *METHODS)

STATE_FORMAT = "matdesinne-campaign"
STATE_VERSION = 1

#: Streams of the campaign's seed, so asks, updates and candidate designs never share one.
_ASK, _UPDATE, _CANDIDATES, _BASE = range(4)


def _one_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


class Campaign:
    """Closed-loop inverse design: ask for designs, tell their true property, repeat.

    Parameters
    ----------
    models : the prior generator and surrogate (:func:`~matdesinne.models.load_models`).
    targets : target property values (property units, e.g. eV), distinct, inside the
        surrogate's trained range.
    tolerance : down-selection's window around each target (property units).
    n_samples : generator samples per target per design (the candidate set).
    seed : the one seed of the campaign (0 to 2**32 - 1); designs, batches and updates
        derive their own from it.
    update : how told rows teach the model: ``"residual"`` (a GP discrepancy added to the
        surrogate), ``"refit"`` (fine-tuning the ensemble), or ``"auto"`` (both, keeping
        the one with the lower K-fold error on the told rows, rechosen at every tell).
    folds : K of that cross-validation (leave-one-out while fewer rows than K are told).
    constraints : narrowed parameter ranges for every design, ``{"efield": (-0.5, 0.5)}``.
    min_distance : how close (unit coordinates, each range of length 1) a new pick may
        come to a design already asked for.
    confident : the fraction of candidates a batch is picked from: those with the lowest
        predicted std before any truth is told, then those closest to a told design (see
        :data:`~matdesinne.loop.acquisition.CONFIDENT`); 1 explores.
    base : ``(x (n, dim), y (n,))`` rows that a refit stays faithful to; default: the
        surrogate's recorded training rows, or uniform points it labels itself.
    refit_options : settings for :func:`~matdesinne.loop.refit.refit_surrogate`
        (``steps``, ``batch_size``, ``weight``, ``lr``).
    goals : further goals beside each target (:class:`~matdesinne.pipeline.goals.Goals`:
        bounds, targets on other properties, an objective such as
        ``Goals.parse(minimize="strain_energy")``); every design then meets them all (see
        :func:`~matdesinne.pipeline.design.design_for_goals`). None: the target alone.

    With a surrogate of several properties, :meth:`tell` takes every one it predicts
    (``<property>`` columns; the further ones may be missing) and the updates learn each.

    Attributes
    ----------
    model : the current surrogate (the prior until the first tell), an
        :class:`~matdesinne.models.EnsembleSurrogate`; ``current_models`` pairs it with the
        generator for :func:`~matdesinne.pipeline.design`.
    round : how many asks have been made (the next ask's round number).

    Example::

        campaign = Campaign(load_models(), targets=[1.0], seed=0)
        for _ in range(3):
            batch = campaign.ask(10)                           # id, a..efield, target, band_gap_pred, ...
            batch["band_gap"] = run_dft(batch[campaign.space.names])
            campaign.tell(batch[["id", "band_gap"]])
        campaign.records()                                     # MAE vs target per round
        json.dump(campaign.state_dict(), open("campaign.json", "w"))
        later = Campaign.from_state(load_models(), json.load(open("campaign.json")))
    """

    def __init__(
        self,
        models: ModelSet,
        targets: Sequence[float],
        tolerance: float = 0.1,
        n_samples: int = 10000,
        seed: int = 0,
        update: str = "auto",
        *,
        folds: int = 5,
        constraints: Mapping[str, tuple[float, float]] | None = None,
        min_distance: float = MIN_DISTANCE,
        confident: float = CONFIDENT,
        base: tuple[np.ndarray, np.ndarray] | None = None,
        refit_options: Mapping | None = None,
        goals: Goals | None = None,
    ):
        self.models = models
        self.prior: EnsembleSurrogate = models.surrogate
        self.space = models.space
        self.targets = _check_targets(targets)
        check_trained_range(self.prior, self.targets, "targets")
        if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
            raise UserInputError(f"the tolerance must be a positive number, got {tolerance!r}")
        for name, value in (("n_samples", n_samples), ("folds", folds)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise UserInputError(f"{name} must be a positive whole number, got {value!r}")
        if update not in UPDATES:
            raise UserInputError(f"unknown update {update!r}: use one of {', '.join(UPDATES)}")
        if not (isinstance(min_distance, (int, float)) and min_distance >= 0):
            raise UserInputError(f"min_distance must be a number, 0 or more, got {min_distance!r}")
        self.tolerance, self.n_samples, self.folds = float(tolerance), int(n_samples), int(folds)
        self.seed = check_seed(seed)
        self.update = update
        self.constraints = {k: (float(lo), float(hi)) for k, (lo, hi) in (constraints or {}).items()}
        self.space.constrain(self.constraints)  # refuses a bad constraint now rather than at the first ask
        self.min_distance = float(min_distance)
        if not (isinstance(confident, (int, float)) and 0 < confident <= 1):
            raise UserInputError(f"confident={confident!r} must be a fraction in (0, 1]")
        self.confident = float(confident)
        self.refit_options = dict(refit_options or {})
        self._base = base
        self.properties = [q.name for q in self.prior.properties_]
        self.goals = _check_goals(goals, self.property_name)
        if self.goals is not None:
            for target in self.targets:  # refuses a target outside the goals' own bounds
                self._goals_for(target).check(self.prior)
        self.model: EnsembleSurrogate = self.prior
        self.round = 0
        self._rows = pd.DataFrame({c: pd.Series(dtype=t) for c, t in self._columns().items()})
        self._updates: list[dict] = []

    # --- columns and seeds ------------------------------------------------------------
    @property
    def property_name(self) -> str:
        return self.space.property.name

    def _columns(self) -> dict[str, str]:
        """The history's columns and dtypes."""
        p = self.property_name
        further = {c: "float64" for q in self.properties[1:] for c in (f"{q}_pred", q)}
        return {"id": "object", "round": "int64", "target": "float64", **{n: "float64" for n in self.space.names},
                f"{p}_pred": "float64", f"{p}_std": "float64", p: "float64", "tell": "int64",
                f"{p}_pred_before": "float64", f"{p}_pred_after": "float64", f"{p}_pred_cv": "float64",
                "update": "object", **further}

    def _asked_columns(self) -> list[str]:
        """The columns :meth:`ask` returns (and :attr:`pending` holds)."""
        p = self.property_name
        return ["id", *self.space.names, "target", f"{p}_pred", f"{p}_std",
                *(f"{q}_pred" for q in self.properties[1:]), "round"]

    def _goals_for(self, target: float) -> Goals:
        """The target on the space's property and the campaign's further goals."""
        return self.goals.plus(Goal("target", self.property_name, float(target)))

    def _seed(self, stream: int, *index: int) -> int:
        """A seed for one use (``stream``, e.g. the ask of round r for target t), from the campaign's."""
        return int(np.random.SeedSequence([self.seed, stream, *index]).generate_state(1)[0])

    @property
    def current_models(self) -> ModelSet:
        """The prior generator with the current surrogate, ready for :func:`~matdesinne.pipeline.design`."""
        return ModelSet(self.models.generator, self.model, self.models.directory)

    def _design(self, target: float, seed: int, n: int | None = None) -> pd.DataFrame:
        wanted = target if self.goals is None else self._goals_for(target)
        return design(self.current_models, wanted, n=n or self.n_samples, tolerance=self.tolerance,
                      constraints=self.constraints, seed=seed).candidates

    # --- ask --------------------------------------------------------------------------
    def ask(self, n: int) -> pd.DataFrame:
        """Design with the current model and pick ``n`` rows per target to label next.

        Returns a DataFrame with columns ``id`` (``"r<round>-t<target>-<k>"``), the design
        parameters, ``target``, ``<property>_pred``, ``<property>_std`` (the current model's
        prediction and uncertainty, property units) and ``round``; up to ``n * len(targets)``
        rows (fewer when a target has fewer eligible candidates). No design asked before,
        told or pending, is asked again. Every ask starts a new round; rows not yet told
        stay pending and may be told later.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise UserInputError(f"ask needs a positive whole number of rows per target, got {n!r}")
        names, p = self.space.names, self.property_name
        asked = self._rows[names].to_numpy()
        batches = []
        for t, target in enumerate(self.targets):
            cands = self._design(target, self._seed(_ASK, self.round, t))
            xs = cands[names].to_numpy()
            pick = select_batch(xs, self._doubt(cands), self.space, int(n), asked, self.min_distance, self.confident)
            asked = np.vstack([asked, xs[pick]])
            chosen = cands.iloc[pick].reset_index(drop=True)
            chosen.insert(0, "id", [f"r{self.round}-t{target!r}-{k}" for k in range(len(chosen))])
            chosen["round"] = self.round
            batches.append(chosen[self._asked_columns()])
        out = pd.concat(batches, ignore_index=True)
        new = out.assign(**{p: np.nan, "tell": -1, f"{p}_pred_before": np.nan, f"{p}_pred_after": np.nan,
                            f"{p}_pred_cv": np.nan, "update": "", **{q: np.nan for q in self.properties[1:]}})
        self._rows = pd.concat([self._rows, new[list(self._columns())]], ignore_index=True).astype(self._columns())
        self.round += 1
        return out.copy()

    def _doubt(self, cands: pd.DataFrame) -> np.ndarray:
        """How little the model can vouch for each candidate, shape (n,): with ``confident``
        below 1 and truths told, the distance (unit coordinates) to the nearest told design;
        else the predicted std."""
        told = self._rows[self._rows["tell"] >= 0]
        if self.confident >= 1 or told.empty:
            return cands[f"{self.property_name}_std"].to_numpy()
        u, known = to_unit(cands[self.space.names].to_numpy(), self.space), to_unit(told[self.space.names].to_numpy(), self.space)
        return np.min(np.linalg.norm(u[:, None, :] - known[None, :, :], axis=-1), axis=1)

    # --- tell -------------------------------------------------------------------------
    def _checked_tell(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Positions in the history (m,) and values (m, properties) of a tell, or a one-line
        refusal. A further property's column may be missing or hold blanks (NaN: not told)."""
        p, names = self.property_name, self.space.names
        if not isinstance(frame, pd.DataFrame):
            raise UserInputError(f"tell needs a DataFrame with columns id and {p}, got {type(frame).__name__}")
        missing = [c for c in ("id", p) if c not in frame.columns]
        if missing:
            raise UserInputError(f"tell: missing column(s) {', '.join(missing)}; it needs id and {p}; nothing was told")
        if len(frame) == 0:
            raise UserInputError("tell: the frame has no rows; nothing was told")
        ids = [str(i) for i in frame["id"]]
        position = {i: k for k, i in enumerate(self._rows["id"])}
        seen: set[str] = set()
        for row, i in enumerate(ids, start=1):
            if i not in position:
                raise UserInputError(f"tell: unknown id {i!r} on row {row}: it was never asked; nothing was told")
            if i in seen:
                raise UserInputError(f"tell: id {i!r} appears twice (row {row}); nothing was told")
            if self._rows.at[position[i], "tell"] >= 0:
                raise UserInputError(f"tell: id {i!r} (row {row}) was already told; nothing was told")
            seen.add(i)
        columns = []
        for j, prop in enumerate(self.prior.properties_):
            q = prop.name
            if q not in frame.columns:
                columns.append(np.full(len(frame), np.nan))
                continue
            values = pd.to_numeric(frame[q], errors="coerce").to_numpy(dtype=np.float64)
            for row, (i, v) in enumerate(zip(ids, values), start=1):
                blank = j > 0 and pd.isna(frame[q].iloc[row - 1])  # a further property not told
                if not math.isfinite(v) and not blank:
                    raise UserInputError(f"tell: {q} of id {i!r} (row {row}) is {frame[q].iloc[row - 1]}, "
                                         "not a finite number; nothing was told")
                if (prop.lower is not None and v < prop.lower) or (prop.upper is not None and v > prop.upper):
                    raise UserInputError(f"tell: {q} = {v:g} of id {i!r} (row {row}) lies outside the physical limits "
                                         f"{prop.lower}:{prop.upper} {prop.unit}; nothing was told")
            columns.append(values)
        values = np.column_stack(columns)
        pos = np.array([position[i] for i in ids], dtype=np.int64)
        if all(n in frame.columns for n in names):  # designs that come back must be the ones asked
            sent = frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
            for row, (i, a, b) in enumerate(zip(ids, design_keys(sent, self.space),
                                                 design_keys(self._rows.loc[pos, names].to_numpy(), self.space)), start=1):
                if a != b:
                    raise UserInputError(f"tell: the design of id {i!r} (row {row}) differs from the one asked; "
                                         "nothing was told")
        order = np.argsort(pos, kind="stable")  # asked order, whatever order the frame came in
        return pos[order], values[order]

    def tell(self, frame: pd.DataFrame) -> dict:
        """Ingest true values: ``frame`` holds columns ``id`` and ``<property>`` (others are
        ignored, except that design columns, if all present, must match the asked designs).

        A partial tell is fine: untold rows stay pending. Refused in one line
        (``UserInputError``), with nothing ingested: a missing column, no rows, an unknown
        id, an id repeated in the frame or told before, a value that is NaN, infinite or not
        a number, or one outside the property's physical limits. Then the model is updated
        on every row told so far, and the update's record is returned (also in
        :attr:`updates`): ``tell``, ``rows``, ``told``, ``method``, ``scores`` (K-fold MAE
        per method), ``seed``.
        """
        pos, values = self._checked_tell(frame)
        p, names = self.property_name, self.space.names
        k = len(self._updates)
        rows = self._rows.copy()
        for j, q in enumerate(self.properties):
            rows.loc[pos, q] = values[:, j]
        rows.loc[pos, "tell"] = k
        told = self._told_positions(rows)
        x_all, y_all = rows.loc[told, names].to_numpy(), self._told_values(rows, told)
        methods = METHODS if self.update == "auto" else (self.update,)
        seed = self._seed(_UPDATE, k)
        before = self.model.predict(rows.loc[pos, names].to_numpy())[0]
        result = choose_update(self.prior, x_all, y_all, methods, folds=self.folds, seed=seed,
                               base=self._base_rows() if "refit" in methods else None, refit_options=self.refit_options)
        where = {int(q): j for j, q in enumerate(told)}
        rows.loc[pos, f"{p}_pred_before"] = before
        rows.loc[pos, f"{p}_pred_after"] = result.model.predict(rows.loc[pos, names].to_numpy())[0]
        rows.loc[pos, f"{p}_pred_cv"] = result.held_out[result.method][[where[int(q)] for q in pos]]
        rows.loc[pos, "update"] = result.method
        record = {"tell": k, "rows": int(len(pos)), "told": int(len(told)), "method": result.method,
                  "scores": result.scores, "seed": seed}
        self._rows, self.model = rows, result.model  # commit only once everything worked
        self._updates.append(record)
        return dict(record)

    @staticmethod
    def _told_positions(rows: pd.DataFrame) -> np.ndarray:
        """Positions of told rows in the order the model learns them: by tell, then as asked."""
        told = rows.index[rows["tell"].to_numpy() >= 0].to_numpy()
        return told[np.lexsort((told, rows.loc[told, "tell"].to_numpy()))]

    def _told_values(self, rows: pd.DataFrame, told: np.ndarray) -> np.ndarray:
        """The told values the model learns: (n,) for one property, (n, k) for several."""
        if len(self.properties) == 1:
            return rows.loc[told, self.property_name].to_numpy()
        return rows.loc[told, self.properties].to_numpy(dtype=np.float64)

    def _base_rows(self) -> tuple[np.ndarray, np.ndarray]:
        if self._base is None:
            self._base = base_rows(self.prior, seed=self._seed(_BASE))[:2]
        return self._base

    # --- reading ----------------------------------------------------------------------
    @property
    def history(self) -> pd.DataFrame:
        """Every asked row: ``id``, ``round``, ``target``, the design, ``<property>_pred`` and
        ``_std`` (the model at ask time), ``<property>`` (the told value; NaN while pending),
        ``tell`` (which tell brought it; -1 pending), ``<property>_pred_before`` and
        ``_pred_after`` (the model's prediction just before and after that tell's update),
        ``<property>_pred_cv`` (its K-fold held-out prediction at that update), ``update``
        (the method chosen then); with several properties, ``<q>_pred`` (at ask time) and
        ``<q>`` (told) for each further one."""
        return self._rows.copy()

    @property
    def pending(self) -> pd.DataFrame:
        """The asked rows not told yet (columns as :meth:`ask` returns them)."""
        rows = self._rows[self._rows["tell"] < 0]
        return rows[self._asked_columns()].reset_index(drop=True)

    @property
    def updates(self) -> list[dict]:
        """One record per tell: which update method was chosen and the K-fold MAE of each."""
        return [dict(u) for u in self._updates]

    def records(self) -> pd.DataFrame:
        """One row per round and target, over the rows told so far (property units):

        ``asked``, ``told``; ``mae_vs_target`` (the truth of the batch proposed before its
        truth was known, against the target); ``wrong_side`` (rows whose truth lies on the
        other side of the property's floor than the target: a metal where a gap was wanted,
        or the reverse); ``model_mae_before`` (the model's error on the batch just before
        the update that learned it) and ``model_mae_after_cv`` (held-out error after it, from
        the spatial K-fold cross-validation; the lower of the methods compared, so slightly
        optimistic: :func:`~matdesinne.loop.runner.check_shipped` gives the honest figure); ``method`` (the update chosen). With further goals:
        ``goals_met`` (the fraction of told rows whose truth meets every goal: the target
        within ``tolerance``, each bound, each further target) and ``<q>_median`` (the told
        truth's median) for each further goal's quantity, a design function computed from
        the design.
        """
        p = self.property_name
        lower = self.space.property.lower
        out = []
        for (rnd, target), g in self._rows.groupby(["round", "target"], sort=True):
            told = g[g["tell"] >= 0]
            y = told[p].to_numpy()
            wrong = (int(((y <= lower) != (target <= lower)).sum()) if lower is not None else 0)
            out.append({
                "round": int(rnd), "target": float(target), "asked": int(len(g)), "told": int(len(told)),
                "mae_vs_target": _mean(np.abs(y - target)), "wrong_side": wrong,
                "model_mae_before": _mean(np.abs(told[f"{p}_pred_before"].to_numpy() - y)),
                "model_mae_after_cv": _mean(np.abs(told[f"{p}_pred_cv"].to_numpy() - y)),
                "method": ",".join(sorted(set(told["update"]))),
                **self._goal_records(told, float(target)),
            })
        further = [] if self.goals is None else ["goals_met", *(f"{q}_median" for q in self.goals.quantities)]
        return pd.DataFrame(out, columns=["round", "target", "asked", "told", "mae_vs_target", "wrong_side",
                                          "model_mae_before", "model_mae_after_cv", "method", *further])

    def _goal_records(self, told: pd.DataFrame, target: float) -> dict:
        """``goals_met`` and ``<q>_median`` of told rows under the truth (see :meth:`records`)."""
        if self.goals is None:
            return {}
        truth = {q: (told[q].to_numpy(dtype=np.float64) if q in self.properties
                     else design_function_values(told[self.space.names].to_numpy(), self.space, q))
                 for q in self.goals.quantities}
        met = goal_met(Goal("target", self.property_name, target), told[self.property_name].to_numpy(), self.tolerance)
        for g in self.goals.constraints:
            met = met & goal_met(g, truth[g.quantity], self.tolerance)  # a NaN (not told) meets nothing
        out = {"goals_met": float(met.mean()) if len(told) else None}
        for q, v in truth.items():
            v = v[np.isfinite(v)]
            out[f"{q}_median"] = float(np.median(v)) if len(v) else None
        return out

    def candidates(self, target: float, n: int | None = None, seed: int | None = None) -> pd.DataFrame:
        """Candidates for ``target`` designed with the current model (``n`` samples, default
        ``n_samples``): the design, ``<property>_pred`` and ``<property>_std`` (the std
        includes a learned correction's uncertainty) and ``target``, as
        :func:`~matdesinne.pipeline.design` returns them. ``seed`` defaults to one derived
        from the campaign's seed and round."""
        seed = self._seed(_CANDIDATES, self.round) if seed is None else check_seed(seed)
        return self._design(float(target), seed, n)

    # --- saving -----------------------------------------------------------------------
    def settings(self) -> dict:
        """The constructor's settings, JSON-able (``base`` is not kept: pass it again)."""
        return {"targets": list(self.targets), "tolerance": self.tolerance, "n_samples": self.n_samples,
                "seed": self.seed, "update": self.update, "folds": self.folds,
                "constraints": {k: list(v) for k, v in self.constraints.items()}, "min_distance": self.min_distance, "confident": self.confident,
                "refit_options": dict(self.refit_options),
                **({} if self.goals is None else {"goals": self.goals.to_records()})}

    def state_dict(self) -> dict:
        """Everything needed to resume, JSON-able (no NaN: missing values are None):
        the settings, the design space, the round, every asked row and the update records.
        Models are not in it: :meth:`from_state` rebuilds the current one from the rows."""
        rows = self._rows.astype(object).where(self._rows.notna(), None)
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "design_space": self.space.to_dict(),
                "settings": self.settings(), "round": self.round,
                "rows": [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict("records")],
                "updates": [dict(u) for u in self._updates]}

    @classmethod
    def from_state(cls, models: ModelSet, state: Mapping, base: tuple[np.ndarray, np.ndarray] | None = None) -> "Campaign":
        """Rebuild a campaign from :meth:`state_dict` with the same prior ``models`` (and the
        same ``base`` if one was given). The current model is recomputed from the told rows
        with the last update's method and seed, so the rebuilt campaign asks exactly what
        the original would have. A state of another format, version or design space is
        refused in one line."""
        try:
            if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
                raise ValueError(f"not a {STATE_FORMAT} state of version {STATE_VERSION}")
            if state["design_space"] != models.space.to_dict():
                raise UserInputError(f"the campaign state belongs to design space {state['design_space'].get('name')!r}, "
                                     f"not to these models' {models.space.name!r}")
            settings = dict(state["settings"])
            settings["constraints"] = {k: tuple(v) for k, v in settings["constraints"].items()}
            if "goals" in settings:
                settings["goals"] = Goals.from_records(settings["goals"])
            campaign = cls(models, base=base, **settings)
            columns = campaign._columns()
            rows = pd.DataFrame(list(state["rows"]), columns=list(columns))
            campaign._rows = rows.fillna({c: np.nan for c, t in columns.items() if t == "float64"}).astype(columns)
            campaign.round = int(state["round"])
            campaign._updates = [dict(u) for u in state["updates"]]
        except UserInputError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise UserInputError(f"the campaign state is damaged or of another version ({_one_line(err)})") from None
        if campaign._updates:
            last = campaign._updates[-1]
            told = campaign._told_positions(campaign._rows)
            x = campaign._rows.loc[told, models.space.names].to_numpy()
            y = campaign._told_values(campaign._rows, told)
            base_needed = campaign._base_rows() if last["method"] == "refit" else None
            campaign.model = apply_update(last["method"], campaign.prior, x, y, seed=int(last["seed"]), base=base_needed,
                                          refit_options=campaign.refit_options)
        return campaign


def _check_targets(targets) -> list[float]:
    """Targets as distinct finite floats, or a one-line refusal."""
    try:
        values = [float(t) for t in targets]
    except (TypeError, ValueError):
        raise UserInputError(f"targets must be a list of numbers, got {targets!r}") from None
    if not values or not all(math.isfinite(t) for t in values) or len(set(values)) != len(values):
        raise UserInputError(f"targets must be one or more distinct finite numbers, got {values}")
    return values


def _check_goals(goals, primary: str) -> Goals | None:
    """Further goals as given, None for none, or a one-line refusal."""
    if goals is None or (isinstance(goals, Goals) and not goals.items):
        return None
    if not isinstance(goals, Goals):
        raise UserInputError(f"goals must be Goals (matdesinne.pipeline.goals.Goals.parse(...)), got {type(goals).__name__}")
    if any(g.kind == "target" and g.quantity == primary for g in goals.items):
        raise UserInputError(f"give the campaign's {primary} targets as targets=, not among the further goals")
    return goals


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _plain(value):
    """A NumPy scalar as the plain Python number JSON wants."""
    return value.item() if isinstance(value, np.generic) else value
