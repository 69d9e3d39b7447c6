import numpy as np
import pandas as pd
import pytest

from matdesinne.data import DesignSpace, load_dataset, parse_constraint, split_indices
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
