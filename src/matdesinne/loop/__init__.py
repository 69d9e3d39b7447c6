"""Closing the loop: new labelled rows (DFT, experiment) flow back into the model, round
after round, until the candidates are right.

- :class:`Campaign`: ask/tell with any source of truth, resumable from a JSON-able state.
- Model updates from new rows ``(x, y_true)``: :func:`fit_residual` (a Gaussian-process
  discrepancy on top of the surrogate, :class:`CorrectedSurrogate`), :func:`refit_surrogate`
  (fine-tuning the ensemble), and :func:`choose_update`, which keeps the one with the lower
  K-fold error on the new rows.
- :func:`select_batch`: which candidates to label, spread out and weighted by uncertainty.
"""

from matdesinne.loop.acquisition import select_batch
from matdesinne.loop.campaign import UPDATES, Campaign
from matdesinne.loop.coords import design_keys, to_unit
from matdesinne.loop.correction import CorrectedSurrogate, ResidualGP, fit_residual
from matdesinne.loop.refit import base_rows, refit_surrogate
from matdesinne.loop.update import METHODS, Update, apply_update, choose_update, held_out_predictions

__all__ = [
    "METHODS", "UPDATES", "Campaign", "CorrectedSurrogate", "ResidualGP", "Update", "apply_update", "base_rows",
    "choose_update", "design_keys", "fit_residual", "held_out_predictions", "refit_surrogate", "select_batch", "to_unit",
]
