"""The MIT finder on a synthetic space with a planted, sharp metal-insulator step at p0 = 0.6."""

import numpy as np
import pytest

from conftest import synth_space
from matdesinne.analysis import change_in_words, find_transitions
from matdesinne.materials import load_dataset
from matdesinne.errors import UserInputError
from matdesinne.models import EnsembleSurrogate


def step(x):
    """Metal (0) for p0 < 0.6, insulator (0.8) above it; p1 and p2 do nothing."""
    return 0.8 / (1 + np.exp(-(x[:, 0] - 0.6) * 80)) * (x[:, 0] > 0.57)


@pytest.fixture(scope="module")
def step_surrogate():
    rng = np.random.default_rng(0)
    x, xv = rng.uniform(size=(3000, 3)), rng.uniform(size=(500, 3))
    return EnsembleSurrogate(members=3, hidden=64, layers=2, epochs=200, patience=40, device="cpu").fit(
        x, step(x), synth_space(), xv, step(xv))


def test_finder_locates_the_planted_step(step_surrogate):
    insulators = np.random.default_rng(1).uniform([0.7, 0, 0], [1.0, 1, 1], (200, 3))
    result = find_transitions(insulators, step_surrogate, target=0.8, max_params=1)
    pairs = result.pairs
    assert len(pairs) >= 150
    assert (pairs["changed"] == "p0").mean() > 0.9  # the only parameter that matters
    assert pairs["p0_metal"].between(0.52, 0.64).mean() > 0.9  # stops at the step, not beyond
    assert np.allclose(pairs["p1_metal"], pairs["p1_insulator"])  # others untouched
    # Ends straddle the step under the exact function, and the profile rises sharply.
    metal = pairs[[f"p{i}_metal" for i in range(3)]].to_numpy()
    insulator = pairs[[f"p{i}_insulator" for i in range(3)]].to_numpy()
    assert (step(metal) < 0.1).mean() > 0.9 and (step(insulator) > 0.7).all()
    assert pairs["line_monotone"].mean() > 0.9
    assert pairs["transition_width"].median() < 0.4
    assert pairs["distance"].is_monotonic_increasing  # ranked by the size of the change
    assert len(pairs) + len(result.safe) == 200


def test_two_parameter_flips_are_never_larger_than_one_parameter_flips(step_surrogate):
    insulators = np.random.default_rng(2).uniform([0.7, 0, 0], [0.8, 1, 1], (60, 3))
    one = find_transitions(insulators, step_surrogate, 0.8, max_params=1, limit=60).pairs
    two = find_transitions(insulators, step_surrogate, 0.8, max_params=2, limit=60).pairs
    assert two["distance"].median() <= one["distance"].median() + 1e-6


def test_change_in_words_uses_strain_and_field_units():
    space = load_dataset("mos2").space
    delta = np.zeros((1, space.dim))
    delta[0, 0] = 0.0316  # a: 1 % of 3.16 Å
    delta[0, 6] = 0.5  # efield: V/Å, no strain
    words, units = change_in_words(space, delta)
    assert words[0, 0] == pytest.approx(1.0) and units[0] == "%"
    assert words[0, 6] == pytest.approx(0.5) and units[6] == "V/Å"


def test_no_flip_means_safe(step_surrogate):
    # Only p1 may change, and p1 does nothing: every insulator is safe from the MIT.
    insulators = np.random.default_rng(3).uniform([0.7, 0, 0], [1.0, 1, 1], (20, 3))
    result = find_transitions(insulators, step_surrogate, 0.8, parameters=["p1"])
    assert result.pairs.empty and len(result.safe) == 20


def test_finder_needs_a_floored_property(tiny_models):
    sur = tiny_models.surrogate
    with pytest.raises(UserInputError, match="unknown parameter"):
        find_transitions(np.full((3, 3), 0.5), sur, 0.5, parameters=["nope"])
    assert find_transitions(np.empty((0, 3)), sur, 0.5).pairs.empty


def test_strain_means_signed_and_absolute():
    from matdesinne.analysis.figures import strain

    space = load_dataset("mos2").space
    x = np.array([[3.16 * 1.1, 3.16 * 0.9, 12.3, 90, 90, 120, 0.0]])
    assert strain(space, x, ["a", "b", "c"])[0] == pytest.approx(0.0, abs=1e-9)
    assert strain(space, x, ["a", "b", "c"], absolute=True)[0] == pytest.approx(20 / 3)
