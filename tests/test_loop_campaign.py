"""The ask/tell campaign against a synthetic 'DFT' that the prior models never saw."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SYNTH_NAMES, synth_data

from matdesinne.errors import UserInputError
from matdesinne.loop import Campaign, design_keys
from matdesinne.pipeline import design

# the planted 'DFT' truth, and one torch thread for the tiny models (fixtures, used by name)
from test_loop_correction import _one_thread, _threads_back, planted_truth  # noqa: F401

TARGET = 0.6


def label(batch):
    """What a DFT run hands back: the ids and their computed property."""
    return pd.DataFrame({"id": batch["id"], "gap": planted_truth(batch[SYNTH_NAMES].to_numpy())})


@pytest.fixture(scope="module")
def training_rows():
    return synth_data(3000, seed=2)  # the published rows the tiny surrogate was trained on


@pytest.fixture(scope="module")
def three_rounds(tiny_models, training_rows):
    campaign = Campaign(tiny_models, [TARGET], tolerance=0.1, n_samples=4000, seed=0, update="auto", base=training_rows)
    errors = []
    for _ in range(3):
        batch = campaign.ask(10)
        told = label(batch)
        errors.append(float(np.abs(told["gap"] - TARGET).mean()))
        campaign.tell(told)
    return campaign, errors


def test_three_rounds_close_the_gap_to_the_target(tiny_models, three_rounds):
    campaign, errors = three_rounds
    print("true MAE of each round's batch vs target:", errors)
    print(campaign.records().to_string())
    print("updates:", campaign.updates)
    assert errors[0] > 0.05  # the prior is fooled by the planted offset
    assert errors[-1] <= 0.6 * errors[0] and errors[-1] < 0.03
    records = campaign.records()
    assert records["round"].tolist() == [0, 1, 2] and (records["told"] == 10).all()
    np.testing.assert_allclose(records["mae_vs_target"], errors)
    assert (records["wrong_side"] == 0).all()
    assert records["model_mae_before"].iloc[0] > 0.05
    assert records["model_mae_after_cv"].iloc[0] < 0.3 * records["model_mae_before"].iloc[0]
    assert (records["model_mae_after_cv"] < 0.02).all()
    # the final candidates, designed with the learned model, beat the prior's under the truth
    final = campaign.candidates(TARGET)
    prior = design(tiny_models, TARGET, n=4000, seed=1).candidates
    err = lambda c: np.abs(planted_truth(c[SYNTH_NAMES].to_numpy()) - TARGET).mean()
    assert len(final) > 100 and err(final) < 0.5 * err(prior)
    assert (final["gap_std"] > 0).all() and set(final.columns) >= {*SYNTH_NAMES, "gap_pred", "gap_std", "target"}


def test_updates_report_both_methods(three_rounds):
    campaign, _ = three_rounds
    for k, upd in enumerate(campaign.updates):
        assert upd["tell"] == k and upd["told"] == 10 * (k + 1)
        assert set(upd["scores"]) == {"residual", "refit"} and upd["method"] == min(upd["scores"], key=upd["scores"].get)


def test_history_keeps_every_row_with_predictions_before_and_after(three_rounds):
    campaign, _ = three_rounds
    h = campaign.history
    assert len(h) == 30 and h["id"].is_unique and len(set(design_keys(h[SYNTH_NAMES].to_numpy(), campaign.space))) == 30
    assert h["id"].iloc[0] == "r0-t0.6-0" and (h["tell"] == h["round"]).all()
    truth = planted_truth(h[SYNTH_NAMES].to_numpy())
    np.testing.assert_allclose(h["gap"], truth)
    assert np.abs(h["gap_pred_after"] - truth).mean() < np.abs(h["gap_pred_before"] - truth).mean()
    assert h[["gap_pred", "gap_std", "gap_pred_before", "gap_pred_after", "gap_pred_cv"]].notna().all().all()
    assert campaign.pending.empty and campaign.round == 3


def test_ask_columns_and_ids(tiny_models):
    campaign = Campaign(tiny_models, [0.3, TARGET], n_samples=2000, seed=4, update="residual")
    batch = campaign.ask(3)
    assert list(batch.columns) == ["id", *SYNTH_NAMES, "target", "gap_pred", "gap_std", "round"]
    assert batch["id"].tolist() == [f"r0-t{t}-{k}" for t in (0.3, 0.6) for k in range(3)]
    assert (np.abs(batch["gap_pred"] - batch["target"]) <= 0.1).all()
    second = campaign.ask(3)
    assert (second["round"] == 1).all() and not set(second["id"]) & set(batch["id"])
    assert not set(design_keys(second[SYNTH_NAMES].to_numpy(), campaign.space)) & set(
        design_keys(batch[SYNTH_NAMES].to_numpy(), campaign.space))


@pytest.fixture
def fresh(tiny_models):
    campaign = Campaign(tiny_models, [TARGET], n_samples=2000, seed=1, update="residual")
    return campaign, campaign.ask(4)


@pytest.mark.parametrize("case", [
    "unknown id", "duplicate in frame", "already told", "nan", "inf", "text", "below floor", "missing id column",
    "missing value column", "no rows", "not a frame", "design changed",
])
def test_bad_tells_are_refused_with_nothing_ingested(fresh, case):
    campaign, batch = fresh
    good = label(batch)
    campaign.tell(good.iloc[:1])
    before_rows, before_updates, model = campaign.history, campaign.updates, campaign.model
    frame = good.iloc[1:].copy()
    if case == "unknown id":
        frame.loc[frame.index[-1], "id"] = "r9-t0.6-0"
    elif case == "duplicate in frame":
        frame = pd.concat([frame, frame.iloc[:1]])
    elif case == "already told":
        frame = pd.concat([frame, good.iloc[:1]])
    elif case == "nan":
        frame.loc[frame.index[-1], "gap"] = np.nan
    elif case == "inf":
        frame.loc[frame.index[0], "gap"] = np.inf
    elif case == "text":
        frame["gap"] = frame["gap"].astype(object)
        frame.loc[frame.index[0], "gap"] = "0.5 eV"
    elif case == "below floor":
        frame.loc[frame.index[-1], "gap"] = -0.2
    elif case == "missing id column":
        frame = frame.drop(columns="id")
    elif case == "missing value column":
        frame = frame.drop(columns="gap")
    elif case == "no rows":
        frame = frame.iloc[:0]
    elif case == "not a frame":
        frame = frame.to_dict("list")
    elif case == "design changed":
        frame = batch.iloc[1:].assign(gap=frame["gap"].to_numpy())
        frame.loc[frame.index[0], "p1"] += 0.01
    with pytest.raises(UserInputError) as err:
        campaign.tell(frame)
    assert "\n" not in str(err.value)
    pd.testing.assert_frame_equal(campaign.history, before_rows)
    assert campaign.updates == before_updates and campaign.model is model
    assert len(campaign.pending) == 3


def test_partial_tells(fresh):
    campaign, batch = fresh
    good = label(batch)
    record = campaign.tell(good.iloc[[2, 0]])  # any order; the rest stay pending
    assert record["rows"] == 2 and record["told"] == 2 and record["method"] == "residual"
    assert campaign.pending["id"].tolist() == [batch["id"].iloc[1], batch["id"].iloc[3]]
    assert campaign.model is not campaign.prior
    # a whole asked batch may come back with the value filled in; told rows are not asked again
    rest = batch.assign(gap=good["gap"].to_numpy()).iloc[[1, 3]]
    assert campaign.tell(rest)["told"] == 4 and campaign.pending.empty
    assert (campaign.records()["told"] == 4).all()
    assert not set(campaign.ask(4)["id"]) & set(batch["id"])


def test_state_round_trip_asks_the_same_next_batch(tiny_models, three_rounds, training_rows):
    campaign, _ = three_rounds
    state = json.loads(json.dumps(campaign.state_dict(), allow_nan=False))  # JSON-able, no NaN
    rebuilt = Campaign.from_state(tiny_models, state, base=training_rows)
    assert rebuilt.settings() == campaign.settings() and rebuilt.round == campaign.round
    pd.testing.assert_frame_equal(rebuilt.history, campaign.history)
    x = np.random.default_rng(3).uniform(0, 1, (50, 3))
    np.testing.assert_array_equal(rebuilt.model.predict(x)[0], campaign.model.predict(x)[0])
    pd.testing.assert_frame_equal(rebuilt.ask(5), campaign.ask(5))


def test_state_with_pending_rows_resumes_and_refuses_damage(tiny_models, fresh):
    campaign, batch = fresh
    campaign.tell(label(batch).iloc[:2])
    state = json.loads(json.dumps(campaign.state_dict(), allow_nan=False))
    rebuilt = Campaign.from_state(tiny_models, state)
    assert rebuilt.pending["id"].tolist() == campaign.pending["id"].tolist()
    rebuilt.tell(label(batch).iloc[2:])
    assert rebuilt.pending.empty
    for broken in ({**state, "format": "other"}, {**state, "version": 99}, {**state, "rows": "junk"},
                   {**state, "design_space": {**state["design_space"], "name": "mos2"}}):
        with pytest.raises(UserInputError):
            Campaign.from_state(tiny_models, broken)


@pytest.mark.parametrize("kwargs", [
    {"targets": []}, {"targets": [0.6, 0.6]}, {"targets": [float("nan")]}, {"targets": [50.0]},
    {"update": "magic"}, {"tolerance": 0}, {"n_samples": 0}, {"seed": -1}, {"folds": 0},
    {"constraints": {"p0": (0.5, 2.0)}}, {"min_distance": -1},
])
def test_bad_settings_are_refused(tiny_models, kwargs):
    with pytest.raises(UserInputError):
        Campaign(tiny_models, **{"targets": [TARGET], **kwargs})


def test_bad_ask_is_refused(tiny_models):
    for n in (0, -1, 1.5, True):
        with pytest.raises(UserInputError):
            Campaign(tiny_models, [TARGET]).ask(n)


def test_refit_campaign_resumes_to_the_same_model(tiny_models, training_rows):
    campaign = Campaign(tiny_models, [TARGET], n_samples=2000, seed=2, update="refit", base=training_rows,
                        refit_options={"steps": 150})
    batch = campaign.ask(6)
    record = campaign.tell(label(batch))
    assert record["method"] == "refit" and set(record["scores"]) == {"refit"}
    assert campaign.history["gap_pred_cv"].notna().all()
    state = json.loads(json.dumps(campaign.state_dict(), allow_nan=False))
    rebuilt = Campaign.from_state(tiny_models, state, base=training_rows)
    x = np.random.default_rng(4).uniform(0, 1, (50, 3))
    np.testing.assert_array_equal(rebuilt.model.predict(x)[0], campaign.model.predict(x)[0])
