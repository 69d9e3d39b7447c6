"""One DFT result, typed: what the engine returns (:class:`DFTResult`) and what the store keeps
of it with its candidate (:class:`StoredResult`).

``to_dict``/``from_dict`` here are the one spelling of a result as plain data: the names are
the results database's and ``results.csv``'s (``dft_gap_raw``, ``status``, ...), and a missing
number (a failed gap, no target) is ``None`` there and NaN in the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping


class Status(str, Enum):
    """How a calculation ended; the value is what files hold."""

    OK = "ok"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DFTResult:
    """One band-gap calculation: ``gap_raw`` is CBM − VBM in eV (NaN when failed), ``error``
    one line saying why it failed, ``seconds`` its wall time, ``host`` the machine,
    ``versions`` the engine's package versions and ``energy`` the total energy per atom in
    eV (NaN when failed, or stored before energies were kept). ``vbm_k`` and ``cbm_k`` are
    the k-points of the band edges (fractional, in the reciprocal basis; None when failed,
    or stored before edges were kept)."""

    status: Status
    gap_raw: float = math.nan
    error: str = ""
    seconds: float = 0.0
    host: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    energy: float = math.nan
    vbm_k: tuple[float, ...] | None = None
    cbm_k: tuple[float, ...] | None = None

    @property
    def direct(self) -> bool | None:
        """Whether the gap is direct (both edges at one k-point, or at k and -k); None unknown."""
        if self.vbm_k is None or self.cbm_k is None:
            return None
        from matdesinne.validation.edges import same_k

        return same_k(self.vbm_k, self.cbm_k)

    @classmethod
    def failed(cls, reason: str, **rest: Any) -> "DFTResult":
        return cls(Status.FAILED, math.nan, reason, **rest)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "dft_gap_raw": _none(self.gap_raw), "error": self.error,
                "seconds": float(self.seconds), "host": self.host, "versions": dict(self.versions),
                "dft_energy": _none(self.energy), "vbm_k": _k(self.vbm_k), "cbm_k": _k(self.cbm_k)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DFTResult":
        return cls(Status(d["status"]), _nan(d.get("dft_gap_raw")), d.get("error") or "",
                   _nan(d.get("seconds")), d.get("host") or "", dict(d.get("versions") or {}),
                   _nan(d.get("dft_energy")), _k(d.get("vbm_k")), _k(d.get("cbm_k")))


@dataclass(frozen=True)
class StoredResult:
    """A :class:`DFTResult` with its candidate: ``candidate`` is the row of the candidates file,
    ``key`` the design's :func:`~matdesinne.validation.store.design_key`, ``inputs`` its design
    parameters, ``target`` and ``pred`` (the surrogate's prediction) in eV or NaN, and
    ``row_id`` the database row once stored."""

    candidate: int
    key: str
    inputs: Mapping[str, float]
    target: float
    pred: float
    result: DFTResult
    row_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready (no NaN, no NumPy types); ``row_id`` is the store's, not data."""
        return {"candidate": int(self.candidate), "key": self.key,
                "inputs": {k: float(v) for k, v in self.inputs.items()},
                "target": _none(self.target), "pred": _none(self.pred), **self.result.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], row_id: int | None = None) -> "StoredResult":
        return cls(int(d["candidate"]), d["key"], dict(d["inputs"]), _nan(d.get("target")), _nan(d.get("pred")),
                   DFTResult.from_dict(d), row_id)


def _none(value) -> float | None:
    """A number as plain data: a float, or None for a missing one (NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _k(value) -> tuple[float, ...] | None:
    """A k-point as a tuple of floats (a list in JSON), or None."""
    return None if value is None else tuple(float(v) for v in value)


def _nan(value) -> float:
    return math.nan if value is None else float(value)
