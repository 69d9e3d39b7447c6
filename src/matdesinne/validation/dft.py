"""The DFT engine: a Kohn-Sham band gap from an ASE ``Atoms`` with GPAW (PAW, plane waves).

One narrow function, :func:`compute_gap`, runs on a Dask worker: it takes a structure and
a :class:`DFTSettings` dict and returns a plain result dict, never raising, so that one
failed structure never stops the others. GPAW is imported only there, so the rest of
matdesinne works without the optional ``[dft]`` extra.

Layers (``atoms.info["layer"]``, set by e.g. the MoS2 builder) are computed as slabs: the
c vector is replaced by its z projection, z is not periodic, the k-mesh is k×k×1, and a
dipole-layer correction lets a perpendicular field ``atoms.info["efield"]`` (V/Å) be applied.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ase import Atoms

from matdesinne.errors import UserInputError


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
        defaults = asdict(cls())
        unknown = sorted(set(d) - set(defaults))
        if unknown:
            raise UserInputError(f"{source}: unknown DFT setting(s) {', '.join(unknown)}; known: {', '.join(defaults)}")
        try:
            settings = cls(**{k: type(defaults[k])(v) for k, v in d.items()})
        except (TypeError, ValueError) as err:
            raise UserInputError(f"{source}: bad DFT setting ({err})") from None
        if settings.cutoff <= 0 or settings.kpoints <= 0 or settings.smearing < 0 or settings.maxiter <= 0:
            raise UserInputError(f"{source}: cutoff, kpoints and maxiter must be positive, smearing non-negative")
        return settings


#: Named presets for ``--settings``. ``standard`` reproduces the published MoS2 gaps after
#: calibration (a 500 eV cutoff moved gaps by <= 7 meV); ``fast`` is ~2x quicker, coarser k-mesh.
PRESETS: dict[str, DFTSettings] = {
    "standard": DFTSettings("standard", cutoff=300.0, kpoints=9),
    "fast": DFTSettings("fast", cutoff=250.0, kpoints=6),
}


def resolve_settings(spec: str | DFTSettings | Mapping[str, Any]) -> DFTSettings:
    """A preset name, a JSON file of settings, a dict, or settings themselves."""
    if isinstance(spec, DFTSettings):
        return spec
    if isinstance(spec, Mapping):
        return DFTSettings.from_dict(spec)
    if spec in PRESETS:
        return PRESETS[spec]
    if str(spec).endswith(".json"):
        from matdesinne.io import read_json

        return DFTSettings.from_dict(read_json(spec), str(spec))
    raise UserInputError(f"unknown DFT settings {spec!r}: use {' or '.join(PRESETS)}, or a .json file of settings")


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


def band_gap(atoms: Atoms, settings: DFTSettings) -> float:
    """Raw Kohn-Sham gap CBM − VBM in eV over the k-mesh; negative when the bands overlap."""
    from gpaw import GPAW

    atoms, kwargs = prepare(atoms, settings)
    atoms.calc = GPAW(**kwargs)
    atoms.get_potential_energy()
    vbm, cbm = atoms.calc.get_homo_lumo()
    return float(cbm - vbm)


def engine_versions() -> dict[str, str]:
    import ase
    import gpaw
    import numpy

    import matdesinne

    return {"matdesinne": matdesinne.__version__, "gpaw": gpaw.__version__, "ase": ase.__version__,
            "numpy": numpy.__version__}


def _reason(err: Exception, settings: Mapping[str, Any]) -> str:
    """One line saying why a calculation failed."""
    name = type(err).__name__
    if name == "KohnShamConvergenceError":  # GPAW's own message points to a log we do not write
        return f"{name}: SCF not converged within {settings.get('maxiter')} iterations"
    lines = str(err).strip().splitlines()
    return f"{name}: {lines[0]}" if lines else name


def compute_gap(atoms: Atoms, settings: Mapping[str, Any]) -> dict:
    """Run one calculation (on a worker). Returns ``status`` ("ok"/"failed"), ``dft_gap_raw``
    (eV, NaN if failed), ``error``, ``seconds``, ``host`` and ``versions``; never raises."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    result = {"status": "ok", "dft_gap_raw": math.nan, "error": "", "host": socket.gethostname()}
    try:
        with threadpool_limits(1):  # one core per worker; two BLAS threads were ~10x slower
            result["dft_gap_raw"] = band_gap(atoms, DFTSettings.from_dict(settings))
    except Exception as err:  # noqa: BLE001 -- any failure of one structure is recorded, not raised
        result.update(status="failed", error=_reason(err, settings))
    result["seconds"] = time.perf_counter() - start
    try:
        result["versions"] = engine_versions()
    except ImportError:
        result["versions"] = {}
    return result
