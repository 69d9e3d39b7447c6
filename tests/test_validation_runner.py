"""`validate` and `calibrate` end to end, with real GPAW at tiny settings on real Dask clusters:
results, failures, resuming after a kill, an external scheduler, and bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase.db import connect

from matdesinne.cli import main
from matdesinne.materials import load_dataset
from matdesinne.materials import material
from matdesinne.errors import UserInputError
from matdesinne.validation.calibration import Calibration
from matdesinne.validation.report import EDGE_COLUMNS
from matdesinne.validation.runner import calibrate, select_rows, validate

TINY = {"name": "tiny", "cutoff": 200.0, "kpoints": 3}
EQ = {"a": 3.16, "b": 3.16, "c": 12.30, "alpha": 90.0, "beta": 90.0, "gamma": 120.0, "efield": 0.0}
METAL = {**EQ, "a": 2.6, "b": 2.6, "c": 14.5, "efield": 0.2}
#: Inside the design space, yet alpha + beta = gamma: no cell has these angles.
DEGENERATE = {**EQ, "alpha": 72.0, "beta": 72.0, "gamma": 144.0}
BIN = Path(sys.executable).parent


@pytest.fixture
def tiny_settings(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return str(path)


def candidates(tmp_path, rows, name="cands.csv", **extra):
    frame = pd.DataFrame(rows).assign(**extra)
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("matdesinne: error:"), err
    return err[0]


def test_calibrate_then_validate_with_failures_and_resume(tmp_path, tiny_settings, capsys):
    cal_path = tmp_path / "cal.json"
    assert main(["calibrate", "--rows", "2", "--holdout", "1", "--seed", "3", "--settings", tiny_settings,
                 "--workers", "2", "--out", str(cal_path)]) == 0
    cal = Calibration.load(cal_path)
    assert len(cal.fit["rows"]) == 2 and len(cal.holdout["rows"]) == 1 and cal.settings["name"] == "tiny"
    published = load_dataset("mos2").y
    np.testing.assert_allclose(cal.fit["published"], published[cal.fit["rows"]])
    assert (tmp_path / "cal.db").exists() and (tmp_path / "cal.png").exists()
    capsys.readouterr()

    path = candidates(tmp_path, [EQ, METAL, DEGENERATE], target=[1.0, 1.0, 0.0], band_gap_pred=[0.98, 0.9, 0.0])
    out = tmp_path / "res" / "results.db"
    out.parent.mkdir()
    args = ["validate", str(path), "--out", str(out), "--settings", tiny_settings, "--workers", "2",
            "--calibration", str(cal_path)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"calibration: gap = max(0, raw - {cal.offset:.3f} eV) from {cal_path}" in printed
    results = pd.read_csv(out.with_suffix(".csv"))
    assert list(results.columns) == ["candidate", *EQ, "target", "band_gap_pred", "dft_gap_raw", "dft_gap",
                                     "dft_energy", "status", "error", "seconds", *EDGE_COLUMNS]
    assert list(results["status"]) == ["ok", "ok", "failed"]
    assert "degenerate cell" in results["error"][2] and np.isnan(results["dft_gap_raw"][2])
    np.testing.assert_allclose(results["dft_gap"][:2], np.maximum(0, results["dft_gap_raw"][:2] - cal.offset), atol=1e-6)
    assert results["dft_gap_raw"][0] > 1.4 and results["dft_gap_raw"][1] < 0.3  # semiconductor, metal
    summary = json.loads((tmp_path / "res" / "results_summary.json").read_text())
    assert summary["by_target"]["1"]["ok"] == 2 and summary["by_target"]["0"]["failed"] == 1
    assert summary["calibration"]["offset"] == cal.offset and summary["computed_this_run"] == 2
    assert (tmp_path / "res" / "results.png").read_bytes()[:4] == b"\x89PNG"
    stored = {row.id: row.ctime for row in connect(out).select()}
    assert len(stored) == 3

    # Run again with one more candidate: only the new one is computed; stored rows are untouched.
    path = candidates(tmp_path, [EQ, METAL, DEGENERATE, {**EQ, "a": 3.3}], target=[1.0, 1.0, 0.0, 1.0])
    run = validate(pd.read_csv(path), load_dataset("mos2").space, out, settings=TINY, calibration=cal, workers=1,
                   progress=False)
    assert run.summary["computed_this_run"] == 1 and run.summary["resumed"] == 3
    after = {row.id: row.ctime for row in connect(out).select()}
    assert {k: after[k] for k in stored} == stored and len(after) == 4

    # A summary covers the designs asked for, not the whole store: one stored candidate, then
    # one new one, each into the store that already holds four results.
    space = load_dataset("mos2").space
    for row, computed in ((METAL, 0), ({**EQ, "a": 3.0}, 1)):
        one = pd.DataFrame([row]).assign(target=[0.5])
        run = validate(one, space, out, settings=TINY, calibration=cal, workers=1, progress=False)
        assert run.summary["n"] == 1 and list(run.summary["by_target"]) == ["0.5"]
        assert run.summary["computed_this_run"] == computed and len(run.results) == 1
        assert run.results["a"].tolist() == [row["a"]] and run.results["candidate"].tolist() == [0]
        dft = run.results["dft_gap"].iloc[0]
        assert run.summary["by_target"]["0.5"]["dft_mae_vs_target"] == pytest.approx(abs(dft - 0.5))
        assert len(pd.read_csv(out.with_suffix(".csv"))) == 1
    assert run.summary["store"]["n"] == 5 == connect(out).count()


def _rows_in(csv: Path) -> int:
    try:
        return len(pd.read_csv(csv))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


def test_a_killed_run_resumes_without_recomputing(tmp_path, tiny_settings):
    rows = [{**EQ, "a": a, "efield": 0.1 * k} for k, a in enumerate([2.9, 3.0, 3.1, 3.2, 3.3])]
    path = candidates(tmp_path, rows)
    out = tmp_path / "results.db"
    cmd = [str(BIN / "matdesinne"), "validate", str(path), "--out", str(out), "--settings", tiny_settings,
           "--workers", "1", "--calibration", "none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.time() + 120
    while _rows_in(out.with_suffix(".csv")) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run, workers included, at an arbitrary moment
    proc.wait()
    first = {row.key: (row.id, row.ctime) for row in connect(out).select()}
    assert 1 <= len(first) < len(rows), "the kill should land mid-run"

    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} finished result(s) already in {out}, kept" in done.stdout
    final = {row.key: (row.id, row.ctime) for row in connect(out).select()}
    assert len(final) == len(rows) == connect(out).count()  # nothing lost, nothing twice
    assert {k: final[k] for k in first} == first
    results = pd.read_csv(out.with_suffix(".csv"))
    assert list(results["candidate"]) == list(range(len(rows))) and (results["status"] == "ok").all()


def test_through_an_external_dask_scheduler_and_worker(tmp_path, tiny_settings, capsys):
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                       "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        path = candidates(tmp_path, [EQ, METAL])
        out = tmp_path / "results.db"
        assert main(["validate", str(path), "--out", str(out), "--settings", tiny_settings,
                     "--scheduler", address, "--calibration", "none"]) == 0
        results = pd.read_csv(out.with_suffix(".csv"))
        assert (results["status"] == "ok").all() and results["dft_gap_raw"][0] > 1.4
        assert "no calibration" in capsys.readouterr().out
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


def test_bad_input_gets_one_line(tmp_path, tiny_settings, capsys):
    good = candidates(tmp_path, [DEGENERATE])  # fails at building: no DFT, no cluster needed
    out = str(tmp_path / "r.db")
    base = ["--out", out, "--settings", tiny_settings, "--calibration", "none"]

    no_column = candidates(tmp_path, [{k: v for k, v in EQ.items() if k != "gamma"}], "nocol.csv")
    assert main(["validate", str(no_column), *base]) == 2
    assert "unknown column(s) gamma" in one_line_error(capsys)
    outside = candidates(tmp_path, [{**EQ, "a": 5.0}], "outside.csv")
    assert main(["validate", str(outside), *base]) == 2
    assert "outside the structure builder's valid range" in one_line_error(capsys)
    mixed = candidates(tmp_path, [DEGENERATE, {**EQ, "a": 5.0}], "mixed.csv")
    assert main(["validate", str(mixed), "--out", str(tmp_path / "m.db"), "--settings", tiny_settings,
                 "--limit", "1"]) == 0  # only the rows being validated must be in range
    capsys.readouterr()
    assert main(["validate", str(good), *base, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in one_line_error(capsys)
    assert main(["validate", str(good), *base, "--scheduler", "tcp://[bad"]) == 2
    assert "--scheduler tcp://[bad: expected an address like tcp://host:8786" in one_line_error(capsys)
    assert main(["validate", str(good), "--out", str(tmp_path / "r.csv"), "--settings", tiny_settings]) == 2
    assert ".db suffix" in one_line_error(capsys)
    assert not list(tmp_path.glob("r.*"))  # nothing written by any refused run

    assert main(["validate", str(good), *base]) == 0
    assert pd.read_csv(tmp_path / "r.csv")["status"].tolist() == ["failed"]
    capsys.readouterr()
    assert main(["validate", str(good), "--out", out, "--settings", "fast", "--calibration", "none"]) == 2
    assert "settings 'tiny'" in one_line_error(capsys)
    assert main(["validate", str(good), "--out", out, "--settings", "fast", "--calibration", "none", "--force"]) == 0
    capsys.readouterr()
    # The shipped standard calibration does not apply to other settings.
    assert main(["validate", str(good), "--out", out, "--settings", "fast", "--calibration",
                 str(Path(__file__).parents[1] / "src/matdesinne/materials/mos2/models/calibration-standard.json")]) == 2
    assert "not 'fast'" in one_line_error(capsys)


SPACE = load_dataset("mos2").space


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("address", ["tcp://host:notaport", "tcp://:8786", "::::", "tcp://[bad", "foo://host:8786",
                                     "tcp://host:99999", "tcp://host:8786/path"])
def test_a_malformed_scheduler_address_is_one_line_before_any_file(tmp_path, tiny_settings, address):
    before = _files(tmp_path)
    with pytest.raises(UserInputError, match="expected an address like tcp://host:8786") as err:
        validate(pd.DataFrame([DEGENERATE]), SPACE, tmp_path / "r.db", settings=tiny_settings, scheduler=address)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"scheduler={address}:")
    assert _files(tmp_path) == before  # not even the results store


def test_workers_with_a_scheduler_or_below_one_are_refused(tmp_path, tiny_settings):
    frame = pd.DataFrame([DEGENERATE])
    with pytest.raises(UserInputError, match="workers= sizes the local cluster"):
        validate(frame, SPACE, tmp_path / "r.db", settings=tiny_settings, scheduler="tcp://127.0.0.1:9", workers=2)
    with pytest.raises(UserInputError, match="workers= must be from 1"):
        validate(frame, SPACE, tmp_path / "r.db", settings=tiny_settings, workers=0)
    assert not list(tmp_path.glob("r.*"))


def test_an_output_never_overwrites_an_input(tmp_path, tiny_settings):
    # `validate cands.csv --out cands.db` would write its results table over cands.csv.
    cands = candidates(tmp_path, [DEGENERATE], "cands.csv")
    # The settings and calibration files count as inputs without being named.
    (tmp_path / "r_summary.json").write_text(json.dumps(TINY))
    cal = Calibration.load(Path(__file__).parents[1] / "src/matdesinne/materials/mos2/models/calibration-standard.json")
    cal.save(tmp_path / "c_summary.json")
    before = _files(tmp_path)
    cases = [(tmp_path / "cands.db", {"inputs": [cands]}),
             (tmp_path / "r.db", {"settings": str(tmp_path / "r_summary.json")}),
             (tmp_path / "c.db", {"calibration": cal})]
    for out, kwargs in cases:
        with pytest.raises(UserInputError, match="is also an input of this command"):
            validate(pd.read_csv(cands), SPACE, out, **{"settings": tiny_settings, **kwargs})
    assert _files(tmp_path) == before


def test_calibrate_refuses_outputs_that_are_its_data_or_each_other(tmp_path, tiny_settings):
    data = tmp_path / "gaps.csv"
    load_dataset("mos2").frame().head(20).to_csv(data, index=False)
    (tmp_path / "cal.json").write_text("{}")
    (tmp_path / "r.png").symlink_to(tmp_path / "cal.json")
    before = _files(tmp_path)
    with pytest.raises(UserInputError, match="gaps.csv: is also an input"):  # --store gaps.db: gaps.csv
        calibrate(tmp_path / "cal.json", data=str(data), store=tmp_path / "gaps.db", settings=tiny_settings)
    with pytest.raises(UserInputError, match="is also an input"):  # --data taken for the --out file
        calibrate(tmp_path / "gaps.json", data=str(tmp_path / "gaps.json"), settings=tiny_settings)
    with pytest.raises(UserInputError, match="named for two different outputs"):  # r.png is cal.json
        calibrate(tmp_path / "cal.json", data=str(data), store=tmp_path / "r.db", settings=tiny_settings)
    with pytest.raises(UserInputError, match="is also an input"):  # the built-in data's own folder
        calibrate(tmp_path / "c.json", store=material("mos2").data.with_suffix(".db"), settings=tiny_settings)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("seed", [-1, 2**32, 2.5, True])
def test_a_seed_outside_numpys_range_is_one_line(tmp_path, seed):
    with pytest.raises(UserInputError, match="seed=") as err:
        select_rows(10, sample=3, seed=seed)
    assert "\n" not in str(err.value)
    with pytest.raises(UserInputError, match="seed="):
        calibrate(tmp_path / "cal.json", seed=seed)
    assert not list(tmp_path.iterdir())
    assert select_rows(10, sample=3, seed=2**32 - 1).size == 3
