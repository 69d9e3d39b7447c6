"""The gap calibration max(0, raw - offset): the exact fit, its file, and where it applies."""

import json

import numpy as np
import pytest

from matdesinne.materials import load_dataset
from matdesinne.errors import UserInputError
from matdesinne.validation.calibration import Calibration, fit_offset, offset_loss, resolve_calibration, rows_report
from matdesinne.validation.dft import PRESETS


def test_fit_recovers_a_planted_offset():
    rng = np.random.default_rng(0)
    published = np.where(rng.random(40) < 0.5, 0.0, rng.uniform(0.05, 1.5, 40))
    # Gapped rows sit exactly 0.45 eV high; metallic rows anywhere below the offset.
    raw = np.where(published > 0, published + 0.45, rng.uniform(-1.0, 0.44, 40))
    offset = fit_offset(raw, published)
    assert offset == pytest.approx(0.45, abs=1e-12)
    assert offset_loss(offset, raw, published) == pytest.approx(0.0, abs=1e-12)


def test_fit_is_the_global_minimum_on_noisy_data():
    rng = np.random.default_rng(1)
    published = np.where(rng.random(60) < 0.6, 0.0, rng.uniform(0.0, 1.5, 60))
    raw = published + 0.4 + rng.normal(0, 0.05, 60) - (published == 0) * rng.uniform(0, 1, 60)
    offset = fit_offset(raw, published)
    grid = np.linspace(-1, 2, 30001)
    best_on_grid = min(offset_loss(o, raw, published) for o in grid)
    assert offset_loss(offset, raw, published) <= best_on_grid + 1e-12


def test_fit_refuses_empty_input():
    with pytest.raises(UserInputError):
        fit_offset(np.array([]), np.array([]))


def make_calibration(settings=PRESETS["standard"]) -> Calibration:
    raw, pub = np.array([1.0, -0.2, 0.3]), np.array([0.55, 0.0, 0.0])
    return Calibration(offset=0.45, space="mos2", settings=settings.to_dict(),
                       fit=rows_report(np.array([1, 2, 3]), raw, pub, 0.45),
                       holdout=rows_report(np.array([4]), np.array([0.9]), np.array([0.5]), 0.45))


def test_apply_report_and_round_trip(tmp_path):
    cal = make_calibration()
    np.testing.assert_allclose(cal.apply([1.0, 0.2, np.nan]), [0.55, 0.0, np.nan])
    assert cal.fit["mae"] == pytest.approx(0.0) and cal.fit["zero_nonzero_agreement"] == 1.0
    assert cal.holdout["residuals"] == pytest.approx([-0.05])
    path = tmp_path / "cal.json"
    cal.save(path)
    back = Calibration.load(path)
    assert back.offset == cal.offset and back.fit == cal.fit and back.settings == cal.settings
    assert str(path) in back.describe() and "0.450 eV" in back.describe()


def test_damaged_or_foreign_files_are_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(UserInputError, match="cannot be read as JSON"):
        Calibration.load(path)
    path.write_text(json.dumps({"offset": 0.4}))
    with pytest.raises(UserInputError, match="not a matdesinne DFT calibration"):
        Calibration.load(path)
    d = make_calibration().to_dict()
    del d["fit"]
    path.write_text(json.dumps(d))
    with pytest.raises(UserInputError, match="damaged.*lacks 'fit'"):
        Calibration.load(path)


def _with(d: dict, path: str, value) -> dict:
    """``d`` with the entry at ``path`` ("fit.mae") set to ``value``, or deleted for ``...``."""
    d = json.loads(json.dumps(d))
    *parents, last = path.split(".")
    inner = d
    for key in parents:
        inner = inner[key]
    if value is ...:
        del inner[last]
    else:
        inner[last] = value
    return d


@pytest.mark.parametrize("path, value, message", [
    ("offset", "abc", "offset must be a number"),
    ("offset", "0.4", "offset must be a number"),  # float() would have read it
    ("offset", float("nan"), "offset must be a finite number"),
    ("offset", float("inf"), "offset must be a finite number"),
    ("offset", True, "offset must be a number"),
    ("space", 7, "space must be a string"),
    ("settings", ["standard"], "expected a JSON object of DFT settings"),
    ("settings.kpoints", 9.5, "kpoints must be a whole number"),
    ("fit", [1, 2], "fit must be a JSON object"),
    ("fit.rows", ..., "fit lacks 'rows'"),
    ("fit.rows", "1,2,3", "fit.rows must be a list"),
    ("fit.rows", [1, 2, 3.5], "fit.rows must be a whole number"),
    ("fit.raw", [1.0, 2.0], "fit.raw must be a list of 3 numbers"),
    ("fit.mae", None, "fit.mae must be a number"),
    ("fit", rows_report(np.array([]), np.array([]), np.array([]), 0.4), "fit.rows is empty"),
    ("holdout.published", [None], "holdout.published\\[0\\] must be a number"),
    ("seed", -1, "seed=-1 must be a whole number from 0"),
    ("failed", {"row": 1}, "failed must be a list"),
])
def test_a_calibration_of_wrong_types_is_one_line(tmp_path, path, value, message):
    file = tmp_path / "c.json"
    file.write_text(json.dumps(_with(make_calibration().to_dict(), path, value)))  # NaN as JSON's NaN
    with pytest.raises(UserInputError, match=message) as err:
        Calibration.load(file)
    assert str(err.value).startswith(str(file)) and "\n" not in str(err.value)


def test_a_calibration_that_is_not_an_object_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="not a matdesinne DFT calibration"):
        Calibration.from_dict([make_calibration().to_dict()], "c.json")
    file = tmp_path / "c.json"
    file.write_text(json.dumps([make_calibration().to_dict()]))
    with pytest.raises(UserInputError, match="expected a JSON object"):
        Calibration.load(file)


def test_resolve_calibration_default_none_and_file(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    standard = PRESETS["standard"]
    assert resolve_calibration(None, models, standard) is None  # the models folder has none
    make_calibration().save(models / "calibration-standard.json")
    assert resolve_calibration(None, models, standard).source == str(models / "calibration-standard.json")
    assert resolve_calibration(None, models, PRESETS["fast"]) is None
    assert resolve_calibration("none", models, standard) is None
    make_calibration().save(tmp_path / "mine.json")
    assert resolve_calibration(tmp_path / "mine.json", models, standard).offset == 0.45
    with pytest.raises(UserInputError, match="no such file"):
        resolve_calibration(str(tmp_path / "missing.json"), models, standard)


def test_a_calibration_applies_only_to_its_space_and_settings():
    space = load_dataset("mos2").space
    cal = make_calibration()
    cal.check_applies(space, PRESETS["standard"])
    with pytest.raises(UserInputError, match="settings 'standard'.*not 'fast'"):
        cal.check_applies(space, PRESETS["fast"])
    cal.space = "other"
    with pytest.raises(UserInputError, match="design space 'other'"):
        cal.check_applies(space, PRESETS["standard"])
