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

import numpy as np
import torch
from torch import nn

from matdesinne.data import schema
from matdesinne.data.datasets import check_float32
from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.models.base import Estimator, resolve_device
from matdesinne.models.fitting import fit_module, seeded
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
        return BatchedMLP(self.members, self.space_.dim, self.hidden, self.layers)

    def _extra_state(self) -> dict:
        return {"std_threshold": self.std_threshold_}

    def _load_extra_state(self, state: dict) -> None:
        state = schema.fields(state, "extra", ("std_threshold",))
        self.std_threshold_ = schema.number(state["std_threshold"], "extra.std_threshold", minimum=0.0)

    # --- core maths ---------------------------------------------------------------------
    def _floor(self) -> float | None:
        """The censoring floor in standardised units, or None for an uncensored property."""
        lower = self.space_.property.lower
        if lower is None:
            return None
        return float((lower - self.y_scaler_.mean[0]) / self.y_scaler_.std[0])

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Members' raw scores in property units (before the floor), shape (members, n).

        ``x`` is in physical units, shape (n, dim) or (members, n, dim); differentiable.
        """
        x_mean, x_std = self.x_scaler_.tensors(x.device)
        y_mean, y_std = self.y_scaler_.tensors(x.device)
        return self.module_((x - x_mean) / x_std) * y_std + y_mean

    def clip(self, raw: torch.Tensor) -> torch.Tensor:
        """Apply the property's physical limits to raw scores."""
        prop = self.space_.property
        if prop.lower is not None or prop.upper is not None:
            raw = raw.clamp(min=prop.lower, max=prop.upper)
        return raw

    def predict_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std over members of the clipped predictions, each shape (n,)."""
        members = self.clip(self.raw(x))
        return members.mean(0), members.std(0) if self.members > 1 else torch.zeros_like(members[0])

    def predict(self, x: np.ndarray, batch_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Predict the property for ``x`` (n, dim) in physical units: (mean, std), each (n,).

        Finite values beyond the float32 range are refused (``UserInputError``); NaN rows
        predict NaN.
        """
        self._check_fitted()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.space_.dim:
            raise UserInputError(f"expected design parameters of shape (n, {self.space_.dim}), got {x.shape}")
        check_float32(x, self.space_.names, "design parameters")
        means, stds = [np.empty(0)], [np.empty(0)]  # so that no rows give empty arrays
        with torch.inference_mode():
            for lo in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.array(x[lo : lo + batch_size], dtype=np.float32)).to(self.device_)
                m, s = self.predict_tensor(xb)
                means.append(m.cpu().numpy())
                stds.append(s.cpu().numpy())
        return np.concatenate(means).astype(np.float64), np.concatenate(stds).astype(np.float64)

    # --- training -----------------------------------------------------------------------
    def _loss(self, raw_std: torch.Tensor, y_std: torch.Tensor, floor: float | None) -> torch.Tensor:
        """Squared error in standardised units; rows at the floor only penalise ``raw > floor``."""
        if floor is None:
            return ((raw_std - y_std) ** 2).mean()
        at_floor = y_std <= floor + 1e-6
        err = torch.where(at_floor, torch.relu(raw_std - floor), raw_std - y_std)
        return (err**2).mean()

    def fit(self, x: np.ndarray, y: np.ndarray, space: DesignSpace, x_val: np.ndarray, y_val: np.ndarray):
        """Train on (x, y) with (x_val, y_val) choosing the best epoch. Returns self."""
        self._prepare(x, y, space)
        device = resolve_device(self.device)
        xs = torch.as_tensor((np.asarray(x) - self.x_scaler_.mean) / self.x_scaler_.std, dtype=torch.float32, device=device)
        ys = torch.as_tensor((np.asarray(y) - self.y_scaler_.mean) / self.y_scaler_.std, dtype=torch.float32, device=device)
        xv = torch.as_tensor(np.asarray(x_val), dtype=torch.float32, device=device)
        yv = torch.as_tensor(np.asarray(y_val), dtype=torch.float32, device=device)
        floor = self._floor()
        with seeded(self.seed):
            self.module_ = self._build_module().to(device)

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            return self._loss(self.module_(xs[idx]), ys[idx], floor)

        def val_mae() -> float:
            return float((self.predict_tensor(xv)[0] - yv).abs().mean())

        self.training_ = fit_module(
            self.module_, batch_loss, val_mae, len(xs), streams=self.members, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            patience=self.patience, seed=self.seed, device=device, desc="surrogate",
        )
        # "Extreme" uncertainty is judged against what the ensemble shows on real rows.
        _, val_std = self.predict(x_val)
        self.std_threshold_ = float(np.quantile(val_std, 0.99))
        self.training_["validation"] = self.score(x_val, y_val)
        return self

    def score(self, x: np.ndarray, y: np.ndarray) -> dict:
        """How well the predictions for ``x`` (n, dim) match the known property values ``y``
        (n,), all in property units: ``n``, ``mae``, ``rmse``, ``mean_std``; for a property
        with a lower limit also the MAE on rows at that floor and above it, and how well
        the floor (for a band gap: the metal/insulator step) is classified."""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
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
        return out

