"""A new material before any model exists (issue 32): `space check`, `sample`, `label`,
`structures` and `validate` need only its TOML space; the commands that predict or design
refuse in one line that names the command making their models."""

import json

import numpy as np
import pandas as pd
import pytest
from ase.io import read

from matdesinne.cli import main
from test_materials import TINY, hbn


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("matdesinne: error:"), err
    return err[0]


def test_sample_then_structures_of_a_toml_space(tmp_path, capsys):
    space_file = hbn(tmp_path)
    assert main(["space", "check", str(space_file)]) == 0
    points = tmp_path / "points.csv"
    assert main(["sample", "--space", str(space_file), "--n", "3", "--out", str(points)]) == 0
    out = tmp_path / "structures"
    assert main(["structures", str(points), "--space", str(space_file), "--format", "cif", "--out", str(out)]) == 0
    index = pd.read_csv(out / "index.csv")
    drawn = pd.read_csv(points)
    assert len(index) == 3 and np.array_equal(index[["a", "b"]].to_numpy(), drawn[["a", "b"]].to_numpy())
    first = read(out / index["file"].iloc[0])
    assert first.get_chemical_formula() == "BN"
    np.testing.assert_allclose(first.cell.cellpar()[0], drawn["a"].iloc[0], rtol=1e-9)
    # Bad input is still one line: a row outside the space's box, an unknown space.
    pd.DataFrame([{**drawn.iloc[0].to_dict(), "a": 9.0}]).to_csv(tmp_path / "far.csv", index=False)
    capsys.readouterr()
    assert main(["structures", str(tmp_path / "far.csv"), "--space", str(space_file), "--out", str(tmp_path / "s2")]) == 2
    assert "outside the structure builder's valid range" in one_line_error(capsys)
    assert main(["structures", str(points), "--space", "nope.toml", "--out", str(tmp_path / "s3")]) == 2
    assert "nope.toml" in one_line_error(capsys)
    assert not (tmp_path / "s2").exists() and not (tmp_path / "s3").exists()


@pytest.mark.parametrize("command", [
    ["design", "--target", "1.0", "--out", "c.csv"],
    ["predict", "--in", "points.csv", "--out", "p.csv"],
    ["analyze", "--out", "an"],
    ["benchmark", "--out", "bench"],
    ["loop", "ask", "--targets", "1.0", "--out", "campaign"],
])
def test_commands_that_predict_name_the_command_that_makes_models(tmp_path, capsys, monkeypatch, command):
    space_file = hbn(tmp_path)
    monkeypatch.chdir(tmp_path)
    pd.DataFrame([{"a": 2.5, "b": 2.5, "gamma": 120.0, "efield": 0.0}]).to_csv("points.csv", index=False)
    assert main([*command, "--space", str(space_file)]) == 2
    err = one_line_error(capsys)
    assert "space 'hbn' ships no models" in err and f"matdesinne train --data DATA.csv --space {space_file}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hbn.cif", "hbn.toml", "points.csv"]  # nothing written


def test_sample_label_structures_validate_with_no_train(tmp_path, capsys):
    pytest.importorskip("gpaw")
    space_file = hbn(tmp_path)
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY))
    common = ["--space", str(space_file), "--settings", str(settings), "--workers", "1"]
    points = tmp_path / "points.csv"
    assert main(["sample", "--space", str(space_file), "--n", "2", "--seed", "1", "--out", str(points)]) == 0
    assert main(["label", str(points), "--out", str(tmp_path / "data.db"), *common]) == 0
    labelled = pd.read_csv(tmp_path / "data.csv")
    assert len(labelled) == 2
    # The structures label computed, seen before any model exists.
    out = tmp_path / "structures"
    assert main(["structures", str(points), "--space", str(space_file), "--out", str(out)]) == 0
    frames = read(out / "structures.extxyz", index=":")
    assert len(frames) == 2 and all(f.get_chemical_formula() == "BN" for f in frames)
    # validate without models: DFT beside no predictions, the same numbers label found.
    capsys.readouterr()
    assert main(["validate", str(points), "--out", str(tmp_path / "v.db"), *common]) == 0
    printed = capsys.readouterr().out
    energy = [line for line in printed.splitlines() if line.startswith("DFT strain energy of 2 candidates")]
    assert "no calibration" in printed and len(energy) == 1 and "surrogate" not in energy[0]
    checked = pd.read_csv(tmp_path / "v.csv")
    assert (checked["status"] == "ok").all() and checked["band_gap_pred"].isna().all()
    assert "strain_energy_pred" not in checked
    np.testing.assert_allclose(checked["dft_gap"], labelled["band_gap"], atol=1e-6)
    np.testing.assert_allclose(checked["dft_strain_energy"], labelled["strain_energy"], atol=1e-6)
    summary = json.loads((tmp_path / "v_summary.json").read_text())
    assert summary["by_target"]["all"]["surrogate_mae_vs_dft"] is None and summary["strain_energy"]["n"] == 2
    assert (tmp_path / "v.png").is_file()
    assert not any(p.name.endswith(".safetensors") for p in tmp_path.rglob("*"))  # no model was ever made
