"""Models: samplers of p(x | y) (cINN, INN, MDN, cVAE, CFM) and the ensemble forward surrogate."""

from matdesinne.models.base import Estimator, Standardizer, resolve_device
from matdesinne.models.cfm import CFM
from matdesinne.models.cinn import CINN
from matdesinne.models.cvae import CVAE
from matdesinne.models.generator import Generator
from matdesinne.models.inn import INN
from matdesinne.models.manifest import MANIFEST, read_manifest
from matdesinne.models.mdn import MDN
from matdesinne.models.surrogate import EnsembleSurrogate
from matdesinne.models.zoo import GENERATORS, ModelSet, default_models_dir, load_models

__all__ = [
    "CFM", "CINN", "CVAE", "GENERATORS", "INN", "MANIFEST", "MDN", "EnsembleSurrogate", "Estimator", "Generator",
    "ModelSet", "Standardizer", "default_models_dir", "load_models", "read_manifest", "resolve_device",
]
