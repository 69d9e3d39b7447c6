"""Evaluation: how well a model or a set of candidates matches known property values."""

from matdesinne.evaluation.metrics import forward_metrics

__all__ = ["forward_metrics"]
