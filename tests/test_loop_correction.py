"""Model updates from new labelled rows: the residual GP wrapper, the refit, and the choice."""

import numpy as np
import pytest
import torch
from conftest import SYNTH_NAMES, synth_data, synth_forward

from matdesinne.errors import UserInputError
from matdesinne.loop import (
    CorrectedSurrogate, ResidualGP, base_rows, choose_update, fit_residual, held_out_predictions, refit_surrogate,
    to_unit,
)
from matdesinne.loop.correction import raw_residuals
from matdesinne.loop.update import fold_of
from matdesinne.models import ModelSet
from matdesinne.pipeline import design


def planted_truth(x):
    """'DFT': the synthetic truth plus a smooth offset the prior models never saw."""
    return np.maximum(0.0, synth_forward(x) + 0.08 * np.sin(3.0 * x[:, 0]) + 0.05)


THREADS = torch.get_num_threads()


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny tensors on shared cores: torch's threads only wait on each other (10-100x slower
    under load). Session-scoped, so that it also precedes the tiny models' training."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module", autouse=True)
def _threads_back():
    yield
    torch.set_num_threads(THREADS)  # the modules after this one run as they would have


@pytest.fixture(scope="module")
def new_rows(tiny_models):
    """30 designs the prior model proposes for 0.6, labelled by the planted truth."""
    cands = design(tiny_models, 0.6, n=3000, seed=5).candidates
    x = cands[SYNTH_NAMES].to_numpy()[np.random.default_rng(0).choice(len(cands), 30, replace=False)]
    return x, planted_truth(x)


@pytest.fixture(scope="module")
def corrected(tiny_models, new_rows):
    return fit_residual(tiny_models.surrogate, *new_rows, seed=0)


def test_residual_gp_in_torch_matches_scikit_learn():
    rng = np.random.default_rng(1)
    u = rng.uniform(0, 1, (25, 3))
    r = 0.1 * np.sin(4 * u[:, 0]) + 0.03 * u[:, 1] + 0.002 * rng.normal(size=25)
    gp = ResidualGP(seed=0).fit(u, r)
    probe = np.vstack([u, rng.uniform(0, 1, (40, 3))])
    mean, std = gp.predict(probe)
    sk_mean, sk_std = gp.gp_.predict(probe, return_std=True)
    np.testing.assert_allclose(mean, sk_mean, atol=1e-8)
    # scikit-learn's std includes the white noise; ours is the latent function's alone
    np.testing.assert_allclose(std**2 + gp.noise_ * gp.y_std_**2, sk_std**2, rtol=1e-6, atol=1e-12)
    # at the training points the mean reproduces the data within the fitted noise
    noise = np.sqrt(gp.noise_) * gp.y_std_
    assert np.abs(mean[:25] - r).max() <= 3 * noise + 1e-4
    assert gp.describe()["rows"] == 25 and len(gp.describe()["length_scales"]) == 3


def test_residual_gp_refuses_no_rows():
    with pytest.raises(UserInputError):
        ResidualGP().fit(np.empty((0, 3)), np.empty(0))


def test_raw_residuals_are_censored_at_the_floor():
    raw = np.array([0.3, -0.4, 0.2, -0.1])
    y = np.array([0.5, 0.0, 0.0, 0.2])
    # above the floor: the gap to the truth; at the floor: come down if above it, else nothing
    np.testing.assert_allclose(raw_residuals(raw, y, 0.0), [0.2, 0.0, -0.2, 0.3])
    np.testing.assert_allclose(raw_residuals(raw, y, None), y - raw)


def test_corrected_surrogate_fits_the_new_rows(tiny_models, new_rows, corrected):
    x, y = new_rows
    prior_mean, prior_std = tiny_models.surrogate.predict(x)
    mean, std = corrected.predict(x)
    assert np.abs(prior_mean - y).mean() > 0.05  # the prior misses the planted offset ...
    noise = np.sqrt(corrected.residual.noise_) * corrected.residual.y_std_
    assert np.abs(mean - y).max() <= 3 * noise + 2e-3  # ... the corrected model hits it within noise
    assert (std >= prior_std - 1e-7).all()  # the correction's variance only adds
    assert corrected.std_threshold_ >= tiny_models.surrogate.std_threshold_
    # the interface the pipeline uses, shapes included
    assert isinstance(corrected, CorrectedSurrogate) and corrected.members == tiny_models.surrogate.members
    assert corrected.space_ is tiny_models.surrogate.space_ and corrected.device_ == tiny_models.surrogate.device_
    xt = torch.as_tensor(x[:4], dtype=torch.float32)
    assert corrected.raw(xt).shape == (corrected.members, 4)
    assert corrected.raw(xt.unsqueeze(0).repeat(corrected.members, 1, 1)).shape == (corrected.members, 4)
    assert corrected.score(x, y)["mae"] < 0.01
    with pytest.raises(NotImplementedError):
        corrected.save("anywhere")
    # correcting a corrected surrogate starts again from the prior
    assert fit_residual(corrected, x[:5], y[:5]).surrogate is tiny_models.surrogate


def test_corrected_std_includes_the_residual_variance(tiny_models, corrected):
    x = np.random.default_rng(7).uniform(0.0, 1.0, (50, len(SYNTH_NAMES)))
    mean, std = corrected.predict(x)
    xt = torch.as_tensor(x, dtype=torch.float32)
    members = corrected.clip(corrected.raw(xt)).detach()
    _, var = corrected._deltas(xt, variance=True)[0]
    np.testing.assert_allclose(std, np.sqrt(members.var(0).numpy() + var.numpy()), rtol=1e-5)
    assert var.max() > 1e-4  # so the check above can tell the GP's variance apart from the members' spread
    every = corrected.predict_all(x)[corrected.space_.property.name]
    np.testing.assert_array_equal(every[0], mean)
    np.testing.assert_array_equal(every[1], std)


def test_corrected_surrogate_is_differentiable(corrected):
    x = torch.tensor([[0.7, 0.4, 0.3], [0.5, 0.6, 0.8]], dtype=torch.float32, requires_grad=True)
    corrected.raw(x).mean(0).sum().backward()
    grad = x.grad.numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    # the gradient is that of the predicted mean (members all above the floor here)
    h = 1e-3
    for j in range(3):
        step = np.zeros((2, 3))
        step[:, j] = h
        x0 = x.detach().double().numpy()
        fd = (corrected.predict(x0 + step)[0] - corrected.predict(x0 - step)[0]) / (2 * h)
        np.testing.assert_allclose(grad[:, j], fd, rtol=0.05, atol=5e-3)
    # and it includes the correction's own slope
    u = torch.tensor(to_unit(x.detach().numpy(), corrected.space_), requires_grad=True)
    corrected.residual.predict_tensor(u, variance=False)[0].sum().backward()
    base = torch.tensor(x.detach().numpy(), requires_grad=True)
    corrected.surrogate.raw(base).mean(0).sum().backward()
    span = corrected.space_.highs - corrected.space_.lows
    np.testing.assert_allclose(grad, base.grad.numpy() + u.grad.numpy() / span, rtol=1e-3, atol=1e-4)


def test_corrected_surrogate_designs_closer_to_the_truth(tiny_models, corrected):
    prior = design(tiny_models, 0.6, n=3000, seed=1).candidates
    fixed = design(ModelSet(tiny_models.generator, corrected, tiny_models.directory), 0.6, n=3000, seed=1).candidates
    assert len(fixed) > 100
    err = lambda c: np.abs(planted_truth(c[SYNTH_NAMES].to_numpy()) - 0.6).mean()
    assert err(fixed) < 0.3 * err(prior)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_corrected_surrogate_on_cuda(tiny_models, new_rows):
    cpu = fit_residual(tiny_models.surrogate, *new_rows)
    x = new_rows[0]
    mean_cpu, std_cpu = cpu.predict(x)
    try:
        tiny_models.surrogate.to("cuda")
        gpu = fit_residual(tiny_models.surrogate, *new_rows)
        assert gpu.device_.type == "cuda"
        mean_gpu, std_gpu = gpu.predict(x)
    finally:
        tiny_models.surrogate.to("cpu")
    np.testing.assert_allclose(mean_gpu, mean_cpu, atol=1e-4)
    np.testing.assert_allclose(std_gpu, std_cpu, atol=1e-4)


def test_refit_learns_the_new_rows_and_leaves_the_prior_alone(tiny_models, new_rows):
    x, y = new_rows
    prior = tiny_models.surrogate
    weights = [p.detach().clone() for p in prior.module_.parameters()]
    base = synth_data(3000, seed=2)  # the rows the tiny surrogate was trained on
    tuned = refit_surrogate(prior, x, y, base, seed=3)
    again = refit_surrogate(prior, x, y, base, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(weights, prior.module_.parameters()))
    assert np.abs(tuned.predict(x)[0] - y).mean() < 0.5 * np.abs(prior.predict(x)[0] - y).mean()
    np.testing.assert_array_equal(tuned.predict(x)[0], again.predict(x)[0])  # seeded
    assert tuned.training_["refit"]["new_rows"] == 30 and "refit" not in prior.training_
    # far from the new rows, the training rows keep it close to what it knew
    xu, yu = synth_data(500, seed=9)
    assert np.abs(tuned.predict(xu)[0] - yu).mean() < 0.1


def test_base_rows_without_a_training_record_are_the_priors_own_labels(tiny_models):
    x, y, source = base_rows(tiny_models.surrogate, anchors=64, seed=0)
    assert x.shape == (64, 3) and "uniform" in source
    np.testing.assert_allclose(y, tiny_models.surrogate.predict(x)[0])


def test_choose_update_scores_both_and_keeps_the_better(tiny_models, new_rows):
    x, y = new_rows
    upd = choose_update(tiny_models.surrogate, x, y, folds=5, seed=0, base=synth_data(3000, seed=2))
    assert set(upd.scores) == {"residual", "refit"} and all(s is not None for s in upd.scores.values())
    assert upd.method == min(upd.scores, key=upd.scores.get)
    assert upd.method == "residual"  # a smooth offset is what a GP discrepancy is for
    for method, pred in upd.held_out.items():
        assert pred.shape == (30,) and np.isfinite(pred).all()
        assert upd.scores[method] == pytest.approx(np.abs(pred - y).mean())
    prior_mae = np.abs(tiny_models.surrogate.predict(x)[0] - y).mean()
    assert upd.scores["residual"] < 0.3 * prior_mae
    print("update scores (K-fold MAE, eV):", upd.scores, "prior MAE:", prior_mae)
    with pytest.raises(UserInputError):
        choose_update(tiny_models.surrogate, x, y, methods=("magic",))


def test_held_out_predictions_folds(tiny_models, new_rows):
    x, y = new_rows
    assert np.isnan(held_out_predictions("residual", tiny_models.surrogate, x[:1], y[:1])).all()
    # Two batches of near neighbours: spatial folds never split a batch, so a held-out row is
    # never scored against a batch mate left in training (random folds would do that).
    rng = np.random.default_rng(0)
    batches = np.vstack([0.2 + 0.01 * rng.standard_normal((6, 3)), 0.8 + 0.01 * rng.standard_normal((6, 3))])
    fold = fold_of(batches, 2, seed=0)
    assert len(set(fold[:6])) == 1 and len(set(fold[6:])) == 1 and fold[0] != fold[6]
    assert len(np.unique(fold_of(rng.uniform(size=(40, 3)), 5, seed=0))) == 5
    assert sorted(fold_of(np.zeros((4, 3)), 10, seed=0)) == [0, 1, 2, 3]  # more folds than rows: leave-one-out
    loo = held_out_predictions("residual", tiny_models.surrogate, x[:4], y[:4], folds=10)
    assert np.isfinite(loo).all()
