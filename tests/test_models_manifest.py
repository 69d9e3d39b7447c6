"""Model sets are all or nothing: train writes its manifest last, load_models refuses interrupted or mixed sets."""

import functools
import json
import shutil
from pathlib import Path

import pytest

import matdesinne.models.train as train_module
from matdesinne.materials import training_dataset
from matdesinne.errors import UserInputError
from matdesinne.models import CINN, MANIFEST, default_models_dir, load_models, read_manifest
from matdesinne.models.manifest import file_sha256
from matdesinne.models.train import train_models

QUICK = dict(y_lower=0.0, epochs=2, device="cpu")


def train(csv, out, kinds=("surrogate", "cinn"), augment=300, **kw):
    return train_models(data=csv, kinds=list(kinds), out=out, augment=augment, **{**QUICK, **kw})


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_csv):
    """A surrogate + cINN set, trained once; tests copy it."""
    out = tmp_path_factory.mktemp("set") / "models"
    train(synth_csv, out)
    return out


@pytest.fixture
def models(trained, tmp_path):
    out = tmp_path / "models"
    shutil.copytree(trained, out)
    return out


def test_train_writes_a_manifest_last_and_records_its_run(models, synth_csv, tmp_path, monkeypatch):
    manifest = read_manifest(models)
    assert set(manifest["members"]) == {"surrogate", "cinn"}
    run = manifest["run"]
    for kind, entry in manifest["members"].items():
        assert entry["run"] == run
        for name, digest in entry["sha256"].items():
            assert file_sha256(models / name) == digest
    surrogate, cinn = (json.loads((models / f"{k}.json").read_text())["training"] for k in ("surrogate", "cinn"))
    assert surrogate["run"] == cinn["run"] == run
    assert cinn["surrogate_sha256"] == file_sha256(models / "surrogate.safetensors")
    assert surrogate["data"] == str(Path(synth_csv).resolve())
    monkeypatch.chdir(tmp_path)  # the training data resolves from any folder
    loaded = load_models(models)
    assert len(training_dataset(loaded.surrogate.training_, loaded.space)) == 1500
    only = load_models(models, generator=None)
    assert only.generator is None and only.space == loaded.space


def test_other_files_in_the_models_folder_survive_training(models, synth_csv):
    (models / "calibration-standard.json").write_text('{"mine": 1}\n')
    train(synth_csv, models, kinds=["surrogate"])
    assert (models / "calibration-standard.json").read_text() == '{"mine": 1}\n'
    assert not [p for p in models.parent.iterdir() if p.name.startswith(".matdesinne-")]  # no temporary folder left


def test_an_interrupted_train_leaves_the_old_set(models, synth_csv, monkeypatch):
    before = snapshot(models)

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(CINN, "fit", interrupt)  # Ctrl-C after the new surrogate was saved
    with pytest.raises(KeyboardInterrupt):
        train(synth_csv, models)
    assert snapshot(models) == before
    assert not [p for p in models.parent.iterdir() if p.name.startswith(".matdesinne-")]
    load_models(models)
    # What the run had done stays as progress, for the same call to resume from.
    assert [p.name for p in (models / ".train-progress").iterdir()] == ["surrogate.safetensors"]


def test_an_interrupted_train_resumes_to_the_same_models(tmp_path, synth_csv, monkeypatch):
    """Interrupted in the cINN's third epoch (one training batch and one validation pass an
    epoch here): the rerun takes the finished surrogate and the cINN's first two epochs from
    the progress files, ends with the weights of a run never interrupted, and removes them."""
    whole = tmp_path / "whole"
    train(synth_csv, whole, epochs=4)
    monkeypatch.setattr(train_module, "Progress", functools.partial(train_module.Progress, every=0.0))
    out = tmp_path / "resumed"
    calls, original = [], CINN._loss

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(CINN, "_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(synth_csv, out, epochs=4)
    assert sorted(p.name for p in (out / ".train-progress").iterdir()) == ["cinn.safetensors", "surrogate.safetensors"]
    rerun = []

    def counted(self, *args):
        rerun.append(1)
        return original(self, *args)

    monkeypatch.setattr(CINN, "_loss", counted)
    records = train(synth_csv, out, epochs=4)
    assert records["cinn"]["epochs_run"] == 4 and len(rerun) == 4  # epochs 3 and 4 only: a batch and a validation each
    for kind in ("surrogate", "cinn"):
        assert (out / f"{kind}.safetensors").read_bytes() == (whole / f"{kind}.safetensors").read_bytes()
    assert not (out / ".train-progress").exists()
    load_models(out)


def test_an_interruption_before_the_manifest_is_refused(models, synth_csv, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "write_manifest", interrupt)  # files moved in, manifest not yet written
    with pytest.raises(KeyboardInterrupt):
        train(synth_csv, models, kinds=["surrogate"])
    with pytest.raises(UserInputError, match="surrogate.json differs from its checksum in models.json") as err:
        load_models(models)
    assert "\n" not in str(err.value) and "allow_mixed=True" in str(err.value)
    load_models(models, allow_mixed=True)


def test_checkpoints_of_a_run_without_a_manifest_are_refused(models):
    (models / MANIFEST).unlink()
    with pytest.raises(UserInputError, match="has no models.json, yet holds checkpoints of a train run"):
        load_models(models)
    load_models(models, allow_mixed=True)


def test_a_generator_and_surrogate_of_different_runs_are_refused(models, synth_csv):
    train(synth_csv, models, kinds=["cinn"], augment=0)  # a later run, not trained against this surrogate
    with pytest.raises(UserInputError, match="come from different trainings, and the cinn was not trained against"):
        load_models(models)
    load_models(models, allow_mixed=True)
    load_models(models, generator=None)  # the surrogate alone is a whole set
    train(synth_csv, models, kinds=["cinn"])  # augmented with the surrogate in the folder: it belongs
    cinn = json.loads((models / "cinn.json").read_text())["training"]
    assert cinn["run"] != json.loads((models / "surrogate.json").read_text())["training"]["run"]
    load_models(models)
    assert set(read_manifest(models)["members"]) == {"surrogate", "cinn"}


def test_a_damaged_manifest_is_one_line(models):
    manifest = json.loads((models / MANIFEST).read_text())
    manifest["members"]["cinn"]["sha256"]["cinn.json"] = "beef"
    (models / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UserInputError, match="manifest is corrupt .*must be a SHA-256"):
        load_models(models)


def test_a_full_disk_while_training_saves_is_one_line(models, synth_csv, monkeypatch):
    before = snapshot(models)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("matdesinne.models.checkpoint.save_file", full)
    with pytest.raises(UserInputError, match="cannot be written .*No space left on device") as err:
        train(synth_csv, models, kinds=["surrogate"])
    assert "\n" not in str(err.value)
    assert snapshot(models) == before


@pytest.mark.parametrize("seeds", [{"seed": -1}, {"seed": 2**32}, {"seed": 2**64}, {"split_seed": -3},
                                   {"split_seed": 2**64}])
def test_bad_seeds_are_refused_before_any_work(tmp_path, synth_csv, seeds, monkeypatch):
    monkeypatch.setattr(train_module, "load_dataset", lambda *a, **k: pytest.fail("read the data"))
    with pytest.raises(UserInputError, match=r"seed=\S+ must be a whole number from 0 to 4294967295") as err:
        train(synth_csv, tmp_path / "m", **seeds)
    assert "\n" not in str(err.value) and not (tmp_path / "m").exists()


def test_a_reserved_column_is_refused_at_train(tmp_path, synth_csv):
    path = tmp_path / "reserved.csv"
    path.write_text(Path(synth_csv).read_text().replace("p2", "target", 1))
    with pytest.raises(UserInputError, match="'target' has a name that matdesinne writes"):
        train(path, tmp_path / "m")


def test_shipped_models_carry_an_honest_manifest():
    manifest = read_manifest(default_models_dir())
    assert manifest["run"] is None and "after training" in manifest["note"]
    assert set(manifest["members"]) == {"surrogate", "cinn", "inn", "mdn", "cvae", "cfm"}
    assert all(entry["run"] is None for kind, entry in manifest["members"].items() if kind != "cfm")
    # cfm was trained later, against the shipped surrogate: its run is recorded and named in the note
    assert manifest["members"]["cfm"]["run"] and manifest["members"]["cfm"]["run"] in manifest["note"]
    for kind in manifest["members"]:
        load_models(generator=kind if kind != "surrogate" else None)


def test_a_file_where_the_progress_folder_goes_is_refused_before_training(tmp_path, synth_csv):
    out = tmp_path / "models"
    out.mkdir()
    (out / ".train-progress").write_text("not a folder")
    with pytest.raises(UserInputError, match=r"\.train-progress: exists and is not a folder") as err:
        train(synth_csv, out)
    assert "\n" not in str(err.value) and sorted(p.name for p in out.iterdir()) == [".train-progress"]
