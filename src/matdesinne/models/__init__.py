"""Models: the cINN sampler of p(x | y) and the ensemble forward surrogate, with checkpoints."""

from matdesinne.models.base import Estimator, Standardizer, resolve_device
from matdesinne.models.cinn import CINN
from matdesinne.models.surrogate import EnsembleSurrogate
from matdesinne.models.zoo import GENERATORS, ModelSet, default_models_dir, load_models

__all__ = [
    "CINN", "GENERATORS", "EnsembleSurrogate", "Estimator", "ModelSet", "Standardizer",
    "default_models_dir", "load_models", "resolve_device",
]
