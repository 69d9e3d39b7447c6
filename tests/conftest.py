"""Shared fixtures: a synthetic design space with an exactly known forward function, and
tiny models trained on it once per test session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matdesinne.data import DesignSpace, Parameter, Property
from matdesinne.models import CINN, EnsembleSurrogate, load_models

SYNTH_NAMES = ["p0", "p1", "p2"]


def synth_forward(x: np.ndarray) -> np.ndarray:
    """The 'expensive simulation' of the synthetic space: a floored, slightly curved ramp.

    About a third of the box sits at the floor 0 (a 'metal'), like MoS2's zero gaps.
    """
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(0.0, 1.5 * x[:, 0] + x[:, 1] + 0.3 * np.sin(3.0 * x[:, 2]) - 0.9)


def synth_space() -> DesignSpace:
    return DesignSpace(
        "synthetic",
        tuple(Parameter(n, 0.0, 1.0, "") for n in SYNTH_NAMES),
        Property("gap", "eV", lower=0.0),
    )


def synth_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (n, len(SYNTH_NAMES)))
    return x, synth_forward(x)


@pytest.fixture(scope="session")
def synth_csv(tmp_path_factory) -> str:
    x, y = synth_data(1500, seed=1)
    frame = pd.DataFrame(x, columns=SYNTH_NAMES)
    frame["gap"] = y
    path = tmp_path_factory.mktemp("data") / "synthetic.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> str:
    """Small but real cINN + surrogate on the synthetic space, saved as checkpoints."""
    space = synth_space()
    x, y = synth_data(3000, seed=2)
    xv, yv = synth_data(500, seed=3)
    out = tmp_path_factory.mktemp("tiny_models")
    EnsembleSurrogate(members=3, hidden=64, layers=2, epochs=150, patience=30, seed=0, device="cpu").fit(
        x, y, space, xv, yv
    ).save(out)
    CINN(blocks=4, hidden=64, layers=2, epochs=120, patience=30, seed=0, device="cpu").fit(
        x, y, space, xv, yv
    ).save(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_models(tiny_models_dir):
    return load_models(tiny_models_dir)
