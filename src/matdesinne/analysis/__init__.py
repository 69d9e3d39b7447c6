"""Analysis: insight from generated candidates (metal-insulator transitions, and more to come)."""

from matdesinne.analysis.mit import Transitions, change_in_words, find_transitions, line_profile

__all__ = ["Transitions", "change_in_words", "find_transitions", "line_profile"]
