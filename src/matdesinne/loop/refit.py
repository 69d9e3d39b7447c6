"""Learning from new labelled rows by fine-tuning the ensemble itself.

Update (b) of the loop: a copy of the prior surrogate continues training from its current
weights for a few hundred Adam steps on its own training rows plus the new rows. Each step
sees a fresh batch of training rows (its own batch per member, so the members stay
distinct) and *all* new rows, the new rows' mean loss weighted by ``weight`` (default 5):
with 60 new rows beside ~7,800 training rows, a new row then counts, in expectation,
some 650 times as much as a training row (5 / 60 against 1 / 7,800 per step), while
the training rows keep the network from forgetting the rest of the space. The loss is the
surrogate's censored squared error: a row at the property's floor only penalises a raw
score above it.

Cost: ``steps`` forward/backward passes of ``members x (batch_size + n_new)`` rows; the
defaults took 0.5 s for the tests' tiny models and 2.6 s for the shipped MoS2 ensemble
(7,774 training rows + 60 new) on one CPU thread.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from matdesinne.materials import material_of, training_dataset, training_split
from matdesinne.materials.symmetry import with_images
from matdesinne.loop.correction import as_columns, prior_of
from matdesinne.models import EnsembleSurrogate

#: Uniform design points, labelled by the prior surrogate, that stand in for training rows
#: a checkpoint does not record.
ANCHORS = 4096


def base_rows(surrogate: EnsembleSurrogate, anchors: int = ANCHORS, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """The rows a refit keeps the surrogate faithful to: ``(x (n, dim), y, source)``, ``y``
    (n,) for a one-property surrogate and (n, k) for one of several properties.

    The training rows of the surrogate's own recorded dataset and split (a checkpoint
    written by ``matdesinne train`` records both), so validation and test rows stay unseen,
    with their symmetry images where training used them (see :func:`symmetries_of`);
    a further property the dataset lacks is labelled by the surrogate itself there.
    A checkpoint without that record gets ``anchors`` design points drawn uniformly from the
    box (``seed``) and labelled by the surrogate itself: what the prior model believes.
    ``source`` says which, for the campaign's record.
    """
    space = surrogate.space_
    found = training_split(surrogate.training_, space)
    if found is not None:
        dataset, (train, _, _) = found
        x, y, source = dataset.x[train], dataset.y[train], f"training rows of {surrogate.training_['data']}"
    else:
        x = np.random.default_rng(seed).uniform(space.lows, space.highs, (anchors, space.dim))
        y, source = surrogate.predict(x)[0], f"{anchors} uniform points labelled by the prior surrogate"
    if len(surrogate.properties_) > 1:
        believed = surrogate.predict_all(x)
        columns = [y]
        for prop in surrogate.properties_[1:]:
            other = training_dataset(surrogate.training_, space, prop.name) if found is not None else None
            same_rows = other is not None and len(other) == len(dataset) and np.array_equal(other.x[train], x)
            columns.append(other.y[train] if same_rows else believed[prop.name][0])
        y = np.column_stack(columns)
    if found is not None:
        x, y = with_images(x, y, symmetries_of(surrogate), space)
    return x, y, source


def symmetries_of(surrogate: EnsembleSurrogate) -> tuple:
    """The symmetry maps the surrogate was trained with (its record's ``symmetry_images``),
    so that a refit learns new rows as training did; none for a surrogate trained without."""
    if not surrogate.training_.get("symmetry_images"):
        return ()
    found = material_of(surrogate.space_, surrogate.training_.get("space"))
    return found.symmetries() if found is not None else ()


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run a block of small CPU tensor operations on one thread, then restore the setting.

    A refit step multiplies matrices of a few hundred rows: too small to gain from several
    threads, and on a machine whose cores are busy, torch's threads wait on each other (a
    hundredfold slowdown measured on two shared cores). Nothing changes on a GPU.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def censored_mse(raw: torch.Tensor, y: torch.Tensor, lower: float | None, scale: float) -> torch.Tensor:
    """Mean squared error of raw scores ``raw`` (..., n) against ``y`` (n,) in units of
    ``scale``; a row at the floor ``lower`` only penalises a raw score above it; rows whose
    ``y`` is NaN (not told) are left out."""
    told = ~torch.isnan(y)
    if not bool(told.all()):
        raw, y = raw[..., told], y[told]
    if y.numel() == 0:
        return raw.sum() * 0.0
    err = raw - y
    if lower is not None:
        err = torch.where(y <= lower, torch.relu(raw - lower), err)
    return (err / scale).pow(2).mean()


def refit_surrogate(
    surrogate: EnsembleSurrogate,
    x_new: np.ndarray,
    y_new: np.ndarray,
    base: tuple[np.ndarray, np.ndarray],
    *,
    steps: int = 300,
    batch_size: int = 256,
    weight: float = 5.0,
    lr: float = 1e-3,
    seed: int = 0,
) -> EnsembleSurrogate:
    """Update (b): a fine-tuned copy of ``surrogate`` (the original is left as it is).

    ``x_new`` (n, dim) and ``y_new`` (n,) are the new rows in physical and property units
    (or ``y_new`` (n, k), one column per property the surrogate predicts, NaN where not
    told; each property's loss is in units of its spread in ``base`` and they add up),
    ``base`` the ``(x, y)`` rows to stay faithful to (see :func:`base_rows`). ``steps`` Adam
    steps at learning rate ``lr``, each on ``batch_size`` base rows per member plus all new
    rows (and their symmetry images, as the surrogate was trained) with weight ``weight``;
    ``seed`` fixes the batches, so the same inputs give the same model on the same device. A
    corrected surrogate is refitted from its base model.

    Example::

        x0, y0, _ = base_rows(models.surrogate)
        tuned = refit_surrogate(models.surrogate, x_dft, y_dft, (x0, y0), seed=1)
    """
    prior = prior_of(surrogate)
    model = copy.deepcopy(prior)
    x_new, y_new = with_images(np.asarray(x_new, dtype=np.float64).reshape(-1, model.space_.dim),
                               as_columns(y_new, len(model.properties_)), symmetries_of(prior), model.space_)
    device = model.device_
    k = len(model.properties_)
    lowers = [p.lower for p in model.properties_]
    xb = torch.as_tensor(np.asarray(base[0], dtype=np.float32), device=device)
    yb = torch.as_tensor(np.asarray(base[1], dtype=np.float32).reshape(len(xb), k), device=device)
    xn = torch.as_tensor(np.asarray(x_new, dtype=np.float32).reshape(-1, model.space_.dim), device=device)
    yn = torch.as_tensor(as_columns(y_new, k).astype(np.float32).reshape(len(xn), k), device=device)
    scales = [float(np.std(np.asarray(base[1], dtype=np.float64).reshape(len(xb), k)[:, j])) or 1.0 for j in range(k)]

    def loss_of(raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum(censored_mse(raw[..., j], y[..., j], lowers[j], scales[j]) for j in range(k))

    batch = min(batch_size, len(xb))
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.module_.parameters(), lr=lr)
    start = time.perf_counter()
    model.module_.train()
    with one_cpu_thread(device):
        for _ in range(steps):
            idx = torch.randint(len(xb), (model.members, batch), generator=gen).to(device)
            loss = loss_of(model.raw_all(xb[idx]), yb[idx]) + weight * loss_of(model.raw_all(xn), yn)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.module_.eval()
    model.training_ = {**prior.training_, "refit": {"new_rows": int(len(yn)), "base_rows": int(len(yb)), "steps": steps,
                                                    "weight": weight, "lr": lr, "seed": int(seed),
                                                    "seconds": round(time.perf_counter() - start, 2)}}
    return model
