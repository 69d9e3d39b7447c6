"""Batch acquisition: spread over the candidates, weighted by uncertainty, never a repeat."""

import numpy as np
import pytest
from conftest import synth_space

from matdesinne.data import DesignSpace, Parameter, Property
from matdesinne.errors import UserInputError
from matdesinne.loop import design_keys, select_batch, to_unit


def pairwise_min(u):
    d = np.linalg.norm(u[:, None] - u[None], axis=-1)
    return d[np.triu_indices(len(u), 1)].min()


@pytest.fixture
def cloud():
    return np.random.default_rng(0).uniform(0, 1, (2000, 3))


def test_design_keys_are_stable_under_float_noise():
    space = synth_space()
    x = np.array([[0.1, 0.2, 0.3], [0.5, 0.25, 1.0], [-0.0, 0.0, 0.0]])
    assert design_keys(x, space) == design_keys(x + 1e-10, space)
    assert design_keys(x, space)[1] == "0.5,0.25,1.0" and design_keys(x, space)[2] == "0.0,0.0,0.0"
    assert design_keys(x + 1e-5, space) != design_keys(x, space)
    np.testing.assert_allclose(to_unit(x, space), x)


def test_picks_are_spread_out(cloud):
    space = synth_space()
    pick = select_batch(cloud, np.ones(len(cloud)), space, 12)
    assert len(pick) == 12 and len(set(pick.tolist())) == 12
    # far more spread than a random batch of the same size: farthest-point covers the box
    spread = pairwise_min(cloud[pick])
    rng = np.random.default_rng(1)
    random = np.median([pairwise_min(cloud[rng.choice(len(cloud), 12, replace=False)]) for _ in range(50)])
    assert spread > 3 * random and spread > 0.3
    assert (select_batch(cloud, np.ones(len(cloud)), space, 12) == pick).all()  # deterministic


def test_uncertainty_draws_the_picks(cloud):
    space = synth_space()
    std = np.where(cloud[:, 0] > 0.5, 0.05, 0.005)
    pick = select_batch(cloud, std, space, 10)
    assert std[pick[0]] == std.max()  # nothing labelled: the most uncertain first
    assert (cloud[pick, 0] > 0.5).mean() >= 0.8
    # a uniform scale on the std changes nothing: only ratios matter
    assert (select_batch(cloud, 1000 * std, space, 10) == pick).all()


def test_never_repeats_a_labelled_design_and_keeps_away_from_them(cloud):
    space = synth_space()
    std = np.random.default_rng(2).uniform(0.01, 0.02, len(cloud))
    labelled = cloud[:300] + 1e-9  # the same designs, after a CSV round trip
    pick = select_batch(cloud, std, space, 40, labelled=labelled, min_distance=0.05)
    assert len(pick) == 40 and not set(pick.tolist()) & set(range(300))
    taken = set(design_keys(labelled, space))
    assert not taken & set(design_keys(cloud[pick], space))
    u, ul = to_unit(cloud[pick], space), to_unit(labelled, space)
    assert np.linalg.norm(u[:, None] - ul[None], axis=-1).min() >= 0.05
    assert pairwise_min(u) >= 0.05
    # and across batches: labelling the picks then asking again gives new designs only
    again = select_batch(cloud, std, space, 40, labelled=np.vstack([labelled, cloud[pick]]))
    assert len(again) == 40 and not set(again.tolist()) & (set(pick.tolist()) | set(range(300)))


def test_duplicates_and_short_candidate_sets():
    space = synth_space()
    x = np.array([[0.1, 0.1, 0.1], [0.1, 0.1, 0.1], [0.9, 0.9, 0.9], [0.5, 0.5, np.nan]])
    pick = select_batch(x, np.array([1.0, 1.0, 0.5, 9.0]), space, 5)
    assert sorted(pick.tolist()) == [0, 2]  # one copy of a duplicate; never a NaN row
    assert len(select_batch(x[:3], np.zeros(3), space, 5, labelled=x[:1])) == 1
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UserInputError):
            select_batch(x, np.ones(4), space, bad)
    with pytest.raises(UserInputError):
        select_batch(x, np.ones(3), space, 2)


def test_confident_picks_only_among_the_lowest_std_and_spreads_them():
    space = DesignSpace("box", (Parameter("a", 0.0, 1.0), Parameter("b", 0.0, 1.0)), Property("y"))
    x = np.random.default_rng(3).uniform(size=(400, 2))
    std = x[:, 0]  # doubt grows with a
    pick = select_batch(x, std, space, 8, confident=0.25)
    assert len(pick) == 8 and (std[pick] <= np.quantile(std, 0.25)).all()
    explore = select_batch(x, std, space, 8)
    assert std[explore].mean() > std[pick].mean()
    with pytest.raises(UserInputError):
        select_batch(x, std, space, 8, confident=0.0)
