"""The GPAW engine, with real calculations at tiny settings (no mocks): a gap, and failures
that come back as recorded reasons instead of exceptions."""

import math
from dataclasses import replace

import pytest

from matdesinne.errors import UserInputError
from matdesinne.materials import material

build_mos2 = material("mos2").builder
from matdesinne.validation.dft import PRESETS, DFTSettings, _reason, compute_gap, prepare, resolve_settings
from matdesinne.validation.result import DFTResult, Status

#: A few seconds per structure on one core; good enough to tell a semiconductor from a metal.
TINY = DFTSettings("tiny", cutoff=200.0, kpoints=3)
EQUILIBRIUM = {"a": 3.16, "b": 3.16, "c": 12.30, "alpha": 90.0, "beta": 90.0, "gamma": 120.0, "efield": 0.0}


def test_equilibrium_mos2_is_a_semiconductor():
    # PBE puts monolayer MoS2's direct gap at K near 1.7 eV; a Γ-centred 3x3 mesh contains K.
    result = compute_gap(build_mos2(EQUILIBRIUM), TINY)
    assert isinstance(result, DFTResult) and result.status is Status.OK, result.error
    assert 1.4 < result.gap_raw < 2.0
    assert result.seconds > 0 and result.versions["gpaw"] and result.host


def test_compressed_mos2_closes_its_gap():
    # 20 % in-plane compression with c stretched makes the data's metallic corner (gap 0).
    strained = {**EQUILIBRIUM, "a": 2.6, "b": 2.6, "c": 14.5}
    result = compute_gap(build_mos2(strained), TINY)
    assert result.ok and result.gap_raw < 0.3


def test_a_layer_is_computed_as_a_slab_with_the_field_along_z():
    atoms, kwargs = prepare(build_mos2({**EQUILIBRIUM, "alpha": 95.0, "efield": 0.4}), TINY)
    assert list(atoms.pbc) == [True, True, False]
    assert atoms.cell[2, 0] == 0 and atoms.cell[2, 1] == 0
    assert kwargs["kpts"]["size"] == (3, 3, 1) and kwargs["poissonsolver"] == {"dipolelayer": "xy"}
    assert kwargs["external"].todict()["strength"] == pytest.approx(0.4)
    # The sheared layer keeps its Cartesian geometry.
    assert atoms.get_distance(1, 2) == pytest.approx(build_mos2({**EQUILIBRIUM, "alpha": 95.0}).get_distance(1, 2))


def test_the_field_really_acts_on_the_electrons():
    from gpaw import GPAW

    atoms, kwargs = prepare(build_mos2({**EQUILIBRIUM, "efield": 0.5}), TINY)
    atoms.calc = GPAW(**kwargs)
    atoms.get_potential_energy()
    potential = atoms.calc.get_electrostatic_potential().mean(axis=(0, 1))  # along z, eV
    # Unstrained MoS2 is mirror-symmetric, so without a field both vacuum ends sit at the same
    # potential; the applied field makes them differ (0.55 eV measured at 0.5 V/Å).
    assert abs(potential[-1] - potential[0]) > 0.3


def test_unconverged_scf_is_a_failed_result_with_its_reason():
    result = compute_gap(build_mos2(EQUILIBRIUM), replace(TINY, maxiter=2))
    assert result.status is Status.FAILED and math.isnan(result.gap_raw)
    assert result.error == "KohnShamConvergenceError: SCF not converged within 2 iterations"


def test_an_scf_failure_is_recognised_by_its_type_not_its_name():
    from gpaw import KohnShamConvergenceError

    class Stalled(KohnShamConvergenceError):  # a subclass GPAW might raise one day
        pass

    assert _reason(Stalled("see the log"), TINY) == "Stalled: SCF not converged within 333 iterations"
    lookalike = type("KohnShamConvergenceError", (RuntimeError,), {})
    assert _reason(lookalike("out of memory\nat line 3"), TINY) == "KohnShamConvergenceError: out of memory"


def test_overlapping_atoms_are_a_failed_result():
    atoms = build_mos2(EQUILIBRIUM)
    atoms.positions[1] = atoms.positions[0]
    result = compute_gap(atoms, TINY)
    assert not result.ok and "too close" in result.error


def test_settings_presets_files_and_bad_values(tmp_path):
    assert resolve_settings("fast") is PRESETS["fast"]
    path = tmp_path / "s.json"
    path.write_text('{"name": "mine", "cutoff": 250, "kpoints": 4}')
    assert resolve_settings(str(path)) == DFTSettings("mine", cutoff=250.0, kpoints=4)
    with pytest.raises(UserInputError, match="unknown DFT settings"):
        resolve_settings("slow")
    with pytest.raises(UserInputError, match="unknown DFT setting.*ecut"):
        DFTSettings.from_dict({"ecut": 300})
    with pytest.raises(UserInputError, match="must be positive"):
        DFTSettings.from_dict({"kpoints": 0})
    with pytest.raises(UserInputError, match="bad DFT setting"):
        DFTSettings.from_dict({"cutoff": "lots"})


@pytest.mark.parametrize("text, message", [
    ('{"cutoff": NaN}', "cutoff must be a finite number"),
    ('{"cutoff": Infinity}', "cutoff must be a finite number"),
    ('{"smearing": -Infinity}', "smearing must be a finite number"),
    ('{"kpoints": 6.9}', "kpoints must be a whole number"),  # int() made it 6
    ('{"kpoints": "9"}', "kpoints must be a whole number"),
    ('{"maxiter": true}', "maxiter must be a whole number"),  # int() made it 1
    ('{"cutoff": false}', "cutoff must be a number"),
    ('{"xc": 1}', "xc must be a string"),
    ('{"name": ["a"]}', "name must be a string"),
    ('{"name": "../mine"}', "must be a plain word"),
    ('{"name": ""}', "must be a plain word"),
])
def test_a_settings_file_of_wrong_types_is_one_line(tmp_path, text, message):
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(UserInputError, match=message) as err:
        resolve_settings(str(path))
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_settings_that_are_not_an_object_are_refused():
    with pytest.raises(UserInputError, match="expected a JSON object of DFT settings, got list"):
        DFTSettings.from_dict(["cutoff", 300])
