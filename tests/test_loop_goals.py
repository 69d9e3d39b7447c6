"""A campaign with several goals learns every property it is told, against exact functions:
the two-property synthetic space of test_pipeline_goals with a 'DFT' whose cost carries an
offset the prior never saw, so that a bound met under the prior is missed under the truth."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SYNTH_NAMES

from matdesinne.errors import UserInputError
from matdesinne.loop import Campaign
from matdesinne.pipeline.goals import Goals

# fixtures used by name: the two-property models, one torch thread for tiny models
from test_loop_correction import _one_thread, _threads_back, planted_truth  # noqa: F401
from test_pipeline_goals import cost, two_property_models  # noqa: F401

TARGET, BOUND, OFFSET = 0.6, 0.25, 0.06


def true_cost(x):
    return cost(x) + OFFSET


def label(batch, with_cost=True):
    x = batch[SYNTH_NAMES].to_numpy()
    told = pd.DataFrame({"id": batch["id"], "gap": planted_truth(x)})
    if with_cost:
        told["cost"] = true_cost(x)
    return told


def goals():
    return Goals.parse(maximum=[f"cost={BOUND}"])


@pytest.fixture(scope="module")
def three_rounds(two_property_models):
    campaign = Campaign(two_property_models, [TARGET], n_samples=3000, seed=0, update="residual", goals=goals())
    for _ in range(3):
        campaign.tell(label(campaign.ask(12)))
    return campaign


def test_the_bound_missed_under_the_prior_is_met_once_the_cost_is_learnt(three_rounds):
    records = three_rounds.records()
    print(records.to_string())
    assert list(records.columns[-2:]) == ["goals_met", "cost_median"]
    assert records["goals_met"].iloc[0] < 0.5  # the prior's candidates sit at its bound: the offset pushes them over
    assert records["goals_met"].iloc[-1] >= 0.8
    history = three_rounds.history
    np.testing.assert_allclose(history["cost"], true_cost(history[SYNTH_NAMES].to_numpy()))
    np.testing.assert_allclose(records["cost_median"].iloc[0],
                               np.median(history[history["round"] == 0]["cost"]))
    # the learnt model predicts both properties at the told rows, the cost's offset included
    x = history[SYNTH_NAMES].to_numpy()
    every = three_rounds.model.predict_all(x)
    assert np.abs(every["cost"][0] - true_cost(x)).mean() < 0.01
    assert np.abs(every["gap"][0] - planted_truth(x)).mean() < 0.02
    # the final candidates meet every goal under the truth
    final = three_rounds.candidates(TARGET)[SYNTH_NAMES].to_numpy()
    assert len(final) > 100
    assert np.mean((np.abs(planted_truth(final) - TARGET) <= 0.1) & (true_cost(final) <= BOUND + 0.01)) >= 0.9


def test_a_saved_campaign_with_goals_asks_what_the_original_asks(two_property_models, three_rounds):
    state = json.loads(json.dumps(three_rounds.state_dict()))
    assert state["settings"]["goals"] == [["max", "cost", BOUND]]
    again = Campaign.from_state(two_property_models, state)
    assert again.goals == three_rounds.goals
    x = three_rounds.history[SYNTH_NAMES].to_numpy()
    np.testing.assert_array_equal(again.model.predict_all(x)["cost"][0], three_rounds.model.predict_all(x)["cost"][0])
    pd.testing.assert_frame_equal(again.ask(5), Campaign.from_state(two_property_models, state).ask(5))


def test_a_further_property_may_be_left_out_but_not_be_wrong(two_property_models):
    campaign = Campaign(two_property_models, [TARGET], n_samples=2000, seed=3, update="refit", goals=goals())
    batch = campaign.ask(4)
    assert "cost_pred" in batch and "cost_pred" in campaign.pending
    bad = label(batch).assign(cost=["0.1", "lots", "0.2", "0.3"])
    with pytest.raises(UserInputError, match="cost of id .* is lots, not a finite number; nothing was told"):
        campaign.tell(bad)
    assert campaign.updates == []
    partial = label(batch)
    partial.loc[1, "cost"] = np.nan  # not computed: the gap is learnt, the cost of that row is not
    campaign.tell(partial)
    history = campaign.history
    assert np.isnan(history.loc[1, "cost"]) and np.isfinite(history["gap"]).all()
    campaign.tell(label(campaign.ask(2), with_cost=False))  # no cost column at all
    assert campaign.history["cost"].isna().sum() == 3
    assert campaign.updates[-1]["method"] == "refit"


def test_goals_that_cannot_hold_are_refused_in_one_line(two_property_models):
    with pytest.raises(UserInputError, match="gap targets as targets="):
        Campaign(two_property_models, [TARGET], goals=Goals.parse(["gap=0.5"]))
    with pytest.raises(UserInputError, match="contradictory goals: gap = 0.6 lies outside"):
        Campaign(two_property_models, [TARGET], goals=Goals.parse(maximum=["gap=0.4"]))
    with pytest.raises(UserInputError, match="unknown property 'price'"):
        Campaign(two_property_models, [TARGET], goals=Goals.parse(minimize="price"))
    with pytest.raises(UserInputError, match="goals must be Goals"):
        Campaign(two_property_models, [TARGET], goals="minimize cost")


def test_a_campaign_without_goals_still_learns_every_property(two_property_models):
    campaign = Campaign(two_property_models, [TARGET], n_samples=2000, seed=2, update="residual")
    batch = campaign.ask(4)
    x = batch[SYNTH_NAMES].to_numpy()
    np.testing.assert_allclose(batch["cost_pred"], two_property_models.surrogate.predict_all(x)["cost"][0])
    campaign.tell(label(batch))
    np.testing.assert_allclose(campaign.history["cost"], true_cost(x))
    assert np.abs(campaign.model.predict_all(x)["cost"][0] - true_cost(x)).mean() < 0.01
    assert "goals_met" not in campaign.records()
