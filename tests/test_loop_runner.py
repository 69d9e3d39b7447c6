"""A campaign in a folder: `loop ask` / `loop tell` on the synthetic space, every bad tell
refused with nothing ingested, and a real GPAW round that is killed and resumed."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import SYNTH_NAMES, synth_forward
from matdesinne.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def truth(frame: pd.DataFrame) -> np.ndarray:
    """The synthetic 'DFT': the known function plus an offset the prior never saw."""
    x = frame[SYNTH_NAMES].to_numpy()
    return np.maximum(0.0, synth_forward(x) + 0.08 * np.sin(3 * x[:, 0]) + 0.05)


@pytest.fixture
def asked(capsys, tmp_path, tiny_models_dir):
    folder = tmp_path / "campaign"
    code, out, err = run(capsys, "loop", "ask", "--out", folder, "--models", tiny_models_dir, "--targets", 0.6,
                         "--batch", 6, "--n", 1500)
    assert code == 0, err
    return folder


def test_ask_tell_round_trip_learns_and_asks_again(capsys, asked, tiny_models_dir):
    batch = pd.read_csv(asked / "ask-0.csv")
    assert len(batch) == 6 and batch["id"].is_unique and (batch["round"] == 0).all()
    assert not (asked / "ask-0").exists()  # the synthetic space has no structure builder
    results = asked / "results.csv"
    batch.assign(gap=truth(batch))[["id", "gap"]].iloc[:4].to_csv(results, index=False)  # a partial tell
    code, out, err = run(capsys, "loop", "tell", results, "--out", asked, "--models", tiny_models_dir)
    assert code == 0, err
    assert "told 4 rows" in out
    state = json.loads((asked / "campaign.json").read_text())
    assert sum(r["tell"] >= 0 for r in state["state"]["rows"]) == 4
    code, out, err = run(capsys, "loop", "ask", "--out", asked, "--models", tiny_models_dir, "--batch", 6)
    assert code == 0, err
    again = pd.read_csv(asked / "ask-1.csv")
    assert (again["round"] == 1).all() and not set(again["id"]) & set(batch["id"])
    # the two still pending from round 0 can be told later
    rest = batch.assign(gap=truth(batch))[["id", "gap"]].iloc[4:]
    rest.to_csv(results, index=False)
    code, out, err = run(capsys, "loop", "tell", results, "--out", asked, "--models", tiny_models_dir)
    assert code == 0, err


def test_every_bad_tell_is_one_line_and_ingests_nothing(capsys, asked, tiny_models_dir):
    batch = pd.read_csv(asked / "ask-0.csv")
    good = batch.assign(gap=truth(batch))[["id", "gap"]]
    cases = {
        "unknown id": good.assign(id=["nope", *good["id"][1:]]),
        "twice": pd.concat([good.iloc[:2], good.iloc[:1]]),
        "not a finite number": good.assign(gap=[np.nan, *good["gap"][1:]]),
        "physical limits": good.assign(gap=[-0.5, *good["gap"][1:]]),
        "missing column": good.rename(columns={"gap": "band_gap"}),
    }
    before = (asked / "campaign.json").read_bytes()
    for fragment, frame in cases.items():
        path = asked / "bad.csv"
        frame.to_csv(path, index=False)
        code, _, err = run(capsys, "loop", "tell", path, "--out", asked, "--models", tiny_models_dir)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and fragment in lines[0] and "nothing was told" in lines[0], (fragment, err)
        assert (asked / "campaign.json").read_bytes() == before
    good.iloc[:1].to_csv(asked / "one.csv", index=False)
    assert run(capsys, "loop", "tell", asked / "one.csv", "--out", asked, "--models", tiny_models_dir)[0] == 0
    code, _, err = run(capsys, "loop", "tell", asked / "one.csv", "--out", asked, "--models", tiny_models_dir)
    assert code == 2 and "already told" in err


def test_a_conflicting_command_line_is_refused_unless_forced(capsys, asked, tiny_models_dir):
    code, _, err = run(capsys, "loop", "ask", "--out", asked, "--models", tiny_models_dir, "--targets", 0.7)
    assert code == 2 and "other targets" in err and "--force" in err
    code, _, err = run(capsys, "loop", "ask", "--out", asked, "--models", tiny_models_dir, "--targets", 0.7,
                       "--batch", 3, "--n", 1500, "--force")
    assert code == 0, err
    state = json.loads((asked / "campaign.json").read_text())
    assert state["settings"]["targets"] == [0.7] and len(state["state"]["rows"]) == 3


TINY = {"name": "tiny", "cutoff": 200.0, "kpoints": 3}


def test_a_real_gpaw_campaign_killed_mid_round_resumes_losing_and_repeating_nothing(tmp_path):
    pytest.importorskip("gpaw")
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY))
    folder = tmp_path / "campaign"
    argv = [sys.executable, "-m", "matdesinne", "loop", "--out", str(folder), "--targets", "0.5", "--rounds", "2",
            "--batch", "2", "--n", "2000", "--settings", str(settings), "--calibration", "none", "--workers", "1",
            "--check", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = folder / "dft.db"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # kill once the first result is committed
        if store.is_file() and _count(store) >= 1:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = _rows(store)
    assert 1 <= len(first) < 4
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(store)
    assert len(rows) == 4 and len({r[1] for r in rows}) == 4  # four designs, each computed once
    assert rows[:len(first)] == first  # the finished results survived untouched
    meta = json.loads((folder / "campaign.json").read_text())
    assert meta["dft_calls"] == 4 and [r["told"] for r in meta["rounds"]] == [2, 2]
    assert (folder / "campaign.png").is_file() and (folder / "candidates-0.5.csv").is_file()
    assert "round 1, target 0.5 eV" in done.stdout
    # The honest score: shipped candidates drawn at random, computed in their own store, never told.
    shipped = pd.read_csv(folder / "shipped.csv")
    candidates = pd.read_csv(folder / "candidates-0.5.csv")
    keys = {tuple(np.round(r, 9)) for r in candidates[["a", "b", "c"]].to_numpy()}
    assert len(shipped) == 2 and all(tuple(np.round(r, 9)) in keys for r in shipped[["a", "b", "c"]].to_numpy())
    assert not {r[1] for r in _rows(folder / "shipped.db")} & {r[1] for r in rows}
    ok = shipped[shipped["status"] == "ok"]
    assert meta["shipped"]["0.5"]["n"] == 2 and meta["dft_calls"] == 4  # not counted as the campaign's, not told
    assert meta["shipped"]["0.5"]["dft_mae_vs_target"] == pytest.approx(float((ok["dft_gap"] - 0.5).abs().mean()))
    assert "shipped candidates, target 0.5 eV" in done.stdout


def _rows(store):
    """(row id, design key, seconds) of every stored result, in order."""
    from ase.db import connect

    return [(r.id, r.key, r.seconds) for r in connect(store, type="db", use_lock_file=False).select(sort="id")]


def _count(store) -> int:
    import sqlite3

    try:
        with sqlite3.connect(store) as db:
            return db.execute("select count(*) from systems").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_refused_campaign_creates_no_folder_and_tell_never_reads_its_own_state(capsys, tmp_path, tiny_models_dir, asked):
    code, _, err = run(capsys, "loop", "ask", "--out", tmp_path / "new", "--models", tiny_models_dir, "--targets", 9.0)
    assert code == 2 and "--targets 9 lies outside" in err and not (tmp_path / "new").exists()
    before = (asked / "campaign.json").read_bytes()
    code, _, err = run(capsys, "loop", "tell", asked / "campaign.json", "--out", asked, "--models", tiny_models_dir)
    assert code == 2 and "also an input" in err and (asked / "campaign.json").read_bytes() == before


def test_a_real_gpaw_campaign_with_several_goals_learns_the_strain_energy_too(capsys, tmp_path):
    pytest.importorskip("gpaw")
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY))
    folder = tmp_path / "campaign"
    code, out, err = run(capsys, "loop", "--space", "ws2", "--out", folder, "--targets", "1.0", "--minimize",
                         "strain_energy", "--rounds", "1", "--batch", "2", "--n", "2000", "--settings", settings,
                         "--calibration", "none", "--workers", "1", "--check", "0")
    assert code == 0, err
    meta = json.loads((folder / "campaign.json").read_text())
    assert meta["settings"]["goals"] == [["minimize", "strain_energy", None]] and "shipped" not in meta
    rows = pd.DataFrame(meta["state"]["rows"])
    assert len(rows) == 2 and rows["band_gap"].notna().all() and rows["strain_energy"].notna().all()
    # what was told is what DFT gave: the design's energy per atom less the reference's
    results = pd.read_csv(folder / "dft.csv")
    told = dict(zip(results["candidate"], results["dft_strain_energy"]))
    np.testing.assert_allclose(sorted(rows["strain_energy"]), sorted(told.values()))
    record = meta["rounds"][0]
    assert record["strain_energy_median"] == pytest.approx(float(np.median(rows["strain_energy"])))
    # Every goal met: the only goal besides the minimized one is the gap within the tolerance.
    assert record["goals_met"] == pytest.approx(float(np.mean(np.abs(rows["band_gap"] - 1.0) <= 0.1)))
    assert "every goal met (DFT) by" in out and "strain_energy median" in out
    corrected = meta["updates"][0]
    assert corrected["told"] == 2
