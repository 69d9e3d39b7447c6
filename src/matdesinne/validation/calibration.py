"""Calibrating raw DFT gaps against a dataset's published gaps: ``gap = max(0, raw − offset)``.

Raw PBE eigenvalue gaps (CBM − VBM on the k-mesh) of MoS2 sit an almost constant amount
above the published gaps, which look like gaps read from a smeared density of states. The
offset is not a constant of this code: :func:`fit_offset` fits it on dataset rows computed
with the same settings, and a :class:`Calibration` keeps it with its residuals and its
error on held-out rows, so anyone can see how well it transfers.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from matdesinne.data import schema
from matdesinne.data.datasets import check_seed
from matdesinne.errors import UserInputError
from matdesinne.validation.dft import DFTSettings

CALIBRATION_FORMAT = "matdesinne-dft-calibration"


def corrected(raw, offset: float = 0.0) -> np.ndarray:
    """``max(0, raw − offset)`` in eV; NaN (a failed calculation) stays NaN."""
    return np.maximum(0.0, np.asarray(raw, dtype=np.float64) - offset)


def offset_loss(offset: float, raw: np.ndarray, published: np.ndarray) -> float:
    """Mean absolute error of ``max(0, raw − offset)`` against ``published`` (eV)."""
    return float(np.mean(np.abs(corrected(raw, offset) - published)))


def fit_offset(raw: np.ndarray, published: np.ndarray) -> float:
    """The offset (eV) minimising the MAE of ``max(0, raw − offset)`` against ``published``.

    The loss is piecewise linear in the offset with kinks at ``raw − published`` and
    ``raw``, so its minimum lies on one of them: evaluating them all is exact. Ties go to
    the smallest offset.
    """
    raw, published = np.asarray(raw, float), np.asarray(published, float)
    if raw.shape != published.shape or raw.size == 0:
        raise UserInputError("calibration needs at least one row with both a raw and a published gap")
    kinks = np.unique(np.concatenate([raw - published, raw]))
    losses = np.array([offset_loss(o, raw, published) for o in kinks])
    return float(kinks[np.flatnonzero(losses <= losses.min() + 1e-12)[0]])


def agreement(pred: np.ndarray, published: np.ndarray) -> float:
    """Fraction of rows on the same side of the metal/insulator line (gap > 0 or not)."""
    return float(np.mean((np.asarray(pred) > 0) == (np.asarray(published) > 0)))


def rows_report(rows: np.ndarray, raw: np.ndarray, published: np.ndarray, offset: float) -> dict:
    """Per-row published/raw/calibrated gaps and residuals, with their MAE and agreement."""
    calibrated = corrected(raw, offset)
    return {
        "rows": [int(r) for r in rows], "published": published.tolist(), "raw": raw.tolist(),
        "calibrated": calibrated.tolist(), "residuals": (calibrated - published).tolist(),
        "mae": float(np.mean(np.abs(calibrated - published))) if len(rows) else None,
        "zero_nonzero_agreement": agreement(calibrated, published) if len(rows) else None,
    }


@dataclass
class Calibration:
    """``gap = max(0, raw − offset_)`` for one design space at one set of DFT settings.

    ``fit`` and ``holdout`` are :func:`rows_report` dicts (dataset rows used to fit the
    offset, and other rows that judge it); ``failed`` lists rows whose DFT failed.
    """

    offset: float
    space: str
    settings: dict
    fit: dict
    holdout: dict
    seed: int = 0
    failed: list = field(default_factory=list)
    source: str = ""  # where it was loaded from, for messages

    def apply(self, raw) -> np.ndarray:
        return corrected(raw, self.offset)

    def check_applies(self, space, settings) -> None:
        """Refuse to correct gaps of another design space or computed at other settings."""
        where = self.source or "the calibration"
        if self.space != space.name:
            raise UserInputError(f"{where} was fitted for design space {self.space!r}, not {space.name!r}")
        if self.settings != settings.to_dict():
            raise UserInputError(f"{where} was fitted at DFT settings {self.settings.get('name')!r} "
                                 f"({self.settings}), not {settings.name!r}; calibrate at these settings first")

    def summary(self) -> dict:
        return {"offset": self.offset, "source": self.source, "fit_rows": len(self.fit["rows"]),
                "fit_mae": self.fit["mae"], "holdout_rows": len(self.holdout["rows"]),
                "holdout_mae": self.holdout["mae"], "holdout_agreement": self.holdout["zero_nonzero_agreement"]}

    def describe(self) -> str:
        s = self.summary()
        held = (f"; on {s['holdout_rows']} held-out rows MAE {s['holdout_mae']:.3f} eV, "
                f"{100 * s['holdout_agreement']:.0f}% zero/nonzero agreement") if s["holdout_rows"] else ""
        return (f"gap = max(0, raw - {self.offset:.3f} eV) from {self.source or 'memory'} "
                f"(fitted on {s['fit_rows']} dataset rows, MAE {s['fit_mae']:.3f} eV{held})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("source")
        return {"format": CALIBRATION_FORMAT, **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> "Calibration":
        """A calibration from plain data (a file's JSON object), every field checked for its
        type: a wrong one is a one-line error naming the file and the field."""
        where = source or "calibration"
        if not isinstance(d, Mapping) or d.get("format") != CALIBRATION_FORMAT:
            raise UserInputError(f"{where}: not a matdesinne DFT calibration file")
        try:
            d = schema.fields(d, "calibration", ("format", "offset", "space", "settings", "fit", "holdout"),
                              ("seed", "failed"))
            values = dict(offset=schema.number(d["offset"], "offset"), space=schema.text(d["space"], "space"),
                          fit=_read_report(d["fit"], "fit"), holdout=_read_report(d["holdout"], "holdout"),
                          seed=check_seed(d.get("seed", 0)), failed=_read_list(d.get("failed", []), "failed"))
            if not values["fit"]["rows"]:
                raise ValueError("fit.rows is empty: an offset is fitted on at least one row")
        except ValueError as err:
            raise UserInputError(f"{where}: damaged calibration file ({err})") from None
        settings = DFTSettings.from_dict(d["settings"], f"{where}: settings").to_dict()
        return cls(**values, settings=settings, source=source)

    def save(self, path: str | os.PathLike) -> None:
        from matdesinne.io import write_json

        write_json(self.to_dict(), path)
        self.source = str(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        from matdesinne.io import read_json

        return cls.from_dict(read_json(path), str(path))


def _read_report(value: Any, what: str) -> dict:
    """A :func:`rows_report` dict read back from a file: whole row numbers, one finite gap per
    row in each list, and the MAE and agreement as numbers wherever there are rows."""
    lists = ("published", "raw", "calibrated", "residuals")
    d = schema.fields(value, what, ("rows", *lists, "mae", "zero_nonzero_agreement"))
    rows = [schema.whole(r, f"{what}.rows") for r in _read_list(d["rows"], f"{what}.rows")]
    report: dict[str, Any] = {"rows": rows}
    report.update({k: schema.numbers(d[k], f"{what}.{k}", len(rows)).tolist() for k in lists})
    report.update({k: schema.number(d[k], f"{what}.{k}") if rows else None for k in ("mae", "zero_nonzero_agreement")})
    return report


def _read_list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, got {type(value).__name__}")
    return value


def shipped_calibration(models_dir: str | os.PathLike, settings_name: str) -> Path:
    """Where a models folder keeps the calibration of its design space at named settings."""
    return Path(models_dir) / f"calibration-{settings_name}.json"


def resolve_calibration(spec: str | os.PathLike | None, models_dir: str | os.PathLike,
                        settings: DFTSettings) -> Calibration | None:
    """The calibration a run uses: for ``spec=None`` the models folder's
    ``calibration-<settings name>.json`` if it has one, else none; for ``"none"``, none (raw
    gaps clipped at 0); else the calibration file ``spec``."""
    if spec is None:
        shipped = shipped_calibration(models_dir, settings.name)
        return Calibration.load(shipped) if shipped.is_file() else None
    if isinstance(spec, str) and spec == "none":
        return None
    return Calibration.load(spec)
