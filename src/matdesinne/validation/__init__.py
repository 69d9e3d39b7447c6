"""Validation with DFT: structures from candidates, the GPAW engine, a resumable results
store, calibration against published gaps, and the ``validate``/``calibrate`` runs on Dask.

The structure builders need only ASE; everything that computes needs the ``[dft]`` extra
(GPAW, Dask), imported when first used.
"""

from matdesinne.validation.calibration import Calibration, fit_offset
from matdesinne.validation.dft import PRESETS, DFTSettings
from matdesinne.validation.structures import BUILDERS, build_mos2, build_structures, register_builder, write_structures


def __getattr__(name):  # validate/calibrate pull in Dask and tqdm; load them on first use
    if name in ("validate", "calibrate"):
        from matdesinne.validation import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BUILDERS", "PRESETS", "Calibration", "DFTSettings", "build_mos2", "build_structures", "calibrate",
           "fit_offset", "register_builder", "validate", "write_structures"]
