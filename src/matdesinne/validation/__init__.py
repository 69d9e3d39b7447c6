"""Validation with DFT: structures from candidates, the GPAW engine, a resumable results
store, calibration against published gaps, and the ``validate``/``calibrate`` runs on Dask.

The structure builders need only ASE; everything that computes needs the ``[dft]`` extra
(GPAW, Dask), imported when first used.
"""

from matdesinne.validation.calibration import Calibration, fit_offset, resolve_calibration
from matdesinne.validation.dft import PRESETS, DFTSettings, resolve_settings
from matdesinne.validation.result import DFTResult, Status, StoredResult
from matdesinne.validation.structures import build_structures, write_structures


def __getattr__(name):  # the runs pull in Dask and tqdm; load them on first use
    if name in ("validate", "calibrate", "select_rows"):
        from matdesinne.validation import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PRESETS", "Calibration", "DFTResult", "DFTSettings", "Status", "StoredResult",
           "build_structures", "calibrate", "fit_offset", "resolve_calibration",
           "resolve_settings", "select_rows", "validate", "write_structures"]
