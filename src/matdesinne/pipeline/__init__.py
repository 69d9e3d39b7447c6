"""The MatDesINNe pipeline: generate -> down-select -> localize -> candidates; and forward prediction."""

from matdesinne.pipeline.design import METHODS, DesignResult, Selection, design, downselect, generate, generator_of, localize
from matdesinne.pipeline.predict import predict_frame

__all__ = ["METHODS", "DesignResult", "Selection", "design", "downselect", "generate", "generator_of", "localize",
           "predict_frame"]
