"""Validation: atomic structures from candidates (DFT validation builds on these)."""

from matdesinne.validation.structures import BUILDERS, build_mos2, build_structures, register_builder, write_structures

__all__ = ["BUILDERS", "build_mos2", "build_structures", "register_builder", "write_structures"]
