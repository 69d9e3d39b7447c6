"""The DFT engine: a Kohn-Sham band gap from an ASE ``Atoms`` with GPAW (PAW, plane waves).

One narrow function, :func:`compute_gap`, runs on a Dask worker: it takes a structure and
:class:`DFTSettings` and returns a :class:`~matdesinne.validation.result.DFTResult`, never
raising, so that one failed structure never stops the others. GPAW is imported only there,
so the rest of matdesinne works without the optional ``[dft]`` extra.

Layers (``atoms.info["layer"]``, set by e.g. the MoS2 builder) are computed as slabs: the
c vector is replaced by its z projection, z is not periodic, the k-mesh is k×k×1, and a
dipole-layer correction lets a perpendicular field ``atoms.info["efield"]`` (V/Å) be applied.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from ase import Atoms

from matdesinne.data import schema
from matdesinne.errors import UserInputError
from matdesinne.validation.result import DFTResult, Status


@dataclass(frozen=True)
class DFTSettings:
    """Numerical settings of one GPAW band-gap calculation.

    ``cutoff`` is the plane-wave cutoff in eV, ``kpoints`` the points per periodic direction
    of a Γ-centred mesh, ``smearing`` the Fermi-Dirac width in eV, ``maxiter`` the SCF
    iteration limit (a structure that needs more is recorded as failed).
    """

    name: str = "standard"
    cutoff: float = 300.0
    kpoints: int = 9
    smearing: float = 0.01
    xc: str = "PBE"
    maxiter: int = 333

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "settings") -> "DFTSettings":
        """Settings from plain data (a JSON file's object), each value checked for its type:
        ``kpoints`` and ``maxiter`` whole numbers, ``cutoff`` and ``smearing`` finite numbers,
        ``name`` and ``xc`` strings; missing ones take the defaults."""
        if not isinstance(d, Mapping):
            raise UserInputError(f"{source}: expected a JSON object of DFT settings, got {type(d).__name__}")
        defaults = asdict(cls())
        unknown = sorted(map(str, set(d) - set(defaults)))
        if unknown:
            raise UserInputError(f"{source}: unknown DFT setting(s) {', '.join(unknown)}; known: {', '.join(defaults)}")
        try:
            settings = cls(**{k: _READ[type(defaults[k])](v, k) for k, v in d.items()})
        except ValueError as err:
            raise UserInputError(f"{source}: bad DFT setting: {err}") from None
        if settings.cutoff <= 0 or settings.kpoints <= 0 or settings.smearing < 0 or settings.maxiter <= 0:
            raise UserInputError(f"{source}: cutoff, kpoints and maxiter must be positive, smearing non-negative")
        if not settings.name or not settings.name.isprintable() or any(c in settings.name for c in "/\\"):
            # The name becomes part of a file name: calibration-<name>.json.
            raise UserInputError(f"{source}: name {settings.name!r} must be a plain word, usable in a file name")
        return settings


#: How each type of setting is read from plain data.
_READ = {str: schema.text, float: schema.number, int: schema.whole}


#: Named presets for ``--settings``. ``standard`` reproduces the published MoS2 gaps after
#: calibration (a 500 eV cutoff moved gaps by <= 7 meV); ``fast`` is ~2x quicker, coarser k-mesh.
PRESETS: dict[str, DFTSettings] = {
    "standard": DFTSettings("standard", cutoff=300.0, kpoints=9),
    "fast": DFTSettings("fast", cutoff=250.0, kpoints=6),
}


def settings_file(spec: Any) -> Path | None:
    """The JSON file ``spec`` names, if it names one (an input of the run), else None."""
    if isinstance(spec, (str, os.PathLike)) and str(spec).endswith(".json"):
        return Path(spec)
    return None


def resolve_settings(spec: str | os.PathLike | DFTSettings | Mapping[str, Any]) -> DFTSettings:
    """A preset name, a JSON file of settings, a dict, or settings themselves."""
    if isinstance(spec, DFTSettings):
        return spec
    if isinstance(spec, Mapping):
        return DFTSettings.from_dict(spec)
    if isinstance(spec, str) and spec in PRESETS:
        return PRESETS[spec]
    path = settings_file(spec)
    if path is not None:
        from matdesinne.io import read_json

        return DFTSettings.from_dict(read_json(path), str(path))
    raise UserInputError(f"settings={spec}: unknown DFT settings; use {' or '.join(PRESETS)}, "
                         "or a .json file of settings")


def prepare(atoms: Atoms, settings: DFTSettings) -> tuple[Atoms, dict]:
    """The structure as GPAW computes it, and the GPAW keyword arguments."""
    from gpaw import PW, FermiDirac

    atoms = atoms.copy()
    k = settings.kpoints
    kwargs: dict[str, Any] = dict(
        mode=PW(settings.cutoff), xc=settings.xc, occupations=FermiDirac(settings.smearing),
        maxiter=settings.maxiter, txt=None, kpts={"size": (k, k, k), "gamma": True},
    )
    if atoms.info.get("layer"):
        from gpaw.external import ConstantElectricField

        cell = atoms.cell.array.copy()
        cell[2] = [0.0, 0.0, cell[2, 2]]  # c along z; Cartesian positions (the sheared layer) stay
        atoms.set_cell(cell, scale_atoms=False)
        atoms.pbc = (True, True, False)
        kwargs["kpts"]["size"] = (k, k, 1)
        kwargs["poissonsolver"] = {"dipolelayer": "xy"}
        kwargs["external"] = ConstantElectricField(float(atoms.info.get("efield", 0.0)), [0, 0, 1])
    return atoms, kwargs


#: Force threshold (eV/Å) and step limit of ``relax_ions``.
RELAX_FMAX = 0.02
RELAX_STEPS = 100


def band_gap(atoms: Atoms, settings: DFTSettings, relax_ions: bool = False) -> tuple[float, float]:
    """Raw Kohn-Sham gap CBM − VBM in eV over the k-mesh (negative when the bands overlap) and
    the total energy per atom in eV. With ``relax_ions``, the ions first relax at fixed cell
    (ASE's BFGS, forces below :data:`RELAX_FMAX`), and both are of the relaxed structure."""
    from gpaw import GPAW

    atoms, kwargs = prepare(atoms, settings)
    atoms.calc = GPAW(**kwargs)
    if relax_ions:
        from ase.optimize import BFGS

        if not BFGS(atoms, logfile=None).run(fmax=RELAX_FMAX, steps=RELAX_STEPS):
            raise RuntimeError(f"ions not relaxed below {RELAX_FMAX} eV/Å within {RELAX_STEPS} steps")
    energy = atoms.get_potential_energy()
    vbm, cbm = atoms.calc.get_homo_lumo()
    return float(cbm - vbm), float(energy) / len(atoms)


def engine_versions() -> dict[str, str]:
    import ase
    import gpaw
    import numpy

    import matdesinne

    return {"matdesinne": matdesinne.__version__, "gpaw": gpaw.__version__, "ase": ase.__version__,
            "numpy": numpy.__version__}


def _not_converged(err: Exception) -> bool:
    """Whether ``err`` is GPAW's SCF non-convergence (False where GPAW cannot be imported)."""
    try:
        from gpaw import KohnShamConvergenceError
    except ImportError:
        return False
    return isinstance(err, KohnShamConvergenceError)


def _reason(err: Exception, settings: DFTSettings) -> str:
    """One line saying why a calculation failed."""
    name = type(err).__name__
    if _not_converged(err):  # GPAW's own message points to a log we do not write
        return f"{name}: SCF not converged within {settings.maxiter} iterations"
    lines = str(err).strip().splitlines()
    return f"{name}: {lines[0]}" if lines else name


def compute_gap(atoms: Atoms, settings: DFTSettings, relax_ions: bool = False) -> DFTResult:
    """Run one calculation (on a worker); the result holds the raw gap and the energy per
    atom in eV, or why it failed. Never raises."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    try:
        with threadpool_limits(1):  # one core per worker; two BLAS threads were ~10x slower
            (gap, energy), status, error = band_gap(atoms, settings, relax_ions), Status.OK, ""
    except Exception as err:  # noqa: BLE001 -- any failure of one structure is recorded, not raised
        gap, energy, status, error = float("nan"), float("nan"), Status.FAILED, _reason(err, settings)
    seconds = time.perf_counter() - start
    try:
        versions = engine_versions()
    except ImportError:
        versions = {}
    return DFTResult(status, gap, error, seconds, socket.gethostname(), versions, energy)
