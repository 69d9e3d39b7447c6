"""The cold start on the synthetic space, whose truth is known exactly: the budget holds
across an interruption, nothing is computed twice, and the straddle rule spends the budget
nearer the targets than space-filling does."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SYNTH_NAMES, synth_forward
from matdesinne.data import Parameter, Property
from matdesinne.errors import UserInputError
from matdesinne.loop.coldstart import ColdStart, ColdStartSettings, cold_start
from matdesinne.loop.rules import Straddle, rule
from matdesinne.materials import Material
from matdesinne.validation.engine import Computed, Engine

SYNTH = Material("synthetic", tuple(Parameter(n, 0.0, 1.0, "") for n in SYNTH_NAMES), (Property("gap", "eV", lower=0.0),))


class Killed(Exception):
    """Stands in for kill -9: the engine stops after a number of new calculations."""


@dataclass
class SyntheticEngine:
    """Computes the synthetic truth, keeping each result in a CSV 'store' as it finishes,
    like GPAW's engine keeps its results store; ``stop_after`` new results, it dies."""

    stop_after: int | None = None
    properties: tuple = ("gap",)
    computed_now: list = field(default_factory=list)

    def compute(self, points, folder):
        store = Path(folder) / "store.csv"
        done = pd.read_csv(store) if store.is_file() else pd.DataFrame(columns=[*SYNTH_NAMES, "gap"])
        known = {tuple(r) for r in done[SYNTH_NAMES].to_numpy()}
        for row in points[SYNTH_NAMES].to_numpy():
            if tuple(row) in known:
                continue
            if self.stop_after is not None and len(self.computed_now) >= self.stop_after:
                raise Killed()
            value = float(synth_forward(row[None, :])[0])
            done = pd.concat([done, pd.DataFrame([[*row, value]], columns=[*SYNTH_NAMES, "gap"])], ignore_index=True)
            done.to_csv(store, index=False)
            known.add(tuple(row))
            self.computed_now.append(tuple(row))
        rows = points[SYNTH_NAMES].merge(done, on=SYNTH_NAMES, how="left")
        rows = rows[rows["gap"].notna()].reset_index(drop=True)
        rows.to_csv(Path(folder) / "data.csv", index=False)  # the dataset, in the order asked (it only grows)
        return Computed(rows, int(len(done)))

    def extra_calls(self):
        return 0


def test_the_engines_follow_the_protocol():
    from matdesinne.validation.engine import GPAWEngine

    assert isinstance(SyntheticEngine(), Engine)
    assert isinstance(GPAWEngine(SYNTH), Engine)


def test_the_budget_holds_across_a_kill_and_nothing_is_computed_twice(tmp_path):
    settings = ColdStartSettings(targets=(0.3, 0.8), budget=40, seed_points=12, batch=7, seed=3)
    first = SyntheticEngine(stop_after=15)  # dies in the first acquisition round
    with pytest.raises(Killed):
        ColdStart(SYNTH, settings, first, tmp_path).spend(lambda line: None, progress=False)
    planned = pd.read_csv(tmp_path / "points.csv")
    again = SyntheticEngine()
    rows = ColdStart(SYNTH, settings, again, tmp_path).spend(lambda line: None, progress=False)
    points = pd.read_csv(tmp_path / "points.csv")
    store = pd.read_csv(tmp_path / "store.csv")
    assert len(points) == len(store) == len(rows) == 40  # the budget, spent exactly
    assert not set(first.computed_now) & set(again.computed_now)  # nothing twice
    assert len(first.computed_now) + len(again.computed_now) == 40
    pd.testing.assert_frame_equal(points.iloc[:len(planned)], planned)  # planned before the kill, kept
    np.testing.assert_allclose(rows["gap"], synth_forward(rows[SYNTH_NAMES].to_numpy()))
    state = ColdStart(SYNTH, settings, SyntheticEngine(), tmp_path).state
    assert [r["calls"] for r in state["rounds"]] == [12, 19, 26, 33, 40]
    # Resuming a finished campaign computes nothing more; other settings are refused in one line.
    done = SyntheticEngine()
    ColdStart(SYNTH, settings, done, tmp_path).spend(lambda line: None, progress=False)
    assert done.computed_now == []
    with pytest.raises(UserInputError, match="other budget"):
        ColdStart(SYNTH, ColdStartSettings(targets=(0.3, 0.8), budget=50, seed_points=12, batch=7, seed=3),
                  SyntheticEngine(), tmp_path)


def test_a_plan_interrupted_before_it_was_written_is_made_again_identically(tmp_path):
    settings = ColdStartSettings(targets=(0.5,), budget=30, seed_points=10, batch=5, seed=1)
    ColdStart(SYNTH, settings, SyntheticEngine(), tmp_path / "a").spend(lambda line: None, progress=False)
    ColdStart(SYNTH, settings, SyntheticEngine(), tmp_path / "b").spend(lambda line: None, progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "points.csv"), pd.read_csv(tmp_path / "b" / "points.csv"))


def _near_target_fraction(folder, targets, window=0.1):
    data = pd.read_csv(folder / "store.csv")
    y = data["gap"].to_numpy()
    return float(np.mean(np.min(np.abs(y[:, None] - np.asarray(targets)[None, :]), axis=1) <= window))


def test_straddle_spends_the_budget_nearer_the_targets_than_space_filling(tmp_path):
    targets = (0.6, 1.2)
    fractions = {}
    for name in ("straddle", "space-filling"):
        settings = ColdStartSettings(targets=targets, budget=60, seed_points=15, batch=9, rule=name, seed=0)
        ColdStart(SYNTH, settings, SyntheticEngine(), tmp_path / name).spend(lambda line: None, progress=False)
        acquired = pd.read_csv(tmp_path / name / "points.csv")
        fractions[name] = _near_target_fraction(tmp_path / name, targets)
        assert len(acquired) == 60
    # The exact truth: about a quarter of the box lies within 0.1 of either target.
    assert fractions["straddle"] > fractions["space-filling"] + 0.15, fractions


def test_the_straddle_estimate_of_error_shrinks_with_rows():
    rng = np.random.default_rng(0)
    estimates = []
    for n in (30, 120):
        x = rng.uniform(size=(n, 3))
        est = Straddle().estimates(x, synth_forward(x), 0.0, (0.5,), rng.uniform(size=(512, 3)), 0.1, 0)
        estimates.append(est["0.5"])
    assert estimates[1] < estimates[0]


def test_bad_settings_are_one_line():
    for kwargs, fragment in (({"budget": 1}, "budget"), ({"rule": "magic"}, "unknown acquisition rule"),
                             ({"targets": ()}, "targets"), ({"batch": 0}, "batch")):
        with pytest.raises(UserInputError, match=fragment) as err:
            ColdStartSettings(**{"targets": (0.5,), "budget": 20, **kwargs})
        assert "\n" not in str(err.value)
    with pytest.raises(UserInputError, match="unknown acquisition rule"):
        rule("magic")



def test_a_budget_too_small_to_train_on_is_refused_before_any_calculation(tmp_path):
    engine = SyntheticEngine()
    with pytest.raises(UserInputError, match="give at least 10"):
        ColdStart(SYNTH, ColdStartSettings(targets=(0.5,), budget=9), engine, tmp_path / "c")
    assert engine.computed_now == [] and not (tmp_path / "c").exists()


def test_a_whole_cold_start_trains_and_designs(tmp_path):
    settings = ColdStartSettings(targets=(0.5,), budget=40, seed_points=20, batch=10, epochs=3, augment=500,
                                 n_design=500)
    state = cold_start(SYNTH, settings, SyntheticEngine(), tmp_path, progress=False, device="cpu")
    from matdesinne.models import load_models

    models = load_models(tmp_path / "models")
    assert models.space.names == SYNTH_NAMES and state["candidates"]["0.5"] >= 0
    assert (tmp_path / "candidates-0.5.csv").is_file() and (tmp_path / "coldstart.json").is_file()


@pytest.mark.dft
def test_a_real_cold_start_from_a_toml_space_killed_and_resumed(tmp_path):
    """`matdesinne loop --space hbn.toml --budget 16`: GPAW at tiny settings, SIGKILL once
    the first result is in, the same command again: the budget holds, nothing twice, and
    the models it trains design."""
    pytest.importorskip("gpaw")
    import json
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from test_materials import hbn

    space = hbn(tmp_path)
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps({"name": "tiny", "cutoff": 200.0, "kpoints": 3}))
    out = tmp_path / "campaign"
    argv = [sys.executable, "-m", "matdesinne", "loop", "--space", str(space), "--targets", "3.0", "--budget", "16",
            "--seed-points", "11", "--batch", "4", "--settings", str(settings), "--workers", "1", "--epochs", "2",
            "--augment", "300", "--n", "300", "--out", str(out)]

    def stored() -> list:
        try:
            with sqlite3.connect(out / "data.db") as db:
                return [r[0] for r in db.execute("select key_value_pairs from systems")]
        except sqlite3.Error:
            return []

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and len(stored()) < 2:
        time.sleep(0.2)
    import os

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = stored()
    assert 1 <= len(first) < 16
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = stored()
    points = pd.read_csv(out / "points.csv")
    assert len(rows) == len(points) + 1 <= 16  # every design point once, and the reference
    assert rows[:len(first)] == first  # the finished results survived untouched
    assert "of 16 DFT calls spent" in done.stdout
    state = json.loads((out / "coldstart.json").read_text())
    assert state["rounds"][-1]["calls"] == len(rows) and (out / "models" / "models.json").is_file()
    code = subprocess.run([sys.executable, "-m", "matdesinne", "design", "--models", str(out / "models"), "--target",
                           "3.0", "--n", "200", "--out", str(tmp_path / "c.csv")], capture_output=True, text=True)
    assert code.returncode == 0, code.stderr
