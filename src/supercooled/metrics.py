"""Scores of a prediction against the truth: one definition each, used by every module.

All functions ignore entries where either array is not finite (the library stores NaN where
a run did not sample a time), so a score is computed on the same points for every model.
"""

from __future__ import annotations

import numpy as np


def _finite_pairs(truth, pred) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = np.asarray(truth, float), np.asarray(pred, float)
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    ok = np.isfinite(truth) & np.isfinite(pred)
    return truth[ok], pred[ok]


def r2_score(truth, pred) -> float:
    """R^2 = 1 - sum (y - f)^2 / sum (y - <y>)^2 over the entries finite in both.

    NaN with fewer than 2 such entries or when the truth is constant (R^2 undefined).
    """
    y, f = _finite_pairs(truth, pred)
    if y.size < 2:
        return float("nan")
    ss_tot = np.sum((y - y.mean()) ** 2)
    return float(1.0 - np.sum((y - f) ** 2) / ss_tot) if ss_tot > 0 else float("nan")


def rmse(truth, pred) -> float:
    """Root mean square of y - f over the entries finite in both (NaN if there are none)."""
    y, f = _finite_pairs(truth, pred)
    return float(np.sqrt(np.mean((y - f) ** 2))) if y.size else float("nan")
