"""Fitting helpers: seeded blocks and the shared Adam loop with early stopping."""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from matdesinne.data.datasets import check_seed

log = logging.getLogger(__name__)

#: Learning-rate schedules of :func:`fit_module`.
SCHEDULES = ("plateau", "cosine")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under ``seed`` (0 to 2**32 - 1, see :func:`~matdesinne.data.check_seed`)
    without disturbing the caller's global RNGs.

    NumPy's global RNG is seeded too: FrEIA draws its blocks' fixed permutations from it.
    """
    seed = check_seed(seed)
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)
            yield
    finally:
        np.random.set_state(numpy_state)


def fit_module(
    module: torch.nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    val_score: Callable[[], float],
    n_train: int,
    *,
    streams: int = 1,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    patience: int,
    seed: int,
    device: torch.device,
    desc: str,
    schedule: str = "plateau",
) -> dict:
    """Adam training, with early stopping on a validation score or an annealed schedule.

    ``batch_loss(idx)`` gets training-row indices of shape (streams, batch) — several
    streams let each ensemble member see its own shuffle — and returns a scalar loss.
    ``val_score()`` is lower-is-better. ``schedule`` (one of :data:`SCHEDULES`) sets the
    learning rate and which weights the module ends holding:

    - ``"plateau"`` halves it when the validation score has not improved for more than
      ``max(1, patience // 3)`` epochs, and training stops ``patience`` epochs after the best;
      the module keeps its best-scoring weights;
    - ``"cosine"`` decays it from ``lr`` to 0 over the ``epochs`` along a half cosine, step by
      step (Loshchilov & Hutter, "SGDR", 2017), for losses too noisy to show a plateau. The
      schedule fixes the length of training: every epoch runs (``patience`` is not used), and
      the module keeps its last weights, those the annealing converged to; picking the epoch
      of least validation loss would only pick the luckiest draw of that noise.

    Returns a record: epochs run, the best epoch and score seen, the ``val_score`` of the
    weights kept, seconds and device.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, n_train // batch_size)  # as the loop below takes them
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(1, patience // 3))
    gen = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, history = math.inf, -1, None, []
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=desc, unit="epoch", leave=False, disable=None)
    for epoch in bar:
        module.train()
        order = torch.stack([torch.randperm(n_train, generator=gen) for _ in range(streams)]).to(device)
        total = 0.0
        for lo in range(0, n_train - batch_size + 1 if n_train >= batch_size else 1, batch_size):
            loss = batch_loss(order[:, lo : lo + batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 10.0)
            opt.step()
            if schedule == "cosine":
                sched.step()
            total += float(loss.detach())
        module.eval()
        with torch.no_grad():
            score = float(val_score())
        if schedule == "plateau":
            sched.step(score)
        history.append(score)
        if score < best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        bar.set_postfix(train=f"{total:.3g}", val=f"{score:.4g}", best=f"{best:.4g}")
        if bar.disable and (epoch + 1) % max(1, epochs // 10) == 0:  # no bar off a terminal: a log line
            log.info("%s: epoch %d/%d, validation %.4g, best %.4g (epoch %d), %.0f s", desc, epoch + 1, epochs,
                     score, best, best_epoch + 1, time.perf_counter() - start)
        if schedule == "plateau" and epoch - best_epoch >= patience:
            break
    bar.close()
    if schedule == "plateau" and best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return {
        "epochs_run": len(history),
        "best_epoch": best_epoch + 1,
        "best_val_score": best,
        "val_score": best if schedule == "plateau" else history[-1],
        "seconds": round(time.perf_counter() - start, 2),
        "device": str(device),
    }
