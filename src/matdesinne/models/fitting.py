"""Fitting helpers: seeded blocks and the shared Adam loop with early stopping, which can
save its progress and resume from it."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from safetensors import safe_open
from tqdm.auto import tqdm

from matdesinne import __version__
from matdesinne.data.datasets import check_seed
from matdesinne.io import ensure_dir
from matdesinne.models.checkpoint import first_line, write_tensors

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


#: Format tag of a progress file (see :class:`Progress`).
PROGRESS_FORMAT = "matdesinne-training-progress"
#: Raise when training changes in a way settings do not show (a loss, the clipping, the
#: shuffles): progress saved by the older code then no longer matches (see :func:`progress_key`).
TRAINING_VERSION = 1


@dataclass(frozen=True)
class Progress:
    """Where :func:`fit_module` keeps its progress, so that an interrupted fit resumes.

    ``path`` is one safetensors file (loading it runs no code): the weights, Adam's moments,
    the best weights so far (under ``"plateau"``) and the random generators' states as
    tensors; the epoch, the
    validation history and the schedule as JSON in its header. It is replaced atomically
    after the first epoch that ends ``every`` seconds or more after the last save, and after
    the last epoch. A file made for another ``key`` (a fingerprint of the data, settings
    and seeds, see :func:`progress_key`), or one that cannot be read, is ignored and later
    replaced. On the same device a resumed fit ends with the weights of an uninterrupted one.
    """

    path: Path
    key: str
    every: float = 30.0


def progress_key(*parts, device: torch.device) -> str:
    """A :attr:`Progress.key`: SHA-256 of ``parts`` (arrays and JSON-able values: the data,
    settings and seeds of a fit) and of what else decides its arithmetic: this training
    code's version, torch's, and the device (its type, and a GPU's model)."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    digest = hashlib.sha256()
    for part in (*parts, TRAINING_VERSION, __version__, torch.__version__, device.type, gpu):
        if isinstance(part, (np.ndarray, torch.Tensor)):
            array = np.ascontiguousarray(part.detach().cpu().numpy() if isinstance(part, torch.Tensor) else part)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _save_progress(progress: Progress, module, opt, sched, rngs, state: dict, best_state) -> None:
    tensors = {f"module.{k}": v for k, v in module.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in (best_state or {}).items()})
    adam = opt.state_dict()
    for i, entry in adam["state"].items():
        tensors.update({f"adam.{i}.{k}": v for k, v in entry.items() if isinstance(v, torch.Tensor)})
    tensors.update({f"rng.{i}": g.get_state() for i, g in enumerate(rngs)})
    header = {"format": PROGRESS_FORMAT, "key": progress.key, **state, "param_groups": adam["param_groups"],
              "schedule": sched.state_dict()}
    ensure_dir(progress.path.parent)
    write_tensors(progress.path, tensors, {"state": json.dumps(header)})


def _load_progress(progress: Progress, module, opt, sched, rngs, device) -> tuple[dict, dict | None] | None:
    """Restore what :func:`_save_progress` wrote, or return None (and change nothing) when
    there is no usable file for this key."""
    if not progress.path.is_file():
        return None
    try:
        with safe_open(str(progress.path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("state", "null"))
            if not isinstance(header, dict) or header.get("format") != PROGRESS_FORMAT:
                raise ValueError("not a progress file")
            if header.get("key") != progress.key:
                log.info("%s: progress of other data or settings; starting over", progress.path)
                return None
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        part = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        weights, best_weights = part("module."), part("best.")
        adam_state: dict[int, dict] = {}
        for name, value in part("adam.").items():
            i, key = name.split(".", 1)
            adam_state.setdefault(int(i), {})[key] = value
        history, best, best_epoch = header.get("history"), header.get("best"), header.get("best_epoch")
        if not (isinstance(history, list) and all(isinstance(v, (int, float)) for v in history)
                and isinstance(best, (int, float)) and isinstance(best_epoch, int)
                and isinstance(header.get("finished"), bool) and isinstance(header.get("seconds"), (int, float))
                and 0 < len(history) and -1 <= best_epoch < len(history)):
            raise ValueError("its record is damaged")
        shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        if best_weights and {k: tuple(v.shape) for k, v in best_weights.items()} != shapes:
            raise ValueError("its best weights do not fit the network")
        # Restored together or not at all: a file that fails halfway leaves a fresh start.
        before = ({k: v.clone() for k, v in module.state_dict().items()}, copy.deepcopy(opt.state_dict()),
                  sched.state_dict(), [g.get_state() for g in rngs])
        try:
            module.load_state_dict(weights)
            opt.load_state_dict({"state": adam_state, "param_groups": header["param_groups"]})
            sched.load_state_dict(header["schedule"])
            for i, g in enumerate(rngs):
                g.set_state(tensors[f"rng.{i}"])
        except Exception:
            module.load_state_dict(before[0])
            opt.load_state_dict(before[1])
            sched.load_state_dict(before[2])
            for g, state in zip(rngs, before[3]):
                g.set_state(state)
            raise
    except Exception as err:  # a damaged or foreign file: this fit starts over and replaces it
        log.warning("%s: cannot resume from it (%s); starting over", progress.path, first_line(err))
        return None
    best_state = {k: v.to(device) for k, v in best_weights.items()} or None
    return header, best_state


def fit_module(
    module: torch.nn.Module,
    batch_loss: Callable[[torch.Tensor, float], torch.Tensor],
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
    rngs: Sequence[torch.Generator] = (),
    progress: Progress | None = None,
) -> dict:
    """Adam training, with early stopping on a validation score or an annealed schedule.

    ``batch_loss(idx, done)`` gets training-row indices of shape (streams, batch) — several
    streams let each ensemble member see its own shuffle — and the fraction of the schedule's
    steps done once this one is (for annealing), and returns a scalar loss.
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

    ``rngs`` are the random generators ``batch_loss`` draws from; with ``progress`` (see
    :class:`Progress`) their states are saved and restored with the rest, so that a fit
    interrupted at any point and run again with the same ``progress`` goes on where its
    last save left it.

    Returns a record: epochs run, the best epoch and score seen, the ``val_score`` of the
    weights kept, seconds (over all resumed parts) and device.
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
    first, finished, earlier = 0, False, 0.0  # where a resumed fit starts; seconds of its earlier parts
    rngs = [gen, *rngs]
    resumed = _load_progress(progress, module, opt, sched, rngs, device) if progress is not None else None
    if resumed is not None:
        header, best_state = resumed
        history, best, best_epoch = list(header["history"]), float(header["best"]), int(header["best_epoch"])
        first, finished, earlier = len(history), bool(header["finished"]), float(header["seconds"])
        log.info("%s: resuming from %s after epoch %d", desc, progress.path, first)
    start = time.perf_counter()
    saved = start
    total_steps = epochs * steps_per_epoch

    def save(done: bool) -> None:
        state = {"history": history, "best": best, "best_epoch": best_epoch, "finished": done,
                 "seconds": earlier + time.perf_counter() - start}
        _save_progress(progress, module, opt, sched, rngs, state, best_state)

    bar = tqdm(range(first, epochs if not finished else first), desc=desc, unit="epoch", leave=False, disable=None,
               total=epochs, initial=first)
    for epoch in bar:
        module.train()
        order = torch.stack([torch.randperm(n_train, generator=gen) for _ in range(streams)]).to(device)
        total = 0.0
        for k, lo in enumerate(range(0, n_train - batch_size + 1 if n_train >= batch_size else 1, batch_size)):
            loss = batch_loss(order[:, lo : lo + batch_size], min(1.0, (epoch * steps_per_epoch + k + 1) / total_steps))
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
            if schedule == "plateau":  # the only schedule that goes back to them
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        bar.set_postfix(train=f"{total:.3g}", val=f"{score:.4g}", best=f"{best:.4g}")
        if bar.disable and (epoch + 1) % max(1, epochs // 10) == 0:  # no bar off a terminal: a log line
            log.info("%s: epoch %d/%d, validation %.4g, best %.4g (epoch %d), %.0f s", desc, epoch + 1, epochs,
                     score, best, best_epoch + 1, earlier + time.perf_counter() - start)
        stop = schedule == "plateau" and epoch - best_epoch >= patience
        if progress is not None and (stop or epoch == epochs - 1 or time.perf_counter() - saved >= progress.every):
            save(stop or epoch == epochs - 1)
            saved = time.perf_counter()
        if stop:
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
        "seconds": round(earlier + time.perf_counter() - start, 2),
        "device": str(device),
    }
