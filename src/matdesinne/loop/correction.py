"""Learning from new labelled rows by a residual (discrepancy) model on top of the surrogate.

The prior surrogate ``f`` was trained on published data; a new source of truth (DFT with
other settings, experiment) differs from it by a smooth discrepancy ``delta(x)``. Following
Kennedy & O'Hagan, the truth is modelled as ``y(x) = f(x) + delta(x) + noise`` with a
Gaussian-process prior on ``delta``. The GP is fitted by scikit-learn (an RBF kernel with
one length scale per parameter, "ARD", times a constant, plus white noise; ``normalize_y``)
in range-normalised coordinates, and then evaluated in torch from the fitted kernel's
hyperparameters and training points, so that the correction is differentiable and runs on
the surrogate's device. :class:`CorrectedSurrogate` adds ``delta`` to the raw score of every
ensemble member, so down-selection and the localizer's gradients see it, and adds the GP's
variance to the ensemble's in the predicted std.

References
----------
M. C. Kennedy and A. O'Hagan, "Bayesian calibration of computer models",
J. R. Stat. Soc. B 63, 425-464 (2001).
C. E. Rasmussen and C. K. I. Williams, *Gaussian Processes for Machine Learning*, MIT
Press (2006), algorithm 2.1 (the Cholesky form of the predictive mean and variance used here).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.linalg import cho_solve, cholesky
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from matdesinne.data.design_space import DesignSpace
from matdesinne.errors import UserInputError
from matdesinne.loop.coords import to_unit, to_unit_tensor
from matdesinne.models import EnsembleSurrogate


class ResidualGP:
    """A Gaussian process on a residual ``r(u)`` over unit coordinates ``u`` (see
    :mod:`~matdesinne.loop.coords`), fitted by scikit-learn, evaluated in torch.

    Parameters
    ----------
    length_scale_bounds : range of each RBF length scale, in fractions of the parameter's range.
    noise_bounds : range of the white-noise level, in units of the residuals' variance
        (``normalize_y`` divides the residuals by their std before the kernel sees them).
    restarts : extra random starts of the marginal-likelihood optimiser.
    seed : seeds those starts.

    After :meth:`fit`: ``gp_`` (the scikit-learn regressor), ``amplitude_`` (the constant,
    in normalised units), ``length_scales_`` (dim,), ``noise_`` (normalised units),
    ``y_mean_`` and ``y_std_`` (property units).
    """

    def __init__(self, length_scale_bounds=(0.03, 30.0), noise_bounds=(1e-6, 0.5), restarts: int = 2, seed: int = 0):
        self.length_scale_bounds = length_scale_bounds
        self.noise_bounds = noise_bounds
        self.restarts = restarts
        self.seed = seed

    def fit(self, u: np.ndarray, r: np.ndarray) -> "ResidualGP":
        """Fit to residuals ``r`` (n,) in property units at unit coordinates ``u`` (n, dim)."""
        u = np.asarray(u, dtype=np.float64)
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        if u.ndim != 2 or len(u) != len(r) or len(r) == 0:
            raise UserInputError(f"a residual model needs rows u (n, dim) and residuals (n,), n >= 1; "
                                 f"got {u.shape} and {r.shape}")
        kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.full(u.shape[1], 0.3), self.length_scale_bounds)
                  + WhiteKernel(1e-2, self.noise_bounds))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=self.restarts, random_state=self.seed)
        with warnings.catch_warnings():  # a bound reached on a handful of rows is expected, not news
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp_ = gp.fit(u, r)
        fitted = self.gp_.kernel_
        self.amplitude_ = float(fitted.k1.k1.constant_value)
        self.length_scales_ = np.broadcast_to(np.asarray(fitted.k1.k2.length_scale, dtype=np.float64), (u.shape[1],)).copy()
        self.noise_ = float(fitted.k2.noise_level)
        self.y_mean_ = float(r.mean())
        self.y_std_ = float(r.std()) or 1.0  # as scikit-learn's normalize_y: a constant residual keeps scale 1
        # Rasmussen & Williams, algorithm 2.1, with the regressor's jitter on the diagonal.
        z = u / self.length_scales_
        gram = self.amplitude_ * np.exp(-0.5 * _sq_dist(z, z)) + (self.noise_ + self.gp_.alpha) * np.eye(len(z))
        chol = cholesky(gram, lower=True)
        weights = cho_solve((chol, True), (r - self.y_mean_) / self.y_std_)
        self._train = {"z": z, "chol": chol, "weights": weights}
        self._on: dict[torch.device, dict[str, torch.Tensor]] = {}
        return self

    def _tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The training state as float64 tensors on ``device`` (made once per device)."""
        if device not in self._on:
            with torch.inference_mode(False):  # made inside predict()'s inference mode, reused under autograd
                self._on[device] = {k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in self._train.items()}
        return self._on[device]

    def predict_tensor(self, u: torch.Tensor, variance: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """GP mean and latent variance (noise excluded) of the residual at ``u`` (m, dim),
        in property units and units squared, each (m,), float64; differentiable in ``u``.
        ``variance=False`` skips the variance (None)."""
        t = self._tensors(u.device)
        z = u.double() / torch.as_tensor(self.length_scales_, dtype=torch.float64, device=u.device)
        k = self.amplitude_ * torch.exp(-0.5 * _sq_dist(z, t["z"]))  # (m, n)
        mean = self.y_mean_ + self.y_std_ * (k @ t["weights"])
        if not variance:
            return mean, None
        v = torch.linalg.solve_triangular(t["chol"], k.T, upper=False)  # (n, m)
        var = self.y_std_**2 * torch.clamp(self.amplitude_ - v.pow(2).sum(0), min=0.0)
        return mean, var

    def predict(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_tensor` on the CPU for ``u`` (m, dim): (mean, std) of the residual, each (m,)."""
        with torch.no_grad():
            mean, var = self.predict_tensor(torch.as_tensor(np.asarray(u, dtype=np.float64)))
        return mean.numpy(), np.sqrt(var.numpy())

    @property
    def prior_variance_(self) -> float:
        """The GP's variance far from every training row, in property units squared."""
        return self.y_std_**2 * self.amplitude_

    def describe(self) -> dict:
        """The fitted hyperparameters, JSON-able (length scales in fractions of each range)."""
        return {"rows": int(len(self._train["z"])), "amplitude": self.amplitude_,
                "length_scales": self.length_scales_.tolist(),
                "noise": self.noise_, "y_mean": self.y_mean_, "y_std": self.y_std_}


def _sq_dist(a, b):
    """Squared Euclidean distances between the rows of ``a`` (m, d) and ``b`` (n, d): (m, n).

    Written with the row norms rather than ``cdist``, whose gradient is NaN where two points
    coincide; works on NumPy arrays and torch tensors alike."""
    cross = a @ b.T
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * cross
    return sq.clip(min=0.0) if isinstance(sq, np.ndarray) else sq.clamp(min=0.0)


def raw_residuals(raw_mean: np.ndarray, y: np.ndarray, lower: float | None) -> np.ndarray:
    """What must be added to the ensemble's mean raw score to reach the truth, shape (n,).

    ``raw_mean`` (n,) is the members' mean raw score (before the floor), ``y`` (n,) the
    truth, both in property units. A row above the property's floor ``lower`` asks for
    ``y - raw_mean``. A row at the floor is censored ("at or below"), as in the surrogate's
    own training: it asks to come down to the floor if the raw score is above it, and for
    nothing if it is already below (how far below is unknown).
    """
    raw_mean = np.asarray(raw_mean, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if lower is None:
        return y - raw_mean
    return np.where(y <= lower, np.minimum(0.0, lower - raw_mean), y - raw_mean)


def mean_raw(surrogate: EnsembleSurrogate, x: np.ndarray) -> np.ndarray:
    """The ensemble members' mean raw score of every property at ``x`` (n, dim), property
    units, shape (n, k)."""
    with torch.no_grad():
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32), device=surrogate.device_)
        return surrogate.raw_all(xt).mean(0).double().cpu().numpy()


def as_columns(y: np.ndarray, k: int) -> np.ndarray:
    """Told values as one column per property, shape (n, k): ``y`` (n,) holds the first
    property only (the others missing, NaN), ``y`` (n, k) them all (NaN where not told)."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        return np.column_stack([y, np.full((len(y), k - 1), np.nan)])
    if y.ndim != 2 or y.shape[1] != k:
        raise UserInputError(f"expected told values of shape (n,) or (n, {k}), got {y.shape}")
    return y


class CorrectedSurrogate(EnsembleSurrogate):
    """A surrogate plus a learned discrepancy per property: member ``k``'s raw score of
    property ``j`` becomes ``raw_kj(x) + delta_j(x)``, ``delta_j`` the mean of property
    ``j``'s residual GP (properties never told have none); each prediction is the mean of
    the floored members and its std is ``sqrt(std_ensemble^2 + var_delta_j)``.

    It is an :class:`~matdesinne.models.EnsembleSurrogate` with the wrapped one's weights
    and learned state (shared, not copied), so the pipeline takes it as it is:
    ``design(ModelSet(models.generator, corrected, models.directory), target=0.6)``.
    ``std_threshold_`` (down-selection's "extreme uncertainty") grows to
    ``sqrt(threshold^2 + prior variance of delta)``: the GP's own uncertainty marks rows
    the new truth has not visited yet, which is no reason to discard a sample.
    It is not saved as a checkpoint: a campaign's state rebuilds it from its rows.

    ``residuals``: a :class:`ResidualGP` for the space's property, or ``{column: ResidualGP}``.

    Example::

        corrected = fit_residual(models.surrogate, x_dft, y_dft)     # (n, dim), (n,) or (n, k)
        mean, std = corrected.predict(x)                               # each (m,)

    Reference: Kennedy & O'Hagan (2001), see :mod:`~matdesinne.loop.correction`.
    """

    def __init__(self, surrogate: EnsembleSurrogate, residuals: ResidualGP | dict[int, ResidualGP]):
        self.__dict__.update(surrogate.__dict__)  # settings and learned state, the network shared
        self.surrogate = surrogate
        self.residuals = dict(residuals) if isinstance(residuals, dict) else {0: residuals}
        grown = lambda j, threshold: float(np.sqrt(threshold**2 + self.residuals[j].prior_variance_)) \
            if j in self.residuals else threshold
        self.std_threshold_ = grown(0, surrogate.std_threshold_)
        self.std_thresholds_ = np.array([grown(j, t) for j, t in enumerate(surrogate.std_thresholds_)])
        self.training_ = {**surrogate.training_, "correction": {self.properties_[j].name: gp.describe()
                                                                 for j, gp in sorted(self.residuals.items())}}

    @property
    def residual(self) -> ResidualGP:
        """The space's property's residual GP."""
        return self.residuals[0]

    def _deltas(self, x: torch.Tensor, variance: bool, columns=None) -> dict[int, tuple[torch.Tensor, torch.Tensor | None]]:
        """Each corrected property's (of ``columns``, default all) residual mean and
        variance at ``x`` (..., dim), each shaped x's leading dims."""
        u = to_unit_tensor(x, self.space_).reshape(-1, self.space_.dim)
        shape = x.shape[:-1]
        out = {}
        for j, gp in self.residuals.items():
            if columns is None or j in columns:
                mean, var = gp.predict_tensor(u, variance)
                out[j] = mean.to(x.dtype).reshape(shape), None if var is None else var.to(x.dtype).reshape(shape)
        return out

    def _shifted(self, x: torch.Tensor, deltas: dict) -> torch.Tensor:
        """The wrapped members' raw scores (members, n, k), each property in ``deltas`` shifted by its residual mean."""
        raw = self.surrogate.raw_all(x)
        return torch.stack([raw[..., j] + deltas[j][0] if j in deltas else raw[..., j] for j in range(raw.shape[-1])], -1)

    def raw_all(self, x: torch.Tensor) -> torch.Tensor:
        """Members' raw scores, shape (members, n, k), property units, each corrected
        property shifted by its residual; ``x`` is (n, dim) or (members, n, dim) in physical
        units. Differentiable. ``raw`` and the localizers read it, so they see the correction."""
        return self._shifted(x, self._deltas(x, variance=False))

    def _mean_std(self, x: torch.Tensor, columns=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (n, k) of the floored corrected members, each std including its
        property's GP variance; only ``columns`` (default all) are corrected and meaningful."""
        deltas = self._deltas(x, variance=True, columns=columns)
        members = self.clip_all(self._shifted(x, deltas))
        spread = members.var(0) if self.members > 1 else torch.zeros_like(members[0])
        extra = torch.stack([deltas[j][1] if j in deltas else torch.zeros_like(spread[:, j])
                             for j in range(spread.shape[-1])], -1)
        return members.mean(0), torch.sqrt(spread + extra)

    def predict_tensor_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (n, k) of the floored corrected members, each std including its
        property's GP variance."""
        return self._mean_std(x)

    def predict_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (n,) of the floored corrected members and std (n,) including the GP's
        variance, for the space's property alone (the others' residuals are not evaluated)."""
        mean, std = self._mean_std(x, columns=(0,))
        return mean[:, 0], std[:, 0]

    def save(self, directory):
        raise NotImplementedError("a corrected surrogate is not saved: a campaign's rows rebuild it (Campaign.from_state)")

    def get_params(self) -> dict:
        return self.surrogate.get_params()


def prior_of(surrogate: EnsembleSurrogate) -> EnsembleSurrogate:
    """The uncorrected surrogate underneath a :class:`CorrectedSurrogate` (else itself)."""
    return surrogate.surrogate if isinstance(surrogate, CorrectedSurrogate) else surrogate


def fit_residual(surrogate: EnsembleSurrogate, x: np.ndarray, y: np.ndarray, seed: int = 0,
                 **gp_options) -> CorrectedSurrogate:
    """Update (a): the surrogate corrected by a GP on its residuals at the new rows, one GP
    per property with told values.

    ``x`` (n, dim) designs in physical units, ``y`` their true values: (n,) for the space's
    property, or (n, k) for every property the surrogate predicts, NaN where not told.
    ``gp_options`` go to :class:`ResidualGP`. A surrogate that is already corrected is
    corrected afresh from its base (residuals always relative to the prior model).
    """
    base = prior_of(surrogate)
    space: DesignSpace = base.space_
    y = as_columns(y, len(base.properties_))
    x = np.asarray(x, dtype=np.float64)
    raw = mean_raw(base, x)
    residuals = {}
    for j, prop in enumerate(base.properties_):
        told = np.isfinite(y[:, j])
        if j == 0 or told.any():  # the space's property always (a campaign tells it on every row)
            r = raw_residuals(raw[told, j], y[told, j], prop.lower)
            residuals[j] = ResidualGP(seed=seed, **gp_options).fit(to_unit(x[told], space), r)
    return CorrectedSurrogate(base, residuals)
