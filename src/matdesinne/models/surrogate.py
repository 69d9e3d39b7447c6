"""Forward surrogate: a deep ensemble of MLPs predicting the property with an uncertainty.

All members live in one batched network (:class:`~matdesinne.models.nn.BatchedMLP`), so
the whole ensemble costs one batched matrix product per layer, in training and in design.

A property with a physical floor that the data hits with a point mass (a band gap of
exactly 0 for a metal) is modelled as *censored*: each member outputs a raw score ``r``,
the prediction is ``max(r, floor)``, and a row at the floor only asks ``r <= floor``.
Below the floor ``r`` keeps a useful slope ("how deep into the metal"), which gives the
localizer a gradient to climb out of the metallic region toward a nonzero target.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import numpy as np
import torch
from torch import nn

from matdesinne.data import schema
from matdesinne.data.datasets import check_float32
from matdesinne.data.design_space import DesignSpace, Property
from matdesinne.errors import UserInputError
from matdesinne.models.base import Estimator, Standardizer, resolve_device
from matdesinne.models.fitting import Progress, fit_module, seeded
from matdesinne.models.nn import BatchedMLP


class EnsembleSurrogate(Estimator):
    """Deep-ensemble forward model ``x -> (mean, std)`` of the property.

    Parameters
    ----------
    members, hidden, layers : ensemble size and each MLP's width and depth (hidden layers).
    epochs, batch_size, lr, weight_decay, patience, seed, device : training, see
        :class:`~matdesinne.models.base.Estimator`; the validation score is the MAE.
    """

    kind = "surrogate"
    _more_properties_key = "properties"

    def __init__(
        self,
        members: int = 5,
        hidden: int = 128,
        layers: int = 3,
        epochs: int = 1000,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 60,
        seed: int = 0,
        device: str = "auto",
    ):
        self._set_params(locals())

    def _build_module(self) -> nn.Module:
        return BatchedMLP(self.members, self.space_.dim, self.hidden, self.layers, d_out=len(self.properties_))

    @property
    def properties_(self) -> tuple[Property, ...]:
        """Every property the ensemble predicts: the space's own first, then ``also_``."""
        return (self.space_.property, *getattr(self, "also_", ()))

    def _extra_state(self) -> dict:
        state = {"std_threshold": self.std_threshold_}
        if self.also_:  # written only for several properties, so one-property checkpoints stay as they were
            state.update(properties=[asdict(p) for p in self.also_], std_thresholds=list(self.std_thresholds_),
                         ranges=[list(r) for r in self.ranges_])
        return state

    def _load_extra_state(self, state: dict) -> None:
        state = schema.fields(state, "extra", ("std_threshold",), ("properties", "std_thresholds", "ranges"))
        self.std_threshold_ = schema.number(state["std_threshold"], "extra.std_threshold", minimum=0.0)
        self.also_ = tuple(Property.from_dict(p, f"extra.properties[{i}]") for i, p in enumerate(state.get("properties", [])))
        k = len(self.properties_)
        self.std_thresholds_ = (schema.numbers(state["std_thresholds"], "extra.std_thresholds", k)
                                if self.also_ else np.array([self.std_threshold_]))
        ranges = state.get("ranges", [list(self.y_range_)]) if self.also_ else [list(self.y_range_)]
        if not isinstance(ranges, list) or len(ranges) != k:
            raise ValueError(f"extra.ranges must list {k} ranges")
        self.ranges_ = tuple(tuple(schema.numbers(r, f"extra.ranges[{i}]", 2)) for i, r in enumerate(ranges))
        names = [p.name for p in self.properties_]
        if len(set(names)) != k or set(names) & set(self.space_.names):
            raise ValueError("extra.properties repeat a property or name a design parameter")

    # --- core maths ---------------------------------------------------------------------
    def _floors(self) -> list[float | None]:
        """Each property's censoring floor in standardised units (None: uncensored)."""
        return [None if p.lower is None else float((p.lower - self.y_scaler_.mean[j]) / self.y_scaler_.std[j])
                for j, p in enumerate(self.properties_)]

    def raw_all(self, x: torch.Tensor) -> torch.Tensor:
        """Members' raw scores of every property in its units, shape (members, n, k).

        ``x`` is in physical units, shape (n, dim) or (members, n, dim); differentiable.
        """
        x_mean, x_std = self.x_scaler_.tensors(x.device)
        y_mean, y_std = self.y_scaler_.tensors(x.device)
        out = self.module_((x - x_mean) / x_std)
        return (out.unsqueeze(-1) if out.dim() == 2 else out) * y_std + y_mean

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Members' raw scores of the space's property (before its limits), shape (members, n)."""
        return self.raw_all(x)[..., 0]

    def clip(self, raw: torch.Tensor, index: int = 0) -> torch.Tensor:
        """Apply property ``index``'s physical limits (default: the space's property) to raw scores."""
        prop = self.properties_[index]
        if prop.lower is not None or prop.upper is not None:
            raw = raw.clamp(min=prop.lower, max=prop.upper)
        return raw

    def clip_all(self, raw: torch.Tensor) -> torch.Tensor:
        """Apply every property's limits to raw scores (..., k)."""
        return torch.stack([self.clip(raw[..., j], j) for j in range(raw.shape[-1])], -1)

    def predict_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std over members of the clipped predictions, each shape (n,)."""
        members = self.clip(self.raw(x))
        return members.mean(0), members.std(0) if self.members > 1 else torch.zeros_like(members[0])

    def predict_tensor_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std over members of every clipped property, each shape (n, k), from one
        pass of the network; the first column is :meth:`predict_tensor`'s. A subclass that
        refines :meth:`raw_all` refines both; one that refines :meth:`predict_tensor` alone
        must refine this too (the loop's corrected surrogate refines both)."""
        members = self.clip_all(self.raw_all(x))
        return members.mean(0), members.std(0) if self.members > 1 else torch.zeros_like(members[0])

    def _batches(self, x: np.ndarray, batch_size: int, every: bool) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.space_.dim:
            raise UserInputError(f"expected design parameters of shape (n, {self.space_.dim}), got {x.shape}")
        check_float32(x, self.space_.names, "design parameters")
        k = len(self.properties_) if every else 1
        means, stds = [np.empty((0, k))], [np.empty((0, k))]  # so that no rows give empty arrays
        with torch.inference_mode():
            for lo in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.array(x[lo : lo + batch_size], dtype=np.float32)).to(self.device_)
                if every:
                    mean, std = self.predict_tensor_all(xb)
                else:
                    mean, std = (t.unsqueeze(-1) for t in self.predict_tensor(xb))
                means.append(mean.cpu().numpy())
                stds.append(std.cpu().numpy())
        return np.concatenate(means).astype(np.float64), np.concatenate(stds).astype(np.float64)

    def predict(self, x: np.ndarray, batch_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Predict the property for ``x`` (n, dim) in physical units: (mean, std), each (n,).

        Finite values beyond the float32 range are refused (``UserInputError``); NaN rows
        predict NaN.
        """
        mean, std = self._batches(x, batch_size, every=False)
        return mean[:, 0], std[:, 0]

    def predict_all(self, x: np.ndarray, batch_size: int = 65536) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every property for ``x`` (n, dim): ``{name: (mean (n,), std (n,))}``, the space's
        property first.

        Example: ``surrogate.predict_all(x)["strain_energy"][0]`` in eV/atom.
        """
        mean, std = self._batches(x, batch_size, every=True)
        return {p.name: (mean[:, j], std[:, j]) for j, p in enumerate(self.properties_)}

    # --- training -----------------------------------------------------------------------
    def _loss(self, raw_std: torch.Tensor, y_std: torch.Tensor, floor: float | None) -> torch.Tensor:
        """Squared error in standardised units; rows at the floor only penalise ``raw > floor``."""
        if floor is None:
            return ((raw_std - y_std) ** 2).mean()
        at_floor = y_std <= floor + 1e-6
        err = torch.where(at_floor, torch.relu(raw_std - floor), raw_std - y_std)
        return (err**2).mean()

    def fit(self, x: np.ndarray, y: np.ndarray, space: DesignSpace, x_val: np.ndarray, y_val: np.ndarray,
            also: Sequence[Property] = (), progress: Progress | None = None):
        """Train on (x, y) with (x_val, y_val) choosing the best epoch. Returns self.
        ``progress``: see :meth:`Generator.fit <matdesinne.models.generator.Generator.fit>`.

        ``y`` is (n,) for the space's property, or (n, 1 + len(also)) with one column per
        further property in ``also`` (e.g. a strain energy beside the band gap): one
        ensemble then predicts them all, each with its own limits, and the best epoch is
        the one with the least mean MAE in units of each property's spread.
        """
        also = tuple(also)
        k = 1 + len(also)
        y, y_val = np.asarray(y, dtype=np.float64), np.asarray(y_val, dtype=np.float64)
        y, y_val = y.reshape(len(y), -1), y_val.reshape(len(y_val), -1)
        if y.shape[1] != k or y_val.shape[1] != k:
            raise UserInputError(f"expected {k} property column(s), got {y.shape[1]} and {y_val.shape[1]}")
        self._prepare(x, y[:, 0], space)
        self.also_ = also
        names = [p.name for p in self.properties_]
        if len(set(names)) != k or set(names) & set(space.names):
            raise UserInputError(f"the properties {', '.join(names)} repeat one or name a design parameter")
        self.y_scaler_ = Standardizer.fit(y)
        self.ranges_ = tuple((float(c.min()), float(c.max())) for c in y.T)
        device = resolve_device(self.device)
        xs = torch.as_tensor((np.asarray(x) - self.x_scaler_.mean) / self.x_scaler_.std, dtype=torch.float32, device=device)
        ys = torch.as_tensor((y - self.y_scaler_.mean) / self.y_scaler_.std, dtype=torch.float32, device=device)
        xv = torch.as_tensor(np.asarray(x_val), dtype=torch.float32, device=device)
        yv = torch.as_tensor(y_val, dtype=torch.float32, device=device)
        floors = self._floors()
        spread = torch.as_tensor(self.y_scaler_.std, dtype=torch.float32, device=device)
        with seeded(self.seed):
            self.module_ = self._build_module().to(device)

        def batch_loss(idx: torch.Tensor, done: float) -> torch.Tensor:
            out = self.module_(xs[idx])
            if k == 1:
                return self._loss(out, ys[idx][..., 0], floors[0])
            return sum(self._loss(out[..., j], ys[idx][..., j], floors[j]) for j in range(k)) / k

        def val_mae() -> float:
            if k == 1:
                return float((self.predict_tensor(xv)[0] - yv[:, 0]).abs().mean())
            pred = self.clip_all(self.raw_all(xv)).mean(0)
            return float(((pred - yv).abs().mean(0) / spread).mean())

        self.training_ = fit_module(
            self.module_, batch_loss, val_mae, len(xs), streams=self.members, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            patience=self.patience, seed=self.seed, device=device, desc="surrogate", progress=progress,
        )
        # "Extreme" uncertainty is judged against what the ensemble shows on real rows.
        _, val_std = self._batches(x_val, 65536, every=True)
        self.std_thresholds_ = np.quantile(val_std, 0.99, axis=0)
        self.std_threshold_ = float(self.std_thresholds_[0])
        self.training_["validation"] = self.score(x_val, y_val)
        return self

    def score(self, x: np.ndarray, y: np.ndarray) -> dict:
        """How well the predictions for ``x`` (n, dim) match the known property values ``y``
        (n,), all in property units: ``n``, ``mae``, ``rmse``, ``mean_std``; for a property
        with a lower limit also the MAE on rows at that floor and above it, and how well
        the floor (for a band gap: the metal/insulator step) is classified. With ``y`` of
        shape (n, k) for an ensemble of k properties, the further properties' ``mae`` and
        ``mean_std`` come under their names."""
        y = np.asarray(y, dtype=np.float64)
        extra = {}
        if y.ndim == 2 and y.shape[1] > 1:
            if y.shape[1] != len(self.properties_):
                raise UserInputError(f"expected {len(self.properties_)} property columns, got {y.shape[1]}")
            every = self.predict_all(x)
            for j, p in enumerate(self.also_, start=1):
                mean, sd = every[p.name]
                extra[p.name] = {"mae": float(np.abs(mean - y[:, j]).mean()), "mean_std": float(sd.mean())}
            y = y[:, 0]
        y = y.reshape(-1)
        pred, std = self.predict(x)
        if len(pred) != len(y):
            raise UserInputError(f"expected one property value per row, got {len(y)} for {len(pred)} rows")
        err = np.abs(pred - y)
        out = {"n": int(len(y)), "mae": float(err.mean()), "rmse": float(np.sqrt((err**2).mean())),
               "mean_std": float(std.mean())}
        lower = self.space_.property.lower
        if lower is not None:
            at_floor = y <= lower
            # A prediction within 0.01 property units of the floor counts as "at the floor".
            pred_floor = pred <= lower + 0.01
            out.update(
                mae_at_floor=float(err[at_floor].mean()) if at_floor.any() else None,
                mae_above_floor=float(err[~at_floor].mean()) if (~at_floor).any() else None,
                floor_accuracy=float((at_floor == pred_floor).mean()),
                floor_false_positive=float((pred_floor & ~at_floor).mean()),
                floor_false_negative=float((~pred_floor & at_floor).mean()),
            )
        return {**out, **extra}

