"""Materials as plug-ins: the registry, TOML space files, `space check`, `sample`, and `label`
end to end on a material that is not an MX2 (hBN, two atoms) at tiny GPAW settings."""

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
from ase import Atoms
from ase.io import write

from matdesinne.cli import main
from matdesinne.data.sampling import sample_space
from matdesinne.errors import UserInputError
from matdesinne.materials import builtin_names, load_dataset, material, read_space_file, strain_groups
from matdesinne.validation.report import EDGE_COLUMNS

BIN = Path(sys.executable).parent
TINY = {"name": "tiny", "cutoff": 200.0, "kpoints": 3}


def hbn(folder: Path, parameters: str | None = None, structure: Atoms | None = None) -> Path:
    """A TOML space for monolayer hBN (a = 2.50 Å, 15 Å of cell along c) in ``folder``."""
    atoms = structure if structure is not None else Atoms(
        "BN", scaled_positions=[(1 / 3, 2 / 3, 0.5), (2 / 3, 1 / 3, 0.5)],
        cell=[[2.50, 0, 0], [-1.25, 2.50 * np.sqrt(3) / 2, 0], [0, 0, 15.0]], pbc=True)
    write(folder / "hbn.cif", atoms)
    params = parameters if parameters is not None else 'a = "±10%"\nb = "±10%"\ngamma = [110.0, 130.0]\nefield = [-0.5, 0.5]'
    path = folder / "hbn.toml"
    path.write_text(f'name = "hbn"\nstructure = "hbn.cif"\n[parameters]\n{params}\n[properties]\n'
                    'band_gap = { unit = "eV", lower = 0 }\nstrain_energy = { unit = "eV/atom" }\n')
    return path


def test_builtin_materials_are_found_by_their_folder():
    assert {"mos2", "ws2"} <= set(builtin_names())
    mos2 = material("mos2")
    assert mos2.space() == load_dataset("mos2").space  # one space, wherever it is read from
    ws2 = material("ws2")
    assert [p.name for p in ws2.properties] == ["band_gap", "strain_energy"]
    assert ws2.space().parameter("a").equilibrium == pytest.approx(3.175, abs=0.01)  # the relaxed reference
    with pytest.raises(UserInputError, match="unknown space 'mos3'"):
        material("mos3")


def test_the_mos2_builder_is_the_paper_geometry():
    atoms = material("mos2").build({"a": 3.3, "b": 3.16, "c": 12.30, "alpha": 90.0, "beta": 90.0, "gamma": 120.0,
                                    "efield": -0.2})
    d = 3.13 / 2 / 12.30
    np.testing.assert_allclose(atoms.get_scaled_positions(), [[1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5 + d],
                                                              [2 / 3, 1 / 3, 0.5 - d]], atol=1e-12)
    assert atoms.get_chemical_symbols() == ["Mo", "S", "S"] and atoms.info["efield"] == -0.2 and atoms.info["layer"]


def test_a_toml_space_keeps_the_reference_fractional_coordinates(tmp_path):
    found = read_space_file(hbn(tmp_path))
    space = found.space()
    assert space.names == ["a", "b", "gamma", "efield"] and space.property.name == "band_gap"
    assert space.parameter("a").low == pytest.approx(2.25) and space.parameter("a").high == pytest.approx(2.75)
    assert found.space("strain_energy").property.unit == "eV/atom"
    atoms = found.build({"a": 2.6, "b": 2.4, "gamma": 125.0, "efield": 0.3})
    np.testing.assert_allclose(atoms.cell.cellpar(), [2.6, 2.4, 15.0, 90, 90, 125], atol=1e-9)  # c kept
    np.testing.assert_allclose(atoms.get_scaled_positions(), [[1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]], atol=1e-9)
    assert atoms.info["efield"] == 0.3
    assert list(strain_groups(space)) == ["in-plane (a, b, γ)", "tensile/compressive (a, b)", "shear (γ)"]


def test_space_check_prints_the_space_and_builds_its_corners(tmp_path, capsys):
    assert main(["space", "check", str(hbn(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "hbn" in out and "all 8 corners build" in out and "property strain_energy (eV/atom)" in out
    # a, b, γ and the field vary: a flip of α, β would change nothing, so it is not listed
    assert "symmetry images (designs that build the same crystal; train learns them): field reversed, swap, " \
           "swap (field reversed)" in out


@pytest.mark.parametrize("parameters, structure, fragment", [
    ('a = "±10%"', "missing", "no such structure file"),
    ('a = "±10%"', "garbage", "not a structure ASE can read"),
    ('a = "±10%"', "bulk", "is not a 2D slab"),
    ('d = "±10%"', None, "unknown parameter 'd'"),
    ("a = [2.5, 2.5]", None, "empty or inverted range"),
    ("a = [2.7, 2.4]", None, "empty or inverted range"),
    ('a = "±0%"', None, "empty range"),
    ('a = "20"', None, "is not of the form"),
    ('alpha = "±20%"\nbeta = "±20%"\ngamma = [96.0, 144.0]', None, "makes a degenerate cell"),
])
def test_bad_space_files_are_refused_in_one_line(tmp_path, capsys, parameters, structure, fragment):
    path = hbn(tmp_path, parameters)
    if structure == "missing":
        (tmp_path / "hbn.cif").unlink()
    elif structure == "garbage":
        (tmp_path / "hbn.cif").write_text("not a cif\x00\x01")
    elif structure == "bulk":  # 3 Å along c: no vacuum
        write(tmp_path / "hbn.cif", Atoms("BN", scaled_positions=[(1 / 3, 2 / 3, 0.5), (2 / 3, 1 / 3, 0.0)],
                                          cell=[[2.5, 0, 0], [-1.25, 2.165, 0], [0, 0, 3.0]], pbc=True))
    assert main(["space", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_the_degenerate_corner_is_named(tmp_path):
    with pytest.raises(UserInputError, match=r"corner alpha=72, beta=72, gamma=144"):
        read_space_file(hbn(tmp_path, 'alpha = "±20%"\nbeta = "±20%"\ngamma = [96.0, 144.0]'))


@pytest.mark.parametrize("method", ["sobol", "lhs"])
def test_sample_is_reproducible_and_stratified(method):
    space = material("mos2").space()
    points = sample_space(space, 64, method, seed=3)
    assert points.equals(sample_space(space, 64, method, seed=3))
    assert not points.equals(sample_space(space, 64, method, seed=4))
    x = points[space.names].to_numpy()
    assert space.contains(x).all()
    # Both designs put exactly one point in each of the 64 equal slices of every parameter's range.
    unit = (x - space.lows) / (space.highs - space.lows)
    for column in unit.T:
        assert sorted(np.floor(column * 64).astype(int)) == list(range(64))


def test_sample_cli_respects_constraints_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert main(["sample", "--space", "ws2", "--n", "50", "--method", "uniform", "--seed", "1",
                 "--constrain", "efield=0:0.5", "--out", str(out)]) == 0
    points = pd.read_csv(out)
    assert len(points) == 50 and points["efield"].between(0, 0.5).all() and points["efield"].std() > 0.05
    assert json.loads(out.with_suffix(".json").read_text())["seed"] == 1
    assert main(["sample", "--space", "ws2", "--n", "5", "--constrain", "efield=0:3", "--out", str(out)]) == 2
    assert main(["sample", "--space", "nope.toml", "--n", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "outside the design space" in err[0] and "no such design-space file" in err[1]


@pytest.fixture
def gpaw():
    return pytest.importorskip("gpaw")


def test_label_an_hbn_space_end_to_end_then_train_on_it(tmp_path, gpaw, capsys):
    space_file = hbn(tmp_path)
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY))
    points = tmp_path / "points.csv"
    assert main(["sample", "--space", str(space_file), "--n", "4", "--seed", "0", "--out", str(points)]) == 0
    reference = {"a": 2.5, "b": 2.5, "gamma": 120.0, "efield": 0.0}  # the zero of the strain energy, as a point
    pd.concat([pd.read_csv(points), pd.DataFrame([reference])]).to_csv(points, index=False)
    data = tmp_path / "data.db"
    assert main(["label", str(points), "--space", str(space_file), "--out", str(data), "--settings", str(settings),
                 "--workers", "1"]) == 0
    labelled = pd.read_csv(tmp_path / "data.csv")
    assert list(labelled.columns) == ["a", "b", "gamma", "efield", "band_gap", "strain_energy"]
    assert len(labelled) == 5 and (labelled["band_gap"] >= 0).all()
    energy = labelled["strain_energy"].to_numpy()
    assert energy[-1] == 0.0 and np.isfinite(energy).all() and np.ptp(energy[:-1]) > 0.01
    record = json.loads((tmp_path / "data.json").read_text())
    assert record["labelled"] == 5 and record["distinct_points"] == 5 and record["settings"]["cutoff"] == 200.0
    assert record["points_file"]["made_by"]["method"] == "sobol" and "gpaw" in record["versions"]
    # Every row's band edges, and too few rows to fix a split yet (train draws it)
    results = pd.read_csv(tmp_path / "data_results.csv")
    assert record["band_edges"]["columns"] == EDGE_COLUMNS and results[EDGE_COLUMNS].notna().all().all()
    edges = labelled.merge(results, on=["a", "b", "gamma", "efield"])
    assert len(edges) == 5 and record["band_edges"]["direct"] == int(edges["direct"].sum())
    assert record["split"] is None
    # A second point set in the same store: its dataset holds its own points, in its order,
    # the ones computed before answered from the store.
    again = tmp_path / "again.csv"
    pd.concat([pd.read_csv(points).iloc[[3, 1]], pd.DataFrame([{**reference, "a": 2.6}])]).to_csv(again, index=False)
    assert main(["label", str(again), "--space", str(space_file), "--out", str(data), "--settings", str(settings),
                 "--workers", "1"]) == 0
    assert "1 structures computed" in capsys.readouterr().out
    second = pd.read_csv(tmp_path / "data.csv")
    pd.testing.assert_frame_equal(second.iloc[:2], labelled.iloc[[3, 1]].reset_index(drop=True))
    assert len(second) == 3 and second["a"].iloc[2] == 2.6
    labelled.to_csv(tmp_path / "data.csv", index=False)
    # train reads the dataset in its space (columns and bounds from the TOML, not the CSV)
    rows = pd.concat([labelled] * 3, ignore_index=True)
    rows.to_csv(tmp_path / "more.csv", index=False)
    models = tmp_path / "models"
    assert main(["train", "--data", str(tmp_path / "more.csv"), "--space", str(space_file), "--y", "strain_energy",
                 "--model", "surrogate", "--epochs", "2", "--out", str(models)]) == 0
    surrogate = json.loads((models / "surrogate.json").read_text())
    space = surrogate["design_space"]
    assert space["name"] == "hbn" and space["property"]["name"] == "strain_energy"
    assert space["parameters"][0]["low"] == pytest.approx(2.25)  # the TOML box, not the data's min
    assert surrogate["training"]["space"] == str(space_file.resolve())
    assert main(["structures", str(points), "--models", str(models), "--out", str(tmp_path / "s")]) == 0
    # validate on a space with a strain energy reports it beside the gap: the same numbers label found
    both = tmp_path / "both"
    assert main(["train", "--data", str(tmp_path / "more.csv"), "--space", str(space_file), "--y",
                 "band_gap,strain_energy", "--model", "surrogate", "--epochs", "2", "--out", str(both)]) == 0
    candidates = labelled.iloc[[0, 2]].drop(columns=["band_gap", "strain_energy"])
    candidates.to_csv(tmp_path / "cands.csv", index=False)
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "cands.csv"), "--models", str(both), "--space", str(space_file),
                 "--settings", str(settings), "--out", str(tmp_path / "v.db"), "--workers", "1"]) == 0
    assert "DFT strain energy of 2 candidates" in capsys.readouterr().out
    checked = pd.read_csv(tmp_path / "v.csv")
    np.testing.assert_allclose(checked["dft_strain_energy"], labelled["strain_energy"].iloc[[0, 2]], atol=1e-6)
    assert np.isfinite(checked["strain_energy_pred"]).all()
    summary = json.loads((tmp_path / "v_summary.json").read_text())
    assert summary["strain_energy"]["n"] == 2 and (tmp_path / "v_reference.csv").is_file() and len(checked) == 2


def test_a_killed_label_run_resumes_without_recomputing(tmp_path, gpaw):
    from ase.db import connect

    space_file = hbn(tmp_path)
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY))
    points = tmp_path / "points.csv"
    assert main(["sample", "--space", str(space_file), "--n", "6", "--seed", "2", "--out", str(points)]) == 0
    out = tmp_path / "data.db"
    cmd = [str(BIN / "matdesinne"), "label", str(points), "--space", str(space_file), "--out", str(out),
           "--settings", str(settings), "--workers", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.time() + 120
    while (not out.exists() or connect(out).count() < 2) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {row.key: (row.id, row.ctime) for row in connect(out).select()}
    assert 2 <= len(first) < 7, "the kill should land mid-run"
    assert not (tmp_path / "data.csv").exists()  # no dataset before every point is done
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} finished result(s) already in {out}, kept" in done.stdout
    final = {row.key: (row.id, row.ctime) for row in connect(out).select()}
    assert len(final) == 7 == connect(out).count()  # 6 points and the reference, each once
    assert {k: final[k] for k in first} == first
    assert len(pd.read_csv(tmp_path / "data.csv")) == 6


def test_ws2_ships_data_and_models_that_design(tmp_path, capsys):
    data = load_dataset("ws2")
    assert len(data) >= 256 and data.space.name == "ws2"
    assert set(load_dataset("ws2", y="strain_energy").y) != set(data.y)  # both properties are there
    out = tmp_path / "c.csv"
    assert main(["design", "--space", "ws2", "--target", "0.5", "--n", "2000", "--out", str(out)]) == 0
    candidates = pd.read_csv(out)
    assert len(candidates) > 100 and (candidates["band_gap_pred"] - 0.5).abs().max() <= 0.1
    assert main(["design", "--space", "mos2", "--models", str(material("ws2").models), "--target", "0.5",
                 "--out", str(out)]) == 2
    assert "belong to design space 'ws2', not 'mos2'" in capsys.readouterr().err


@pytest.mark.parametrize("target", [0.5, 1.0])
def test_ws2_candidates_hold_where_down_selection_did_not_look(target):
    """Down-selection puts every candidate within the tolerance under the surrogate; these
    checks look where it did not. The WS2 layer's symmetry images of a candidate are the same
    crystal, are never down-selected, and must still be in the box and on target; and the
    nearest DFT rows of the data, which the surrogate does not speak for, must have gaps near
    the target, from many different rows (candidates not collapsed onto a few designs)."""
    from scipy.spatial import cKDTree

    from matdesinne.evaluation.metrics import normalized
    from matdesinne.models import load_models
    from matdesinne.pipeline import design

    models = load_models(space="ws2")
    space = models.space
    x = design(models, target, n=2000, seed=0).candidates[space.names].to_numpy()
    maps = material("ws2").symmetries()
    assert len(x) > 100 and len(maps) == 3
    for found in maps:
        image = found.apply(x, space.names)
        assert space.contains(image).all() and not np.allclose(image, x), found.name
        assert np.abs(models.surrogate.predict(image)[0] - target).mean() < 0.03, found.name
    data = load_dataset("ws2")
    _, nearest = cKDTree(normalized(data.x, space)).query(normalized(x, space))
    assert abs(np.median(data.y[nearest]) - target) < 0.1
    # random designs' nearest rows miss the target by 0.8-1.3 times the data's own miss; these by about half
    assert np.abs(data.y[nearest] - target).mean() < 0.75 * np.abs(data.y - target).mean()
    assert len(set(nearest)) > len(x) / 3


def test_label_relax_ions_keeps_its_own_store(tmp_path, gpaw, capsys):
    space_file = hbn(tmp_path)
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY))
    points = tmp_path / "points.csv"
    pd.DataFrame([{"a": 2.6, "b": 2.4, "gamma": 125.0, "efield": 0.2}]).to_csv(points, index=False)
    common = ["--space", str(space_file), "--settings", str(settings), "--workers", "1"]
    assert main(["label", str(points), "--out", str(tmp_path / "fixed.db"), *common]) == 0
    assert main(["label", str(points), "--out", str(tmp_path / "fixed.db"), "--relax-ions", *common]) == 2
    assert "holds results for fixed ions, not relaxed ones" in capsys.readouterr().err
    assert main(["label", str(points), "--out", str(tmp_path / "relaxed.db"), "--relax-ions", *common]) == 0
    relaxed = pd.read_csv(tmp_path / "relaxed.csv")
    fixed = pd.read_csv(tmp_path / "fixed.csv")
    # The strained cell pushes the ions; relaxing them from there can only lower the energy
    # (the symmetric reference feels no force, so both stores share its energy).
    assert relaxed["strain_energy"].iloc[0] < fixed["strain_energy"].iloc[0] - 1e-4
    assert relaxed["band_gap"].iloc[0] != fixed["band_gap"].iloc[0]
    assert json.loads((tmp_path / "relaxed.json").read_text())["relax_ions"] is True


def test_label_refuses_points_drawn_in_another_space(tmp_path, gpaw, capsys):
    points = tmp_path / "p.csv"
    assert main(["sample", "--space", "ws2", "--n", "4", "--out", str(points)]) == 0
    assert main(["label", str(points), "--out", str(tmp_path / "d.db")]) == 2  # --space left at its default
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was drawn in space 'ws2'" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv", "p.json"]
