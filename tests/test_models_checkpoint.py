"""Checkpoints read back strictly: every tampering is one line, found before a network is allocated."""

import errno
import json
import re

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import matdesinne.models.checkpoint as checkpoint
from matdesinne.errors import UserInputError
from matdesinne.models import CINN, EnsembleSurrogate

CLASSES = {"surrogate": EnsembleSurrogate, "cinn": CINN}


@pytest.fixture
def saved(tiny_models, tmp_path):
    tiny_models.surrogate.save(tmp_path)
    tiny_models.generator.save(tmp_path)
    return tmp_path


@pytest.fixture
def builds(monkeypatch):
    """The device type of every network a model builds ('meta' builds allocate nothing)."""
    seen = []
    for cls in CLASSES.values():
        def spy(self, _build=cls._build_module):
            seen.append(torch.empty(0).device.type)
            return _build(self)
        monkeypatch.setattr(cls, "_build_module", spy)
    return seen


def drop(*keys):
    def edit(meta):
        for key in keys[:-1]:
            meta = meta[key]
        del meta[keys[-1]]
    return edit


TAMPERED = [
    ("surrogate", lambda m: m["x_scaler"].update(mean=[0.0]), "x_scaler.mean must be a list of 3 numbers, got a list of 1"),
    ("surrogate", lambda m: m["x_scaler"].update(std=[1.0, float("nan"), 1.0]), r"x_scaler.std\[1\] must be a finite number"),
    ("surrogate", lambda m: m["y_scaler"].update(std=[0.0]), "y_scaler.std must be positive"),
    ("surrogate", lambda m: [m], "expected a JSON object"),
    ("surrogate", lambda m: m["params"].update(members="5"), "members must be a whole number, got '5'"),
    ("cinn", lambda m: m["params"].update(hidden="x"), "hidden must be a whole number"),
    ("cinn", lambda m: m["params"].update(bounded=1), "bounded must be true or false"),
    ("cinn", lambda m: m["params"].update(clamp=True), "clamp must be a number"),
    ("surrogate", lambda m: m.update(y_range=["a", 1]), r"y_range\[0\] must be a number"),
    ("surrogate", lambda m: m.update(y_range=[2.0, 1.0]), "y_range must run from low to high"),
    ("cinn", lambda m: m["params"].update(colour=1), "params has unknown entry 'colour'"),
    ("cinn", drop("params", "clamp"), "params lacks 'clamp'"),
    ("cinn", drop("training"), "the metadata lacks 'training'"),
    ("surrogate", lambda m: m["design_space"]["parameters"][0].update(high="1"), r"parameters\[0\].high must be a number"),
    ("surrogate", lambda m: m["design_space"]["parameters"][0].update(low=2.0), "low < high"),
    ("surrogate", lambda m: m["design_space"]["parameters"][1].update(name="target"), "'target' has a name"),
    ("surrogate", lambda m: m["design_space"]["parameters"][1].update(name="p0"), "named twice"),
    ("surrogate", lambda m: m["design_space"].update(parameters=[]), "at least one design parameter"),
    ("surrogate", lambda m: m["design_space"]["property"].update(lower="0"), "property.lower must be a number"),
    ("surrogate", lambda m: m["params"].update(members=0), "members must be from 1"),
    ("cinn", lambda m: m["params"].update(blocks=-2), "blocks must be from 1"),
    ("surrogate", lambda m: m["params"].update(hidden=10**40), "hidden must be from 1"),
    ("surrogate", lambda m: m["params"].update(members=1_000_000), "members = 1000000 is larger than any size in the weights"),
    ("surrogate", lambda m: m["params"].update(members=2), r"'weights.0' has shape \[3, 3, 64\], but the settings make \[2, 3, 64\]"),
    ("cinn", lambda m: m["params"].update(blocks=3), "unexpected tensor"),
    ("surrogate", lambda m: m["extra"].update(std_threshold="0.1"), "extra.std_threshold must be a number"),
    ("cinn", lambda m: m["extra"].update(std_threshold=0.1), "extra has unknown entry"),
    ("surrogate", lambda m: m["params"].update(seed=-1), "seed=-1 must be a whole number from 0"),
    ("surrogate", lambda m: m["params"].update(device="gpu"), "device must be one of"),
    ("surrogate", lambda m: m.update(format_version=2), "format version 2"),
    ("cinn", lambda m: m.update(kind="mdn"), "not a matdesinne cinn checkpoint"),
    ("cinn", lambda m: m["training"].update(run=""), "training.run must be a non-empty string"),
    ("cinn", lambda m: m["training"].update(data=["x"]), "training.data must be"),
]


@pytest.mark.parametrize("kind, edit, message", TAMPERED)
def test_tampered_metadata_is_refused_in_one_line_before_any_build(saved, builds, kind, edit, message):
    path = saved / f"{kind}.json"
    meta = json.loads(path.read_text())
    replaced = edit(meta)
    path.write_text(json.dumps(meta if replaced is None else replaced))
    with pytest.raises(UserInputError, match="corrupt or incompatible") as err:
        CLASSES[kind].load(saved)
    assert "\n" not in str(err.value)
    assert re.search(message, str(err.value)), str(err.value)
    assert "cpu" not in builds  # refused before a real network was allocated


def _rewrite_weights(directory, change):
    path = directory / "surrogate.safetensors"
    state = load_file(str(path))
    change(state)
    save_file(state, str(path))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s["weights.1"].view(-1).__setitem__(5, float("nan")), "'weights.1' holds NaN or infinite weights"),
        (lambda s: s["biases.0"].view(-1).__setitem__(0, float("inf")), "'biases.0' holds NaN or infinite weights"),
        (lambda s: s.update({"weights.0": s["weights.0"].double()}), "'weights.0' is F64, not float32"),
        (lambda s: s.pop("biases.2"), "lack tensor 'biases.2'"),
        (lambda s: s.update(extra=torch.zeros(2)), "unexpected tensor 'extra'"),
    ],
)
def test_damaged_weights_are_refused(saved, change, message):
    _rewrite_weights(saved, change)
    with pytest.raises(UserInputError, match=message):
        EnsembleSurrogate.load(saved)


def test_an_oversized_metadata_file_is_refused_unparsed(saved):
    path = saved / "cinn.json"
    meta = json.loads(path.read_text())
    meta["training"]["padding"] = "x" * (checkpoint.MAX_META_BYTES + 1)
    path.write_text(json.dumps(meta))
    with pytest.raises(UserInputError, match="cinn.json is larger than 1024 kB"):
        CINN.load(saved)


def test_a_checkpoint_file_that_is_a_folder_is_missing(saved):
    (saved / "cinn.safetensors").unlink()
    (saved / "cinn.safetensors").mkdir()
    with pytest.raises(UserInputError, match="no such checkpoint file"):
        CINN.load(saved)


@pytest.mark.parametrize(
    "failure",
    [
        SafetensorError('Error while serializing: IoError(Os { code: 28, message: "No space left on device" })'),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_a_full_disk_while_saving_is_one_line_and_leaves_nothing(tiny_models, tmp_path, monkeypatch, failure):
    def full(*args, **kwargs):
        raise failure

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(UserInputError, match="surrogate.safetensors: cannot be written .*No space left on device") as err:
        tiny_models.surrogate.save(tmp_path)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []
