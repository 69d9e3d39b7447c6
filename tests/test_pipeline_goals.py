"""Several goals at once, checked against exact functions: a two-property synthetic space
(the floored 'gap' of conftest and a smooth 'cost') and the exact 'strain' design function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from matdesinne.data import DesignSpace, Parameter, Property
from matdesinne.errors import UserInputError
from matdesinne.models import CINN, EnsembleSurrogate, load_models
from matdesinne.models.train import train_models
from matdesinne.pipeline import design
from matdesinne.pipeline.goals import Goals, Quantities, localize_goals, mean_lattice_strain, slide

from conftest import SYNTH_NAMES, synth_forward, synth_space

COST = Property("cost", "J")


def cost(x: np.ndarray) -> np.ndarray:
    """The second exact property: a smooth bowl away from the gap's gradient."""
    x = np.asarray(x, dtype=np.float64)
    return (x[:, 0] - 0.2) ** 2 + (x[:, 1] - 0.9) ** 2 + 0.5 * (x[:, 2] - 0.5) ** 2


def data(n: int, seed: int):
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (n, 3))
    return x, np.column_stack([synth_forward(x), cost(x)])


@pytest.fixture(scope="module")
def two_property_models(tmp_path_factory):
    space = synth_space()
    x, y = data(3000, 2)
    xv, yv = data(500, 3)
    out = tmp_path_factory.mktemp("two_property_models")
    EnsembleSurrogate(members=3, hidden=64, layers=2, epochs=150, patience=30, seed=0, device="cpu").fit(
        x, y, space, xv, yv, also=[COST]).save(out)
    CINN(blocks=4, hidden=64, layers=2, epochs=120, patience=30, seed=0, device="cpu").fit(
        x, y[:, 0], space, xv, yv[:, 0]).save(out)
    return load_models(out)


def test_one_ensemble_predicts_both_properties_and_round_trips(two_property_models, tmp_path):
    sur = two_property_models.surrogate
    assert [p.name for p in sur.properties_] == ["gap", "cost"]
    x, y = data(400, 9)
    every = sur.predict_all(x)
    assert np.abs(every["gap"][0] - y[:, 0]).mean() < 0.05
    assert np.abs(every["cost"][0] - y[:, 1]).mean() < 0.05
    np.testing.assert_array_equal(sur.predict(x)[0], every["gap"][0])
    sur.save(tmp_path)
    again = EnsembleSurrogate.load(tmp_path)
    np.testing.assert_array_equal(again.predict_all(x)["cost"][0], every["cost"][0])
    assert again.score(x, y)["cost"]["mae"] == pytest.approx(np.abs(every["cost"][0] - y[:, 1]).mean())


def test_candidates_meet_every_goal_under_the_exact_functions(two_property_models):
    goals = Goals.parse(["gap=0.6"], maximum=["cost=0.25"])
    result = design(two_property_models, goals, n=3000, seed=1)
    x = result.candidates[SYNTH_NAMES].to_numpy()
    assert len(x) > 300
    assert np.mean(np.abs(synth_forward(x) - 0.6) <= 0.1) >= 0.95
    assert np.mean(cost(x) <= 0.25 + 0.02) >= 0.95
    # The bound binds: plain design has many candidates above it.
    plain = design(two_property_models, 0.6, n=3000, seed=1).candidates[SYNTH_NAMES].to_numpy()
    assert np.mean(cost(plain) > 0.27) > 0.2
    names = [g["goal"] for g in result.summary["goals"]]
    assert names == ["gap = 0.6", "cost <= 0.25"]


def test_max_std_caps_the_first_property_with_several_goals(two_property_models):
    goals = Goals.parse(["gap=0.6"], minimize="cost")
    everyone = design(two_property_models, goals, n=3000, seed=1).candidates
    cap = float(everyone["gap_std"].quantile(0.3))
    capped = design(two_property_models, goals, n=3000, seed=1, max_std=cap)
    assert capped.summary["max_std"] == pytest.approx(cap)
    assert 0 < len(capped.candidates) < len(everyone)
    assert (capped.candidates["gap_std"] <= cap).all()


def test_minimize_lowers_the_exact_objective_at_equal_accuracy(two_property_models):
    plain = design(two_property_models, Goals.parse(["gap=0.6"]), n=3000, seed=4).candidates
    slid = design(two_property_models, Goals.parse(["gap=0.6"], minimize="cost"), n=3000, seed=4, travel=0.3)
    best = slid.candidates
    x_plain, x_best = plain[SYNTH_NAMES].to_numpy(), best[SYNTH_NAMES].to_numpy()
    assert np.median(cost(x_best)) < 0.8 * np.median(cost(x_plain))
    mae_plain = np.abs(synth_forward(x_plain) - 0.6).mean()
    assert np.abs(synth_forward(x_best) - 0.6).mean() <= mae_plain + 0.02
    # Ranked by the objective, best first, and the summary shows the slide helped.
    assert best["cost_pred"].is_monotonic_increasing
    entry = slid.summary["goals"][1]
    assert entry["spread"]["median"] < entry["median_before_slide"]


def test_travel_bounds_how_far_the_slide_moves(two_property_models):
    goals = Goals.parse(["gap=0.6"], minimize="cost")
    still = design(two_property_models, goals, n=1000, seed=5, travel=0.0).candidates
    plain = design(two_property_models, Goals.parse(["gap=0.6"]), n=1000, seed=5).candidates
    key = SYNTH_NAMES
    # travel 0: the localized designs themselves (those whose cost is also confidently predicted), reordered.
    rows = {tuple(np.round(r, 6)) for r in plain[key].to_numpy()}
    assert len(still) > 0.9 * len(plain)
    assert all(tuple(np.round(r, 6)) in rows for r in still[key].to_numpy())
    near = design(two_property_models, goals, n=1000, seed=5, travel=0.05).candidates
    far = design(two_property_models, goals, n=1000, seed=5, travel=0.4).candidates
    assert np.median(cost(far[key].to_numpy())) < np.median(cost(near[key].to_numpy()))


def test_slopes_of_several_properties_in_one_pass_match_one_property_at_a_time(two_property_models):
    # Quantities takes every property's gradient in one batched backward pass; each alone
    # takes a plain one. Both must give the same values and slopes, and the slopes must be
    # those of the mean prediction (central differences in the unit box).
    sur, space = two_property_models.surrogate, two_property_models.space
    u = torch.rand(64, space.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float32) * 0.8 + 0.1
    both = Quantities(sur, space, ["gap", "cost"])
    values, jac = both(u)
    torch.testing.assert_close(both.values(u), values, rtol=1e-6, atol=1e-6)  # the slide's values-only trials
    for j, name in enumerate(["gap", "cost"]):
        alone_values, alone_jac = Quantities(sur, space, [name])(u)
        torch.testing.assert_close(values[:, j], alone_values[:, 0], rtol=0, atol=0)
        torch.testing.assert_close(jac[:, j], alone_jac[:, 0], rtol=1e-5, atol=1e-6)
    lows, span = (torch.as_tensor(a, dtype=torch.float64) for a in (space.lows, space.highs - space.lows))
    h = 1e-4
    for k in range(space.dim):
        du = torch.zeros(space.dim, dtype=torch.float64)
        du[k] = h
        up = sur.predict_all((lows + (u.double() + du) * span).numpy())["cost"][0]
        down = sur.predict_all((lows + (u.double() - du) * span).numpy())["cost"][0]
        np.testing.assert_allclose(jac[:, 1, k].numpy(), (up - down) / (2 * h), atol=2e-3)


def test_the_slide_keeps_a_bound_that_its_objective_presses_against(two_property_models):
    # Minimizing cost drives samples onto cost >= c; the slide's last correction (toward the
    # gap target) must not push them back across it.
    sur, space = two_property_models.surrogate, two_property_models.space
    plain = design(two_property_models, Goals.parse(["gap=0.3"]), n=2000, seed=6).candidates
    floor = float(plain["cost_pred"].quantile(0.1))
    goals = Goals.parse(["gap=0.3"], minimum=[f"cost={floor}"], minimize="cost")
    constraint_goals, objective, atol = goals.constraints, goals.objective, 0.005
    lows, span = (torch.as_tensor(a, dtype=torch.float32) for a in (space.lows, space.highs - space.lows))
    u = ((torch.tensor(plain[SYNTH_NAMES].to_numpy(), dtype=torch.float32) - lows) / span).clamp(0, 1)
    quantities = Quantities(sur, space, ["gap", "cost", "cost"])
    u, converged, values, jac = localize_goals(u, constraint_goals, quantities, atol)
    start = values[converged]
    slid = slide(u[converged], constraint_goals, objective, quantities, atol, travel=0.3,
                 at_start=(start, jac[converged]))
    after = quantities.values(slid)
    assert (after[:, 1] >= floor).all(), int((after[:, 1] < floor).sum())
    assert (after[:, 0] - 0.3).abs().max() <= 5 * atol
    pressed = (after[:, 1] - floor).abs() <= atol
    assert pressed.float().mean() > 0.2  # the bound binds for many samples
    assert after[:, 2].median() < start[:, 2].median()


def test_strain_is_the_mean_absolute_lattice_strain_in_percent():
    space = DesignSpace("m", (Parameter("a", 2.0, 4.0, "Å", 3.0), Parameter("gamma", 100.0, 140.0, "deg", 120.0),
                              Parameter("efield", -1.0, 1.0, "V/Å", 0.0)), Property("band_gap", "eV", 0.0))
    x = torch.tensor([[3.3, 108.0, 0.5], [3.0, 120.0, -1.0]], dtype=torch.float64)
    np.testing.assert_allclose(mean_lattice_strain(x, space).numpy(), [(10.0 + 10.0) / 2, 0.0])
    with pytest.raises(UserInputError, match="strain"):
        mean_lattice_strain(x, synth_space())


@pytest.mark.parametrize("kwargs, message", [
    (dict(targets=["gap:0.6"]), "PROPERTY=VALUE"),
    (dict(targets=["gap=abc"]), "PROPERTY=VALUE"),
    (dict(targets=["gap=0.6"], minimum=["cost=0.5"], maximum=["cost=0.2"]), "contradictory bounds"),
    (dict(targets=["gap=0.6"], minimum=["gap=0.8"]), "contradictory goals"),
    (dict(targets=["gap=0.6", "gap=0.7"]), "two target"),
    (dict(targets=["gap=0.6"], minimize="cost", maximize="cost"), "one objective"),
    (dict(targets=["gap=0.6"], minimize="gap"), "both a target and the objective"),
])
def test_bad_goals_are_refused_in_one_line(kwargs, message):
    with pytest.raises(UserInputError, match=message) as err:
        Goals.parse(**kwargs)
    assert "\n" not in str(err.value)


def test_goals_need_known_quantities_and_the_generator_target(two_property_models):
    with pytest.raises(UserInputError, match="unknown property 'price'"):
        design(two_property_models, Goals.parse(["gap=0.6"], minimize="price"))
    with pytest.raises(UserInputError, match="give a target for gap"):
        design(two_property_models, Goals.parse(["cost=0.3"]))
    with pytest.raises(UserInputError, match="strain"):
        design(two_property_models, Goals.parse(["gap=0.6"], minimize="strain"))


def test_train_learns_several_properties_from_a_csv(tmp_path):
    x, y = data(600, 11)
    frame = pd.DataFrame(x, columns=SYNTH_NAMES)
    frame["gap"], frame["cost"] = y[:, 0], y[:, 1]
    frame.to_csv(tmp_path / "two.csv", index=False)
    records = train_models(str(tmp_path / "two.csv"), y="gap,cost", y_lower=0.0, kinds=["surrogate"],
                           out=tmp_path / "m", epochs=20, augment=0, members=3)
    assert "cost" in records["surrogate"]["validation"]
    sur = load_models(tmp_path / "m", generator=None).surrogate
    assert sur.members == 3 and sur.raw_all(torch.zeros(4, 3)).shape == (3, 4, 2)
    assert sur.space_.names == SYNTH_NAMES and [p.name for p in sur.properties_] == ["gap", "cost"]
    assert sur.properties_[0].lower == 0.0 and sur.properties_[1].lower is None
    # generators condition on every property where the family can (the INN's y is one wide)
    train_models(str(tmp_path / "two.csv"), y="gap,cost", y_lower=0.0, kinds=["surrogate", "cinn", "inn"],
                 out=tmp_path / "g", epochs=2, augment=500)
    assert load_models(tmp_path / "g", generator="cinn").generator.cond_dim == 2
    assert load_models(tmp_path / "g", generator="inn").generator.cond_dim == 1
    with pytest.raises(UserInputError, match="different properties"):
        train_models(str(tmp_path / "two.csv"), y="gap,gap", kinds=["surrogate"], out=tmp_path / "n", augment=0)
    with pytest.raises(UserInputError, match="train the surrogate too"):
        train_models(str(tmp_path / "two.csv"), y="gap,cost", kinds=["cinn"], out=tmp_path / "n", members=3)


def test_predict_writes_every_property_of_the_surrogate(two_property_models):
    from matdesinne.pipeline import predict_frame

    x, _ = data(5, 12)
    frame = pd.DataFrame(x, columns=SYNTH_NAMES)
    out, outside = predict_frame(two_property_models.surrogate, frame)
    assert list(out.columns) == [*SYNTH_NAMES, "gap_pred", "gap_std", "cost_pred", "cost_std"]
    every = two_property_models.surrogate.predict_all(x)
    np.testing.assert_array_equal(out["cost_pred"], every["cost"][0])
    assert not outside.any()


@pytest.fixture(scope="module")
def vector_models(tmp_path_factory, two_property_models):
    """The same surrogate, with a cINN conditioned on (gap, cost)."""
    import shutil

    out = tmp_path_factory.mktemp("vector_models")
    shutil.copy(two_property_models.directory / "surrogate.json", out)
    shutil.copy(two_property_models.directory / "surrogate.safetensors", out)
    x, y = data(3000, 2)
    xv, yv = data(500, 3)
    CINN(blocks=4, hidden=64, layers=2, epochs=120, patience=30, seed=0, device="cpu").fit(
        x, y, synth_space(), xv, yv, also=[COST]).save(out)
    return load_models(out)


def test_a_generator_conditioned_on_both_properties_samples_the_asked_for_cost(vector_models, tmp_path):
    gen = vector_models.generator
    assert gen.cond_dim == 2 and [p.name for p in gen.conditions_] == ["gap", "cost"]
    low, high = gen.condition_for(0.6, {"cost": "low"}), gen.condition_for(0.6, {"cost": "high"})
    assert low[0] == high[0] == 0.6 and low[1] < gen.condition_for(0.6)[1] < high[1]
    cheap, dear = gen.sample(low, 2000, seed=0), gen.sample(high, 2000, seed=0)
    assert np.median(cost(cheap)) < np.median(cost(dear))
    assert np.abs(synth_forward(cheap) - 0.6).mean() < 0.15
    gen.save(tmp_path)
    again = CINN.load(tmp_path)
    np.testing.assert_array_equal(again.sample(low, 300, seed=1), gen.sample(low, 300, seed=1))
    np.testing.assert_array_equal(again.quantiles_, gen.quantiles_)
    with pytest.raises(UserInputError, match="expected 2 target"):
        gen.sample([0.6, 0.1, 0.2], 10)


def test_minimize_conditions_the_generator_on_the_cheap_end(vector_models, two_property_models):
    goals = Goals.parse(["gap=0.6"], minimize="cost")
    vector = design(vector_models, goals, n=2000, seed=6, travel=0.0)
    assert vector.summary["condition"]["cost"] == pytest.approx(vector_models.generator.condition_for(0.6, {"cost": "low"})[1])
    scalar = design(two_property_models, goals, n=2000, seed=6, travel=0.0)
    x_vector, x_scalar = vector.candidates[SYNTH_NAMES].to_numpy(), scalar.candidates[SYNTH_NAMES].to_numpy()
    assert np.median(cost(x_vector)) < np.median(cost(x_scalar))
    assert np.mean(np.abs(synth_forward(x_vector) - 0.6) <= 0.1) >= 0.9
    # a plain single-value design still works: the cost is conditioned at its typical value
    assert len(design(vector_models, 0.6, n=500, seed=0).candidates) > 0
