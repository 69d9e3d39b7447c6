"""Splits fixed by row identity: a test row stays a test row when a dataset grows."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import SYNTH_NAMES, synth_data
from matdesinne.data.datasets import split_indices
from matdesinne.data.splits import Split, fold_digest
from matdesinne.errors import UserInputError
from matdesinne.materials import load_dataset, recorded_split, training_split
from matdesinne.models import load_models
from matdesinne.models.train import train_models


def test_appended_rows_train_and_the_old_folds_stay():
    x, _ = synth_data(200, seed=0)
    split = Split.from_dict(Split.draw(200, seed=4).to_dict(x))
    train, val, test = split.indices(x)
    grown = np.vstack([x, synth_data(60, seed=9)[0]])
    train2, val2, test2 = split.indices(grown)
    np.testing.assert_array_equal(test2, test)
    np.testing.assert_array_equal(val2, val)
    assert set(train2) == set(train) | set(range(200, 260))
    assert not set(test) & set(train2)
    # The first draw is the same one split_indices always made, so older model sets keep their rows.
    for a, b in zip(split.folds(), split_indices(200, 4)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change", ["reorder", "edit", "drop"])
def test_a_dataset_whose_split_rows_changed_is_refused_in_one_line(change):
    x, _ = synth_data(100, seed=0)
    split = Split.from_dict(Split.draw(100, seed=0).to_dict(x))
    test = split.folds()[2]
    changed = x.copy()
    if change == "reorder":
        changed[[test[0], split.folds()[0][0]]] = changed[[split.folds()[0][0], test[0]]]
    elif change == "edit":
        changed[test[0], 1] += 0.01
    else:
        changed = changed[:-1]
    with pytest.raises(UserInputError) as err:
        split.indices(changed, "data.csv")
    assert "\n" not in str(err.value) and str(err.value).startswith("data.csv")


def test_a_record_without_row_digests_refuses_a_grown_dataset():
    old = {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.1, "n_train": 80, "n_val": 10, "n_test": 10}
    x, _ = synth_data(100, seed=0)
    assert len(Split.from_dict(old).indices(x)[2]) == 10
    with pytest.raises(UserInputError, match="changed since they were trained"):
        Split.from_dict(old).indices(np.vstack([x, x[:5] + 0.5]))


def _csv(path, x, y):
    frame = pd.DataFrame(x, columns=SYNTH_NAMES)
    frame["gap"] = y
    frame.to_csv(path, index=False)


def test_train_on_a_grown_csv_keeps_the_test_rows_and_evaluation_checks_them(tmp_path):
    x, y = synth_data(120, seed=1)
    x[:2] = [[0.0] * 3, [1.0] * 3]  # the box's corners first: the space's bounds stay as the data grows
    csv = tmp_path / "data.csv"
    _csv(csv, x, y)
    out = tmp_path / "models"
    train_models(str(csv), kinds=["surrogate"], out=out, epochs=2, device="cpu", split_seed=3)
    first = load_models(out, generator=None).surrogate.training_
    _, (train1, val1, test1) = training_split(first, load_models(out, generator=None).space)

    more_x, more_y = synth_data(40, seed=2)
    _csv(csv, np.vstack([x, more_x]), np.concatenate([y, more_y]))
    # The old models see their own rows: the appended ones are in none of their folds.
    _, (train_old, _, test_old) = training_split(first, load_models(out, generator=None).space)
    np.testing.assert_array_equal(test_old, test1)
    assert train_old.max() < 120

    with pytest.raises(UserInputError, match="split_seed=3"):  # a new seed would move test rows into training
        train_models(str(csv), kinds=["surrogate"], out=out, epochs=2, device="cpu", split_seed=0)
    train_models(str(csv), kinds=["surrogate"], out=out, epochs=2, device="cpu", split_seed=3)
    second = load_models(out, generator=None).surrogate.training_
    assert second["split"]["test_sha256"] == first["split"]["test_sha256"]
    assert second["split"]["added"] == 40 and second["split"]["n_train"] == first["split"]["n_train"] + 40
    _, (train2, _, test2) = training_split(second, load_models(out, generator=None).space)
    np.testing.assert_array_equal(test2, test1)
    assert set(range(120, 160)) <= set(train2)

    # A test row edited in place: evaluation refuses, in one line, rather than re-split.
    frame = pd.read_csv(csv)
    frame.loc[int(test1[0]), "p2"] = 0.5 if frame.loc[int(test1[0]), "p2"] != 0.5 else 0.25
    frame.to_csv(csv, index=False)
    with pytest.raises(UserInputError, match="rows were edited or reordered"):
        training_split(second, load_models(out, generator=None).space)


def test_a_provenance_split_fixes_training_in_any_folder(tmp_path):
    x, y = synth_data(100, seed=5)
    x[:2] = [[0.0] * 3, [1.0] * 3]
    csv = tmp_path / "data.csv"
    _csv(csv, x, y)
    fixed = Split.draw(100, seed=7).to_dict(x)
    (tmp_path / "data.json").write_text(json.dumps({"split": fixed}))
    assert recorded_split(str(csv)).seed == 7
    with pytest.raises(UserInputError, match="dataset's provenance fixes the split"):
        train_models(str(csv), kinds=["surrogate"], out=tmp_path / "a", epochs=1, device="cpu")
    train_models(str(csv), kinds=["surrogate"], out=tmp_path / "b", epochs=1, device="cpu", split_seed=7)
    record = load_models(tmp_path / "b", generator=None).surrogate.training_["split"]
    assert record["test_sha256"] == fixed["test_sha256"] == fold_digest(x, Split.draw(100, 7).folds()[2])


@pytest.mark.parametrize("name", ["mos2", "ws2"])
def test_the_shipped_datasets_record_the_split_their_models_use(name):
    data = load_dataset(name)
    models = load_models(space=name, generator=None)
    _, (train, val, test) = training_split(models.surrogate.training_, models.space)
    recorded = recorded_split(name)
    np.testing.assert_array_equal(recorded.indices(data.x)[2], test)
    assert len(train) + len(val) + len(test) == len(data)
