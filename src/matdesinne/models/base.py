"""What every model shares: settings, normalisation, devices, seeded training, checkpoints.

Checkpoints are two files per model in a folder: ``<kind>.safetensors`` (weights; loading
runs no code) and ``<kind>.json`` (settings, design space, normalisation, training record).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

from matdesinne import __version__
from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.io import atomic_path, write_json

CHECKPOINT_FORMAT = "matdesinne-checkpoint"
CHECKPOINT_VERSION = 1


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; ``"cuda"`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for, but PyTorch sees no CUDA GPU")
    if device not in ("cpu", "cuda"):
        raise UserInputError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under ``seed`` without disturbing the caller's global RNGs.

    NumPy's global RNG is seeded too: FrEIA draws its blocks' fixed permutations from it.
    """
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)
            yield
    finally:
        np.random.set_state(numpy_state)


@dataclass(frozen=True)
class Standardizer:
    """Affine map ``(v - mean) / std`` per column; ``mean``/``std`` have shape (k,)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> "Standardizer":
        values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(self.mean, dtype=torch.float32, device=device),
            torch.as_tensor(self.std, dtype=torch.float32, device=device),
        )


def mlp(d_in: int, d_out: int, hidden: int, layers: int, zero_last: bool = False) -> torch.nn.Sequential:
    """``layers`` SiLU hidden layers of width ``hidden``; optionally a zero-initialised
    output layer (for a coupling block that starts as the identity)."""
    mods: list[torch.nn.Module] = []
    for _ in range(layers):
        mods += [torch.nn.Linear(d_in, hidden), torch.nn.SiLU()]
        d_in = hidden
    last = torch.nn.Linear(d_in, d_out)
    if zero_last:
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    return torch.nn.Sequential(*mods, last)


class Estimator:
    """Base of the models, in the scikit-learn manner.

    The constructor only stores settings; ``fit`` learns and returns ``self``; learned
    state ends in ``_``: ``space_`` (the DesignSpace), ``x_scaler_``, ``y_scaler_``,
    ``y_range_`` (the property's min and max in training), ``module_`` (the torch network),
    ``training_`` (a JSON-able record of the fit).
    """

    kind: str = ""

    # --- settings ---------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def _set_params(self, values: dict) -> None:
        """Store the constructor's arguments as attributes; call as ``self._set_params(locals())``."""
        for name in self._param_names():
            setattr(self, name, values[name])

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # --- learned state ------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit() or load()")

    @property
    def device_(self) -> torch.device:
        return next(self.module_.parameters()).device

    def to(self, device: str | torch.device) -> "Estimator":
        self._check_fitted()
        self.module_.to(resolve_device(device))
        return self

    def _build_module(self) -> torch.nn.Module:
        """Make the (untrained) network from settings and ``space_``; subclasses implement."""
        raise NotImplementedError

    def _prepare(self, x: np.ndarray, y: np.ndarray, space: DesignSpace) -> None:
        """Check the training arrays and fit the normalisation."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if x.ndim != 2 or x.shape[1] != space.dim or len(x) != len(y):
            raise UserInputError(f"expected x of shape (n, {space.dim}) and y of shape (n,), got {x.shape} and {y.shape}")
        self.space_ = space
        self.x_scaler_ = Standardizer.fit(x)
        self.y_scaler_ = Standardizer.fit(y)
        self.y_range_ = (float(y.min()), float(y.max()))

    # --- checkpoints --------------------------------------------------------------------
    def _extra_state(self) -> dict:
        """JSON-able learned state beyond the weights; subclasses extend."""
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``<kind>.safetensors`` and ``<kind>.json`` into ``directory`` (created if missing)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "kind": self.kind,
            "matdesinne_version": __version__,
            "params": self.get_params(),
            "design_space": self.space_.to_dict(),
            "x_scaler": self.x_scaler_.to_dict(),
            "y_scaler": self.y_scaler_.to_dict(),
            "y_range": list(self.y_range_),
            "extra": self._extra_state(),
            "training": self.training_,
        }
        weights = {k: v.detach().to("cpu").contiguous() for k, v in self.module_.state_dict().items()}
        with atomic_path(directory / f"{self.kind}.safetensors") as tmp:
            save_file(weights, str(tmp))
        write_json(meta, directory / f"{self.kind}.json")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> "Estimator":
        """Load a checkpoint written by :meth:`save`. Any damage is a ``UserInputError``."""
        directory = Path(directory)
        meta_path = directory / f"{cls.kind}.json"
        weights_path = directory / f"{cls.kind}.safetensors"
        for path in (meta_path, weights_path):
            if not path.is_file():
                raise UserInputError(f"{path}: no such checkpoint file")
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != CHECKPOINT_FORMAT or meta.get("kind") != cls.kind:
                raise ValueError(f"not a matdesinne {cls.kind} checkpoint")
            if meta.get("format_version") != CHECKPOINT_VERSION:
                raise ValueError(f"checkpoint format version {meta.get('format_version')} is not {CHECKPOINT_VERSION}")
            model = cls(**meta["params"])
            model.space_ = DesignSpace.from_dict(meta["design_space"])
            model.x_scaler_ = Standardizer.from_dict(meta["x_scaler"])
            model.y_scaler_ = Standardizer.from_dict(meta["y_scaler"])
            model.y_range_ = tuple(float(v) for v in meta["y_range"])
            model.training_ = meta.get("training", {})
            model._load_extra_state(meta.get("extra", {}))
            with seeded(0):
                model.module_ = model._build_module()
            model.module_.load_state_dict(load_file(str(weights_path)), strict=True)
        except (ValueError, KeyError, TypeError, RuntimeError, SafetensorError, OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserInputError(f"{directory}: {cls.kind} checkpoint is corrupt or incompatible ({first})") from None
        model.module_.eval()
        return model.to(device)


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
) -> dict:
    """Adam training with a best-on-validation checkpoint and early stopping.

    ``batch_loss(idx)`` gets training-row indices of shape (streams, batch) — several
    streams let each ensemble member see its own shuffle — and returns a scalar loss.
    ``val_score()`` is lower-is-better. The module ends holding its best-scoring weights.
    """
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
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
            total += float(loss.detach())
        module.eval()
        with torch.no_grad():
            score = float(val_score())
        sched.step(score)
        history.append(score)
        if score < best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        bar.set_postfix(train=f"{total:.3g}", val=f"{score:.4g}", best=f"{best:.4g}")
        if bar.disable and (epoch + 1) % max(1, epochs // 10) == 0:  # no bar off a terminal: a log line
            log.info("%s: epoch %d/%d, validation %.4g, best %.4g (epoch %d), %.0f s", desc, epoch + 1, epochs,
                     score, best, best_epoch + 1, time.perf_counter() - start)
        if epoch - best_epoch >= patience:
            break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return {
        "epochs_run": len(history),
        "best_epoch": best_epoch + 1,
        "best_val_score": best,
        "seconds": round(time.perf_counter() - start, 2),
        "device": str(device),
    }
