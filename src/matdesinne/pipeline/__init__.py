"""The MatDesINNe pipeline: generate -> down-select -> localize -> candidates."""

from matdesinne.pipeline.design import METHODS, DesignResult, Selection, design, downselect, generate, generator_of, localize

__all__ = ["METHODS", "DesignResult", "Selection", "design", "downselect", "generate", "generator_of", "localize"]
