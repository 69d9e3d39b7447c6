"""Every script under benchmarks/ at tiny sizes, run as a reader runs it (its own process, this
Python), its figures checked against each other and against the files it wrote: what they
must satisfy whatever the numbers are. DFT runs at the `fast` settings, one or two structures
per script."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matdesinne.materials import material
from matdesinne.pipeline.goals import design_function_values

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # two shared cores: no thread oversubscription


def run(script: str, *args, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert done.returncode == expect, done.stderr[-3000:]
    return done


def table(stdout: str) -> list[list[str]]:
    """The cells of the printed Markdown table rows, header and rule left out."""
    rows = [line.strip("|").split("|") for line in stdout.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:] if not row[0].startswith("---")]


@pytest.fixture
def gpaw():
    return pytest.importorskip("gpaw")


@pytest.fixture(scope="module")
def ws2_rows(tmp_path_factory) -> Path:
    """The first 150 rows of the WS2 data (its whole-box Sobol' points): enough to train on in seconds."""
    path = tmp_path_factory.mktemp("ws2") / "ws2-150.csv"
    pd.read_csv(material("ws2").data).head(150).to_csv(path, index=False)
    return path


def test_heldaside(tmp_path):
    out = run("heldaside.py", "--targets", 0.5, 1.0, "--seeds", 0, 1, "--n", 300, "--json", tmp_path / "h.json").stdout
    report = json.loads((tmp_path / "h.json").read_text())
    [models] = report["models"]
    draws = models["draws"]
    assert [(d["seed"], d["target"]) for d in draws] == [(0, 0.5), (0, 1.0), (1, 0.5), (1, 1.0)]
    assert all(d["mae"] > 0 and 0 < d["kept"] <= 1 for d in draws)
    assert len({d["mae"] for d in draws}) == 4  # each seed draws other samples
    assert models["mean_mae"] == pytest.approx(np.mean([d["mae"] for d in draws]))
    assert table(out) == [["shipped models", f"{models['mean_mae']:.4f}", f"{models['mean_kept']:.3f}"]]


def test_latent(tmp_path):
    out = run("latent.py", "--targets", 0.5, "--seeds", 0, "--n", 300, "--json", tmp_path / "l.json").stdout
    rows = json.loads((tmp_path / "l.json").read_text())["rows"]
    assert [r["latent"] for r in rows] == ["normal", "sobol"]
    for r in rows:
        assert 0 < r["kept"] <= r["in_box"] <= 1
        assert 0 < r["candidates"] <= round(r["kept"] * 300)  # down-selection keeps, localization may drop
        assert r["nn_distance"] > 0 and r["coverage_gap"] > 0
    assert [row[:2] for row in table(out)] == [["0.5", "normal"], ["0.5", "sobol"]]
    assert [float(row[5]) for row in table(out)] == pytest.approx([r["nn_distance"] for r in rows], abs=1e-4)


def test_cfm_steps(tmp_path):
    out = run("cfm_steps.py", "--targets", 0.5, "--n", 300, "--solvers", "euler", "rk4", "--steps", 2, 20,
              "--fit-rows", 100, "--json", tmp_path / "c.json").stdout
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["gp_rows"] == 100
    rows = {(r["solver"], r["steps"]): r for r in report["rows"]}
    assert {k: r["evaluations"] for k, r in rows.items()} == {("euler", 2): 2, ("euler", 20): 20, ("rk4", 2): 8,
                                                              ("rk4", 20): 80}
    assert len(table(out)) == 4
    # Two Euler steps barely leave the Gaussian: far fewer samples pass down-selection than after 20.
    assert rows["euler", 2]["targets"]["0.5"]["kept"] < rows["euler", 20]["targets"]["0.5"]["kept"] / 2


def test_core(tmp_path):
    out = run("core.py", "--targets", 0.5, "--n", 300, "--repeats", 1, "--fit-rows", 100, "--json",
              tmp_path / "core.json").stdout
    report = json.loads((tmp_path / "core.json").read_text())
    test_rows = report["surrogate_test"]["n"]
    assert f"held-out test rows: {test_rows} " in out and report["evaluator_rows"] == 100
    assert 0 < report["surrogate_test"]["near"]["0.5"]["rows"] < test_rows
    assert set(report["independent_evaluators"]) == {"gp", "trees", "mlp-256"}
    raw, pipeline = report["design"]
    assert raw["method"] == "cinn" and raw["n_candidates"] == 300  # raw samples are all kept
    assert pipeline["method"] == "matdesinne-cinn" and 0 < pipeline["n_candidates"] <= pipeline["n_kept"] < 300
    assert pipeline["mae_surrogate"] < raw["mae_surrogate"]  # localization puts them on the surrogate's target
    seconds = pipeline["seconds"]
    assert seconds["generate"] + seconds["downselect"] + seconds["localize"] <= seconds["total"] * 1.01


def test_rows(tmp_path, ws2_rows):
    out = run("rows.py", "--data", ws2_rows, "--space", "ws2", "--sizes", 32, 64, "--targets", 0.5, "--json",
              tmp_path / "r.json").stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["properties"]) == ["band_gap", "strain_energy"]
    for prop in report["properties"].values():
        assert prop["held_out"] == 150 // 5 and [row["rows"] for row in prop["curve"]] == [32, 64]
        assert all(row["mae"] > 0 for row in prop["curve"])
    gap = report["properties"]["band_gap"]["curve"]
    assert all(row["mae_above_limit"] >= row["mae"] for row in gap)  # the metals are the easy rows
    assert [float(row[1]) for row in table(out) if len(row) == 5] == pytest.approx([r["mae"] for r in gap], abs=1e-4)


def test_surrogate_cv(tmp_path, ws2_rows):
    out = run("surrogate_cv.py", "--data", ws2_rows, "--space", "ws2", "--folds", 2, "--targets", 0.5, "--json",
              tmp_path / "cv.json").stdout
    report = json.loads((tmp_path / "cv.json").read_text())
    assert f"{report['rows']} rows in 2 folds" in out and 0 < report["rows"] < 150  # the test rows are left out
    assert [r["symmetry"] for r in report["results"]] == [False, True]
    for r in report["results"]:
        assert r["columns"] == ["MAE all", "MAE above limit", "near 0.5", "strain_energy MAE"]
        assert len(r["mean"]) == len(r["se"]) == 4 and all(m > 0 for m in r["mean"])
    assert [row[0] for row in table(out)] == ["off", "on"]


@pytest.fixture(scope="module")
def dft_run(tmp_path_factory) -> Path:
    pytest.importorskip("gpaw")
    out = tmp_path_factory.mktemp("dft") / "run"
    run("dft.py", "--targets", 0.5, "--per-target", 2, "--n", 300, "--settings", "fast", "--workers", 2, "--out", out)
    return out


def test_dft(dft_run):
    summary = json.loads((dft_run / "benchmark.json").read_text())
    results = pd.read_csv(dft_run / "results.csv")
    candidates = pd.read_csv(dft_run / "candidates.csv")
    assert len(candidates) == 2 and summary["by_target"]["0.5"]["ok"] == 2
    assert (results["status"] == "ok").all() and set(results["target"]) == {0.5}
    # the summary's figures are those of the results file: DFT against the target, and against the surrogate
    assert summary["by_target"]["0.5"]["dft_mae_vs_target"] == pytest.approx((results["dft_gap"] - 0.5).abs().mean())
    assert summary["by_target"]["0.5"]["surrogate_mae_vs_dft"] == pytest.approx(
        (results["band_gap_pred"] - results["dft_gap"]).abs().mean())
    offset = json.loads((material("mos2").models / "calibration-fast.json").read_text())["offset"]
    np.testing.assert_allclose(results["dft_gap"], np.maximum(0, results["dft_gap_raw"] - offset))  # the shipped one


def test_pool(dft_run, tmp_path):
    out = run("pool.py", dft_run, "--json", tmp_path / "p.json").stdout
    pooled = json.loads((tmp_path / "p.json").read_text())["by_target"]
    summary = json.loads((dft_run / "benchmark.json").read_text())["by_target"]["0.5"]
    assert pooled["0.5"]["n"] == 2 and pooled["0.5"]["mae"] == pytest.approx(summary["dft_mae_vs_target"])
    assert pooled["0.5"]["wrong_side"] == summary["wrong_side"] and pooled["all"] == pooled["0.5"]
    gaps = pd.read_csv(dft_run / "results.csv")["dft_gap"].to_numpy()
    assert pooled["0.5"]["se"] == pytest.approx(np.abs(gaps - 0.5).std(ddof=1) / np.sqrt(2))
    assert pooled["0.5"]["signed"] == pytest.approx(gaps.mean() - 0.5)
    assert table(out)[0][:2] == ["0.5", "2"]
    # a folder that is not a dft.py output is refused in one line
    err = run("pool.py", tmp_path, expect=2).stderr.strip().splitlines()
    assert len(err) == 1 and "candidates.csv does not exist" in err[0]


def test_goals(tmp_path, gpaw):
    out = tmp_path / "goals"
    run("goals.py", "--space", "mos2", "--minimize", "strain", "--top", 1, "--repeats", 1, "--settings", "fast",
        "--workers", 1, "--out", out)
    report = json.loads((out / "goals.json").read_text())
    seconds = report["seconds"]
    assert seconds["ratio"] == pytest.approx(seconds["multi_goal"] / seconds["single_goal"])  # one run: its ratio
    lookup = report["lookup"]
    assert lookup["values"] == sorted(lookup["values"]) and len(lookup["values"]) == 1 <= lookup["rows_within_window"]
    top = pd.read_csv(out / "candidates.csv")
    space = material("mos2").space()
    # the candidate's strain, as the script reports it, is the exact strain of the design it sent to DFT
    exact = design_function_values(top[space.names].to_numpy(float), space, "strain")
    assert report["dft"]["n"] == 1 and report["dft"]["strain"]["values"] == pytest.approx(exact.tolist())
    gap = pd.read_csv(out / "dft.csv")["dft_gap"].to_numpy()
    assert report["dft"]["gap_mae"] == pytest.approx(np.abs(gap - 1.0).mean())


def test_symmetry(tmp_path, gpaw):
    out = tmp_path / "sym"
    run("symmetry.py", "--space", "ws2", "--rows", 1, "--settings", "fast", "--workers", 2, "--out", out)
    report = json.loads((out / "symmetry.json").read_text())
    maps = material("ws2").symmetries()
    assert report["maps"] == [m.name for m in maps] and report["images"] == len(maps) * report["rows"] == 3
    assert set(report["properties"]) == {"band_gap", "strain_energy"}
    # The images of one row build the same crystal, so at the same settings DFT gives them the same
    # gap and energy; a wrong map would move them by ~0.1-1 eV. (The row itself was labelled at
    # the standard settings, so its difference from them is not checked here.)
    images = pd.read_csv(out / "images.csv")
    assert len(images) == 3 and images[["a", "b", "alpha", "beta"]].round(6).drop_duplicates().shape[0] == 3
    assert np.ptp(images["band_gap"]) < 1e-3 and np.ptp(images["strain_energy"]) < 1e-3


def test_loop(tmp_path, gpaw):
    # benchmarks/loop.py takes no --n or --space: the shipped MoS2 models, 10,000 samples a round.
    out = tmp_path / "loop"
    stdout = run("loop.py", "--targets", 0.5, "--rounds", 1, "--batch", 2, "--settings", "fast", "--workers", 2,
                 "--check", 1, "--out", out).stdout
    campaign = json.loads((out / "campaign.json").read_text())
    [round0] = campaign["rounds"]
    assert round0["round"] == 0 and round0["told"] == 2 and campaign["calls_by_round"]["0"] >= 2
    told = pd.read_csv(out / "dft.csv")
    told = told[told["status"] == "ok"]
    assert len(told) == 2 and round0["mae_vs_target"] == pytest.approx((told["dft_gap"] - 0.5).abs().mean())
    shipped = pd.read_csv(out / "shipped.csv")
    assert len(shipped) == 1 and campaign["shipped"]["0.5"]["n"] == 1 and "shipped candidates, target 0.5" in stdout
    rounds = [row for row in table(stdout) if len(row) == 8 and row[0] == "0"]
    assert rounds and rounds[0][:3] == ["0", "0.5", "2"] and rounds[0][3] == f"{round0['mae_vs_target']:.3f}"


def test_coldstart(tmp_path):
    out = run("coldstart.py", "--budgets", 30, "--seeds", 0, 1, "--targets", 0.8, "--json", tmp_path / "c.json").stdout
    report = json.loads((tmp_path / "c.json").read_text())
    assert len(report["runs"]) == 4 and all(r["rows"] == 30 for r in report["runs"])
    by_rule = {s["rule"]: s for s in report["summary"]}
    for rule, entry in by_rule.items():
        fractions = [r["near_target_fraction"] for r in report["runs"] if r["rule"] == rule]
        assert entry["near_target_fraction"]["mean"] == pytest.approx(np.mean(fractions))
    rows = {row[1]: row for row in table(out)}
    assert rows["straddle"][2].startswith(f"{by_rule['straddle']['near_target_fraction']['mean']:.3f}")


def test_test_rows(tmp_path):
    out = run("test_rows.py", "--space", "ws2", "--cv-pool", 1325, "--json", tmp_path / "t.json").stdout
    report = json.loads((tmp_path / "t.json").read_text())
    inside, outside = report["test_inside_pool"]["all"], report["test_outside_pool"]["all"]
    assert inside["n"] + outside["n"] == report["test_rows"] == report["test"]["all"]["n"]
    weighted = (inside["mae"] * inside["n"] + outside["mae"] * outside["n"]) / report["test_rows"]
    assert report["test"]["all"]["mae"] == pytest.approx(weighted)
    assert any(row[0] == "test outside pool" for row in table(out))


def test_judge_report_only_reads_the_stores(tmp_path, gpaw):
    out = run("judge.py", "--out", tmp_path, "--materials", "mos2", "--box", 1, "--per-target", 0,
              "--settings", "standard", "--json", tmp_path / "j.json").stdout
    report = json.loads((tmp_path / "j.json").read_text())
    [cell] = report["cells"]
    assert cell["judge"] == "standard" and cell["kind"] == "box" and report["by_judge"] == {}  # no reference yet
    stored = pd.read_csv(tmp_path / "mos2-standard.csv")
    assert cell["gap"] == pytest.approx(float(stored["dft_gap_raw"].iloc[0]))
    again = run("judge.py", "--out", tmp_path, "--materials", "mos2", "--box", 1, "--per-target", 0,
                "--report-only", "--json", tmp_path / "k.json")
    assert json.loads((tmp_path / "k.json").read_text())["cells"] == report["cells"] and "DFT:" not in again.stdout
