"""Every generator family: checkpoint round trip, sample shape, seeding, and beating random search."""

import numpy as np
import pytest

from conftest import synth_data, synth_forward, synth_space
from matdesinne.models import CFM, CINN, CVAE, GENERATORS, INN, MDN

FAMILIES = {"cinn": CINN, "inn": INN, "mdn": MDN, "cvae": CVAE, "cfm": CFM}


@pytest.fixture(scope="module")
def trained():
    space = synth_space()
    x, y = synth_data(2000, seed=21)
    xv, yv = synth_data(400, seed=22)
    return {k: cls(hidden=64, epochs=80, patience=30, seed=0, device="cpu").fit(x, y, space, xv, yv)
            for k, cls in FAMILIES.items()}


def test_registry_holds_every_family():
    assert set(GENERATORS) == set(FAMILIES)


@pytest.mark.parametrize("kind", FAMILIES)
def test_checkpoint_round_trip_and_seeded_samples(trained, kind, tmp_path):
    model = trained[kind]
    a = model.sample(0.5, 300, seed=1)
    assert a.shape == (300, 3) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, model.sample(0.5, 300, seed=1))
    assert not np.allclose(a, model.sample(0.5, 300, seed=2))
    model.save(tmp_path)
    again = FAMILIES[kind].load(tmp_path)
    assert again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.sample(0.5, 300, seed=1), a)


@pytest.mark.parametrize("kind", FAMILIES)
def test_training_is_seeded(kind):
    space = synth_space()
    x, y = synth_data(300, seed=23)
    xv, yv = synth_data(60, seed=24)
    fit = lambda: FAMILIES[kind](hidden=16, epochs=2, seed=5, device="cpu").fit(x, y, space, xv, yv).sample(0.4, 20, seed=0)
    np.testing.assert_array_equal(fit(), fit())


@pytest.mark.parametrize("kind", FAMILIES)
def test_each_family_beats_random_search(trained, kind):
    random = np.random.default_rng(0).uniform(0, 1, (2000, 3))
    for target in (0.0, 0.5, 1.0):
        sampled = trained[kind].sample(target, 2000, seed=3)
        ours = np.abs(synth_forward(sampled) - target).mean()
        baseline = np.abs(synth_forward(random) - target).mean()
        assert ours < 0.8 * baseline, (kind, target, ours, baseline)


def test_sobol_latent_draws_are_stratified_and_seeded():
    from scipy.special import ndtr

    from matdesinne.models.latent import LatentSource

    z = LatentSource("sobol", seed=7).normal(64, 5).double().numpy()
    np.testing.assert_array_equal(z, LatentSource("sobol", seed=7).normal(64, 5).numpy())
    assert not np.allclose(z, LatentSource("sobol", seed=8).normal(64, 5).numpy())
    for column in ndtr(z).T:  # one point in each 1/64 of probability, in every coordinate
        assert sorted(np.floor(column * 64).astype(int)) == list(range(64))
    iid = LatentSource("normal", seed=7).normal(64, 5).numpy()
    assert max(len(set(np.floor(ndtr(c) * 64).astype(int))) for c in iid.T) < 64  # i.i.d. draws clump
    with pytest.raises(ValueError, match="latent='halton'"):
        LatentSource("halton")


@pytest.mark.parametrize("kind", FAMILIES)
def test_every_family_samples_with_sobol_latents(trained, kind):
    from matdesinne.errors import UserInputError

    model = trained[kind]
    a = model.sample(0.5, 256, seed=1, latent="sobol")
    assert a.shape == (256, 3) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, model.sample(0.5, 256, seed=1, latent="sobol"))
    assert not np.allclose(a, model.sample(0.5, 256, seed=1))  # not the i.i.d. draw
    random = np.random.default_rng(0).uniform(0, 1, (2000, 3))
    ours = np.abs(synth_forward(model.sample(0.5, 2000, seed=3, latent="sobol")) - 0.5).mean()
    assert ours < 0.8 * np.abs(synth_forward(random) - 0.5).mean()
    with pytest.raises(UserInputError, match="latent='halton'"):
        model.sample(0.5, 10, latent="halton")


def test_cfm_guidance_sharpens_the_conditional_and_round_trips(tmp_path):
    import json

    from matdesinne.errors import UserInputError

    space = synth_space()
    x, y = synth_data(2000, seed=21)
    xv, yv = synth_data(400, seed=22)
    model = CFM(hidden=64, epochs=80, patience=30, cond_dropout=0.2, seed=0, device="cpu").fit(x, y, space, xv, yv)
    errors = {}
    for w in (0.0, 1.0, 1.5):
        model.guidance = w
        errors[w] = np.mean([np.abs(synth_forward(model.sample(t, 2000, seed=3)) - t).mean() for t in (0.2, 0.5, 0.8)])
    assert errors[0.0] > 2 * errors[1.0], errors  # w = 0: the unconditional velocity, learnt from the dropped rows
    assert errors[1.5] < 0.9 * errors[1.0], errors  # guidance pulls samples toward designs typical of the target
    model.save(tmp_path)
    again = CFM.load(tmp_path)
    assert again.get_params() == model.get_params() and again.guidance == 1.5 and again.cond_dropout == 0.2
    np.testing.assert_array_equal(again.sample(0.5, 100, seed=1), model.sample(0.5, 100, seed=1))
    with pytest.raises(UserInputError, match="guidance other than 1 needs a model trained with cond_dropout > 0"):
        CFM(guidance=2.0)._check_params()
    # A checkpoint from before guidance existed (no such keys) loads as it was trained.
    plain = CFM(hidden=16, epochs=2, seed=0, device="cpu").fit(x[:300], y[:300], space, xv[:60], yv[:60])
    plain.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "cfm.json").read_text())
    del meta["params"]["cond_dropout"], meta["params"]["guidance"], meta["params"]["lr_schedule"]
    (tmp_path / "old" / "cfm.json").write_text(json.dumps(meta))
    old = CFM.load(tmp_path / "old")
    assert old.cond_dropout == 0.0 and old.guidance == 1.0 and old.lr_schedule == "plateau"
    np.testing.assert_array_equal(old.sample(0.5, 50, seed=2), plain.sample(0.5, 50, seed=2))


def test_cfm_steps_is_a_setting_of_sampling_not_a_network_size(tmp_path):
    import json

    from matdesinne.errors import UserInputError

    x, y = synth_data(300, seed=31)
    xv, yv = synth_data(60, seed=32)
    model = CFM(hidden=8, layers=2, epochs=2, steps=50, seed=0, device="cpu").fit(x, y, synth_space(), xv, yv)
    model.save(tmp_path)
    assert CFM.load(tmp_path).steps == 50  # more steps than any weight has rows is fine
    meta = json.loads((tmp_path / "cfm.json").read_text())
    meta["params"]["steps"] = 10**6
    (tmp_path / "cfm.json").write_text(json.dumps(meta))
    with pytest.raises(UserInputError, match="steps must be from 1 to 10000"):
        CFM.load(tmp_path)


def test_cfm_trains_with_its_lr_schedule_and_train_anneals_it(tmp_path, monkeypatch, synth_csv):
    import matdesinne.models.generator as generator_module
    from matdesinne.models.train import train_models

    seen = []
    real = generator_module.fit_module

    def spy(*args, **kwargs):
        seen.append(kwargs["schedule"])
        return real(*args, **kwargs)

    monkeypatch.setattr(generator_module, "fit_module", spy)
    x, y = synth_data(300, seed=41)
    xv, yv = synth_data(60, seed=42)
    CFM(hidden=8, layers=1, epochs=2, lr_schedule="cosine", seed=0, device="cpu").fit(x, y, synth_space(), xv, yv)
    CINN(hidden=8, blocks=1, epochs=1, seed=0, device="cpu").fit(x, y, synth_space(), xv, yv)
    assert seen == ["cosine", "plateau"]
    train_models(data=synth_csv, kinds=["surrogate", "cfm"], out=tmp_path / "models", epochs=2, augment=300,
                 y_lower=0.0, device="cpu")
    assert seen[-1] == "cosine" and CFM.load(tmp_path / "models").lr_schedule == "cosine"
