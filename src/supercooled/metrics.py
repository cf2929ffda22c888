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


def r2_per_species(truth, pred) -> np.ndarray:
    """R^2 of each species on its own scale: arrays (..., n_species), species on the last axis.

    R^2_a = 1 - sum_t (y_a - f_a)^2 / sum_t (y_a - <y_a>)^2, with <y_a> the mean of species
    a's own truth, so that the offset between species is not counted as explained variance
    (the pooled :func:`r2_score` of the paper counts it). Invariant under multiplying truth
    and prediction of a species by one constant, so R^2 of phi_s^a equals R^2 of
    F_s^aa = phi_s^a S_aa(k_p).
    """
    truth, pred = np.asarray(truth, float), np.asarray(pred, float)
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    return np.array([r2_score(truth[..., a], pred[..., a]) for a in range(truth.shape[-1])])


def log_ratio_factor(truth, pred) -> np.ndarray:
    """The error of a positive quantity (tau_alpha) as a factor, exp|ln(pred / truth)| >= 1.

    1 is exact, 2 means off by a factor of two either way. NaN where either value is not
    finite and positive (tau_alpha undefined: the curve never crossed 1/e).
    """
    truth, pred = np.asarray(truth, float), np.asarray(pred, float)
    ok = np.isfinite(truth) & np.isfinite(pred) & (truth > 0) & (pred > 0)
    out = np.full(np.broadcast(truth, pred).shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.exp(np.abs(np.log(pred / truth)), out=out, where=ok)
    return out if out.ndim else float(out)


def interval_coverage(truth, lower, upper) -> float:
    """Fraction of entries with lower <= truth <= upper, over the entries finite in all three.

    The empirical coverage of an interval; a calibrated 90 % interval covers about 0.9 of new
    data. NaN when no entry is finite.
    """
    y, lo, hi = (np.asarray(a, float) for a in (truth, lower, upper))
    if not (y.shape == lo.shape == hi.shape):
        raise ValueError(f"shapes differ: truth {y.shape}, lower {lo.shape}, upper {hi.shape}")
    ok = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return float("nan")
    return float(np.mean((lo[ok] <= y[ok]) & (y[ok] <= hi[ok])))


def conformal_quantile(scores, level: float) -> float:
    """The split-conformal quantile of non-conformity ``scores`` for coverage ``level``.

    With n finite scores sorted s_(1) <= ... <= s_(n), the quantile is s_(m) with
    m = ceil((n + 1) level): for a new score exchangeable with the n, P(score <= s_(m)) >=
    level (Vovk et al. 2005; Lei et al. 2018). inf when m > n (too few scores for the level).
    """
    s = np.sort(np.asarray(scores, float)[np.isfinite(scores)])
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    m = int(np.ceil((s.size + 1) * level))
    return float(s[m - 1]) if 1 <= m <= s.size else float("inf")
