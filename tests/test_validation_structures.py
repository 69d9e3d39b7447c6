"""Structures from design parameters: geometry, formats, registry, and bad input."""

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.io import read

from conftest import synth_space
from matdesinne.cli import main
from matdesinne.materials import load_dataset
from matdesinne.errors import UserInputError
from matdesinne.materials import material
from matdesinne.validation import build_structures, write_structures

build_mos2 = material("mos2").builder

EQUILIBRIUM = {"a": 3.16, "b": 3.16, "c": 12.30, "alpha": 90.0, "beta": 90.0, "gamma": 120.0, "efield": 0.3}


def test_equilibrium_mos2_geometry():
    atoms = build_mos2(EQUILIBRIUM)
    assert atoms.get_chemical_formula() == "MoS2"
    d = atoms.get_all_distances(mic=True)
    assert d[0, 1] == pytest.approx(2.404, abs=0.005) and d[0, 2] == pytest.approx(2.404, abs=0.005)  # Mo-S
    assert d[1, 2] == pytest.approx(3.13, abs=1e-6)  # S-S thickness
    np.testing.assert_allclose(atoms.cell.cellpar(), [3.16, 3.16, 12.30, 90, 90, 120], atol=1e-9)
    assert atoms.info["efield"] == 0.3


def test_strain_keeps_fractional_coordinates():
    stretched = build_mos2({**EQUILIBRIUM, "c": 12.30 * 1.1, "alpha": 95.0})
    np.testing.assert_allclose(stretched.get_scaled_positions(), build_mos2(EQUILIBRIUM).get_scaled_positions(), atol=1e-12)
    # The layer thickness follows c (fixed fractional coordinates, not a fixed Cartesian thickness).
    assert stretched.get_distance(1, 2, mic=True) > 3.13 * 1.05


def test_degenerate_cell_is_refused():
    with pytest.raises(UserInputError, match="degenerate"):
        build_mos2({**EQUILIBRIUM, "alpha": 150.0, "beta": 150.0, "gamma": 60.0})


def test_build_structures_checks_columns_and_range():
    space = load_dataset("mos2").space
    good = pd.DataFrame([EQUILIBRIUM])
    assert len(build_structures(good, space)) == 1
    with pytest.raises(UserInputError, match="outside the structure builder's valid range"):
        build_structures(pd.DataFrame([{**EQUILIBRIUM, "a": 4.5}]), space)
    with pytest.raises(UserInputError, match="unknown column"):
        build_structures(good.drop(columns="efield"), space)
    with pytest.raises(UserInputError, match="no structure builder"):
        build_structures(pd.DataFrame({"p0": [0.5], "p1": [0.5], "p2": [0.5]}), synth_space())


def test_a_user_design_space_can_bring_its_builder():
    space = synth_space()
    build = lambda row: Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.5 + row["p0"]]])  # noqa: E731
    atoms = build_structures(pd.DataFrame({"p0": [0.2], "p1": [0.5], "p2": [0.5]}), space, build=build)
    assert atoms[0].get_distance(0, 1) == pytest.approx(0.7)


@pytest.mark.parametrize("fmt, pattern", [("cif", "structure_*.cif"), ("poscar", "structure_*.vasp"), ("extxyz", "structures.extxyz")])
def test_written_structures_read_back(tmp_path, fmt, pattern):
    space = load_dataset("mos2").space
    frame = pd.DataFrame([EQUILIBRIUM, {**EQUILIBRIUM, "a": 3.3, "gamma": 125.0, "efield": -0.5}])
    atoms = build_structures(frame, space)
    out = tmp_path / "st"
    paths = write_structures(atoms, frame, out, fmt)
    files = sorted(out.glob(pattern))
    index = pd.read_csv(out / "index.csv")
    assert list(index["efield"]) == [0.3, -0.5] and (out / "index.csv") in paths and all(p.is_file() for p in paths)
    back = read(files[0], index=":") if fmt == "extxyz" else [read(f) for f in files]
    assert len(back) == 2
    for got, want in zip(back, atoms):
        np.testing.assert_allclose(got.cell.cellpar(), want.cell.cellpar(), atol=1e-4)
    if fmt == "extxyz":
        assert [b.info["efield"] for b in back] == [0.3, -0.5]


def test_structures_cli(tmp_path, capsys):
    cands = tmp_path / "c.csv"
    assert main(["design", "--target", "1.0", "--n", "200", "--out", str(cands)]) == 0
    out = tmp_path / "st"
    assert main(["structures", str(cands), "--format", "poscar", "--out", str(out)]) == 0
    assert len(list(out.glob("*.vasp"))) == len(pd.read_csv(cands))
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    pd.read_csv(cands).drop(columns="c").to_csv(bad, index=False)
    assert main(["structures", str(bad), "--out", str(tmp_path / "st2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown column" in err[0] and not (tmp_path / "st2").exists()


def test_csv_round_off_at_a_bound_is_on_the_bound():
    space = load_dataset("mos2").space
    high = space.parameter("b").high
    # A candidate localized exactly onto a bound, then written with 7 significant digits.
    rounded = float(f"{high * (1 + 4e-8):.7g}")
    atoms = build_structures(pd.DataFrame([{**EQUILIBRIUM, "b": max(rounded, high + 1e-7)}]), space)
    assert atoms[0].cell.cellpar()[1] == pytest.approx(high)
    with pytest.raises(UserInputError, match="outside"):
        build_structures(pd.DataFrame([{**EQUILIBRIUM, "b": high + 1e-3}]), space)


def _two_structures():
    frame = pd.DataFrame([EQUILIBRIUM, {**EQUILIBRIUM, "a": 3.3, "efield": -0.5}])
    return build_structures(frame, load_dataset("mos2").space), frame


def test_a_new_run_replaces_an_old_folder_whole(tmp_path):
    atoms, frame = _two_structures()
    out = tmp_path / "st"
    write_structures(atoms, frame, out, "cif")
    assert len(list(out.glob("*.cif"))) == 2
    write_structures(atoms[:1], frame[:1], out, "extxyz")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["index.csv", "structures.extxyz"]
    assert len(pd.read_csv(out / "index.csv")) == 1
    assert not [p for p in tmp_path.iterdir() if p.name != "st"]  # no temporary folder left beside it


def test_a_folder_with_a_users_files_is_refused_and_untouched(tmp_path):
    atoms, frame = _two_structures()
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UserInputError, match="matdesinne did not write") as err:
        write_structures(atoms, frame, out, "cif")
    assert "\n" not in str(err.value)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


def test_a_failure_midway_leaves_the_old_folder_as_it_was(tmp_path, monkeypatch):
    import ase.io

    atoms, frame = _two_structures()
    atoms = atoms + atoms  # four structures
    frame = pd.concat([frame, frame], ignore_index=True)
    out = tmp_path / "st"
    write_structures(atoms[:3], frame[:3], out, "poscar")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    written = []
    real_write = ase.io.write

    def failing_write(*args, **kwargs):
        if len(written) == 2:
            raise RuntimeError("ASE failed")
        written.append(args[0])
        return real_write(*args, **kwargs)

    monkeypatch.setattr(ase.io, "write", failing_write)
    with pytest.raises(RuntimeError, match="ASE failed"):
        write_structures(atoms, frame, out, "cif")
    assert len(written) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name != "st"]
