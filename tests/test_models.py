import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import synth_data, synth_forward, synth_space
from matdesinne.errors import UserInputError
from matdesinne.models import (
    CFM, CINN, EnsembleSurrogate, Estimator, Generator, Standardizer, default_models_dir, load_models,
)


def test_cinn_round_trip_x_to_z_to_x(tiny_models):
    cinn = tiny_models.generator
    x, y = synth_data(200, seed=11)
    z = cinn.encode(x, y)
    assert z.shape == x.shape and np.isfinite(z).all()
    # Invert through the network with the same condition: x -> z -> x.
    xs = cinn._standardized(x)
    cond = torch.as_tensor((y[:, None] - cinn.y_scaler_.mean) / cinn.y_scaler_.std, dtype=torch.float32)
    with torch.no_grad():
        zt, _ = cinn.module_(xs, c=[cond])
        back, _ = cinn.module_(zt, c=[cond], rev=True)
    np.testing.assert_allclose(back.numpy(), xs.numpy(), atol=1e-4)
    np.testing.assert_allclose(cinn._physical(back), x, atol=1e-4)


def test_bounded_cinn_samples_stay_in_the_box(tiny_models):
    x = tiny_models.generator.sample(0.5, 5000, seed=9)
    margin = 1e-3 / (1 - 2e-3)  # BOX_MARGIN in units of each range
    assert np.all(x >= -margin - 1e-9) and np.all(x <= 1 + margin + 1e-9)


def test_cinn_latents_are_roughly_standard_normal(tiny_models):
    x, y = synth_data(2000, seed=12)
    z = tiny_models.generator.encode(x, y)
    assert np.all(np.abs(z.mean(0)) < 0.25) and np.all(np.abs(z.std(0) - 1) < 0.25)


def test_cinn_sampling_is_seeded_and_conditioned(tiny_models):
    cinn = tiny_models.generator
    a, b, c = cinn.sample(0.8, 500, seed=1), cinn.sample(0.8, 500, seed=1), cinn.sample(0.8, 500, seed=2)
    assert a.shape == (500, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Conditioning works at the floor and above it: samples' true property follows the target.
    for target in (0.0, 0.8):
        true = synth_forward(cinn.sample(target, 2000, seed=3))
        assert abs(np.median(true) - target) < 0.15, target
    with pytest.raises(UserInputError):
        cinn.sample(0.5, 0)


def test_training_is_reproducible_with_a_seed():
    space = synth_space()
    x, y = synth_data(400, seed=5)
    xv, yv = synth_data(100, seed=6)
    kw = dict(members=2, hidden=16, layers=1, epochs=3, seed=7, device="cpu")
    p1 = EnsembleSurrogate(**kw).fit(x, y, space, xv, yv).predict(xv)[0]
    p2 = EnsembleSurrogate(**kw).fit(x, y, space, xv, yv).predict(xv)[0]
    p3 = EnsembleSurrogate(**{**kw, "seed": 8}).fit(x, y, space, xv, yv).predict(xv)[0]
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)
    ckw = dict(blocks=2, hidden=16, epochs=3, seed=7, device="cpu")
    s1 = CINN(**ckw).fit(x, y, space, xv, yv).sample(0.5, 50, seed=0)
    s2 = CINN(**ckw).fit(x, y, space, xv, yv).sample(0.5, 50, seed=0)
    np.testing.assert_array_equal(s1, s2)


def test_surrogate_is_accurate_and_never_below_the_floor(tiny_models):
    sur = tiny_models.surrogate
    x, y = synth_data(2000, seed=13)
    pred, std = sur.predict(x)
    assert pred.min() >= 0.0 and (std >= 0).all()
    assert np.abs(pred - y).mean() < 0.05
    # Deep in the 'metal' corner the prediction is exactly the floor.
    assert (sur.predict(np.zeros((5, 3)))[0] == 0.0).all()
    assert sur.std_threshold_ > 0


def test_checkpoints_round_trip(tiny_models, tmp_path):
    for model in (tiny_models.generator, tiny_models.surrogate):
        model.save(tmp_path)
        again = type(model).load(tmp_path)
        assert again.get_params() == model.get_params()
        assert again.space_ == model.space_
        np.testing.assert_array_equal(again.x_scaler_.mean, model.x_scaler_.mean)
    x, _ = synth_data(50, seed=14)
    np.testing.assert_array_equal(EnsembleSurrogate.load(tmp_path).predict(x)[0], tiny_models.surrogate.predict(x)[0])
    np.testing.assert_array_equal(CINN.load(tmp_path).sample(0.5, 20, seed=4), tiny_models.generator.sample(0.5, 20, seed=4))
    meta = json.loads((tmp_path / "cinn.json").read_text())
    assert meta["design_space"]["name"] == "synthetic" and "x_scaler" in meta and "training" in meta


def test_corrupt_checkpoint_is_a_user_error(tiny_models, tmp_path):
    tiny_models.surrogate.save(tmp_path)
    tiny_models.generator.save(tmp_path)
    (tmp_path / "surrogate.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(UserInputError, match="corrupt"):
        EnsembleSurrogate.load(tmp_path)
    (tmp_path / "cinn.json").write_text("{not json")
    with pytest.raises(UserInputError, match="corrupt"):
        CINN.load(tmp_path)
    with pytest.raises(UserInputError, match="no such"):
        CINN.load(tmp_path / "absent")


def test_models_of_different_design_spaces_are_refused(tiny_models, tmp_path):
    tiny_models.generator.save(tmp_path)
    EnsembleSurrogate.load(default_models_dir()).save(tmp_path)  # the shipped MoS2 surrogate
    with pytest.raises(UserInputError, match="belongs to design space"):
        load_models(tmp_path)


def test_models_import_nothing_from_the_layers_above():
    import ast

    import matdesinne.models as package

    above = tuple(f"matdesinne.{p}" for p in ("evaluation", "pipeline", "validation", "analysis", "cli"))
    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not [n for n in names if n.startswith(above)], (path.name, names)


def test_subclass_hooks_are_abstract():
    with pytest.raises(TypeError, match="abstract"):
        Estimator()

    class NoDraw(Generator):
        kind = "nodraw"

        def __init__(self, seed: int = 0):
            self._set_params(locals())

        def _build_module(self):
            return torch.nn.Linear(1, 1)

        def _loss(self, xs, cond, gen, progress):
            return xs.sum()

    with pytest.raises(TypeError, match="_draw"):
        NoDraw()


def test_surrogate_scores_itself(tiny_models):
    from matdesinne.evaluation.metrics import forward_metrics

    x, y = synth_data(400, seed=15)
    score = tiny_models.surrogate.score(x, y)
    assert score["n"] == 400 and score["mae"] < 0.05 and score["floor_accuracy"] > 0.9
    assert score["mae_at_floor"] is not None and score["mae_above_floor"] is not None
    assert forward_metrics(tiny_models.surrogate, x, y) == score
    with pytest.raises(UserInputError, match="one property value per row"):
        tiny_models.surrogate.score(x, y[:10])


def test_predict_refuses_values_beyond_float32(tiny_models):
    x = np.full((3, 3), 0.5)
    x[1, 2] = -1e39
    with pytest.raises(UserInputError, match=r"float32 range .* -1e\+39 in column 'p2' on data row 2"):
        tiny_models.surrogate.predict(x)


def _tiny_fit(cls, **settings):
    x, y = synth_data(200, seed=16)
    xv, yv = synth_data(50, seed=17)
    size = {"members": 2} if cls is EnsembleSurrogate else {"blocks": 1} if "blocks" in cls._param_names() else {}
    return cls(**{"hidden": 8, "epochs": 1, "device": "cpu", **size, **settings}).fit(x, y, synth_space(), xv, yv)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64])
@pytest.mark.parametrize("cls", [EnsembleSurrogate, CINN])
def test_bad_seeds_are_one_line_errors(cls, seed, tiny_models):
    with pytest.raises(UserInputError, match=r"seed=\S+ must be a whole number from 0 to 4294967295") as err:
        _tiny_fit(cls, seed=seed)
    assert "\n" not in str(err.value)
    with pytest.raises(UserInputError, match="must be a whole number from 0"):
        tiny_models.generator.sample(0.5, 10, seed=seed)


@pytest.mark.parametrize(
    "cls, settings, message",
    [
        (EnsembleSurrogate, {"members": 0}, "members must be from 1"),
        (EnsembleSurrogate, {"hidden": -4}, "hidden must be from 1"),
        (EnsembleSurrogate, {"lr": 0.0}, "lr must be positive"),
        (EnsembleSurrogate, {"epochs": 1.5}, "epochs must be a whole number"),
        (EnsembleSurrogate, {"device": "gpu"}, "device must be one of auto, cpu, cuda"),
        (CINN, {"clamp": float("nan")}, "clamp must be a finite number"),
        (CINN, {"y_noise": -0.1}, "y_noise must be at least 0"),
        (CINN, {"bounded": "yes"}, "bounded must be true or false"),
        (CFM, {"lr_schedule": "linear"}, "lr_schedule must be one of plateau, cosine"),
    ],
)
def test_bad_settings_are_refused_before_training(cls, settings, message):
    with pytest.raises(UserInputError, match=message):
        _tiny_fit(cls, **settings)


def test_generator_fits_its_scaler_once_on_the_modelled_coordinates(monkeypatch):
    fitted = []
    fit = Standardizer.fit.__func__
    monkeypatch.setattr(Standardizer, "fit", classmethod(lambda cls, v: fitted.append(np.shape(v)) or fit(cls, v)))
    cinn = _tiny_fit(CINN)
    assert fitted == [(200, 3), (200,)]  # x's coordinates, then y
    x, _ = synth_data(200, seed=16)
    np.testing.assert_allclose(cinn.x_scaler_.mean, cinn._coords(x).mean(0))


def test_the_cosine_schedule_decays_the_learning_rate_to_zero_over_the_epochs():
    """Under a constant gradient every Adam step has length lr (m / sqrt(v) = 1), so the
    total move is the sum of the learning rates: lr * (T + 1) / 2 over T steps of a half
    cosine from lr to 0 (the cosines of pi k / T for k < T sum to 1)."""
    import torch

    from matdesinne.models.fitting import fit_module

    weight = torch.nn.Parameter(torch.zeros(3))
    epochs, n_train, batch_size, lr = 7, 43, 8, 0.01  # 5 full batches an epoch; the last 3 rows wait
    record = fit_module(torch.nn.ParameterList([weight]), lambda idx, done: weight.sum(), lambda: float(weight.sum()),
                        n_train, epochs=epochs, batch_size=batch_size, lr=lr, patience=epochs, seed=0,
                        device=torch.device("cpu"), desc="test", schedule="cosine")
    steps = epochs * (n_train // batch_size)
    np.testing.assert_allclose(weight.detach().numpy(), -lr * (steps + 1) / 2, rtol=1e-4)
    assert record["best_epoch"] == epochs
    # The schedule fixes the length: a validation score that never improves stops nothing.
    record = fit_module(torch.nn.ParameterList([weight]), lambda idx, done: weight.sum(), lambda: 0.0, n_train,
                        epochs=epochs, batch_size=batch_size, lr=lr, patience=1, seed=0,
                        device=torch.device("cpu"), desc="test", schedule="cosine")
    assert record["epochs_run"] == epochs
    with pytest.raises(ValueError, match="schedule must be one of plateau, cosine"):
        fit_module(torch.nn.ParameterList([weight]), lambda idx, done: weight.sum(), lambda: 0.0, n_train, epochs=1,
                   batch_size=batch_size, lr=lr, patience=1, seed=0, device=torch.device("cpu"), desc="test",
                   schedule="step")

def test_the_cosine_schedule_keeps_the_last_weights_and_plateau_the_best():
    """A validation score that worsens every epoch: its best is the first epoch. The
    plateau schedule goes back to those weights; the cosine schedule keeps where its
    annealing ended, and reports that end's score."""
    import torch

    from matdesinne.models.fitting import fit_module

    n_train, batch_size, lr, epochs = 16, 8, 0.01, 5
    for schedule in ("plateau", "cosine"):
        weight = torch.nn.Parameter(torch.zeros(1))
        after_epoch = []

        def worsening() -> float:
            after_epoch.append(weight.item())
            return -weight.item()  # the training loss lowers the weight, so this rises

        record = fit_module(torch.nn.ParameterList([weight]), lambda idx, done: weight.sum(), worsening, n_train,
                            epochs=epochs, batch_size=batch_size, lr=lr, patience=epochs, seed=0,
                            device=torch.device("cpu"), desc="test", schedule=schedule)
        assert record["best_epoch"] == 1 and record["epochs_run"] == epochs
        kept = after_epoch[0] if schedule == "plateau" else after_epoch[-1]
        assert weight.item() == kept and record["val_score"] == -kept
        assert after_epoch[-1] < after_epoch[0] < 0



class _Interrupt(Exception):
    """Stands for a Ctrl-C or a lost machine in the middle of a fit."""


def _noisy_fit(schedule: str, progress=None, stop_after: int | None = None, epochs: int = 6, lr: float = 0.1):
    """A small fit whose every batch draws from the caller's generator, through
    ``fit_module``; ``stop_after`` interrupts it during that epoch's validation."""
    import torch

    from matdesinne.models.fitting import fit_module

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.SiLU(), torch.nn.Linear(8, 1))
    noise = torch.Generator().manual_seed(5)
    x = torch.linspace(-1, 1, 60).reshape(20, 3)
    y = x.sum(1, keepdim=True) ** 2
    calls = []

    def batch_loss(idx, done):
        xb = x[idx[0]] + 0.1 * torch.randn(len(idx[0]), 3, generator=noise)
        return (1 + done) * (module(xb) - y[idx[0]]).pow(2).mean()

    def val_score():
        calls.append(1)
        if stop_after is not None and len(calls) == stop_after:
            raise _Interrupt
        return float((module(x) - y).pow(2).mean())

    record = fit_module(module, batch_loss, val_score, len(x), epochs=epochs, batch_size=8, lr=lr,
                        patience=2, seed=3, device=torch.device("cpu"), desc="test", schedule=schedule,
                        rngs=(noise,), progress=progress)
    return module, record


@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_an_interrupted_fit_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, schedule):
    """Progress saved after every epoch (every=0); interrupted in epoch 4's validation, so the
    last save is epoch 3's, and the rerun must repeat epoch 4 with the same shuffles, noise,
    Adam moments and learning rate to end on the same weights, history and kept epoch."""
    from matdesinne.models.fitting import Progress

    whole, whole_record = _noisy_fit(schedule, epochs=12)
    progress = Progress(tmp_path / "p.safetensors", key="k", every=0.0)
    with pytest.raises(_Interrupt):
        _noisy_fit(schedule, progress, stop_after=4, epochs=12)
    assert progress.path.is_file()
    resumed, record = _noisy_fit(schedule, progress, epochs=12)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    for field in ("epochs_run", "best_epoch", "best_val_score", "val_score"):
        assert record[field] == whole_record[field]
    if schedule == "plateau":
        assert whole_record["epochs_run"] < 12  # early stopping happened, and the resumed fit agreed
    # A finished fit's file resumes to the end at once: the same weights, no epoch rerun.
    again, record = _noisy_fit(schedule, progress, stop_after=1, epochs=12)  # no validation runs at all
    for a, b in zip(whole.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_progress_of_another_key_or_a_damaged_file_is_ignored(tmp_path, caplog):
    from matdesinne.models.fitting import Progress

    whole, _ = _noisy_fit("cosine")
    path = tmp_path / "p.safetensors"
    with pytest.raises(_Interrupt):
        _noisy_fit("cosine", Progress(path, key="other", every=0.0), stop_after=4)
    fresh, _ = _noisy_fit("cosine", Progress(path, key="k", every=0.0))
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), fresh.state_dict().values()))
    path.write_bytes(path.read_bytes()[:100])  # cut short, as by a full disk
    with caplog.at_level("WARNING"):
        fresh, _ = _noisy_fit("cosine", Progress(path, key="k", every=0.0))
    assert "cannot resume" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), fresh.state_dict().values()))


def test_an_interrupted_generator_fit_resumes_to_the_same_checkpoint(tmp_path, monkeypatch):
    """Through ``Generator.fit``: its training noise generator is saved with the rest."""
    from matdesinne.models.fitting import Progress

    x, y = synth_data(300, seed=1)
    xv, yv = synth_data(60, seed=2)
    settings = {"hidden": 16, "layers": 2, "epochs": 5, "batch_size": 64, "device": "cpu", "lr_schedule": "cosine"}
    whole = CFM(**settings).fit(x, y, synth_space(), xv, yv)
    progress = Progress(tmp_path / "cfm.safetensors", key="k", every=0.0)
    calls = []
    original = CFM._loss

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == 9:  # in the third of five epochs of four batches
            raise _Interrupt
        return original(self, *args)

    monkeypatch.setattr(CFM, "_loss", interrupted)
    with pytest.raises(_Interrupt):
        CFM(**settings).fit(x, y, synth_space(), xv, yv, progress=progress)
    monkeypatch.setattr(CFM, "_loss", original)
    resumed = CFM(**settings).fit(x, y, synth_space(), xv, yv, progress=progress)
    assert resumed.training_["val_score"] == whole.training_["val_score"]
    np.testing.assert_array_equal(resumed.sample(0.5, 50, seed=1), whole.sample(0.5, 50, seed=1))


def test_the_progress_key_changes_with_the_data_settings_and_training_code(monkeypatch):
    import matdesinne.models.fitting as fitting

    cpu = torch.device("cpu")
    x = np.arange(6.0).reshape(3, 2)
    key = fitting.progress_key("cfm", {"lr": 1e-3}, x, device=cpu)
    assert key == fitting.progress_key("cfm", {"lr": 1e-3}, x.copy(), device=cpu)
    assert key != fitting.progress_key("cfm", {"lr": 2e-3}, x, device=cpu)
    assert key != fitting.progress_key("cfm", {"lr": 1e-3}, x.astype(np.float32), device=cpu)
    x2 = x.copy()
    x2[2, 1] = np.nextafter(x2[2, 1], 9.0)
    assert key != fitting.progress_key("cfm", {"lr": 1e-3}, x2, device=cpu)
    monkeypatch.setattr(fitting, "TRAINING_VERSION", fitting.TRAINING_VERSION + 1)
    assert key != fitting.progress_key("cfm", {"lr": 1e-3}, x, device=cpu)


def test_progress_whose_best_weights_do_not_fit_the_network_is_ignored(tmp_path, caplog):
    """Under the same key (say, a network changed by code the key could not see), a plateau
    fit would fail only when going back to its best weights, after all the training: such a
    file is refused when read, and the fit starts over."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from matdesinne.models.fitting import Progress

    whole, _ = _noisy_fit("plateau")
    path = tmp_path / "p.safetensors"
    with pytest.raises(_Interrupt):
        _noisy_fit("plateau", Progress(path, key="k", every=0.0), stop_after=3)
    with safe_open(str(path), framework="pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    tensors["best.0.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(path), metadata=metadata)
    with caplog.at_level("WARNING"):
        fresh, _ = _noisy_fit("plateau", Progress(path, key="k", every=0.0))
    assert "best weights do not fit" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), fresh.state_dict().values()))
