import numpy as np
import pytest

from conftest import synth_forward
from matdesinne.errors import UserInputError
from matdesinne.pipeline import design, downselect, localize


@pytest.mark.parametrize("target", [0.0, 0.5, 1.0])
def test_pipeline_candidates_are_on_target_under_the_true_function(tiny_models, target):
    result = design(tiny_models, target, n=2000, seed=0)
    cand, s = result.candidates, result.summary
    assert list(cand.columns) == ["p0", "p1", "p2", "gap_pred", "gap_std", "target"]
    assert s["n_requested"] == s["n_generated"] == 2000
    assert 0 < s["n_candidates"] <= s["n_kept"] <= 2000
    assert s["n_candidates"] >= 0.5 * 2000, s
    x = cand[["p0", "p1", "p2"]].to_numpy()
    assert tiny_models.space.contains(x).all()
    assert (cand["target"] == target).all()
    # Under the surrogate that localized them: on target.
    assert s["mae_surrogate"] <= s["atol"] + 1e-9
    # Re-simulated with the exact forward function, which played no part in generation.
    true_mae = np.abs(synth_forward(x) - target).mean()
    assert true_mae < 0.05, true_mae
    assert set(s["seconds"]) == {"generate", "downselect", "localize", "total"}


def test_matdesinne_beats_raw_cinn_under_the_true_function(tiny_models):
    raw = design(tiny_models, 0.8, n=2000, method="cinn", seed=1).candidates
    full = design(tiny_models, 0.8, n=2000, seed=1).candidates
    err = lambda c: np.abs(synth_forward(c[["p0", "p1", "p2"]].to_numpy()) - 0.8).mean()
    assert err(full) < 0.5 * err(raw)


def test_design_is_seeded(tiny_models):
    a = design(tiny_models, 0.5, n=500, seed=3).candidates
    b = design(tiny_models, 0.5, n=500, seed=3).candidates
    c = design(tiny_models, 0.5, n=500, seed=4).candidates
    assert a.equals(b)
    assert not (len(a) == len(c) and np.allclose(a.to_numpy(), c.to_numpy()))


def test_constraints_hold_in_downselection_and_localization(tiny_models):
    result = design(tiny_models, 0.6, n=2000, seed=0, constraints={"p2": (0.2, 0.4), "p0": (0.3, 0.9)})
    cand = result.candidates
    assert len(cand) > 0
    assert cand["p2"].between(0.2, 0.4).all() and cand["p0"].between(0.3, 0.9).all()
    with pytest.raises(UserInputError, match="outside the design space"):
        design(tiny_models, 0.6, n=10, constraints={"p2": (-1.0, 0.4)})


def test_localize_steps_do_not_depend_on_the_batch(tiny_models):
    """Each sample has its own loss: localizing it alone or among many gives the same point."""
    sur, space = tiny_models.surrogate, tiny_models.space
    x = np.random.default_rng(0).uniform(0.2, 0.8, (300, 3))
    many, conv_many = localize(x, sur, 0.7, space)
    one, conv_one = localize(x[:1], sur, 0.7, space)
    np.testing.assert_allclose(many[0], one[0], atol=1e-5)
    assert conv_many.mean() > 0.9
    pred = sur.predict(many[conv_many])[0]
    assert np.abs(pred - 0.7).max() <= 0.005 + 1e-6


def test_localize_moves_samples_no_further_than_needed(tiny_models):
    sur, space = tiny_models.surrogate, tiny_models.space
    x = np.random.default_rng(1).uniform(0.2, 0.8, (300, 3))
    pred = sur.predict(x)[0]
    moved, converged = localize(x, sur, 0.7, space)
    dist = np.linalg.norm(moved - x, axis=1)
    already = np.abs(pred - 0.7) <= 0.005
    assert np.all(dist[already] == 0)  # on-target samples stay where they are
    # A point of the level set is at least |f(x) - y*| / max|grad f| away; the localizer's
    # distance should be within a small factor of that lower bound, not wander off.
    gmax = 1.5 * np.sqrt(1 + 1 + 0.9**2) * 1.5
    lower = np.abs(pred - 0.7) / gmax
    ok = converged & ~already
    assert np.median(dist[ok] / lower[ok]) < 3.0
    # Diversity survives. Along the gradient (mostly p0) the level set must squeeze the
    # spread; along p2, which barely moves f, it is kept, and no two points collapse.
    assert moved[converged, 2].std() > 0.8 * x[converged, 2].std()
    assert len(np.unique(np.round(moved[converged], 4), axis=0)) == converged.sum()


def test_localize_respects_bounds_when_pushed_against_them(tiny_models):
    sur, space = tiny_models.surrogate, tiny_models.space
    narrow = space.constrain({"p0": (0.0, 0.3)})
    x = np.column_stack([np.full(200, 0.29), np.random.default_rng(2).uniform(0, 1, (200, 2))])
    # f = 1.5 p0 + p1 + 0.3 sin(3 p2) - 0.9 <= 0.85 in this box: 0.6 is reachable only by
    # pinning p0 at its bound and climbing through p1/p2.
    moved, converged = localize(x, sur, 0.6, narrow)
    assert narrow.contains(moved).all()
    assert converged.mean() > 0.5
    assert np.median(moved[converged, 0]) > 0.29  # p0 pushed up to its bound, not past it
    # An unreachable target is never reported as converged.
    _, never = localize(x, sur, 1.0, narrow)
    assert not never.any()


def test_downselect_applies_every_rule(tiny_models):
    sur, space = tiny_models.surrogate, tiny_models.space
    x = np.array([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    sel = downselect(x, sur, target=float(sur.predict(x[:1])[0][0]), space=space, tolerance=0.05)
    assert sel.kept.tolist() == [True, False, False]
    assert sel.in_bounds.tolist() == [True, False, True]
    strict = downselect(x[:1], sur, target=float(sel.pred[0]), space=space, max_std=-1.0)
    assert not strict.kept.any() and not strict.confident.any()


def test_max_std_keeps_only_the_confident_candidates(tiny_models):
    everyone = design(tiny_models, 0.6, n=2000, seed=2)
    cap = float(everyone.candidates["gap_std"].median())
    capped = design(tiny_models, 0.6, n=2000, seed=2, max_std=cap)
    cand = capped.candidates
    assert capped.summary["max_std"] == pytest.approx(cap)
    assert everyone.summary["max_std"] == pytest.approx(tiny_models.surrogate.std_threshold_)
    assert 0 < len(cand) <= (everyone.candidates["gap_std"] <= cap).sum()
    assert (cand["gap_std"] <= cap).all()
    # Each sample is localized on its own, so the capped candidates are among the others
    # (up to float32 rounding, which may differ with the batch's size).
    names = tiny_models.space.names
    others = everyone.candidates[names].to_numpy()
    gaps = np.abs(cand[names].to_numpy()[:, None, :] - others[None]).max(-1).min(1)
    assert (gaps < 1e-5).all(), gaps.max()
    # The surrogate's own threshold still applies under a looser cap.
    sur, threshold = tiny_models.surrogate, tiny_models.surrogate.std_threshold_
    loose = design(tiny_models, 0.6, n=2000, seed=2, max_std=10 * threshold)
    assert loose.summary["max_std"] == pytest.approx(threshold)
    far = np.random.default_rng(0).uniform(-3.0, 4.0, (400, 3))  # extrapolation: members disagree
    std = sur.predict(far)[1]
    assert (std > threshold).any() and (std <= threshold).any()
    sel = downselect(far, sur, target=0.6, space=tiny_models.space, max_std=10 * threshold)
    np.testing.assert_array_equal(sel.confident, std <= threshold)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target": 5.0}, "outside the gap range"),
        ({"target": float("nan")}, "finite"),
        ({"target": 0.5, "n": 0}, "positive"),
        ({"target": 0.5, "method": "gan"}, "unknown method"),
        ({"target": 0.5, "tolerance": -1.0}, "tolerance"),
        ({"target": 0.5, "max_std": 0.0}, "max_std"),
        ({"target": 0.5, "max_std": float("nan")}, "max_std"),
        ({"target": 0.5, "method": "cinn", "max_std": 0.05}, "raw samples"),
    ],
)
def test_design_bad_input(tiny_models, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        design(tiny_models, **kwargs)


def test_extrapolation_can_be_allowed(tiny_models):
    lo, hi = tiny_models.surrogate.y_range_
    result = design(tiny_models, hi + 0.2, n=200, allow_extrapolation=True)
    assert result.summary["target"] == pytest.approx(hi + 0.2)


def test_sobol_latents_run_the_whole_pipeline(tiny_models):
    result = design(tiny_models, 0.6, n=1024, seed=0, latent="sobol")
    x = result.candidates[tiny_models.space.names].to_numpy()
    assert result.summary["latent"] == "sobol" and len(x) > 200
    assert np.abs(synth_forward(x) - 0.6).mean() < 0.1  # on target under the true function
    assert not result.candidates.equals(design(tiny_models, 0.6, n=1024, seed=0).candidates)
    with pytest.raises(UserInputError, match="latent='uniform'"):
        design(tiny_models, 0.6, n=10, latent="uniform")
