import json

import numpy as np
import pytest
import torch

from conftest import synth_data, synth_forward, synth_space
from matdesinne.errors import UserInputError
from matdesinne.models import CINN, EnsembleSurrogate, default_models_dir, load_models


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
