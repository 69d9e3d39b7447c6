"""What every model shares: settings, normalisation, devices, and saving and loading.

Network building blocks live in :mod:`~matdesinne.models.nn`, the training loop in
:mod:`~matdesinne.models.fitting`, and the checkpoint format in
:mod:`~matdesinne.models.checkpoint`.
"""

from __future__ import annotations

import abc
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from matdesinne.data import schema
from matdesinne.data.datasets import check_seed
from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.models.checkpoint import (
    check_shapes, checkpoint_paths, first_line, read_checkpoint, read_weights, size_bound, write_checkpoint,
)
from matdesinne.models.fitting import seeded

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; ``"cuda"`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device not in DEVICES:
        raise UserInputError(f"unknown device {device!r}: use auto, cpu or cuda")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("device=cuda was asked for, but PyTorch sees no CUDA GPU")
    return torch.device(device)


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
    def from_dict(cls, d: dict, k: int, field: str = "scaler") -> "Standardizer":
        """The inverse of :meth:`to_dict` for ``k`` columns; a ``ValueError`` names a bad field."""
        d = schema.fields(d, field, ("mean", "std"))
        std = schema.numbers(d["std"], f"{field}.std", k)
        if (std <= 0).any():
            raise ValueError(f"{field}.std must be positive")
        return cls(schema.numbers(d["mean"], f"{field}.mean", k), std)

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(self.mean, dtype=torch.float32, device=device),
            torch.as_tensor(self.std, dtype=torch.float32, device=device),
        )


class Estimator(abc.ABC):
    """Base of the models, in the scikit-learn manner.

    The constructor only stores settings; ``fit`` checks them, learns and returns ``self``;
    learned state ends in ``_``: ``space_`` (the DesignSpace), ``x_scaler_``, ``y_scaler_``,
    ``y_range_`` (the property's min and max in training), ``module_`` (the torch network),
    ``training_`` (a JSON-able record of the fit).

    Training settings that every model takes (:data:`TRAINING_PARAMS`):

    epochs : at most this many passes over the training rows.
    batch_size : rows per Adam step.
    lr, weight_decay : Adam's learning rate (halved when the validation score stalls) and
        L2 weight decay.
    patience : training stops this many epochs after the best validation score; the
        weights kept are those of that best epoch.
    seed : seeds initialisation, shuffling and any training noise; a whole number from 0
        to 2**32 - 1. The same seed gives the same model on the same device.
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"`` for training.
    """

    kind: str = ""

    #: The key of a checkpoint's ``extra`` listing the properties modelled beyond the
    #: space's own (None: the model has one property).
    _more_properties_key: str | None = None

    #: Settings added after checkpoints were shipped, with the value that reproduces those
    #: checkpoints: a checkpoint that lacks one loads with it.
    _params_added_later: dict = {}

    #: Settings of the training loop rather than of the network (documented above).
    TRAINING_PARAMS = ("epochs", "batch_size", "lr", "weight_decay", "patience", "seed", "device")
    #: Integer settings of sampling, not sizes of the network: a checkpoint's size check
    #: (no setting larger than any weight's size) skips them; the model bounds them itself.
    SAMPLING_PARAMS: tuple[str, ...] = ()

    #: Numeric settings that may be 0; the other whole-number and real settings must be positive.
    _may_be_zero: frozenset[str] = frozenset({"layers", "weight_decay"})

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

    def _check_params(self) -> None:
        """Refuse, in one line (``UserInputError``), a setting whose type differs from its
        default's or whose value is out of range: sizes and rates positive (or 0 where
        :attr:`_may_be_zero` says so), the seed as :func:`~matdesinne.data.check_seed` wants."""
        defaults = inspect.signature(type(self).__init__).parameters
        try:
            for name, value in self.get_params().items():
                default = defaults[name].default
                if name == "seed":
                    check_seed(value)
                elif name == "device":
                    if value not in DEVICES:
                        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {value!r}")
                elif isinstance(default, bool):
                    if not isinstance(value, bool):
                        raise ValueError(f"{name} must be true or false, got {value!r}")
                elif isinstance(default, int):
                    schema.whole(value, name, minimum=0 if name in self._may_be_zero else 1)
                elif isinstance(default, float):
                    schema.number(value, name, minimum=0.0, positive=name not in self._may_be_zero)
        except ValueError as err:
            raise UserInputError(f"{type(self).__name__}: {err}") from None

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

    @abc.abstractmethod
    def _build_module(self) -> torch.nn.Module:
        """Make the (untrained) network from settings and ``space_``."""

    def _coords(self, x: np.ndarray) -> np.ndarray:
        """Physical design parameters (n, dim) -> the coordinates the network models, before
        standardisation; the identity unless a subclass says otherwise."""
        return np.asarray(x, dtype=np.float64)

    def _prepare(self, x: np.ndarray, y: np.ndarray, space: DesignSpace) -> None:
        """Check the settings and training arrays, and fit the normalisation (``x_scaler_``
        on the modelled coordinates, see :meth:`_coords`)."""
        self._check_params()
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if x.ndim != 2 or x.shape[1] != space.dim or len(x) != len(y):
            raise UserInputError(f"expected x of shape (n, {space.dim}) and y of shape (n,), got {x.shape} and {y.shape}")
        self.space_ = space
        self.x_scaler_ = Standardizer.fit(self._coords(x))
        self.y_scaler_ = Standardizer.fit(y)
        self.y_range_ = (float(y.min()), float(y.max()))

    # --- checkpoints --------------------------------------------------------------------
    def _extra_state(self) -> dict:
        """JSON-able learned state beyond the weights; subclasses extend."""
        return {}

    def _load_extra_state(self, state: dict) -> None:
        """Restore :meth:`_extra_state`, checking every field (a ``ValueError`` names a bad one)."""
        schema.fields(state, "extra", ())

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``<kind>.safetensors`` and ``<kind>.json`` into ``directory`` (created if missing)."""
        self._check_fitted()
        body = {
            "params": self.get_params(),
            "design_space": self.space_.to_dict(),
            "x_scaler": self.x_scaler_.to_dict(),
            "y_scaler": self.y_scaler_.to_dict(),
            "y_range": list(self.y_range_),
            "extra": self._extra_state(),
            "training": self.training_,
        }
        return write_checkpoint(directory, self.kind, body, self.module_.state_dict())

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> "Estimator":
        """Load a checkpoint written by :meth:`save`. Any damage is a one-line ``UserInputError``,
        found before the network is allocated (see :mod:`~matdesinne.models.checkpoint`)."""
        meta_path, weights_path = checkpoint_paths(directory, cls.kind)
        try:
            meta, shapes = read_checkpoint(meta_path, weights_path, cls.kind)
            model = cls._from_meta(meta, size_bound(shapes))
            # Seeded: FrEIA draws fixed permutations from NumPy's global RNG while building.
            with seeded(0), torch.device("meta"):  # shapes only: nothing is allocated
                check_shapes(model._build_module(), shapes)
            state = read_weights(weights_path)
            with seeded(0):
                model.module_ = model._build_module()
            model.module_.load_state_dict(state, strict=True)
        except (ValueError, KeyError, TypeError, RuntimeError, SafetensorError, OSError) as err:
            raise UserInputError(f"{directory}: {cls.kind} checkpoint is corrupt or incompatible ({first_line(err)})") from None
        model.module_.eval()
        return model.to(device)

    @classmethod
    def _y_columns(cls, meta: dict) -> int:
        """How many property columns a checkpoint's ``y_scaler`` has: one, plus the further
        properties listed under :attr:`_more_properties_key` in its ``extra``."""
        extra = meta.get("extra")
        more = extra.get(cls._more_properties_key, []) if cls._more_properties_key and isinstance(extra, dict) else []
        return 1 + (len(more) if isinstance(more, list) else 0)

    @classmethod
    def _from_meta(cls, meta: dict, size_limit: int) -> "Estimator":
        """An unbuilt model from checked metadata; size settings above ``size_limit`` (what
        the weights can back) are refused before anything is built."""
        later = cls._params_added_later
        given = schema.fields(meta["params"], "params", [n for n in cls._param_names() if n not in later], later)
        model = cls(**{**later, **given})
        model._check_params()
        for name, value in model.get_params().items():
            if name not in (*cls.TRAINING_PARAMS, *cls.SAMPLING_PARAMS) and type(value) is int and value > size_limit:
                raise ValueError(f"params.{name} = {value} is larger than any size in the weights ({size_limit})")
        model.space_ = DesignSpace.from_dict(meta["design_space"])
        model.x_scaler_ = Standardizer.from_dict(meta["x_scaler"], model.space_.dim, "x_scaler")
        model.y_scaler_ = Standardizer.from_dict(meta["y_scaler"], cls._y_columns(meta), "y_scaler")
        low, high = schema.numbers(meta["y_range"], "y_range", 2)
        if low > high:
            raise ValueError(f"y_range must run from low to high, got {low:g}:{high:g}")
        model.y_range_ = (float(low), float(high))
        model.training_ = meta["training"]
        model._load_extra_state(meta["extra"])
        return model
