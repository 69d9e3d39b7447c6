from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matdesinne.data import DesignSpace, check_finite, check_seed, parse_constraint, split_indices
from matdesinne.materials import dataset_reference, load_dataset, training_dataset
from matdesinne.errors import UserInputError


def test_mos2_dataset_and_design_space():
    ds = load_dataset("mos2")
    space = ds.space
    assert space.names == ["a", "b", "c", "alpha", "beta", "gamma", "efield"]
    assert space.property.name == "band_gap" and space.property.unit == "eV" and space.property.lower == 0.0
    assert len(ds) == 9718 and ds.x.shape == (9718, 7)
    assert space.contains(ds.x).all()
    a = space.parameter("a")
    assert a.equilibrium == 3.16 and a.unit == "Å"
    assert a.low == pytest.approx(0.8 * 3.16, abs=2e-3) and a.high == pytest.approx(1.2 * 3.16, abs=2e-3)
    assert space.parameter("efield").low == -1.0
    assert np.isclose((ds.y == 0).mean(), 0.64, atol=0.01)


def test_design_space_round_trips_through_dict():
    space = load_dataset("mos2").space
    assert DesignSpace.from_dict(space.to_dict()) == space


def test_constrain_narrows_and_refuses_outside():
    space = load_dataset("mos2").space
    narrow = space.constrain({"efield": (-0.5, 0.5), "alpha": (88, 92)})
    assert narrow.parameter("efield").low == -0.5 and narrow.parameter("alpha").high == 92
    assert narrow.parameter("a") == space.parameter("a")
    with pytest.raises(UserInputError, match="outside the design space"):
        space.constrain({"efield": (-2.0, 0.5)})
    with pytest.raises(UserInputError, match="not a parameter"):
        space.constrain({"nope": (0, 1)})
    with pytest.raises(UserInputError, match="LO < HI"):
        space.constrain({"efield": (0.5, -0.5)})


@pytest.mark.parametrize("text", ["efield", "efield=1", "=0:1", "efield=a:b"])
def test_parse_constraint_rejects_malformed(text):
    with pytest.raises(UserInputError):
        parse_constraint(text)


def test_parse_constraint():
    assert parse_constraint("efield=-0.5:0.5") == ("efield", (-0.5, 0.5))


def test_user_csv_loads_with_chosen_columns(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"u": [0, 1, 2, 3.0], "v": [1, 0, 1, 0.5], "junk": list("abcd"), "prop": [0.1, 0.2, 0.3, 0.4]}).to_csv(path, index=False)
    ds = load_dataset(str(path), x=["u", "v"], y="prop")
    assert ds.space.name == "mine" and ds.space.names == ["u", "v"]
    assert ds.space.parameter("u").low == 0 and ds.space.parameter("u").high == 3
    np.testing.assert_allclose(ds.y, [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize(
    "frame, kwargs, message",
    [
        (pd.DataFrame({"u": [0, 1.0], "prop": [1, 2.0]}), {"x": ["w"], "y": "prop"}, "unknown column"),
        (pd.DataFrame({"u": [0, np.nan], "prop": [1, 2.0]}), {}, "NaN or infinite"),
        (pd.DataFrame({"u": [0, np.inf], "prop": [1, 2.0]}), {}, "NaN or infinite"),
        (pd.DataFrame({"u": ["x", "y"], "prop": [1, 2.0]}), {}, "not numeric"),
        (pd.DataFrame({"u": [1.0, 1.0], "prop": [1, 2.0]}), {}, "single value"),
    ],
)
def test_user_csv_bad_input(tmp_path, frame, kwargs, message):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(UserInputError, match=message):
        load_dataset(str(path), **kwargs)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(UserInputError, match="no such file"):
        load_dataset(str(tmp_path / "absent.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UserInputError, match="cannot be read"):
        load_dataset(str(tmp_path / "empty.csv"))
    with pytest.raises(UserInputError, match="unknown dataset"):
        load_dataset("mos3")


def test_split_is_disjoint_complete_and_seeded():
    train, val, test = split_indices(1000, seed=3)
    assert len(test) == 100 and len(val) == 100 and len(train) == 800
    assert len(np.union1d(np.union1d(train, val), test)) == 1000
    again = split_indices(1000, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(test, split_indices(1000, seed=4)[2])


@pytest.mark.parametrize("name", ["target", "candidate", "id", "dft_gap_raw", "dft_gap", "status", "error",
                                  "seconds", "prop_pred", "prop_std"])
def test_reserved_parameter_names_are_refused(tmp_path, name):
    path = tmp_path / "reserved.csv"
    pd.DataFrame({"u": [0, 1.0, 2], name: [1.0, 0, 3], "prop": [1, 2.0, 3]}).to_csv(path, index=False)
    with pytest.raises(UserInputError, match=f"design parameter '{name}' has a name that matdesinne writes") as err:
        load_dataset(str(path), y="prop")
    assert "\n" not in str(err.value)
    assert load_dataset(str(path), x=["u"], y="prop").space.names == ["u"]  # leaving it out is fine


def test_repeated_columns_are_named_as_such(tmp_path):
    path = tmp_path / "rows.csv"
    pd.DataFrame({"u": [0, 1.0, 2], "v": [1.0, 0, 3], "prop": [1, 2.0, 3]}).to_csv(path, index=False)
    with pytest.raises(UserInputError, match="'u' is named twice"):
        load_dataset(str(path), x=["u", "u"], y="prop")
    with pytest.raises(UserInputError, match="'u' named more than once"):
        check_finite(pd.read_csv(path), ["u", "v", "u"], "rows.csv")


def test_values_beyond_float32_are_refused(tmp_path):
    path = tmp_path / "huge.csv"
    pd.DataFrame({"u": [0, 1e39, 2], "prop": [1, 2.0, 3]}).to_csv(path, index=False)
    with pytest.raises(UserInputError, match=r"beyond the float32 range .* 1e\+39 in column 'u' on data row 2"):
        load_dataset(str(path))


def test_a_data_path_that_is_not_a_regular_file_is_refused_unread():
    with pytest.raises(UserInputError, match="not a regular file"):
        load_dataset("/dev/null")  # a device: old code read it as an empty CSV
    space = load_dataset("mos2").space
    with pytest.raises(UserInputError, match="not a regular file"):
        training_dataset({"data": "/dev/null"}, space)


def test_training_dataset_resolves_from_any_folder(tmp_path, monkeypatch, synth_csv):
    monkeypatch.chdir(Path(synth_csv).parent)
    record = {"data": dataset_reference(Path(synth_csv).name)}
    assert Path(record["data"]).is_absolute() and dataset_reference("mos2") == "mos2"
    monkeypatch.chdir(tmp_path)
    space = load_dataset(record["data"], y_lower=0.0).space
    ds = training_dataset(record, space)
    assert ds.space == space and len(ds) == 1500
    assert training_dataset({}, space) is None
    assert training_dataset({"data": "mos2"}, load_dataset("mos2").space).space.name == "mos2"
    with pytest.raises(UserInputError, match="do not belong"):
        training_dataset({"data": "mos2"}, space)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64, 1.5, True, "3"])
def test_bad_seeds_are_one_line_errors(seed):
    with pytest.raises(UserInputError, match="split_seed=.* must be a whole number from 0 to 4294967295") as err:
        check_seed(seed, "split_seed")
    assert "\n" not in str(err.value)
    with pytest.raises(UserInputError, match="seed"):
        split_indices(100, seed)
    assert check_seed(2**32 - 1) == 2**32 - 1


def _space_dict():
    return load_dataset("mos2").space.to_dict()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["parameters"][0].update(low="2.5"), r"parameters\[0\].low must be a number"),
        (lambda d: d["parameters"][0].update(high=float("nan")), r"parameters\[0\].high must be a finite number"),
        (lambda d: d["parameters"][0].update(low=5.0), "low < high"),
        (lambda d: d["parameters"][1].update(name="a"), "named twice"),
        (lambda d: d["parameters"][1].update(name=7), r"parameters\[1\].name must be a non-empty string"),
        (lambda d: d["parameters"][2].update(spin=1), "unknown entry 'spin'"),
        (lambda d: d["parameters"].clear(), "at least one design parameter"),
        (lambda d: d.update(parameters={"a": 1}), "must be a list"),
        (lambda d: d["property"].pop("lower"), "lacks 'lower'"),
        (lambda d: d["property"].update(lower=1.0, upper=0.5), "lower < upper"),
        (lambda d: d["parameters"][3].update(name="band_gap_std"), "reserved"),
    ],
)
def test_design_space_from_dict_is_strict(edit, message):
    d = _space_dict()
    edit(d)
    with pytest.raises(ValueError, match=message):
        DesignSpace.from_dict(d)
