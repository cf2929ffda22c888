"""Baselines the MLP must beat, trained and tested on the same state splits.

All baselines map a state's static description to its whole target curve
F_s^aa(k_p, t) (a = A, B) on the library's time grid, and return (n_state, n_time, 2) arrays
with NaN where they cannot predict.

* :class:`RidgeBaseline` -- linear (ridge) regression from the 303 standardised state
  features (S_AA, S_AB, S_BB on the grid, T, rho, interaction label) to F at each time point
  and species separately, fitted on the training states that sampled that time. The penalty
  alpha minimises the exact leave-one-out error over a log grid (one alpha for all outputs):
  with X = U diag(s) V^T, the hat matrix is H = U diag(s^2 / (s^2 + alpha)) U^T and the LOO
  residual of state i is (y_i - yhat_i) / (1 - H_ii).
* :class:`NearestNeighbourBaseline` -- the inverse-distance weighted mean of the curves of
  the k nearest training states in standardised feature space (a "look it up in the
  library" predictor).
* :class:`MCTBaseline` -- mode-coupling theory's prediction of F_s from the same S(k)
  (:func:`supercooled.mct_table.state_fs`, tagged equations, Newtonian dynamics); it has no
  free parameters. Its solutions are kept in an :class:`MCTCurves` cache that the caller
  can share between splits.
"""

from __future__ import annotations

import hashlib

import numpy as np

from supercooled.library import state_labels
from supercooled.mct_table import state_fs
from supercooled.ml.features import Scaler, state_features, target_curves

ALPHAS = 10.0 ** np.arange(-3, 5.01, 0.5)


class RidgeBaseline:
    """Ridge regression per (time, species) with an intercept; alpha by exact LOO error."""

    name = "ridge"

    def fit(self, ds, train_states):
        train_states = np.asarray(train_states, int)
        sub = ds.isel(state=train_states)
        self.scaler = Scaler.fit(state_features(sub))
        x = self.scaler.transform(state_features(sub))
        y = target_curves(sub)  # (n, nt, 2)
        self.alpha = self._select_alpha(x, y)
        nt = y.shape[1]
        self.coef = np.full((nt, 2, x.shape[1]), np.nan)
        self.intercept = np.full((nt, 2), np.nan)
        for j in range(nt):
            for a in range(2):
                ok = np.isfinite(y[:, j, a])
                if ok.sum() >= 2:
                    self.coef[j, a], self.intercept[j, a] = ridge(x[ok], y[ok, j, a], self.alpha)
        return self

    @staticmethod
    def _select_alpha(x, y) -> float:
        errors = np.zeros(len(ALPHAS))
        for j in range(y.shape[1]):
            for a in range(2):
                ok = np.isfinite(y[:, j, a])
                if ok.sum() >= 3:
                    errors += loo_errors(x[ok], y[ok, j, a])
        return float(ALPHAS[int(np.argmin(errors))])

    def predict(self, ds, states):
        x = self.scaler.transform(state_features(ds.isel(state=np.asarray(states, int))))
        return np.einsum("nf,taf->nta", x, self.coef) + self.intercept[None]


def ridge(x, y, alpha):
    """(coef, intercept) of min |y - b - X w|^2 + alpha |w|^2 (intercept not penalised)."""
    xm, ym = x.mean(axis=0), y.mean()
    xc = x - xm
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    w = vt.T @ ((s / (s**2 + alpha)) * (u.T @ (y - ym)))
    return w, ym - xm @ w


def loo_errors(x, y) -> np.ndarray:
    """Sum of squared leave-one-out residuals of centred ridge for every alpha in ALPHAS."""
    xc, yc = x - x.mean(axis=0), y - y.mean()
    n = len(y)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc
    out = np.empty(len(ALPHAS))
    for i, alpha in enumerate(ALPHAS):
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink * uty)
        # the intercept adds 1/n to every diagonal element of the hat matrix
        h = np.einsum("ij,j,ij->i", u, shrink, u) + 1.0 / n
        out[i] = np.sum(((yc - fitted) / np.clip(1.0 - h, 1e-6, None)) ** 2)
    return out


class NearestNeighbourBaseline:
    """Inverse-distance weighted mean curve of the k nearest training states."""

    name = "knn"

    def __init__(self, k: int = 3):
        self.k = int(k)

    def fit(self, ds, train_states):
        sub = ds.isel(state=np.asarray(train_states, int))
        feats = state_features(sub)
        self.scaler = Scaler.fit(feats)
        self.x = self.scaler.transform(feats)
        self.y = target_curves(sub)
        return self

    def predict(self, ds, states):
        x = self.scaler.transform(state_features(ds.isel(state=np.asarray(states, int))))
        out = np.empty((len(x), self.y.shape[1], 2))
        for n, xi in enumerate(x):
            d = np.sqrt(((self.x - xi) ** 2).sum(axis=1))
            near = np.argsort(d)[: self.k]
            w = 1.0 / np.maximum(d[near], 1e-9)
            curves = self.y[near]  # (k, nt, 2)
            wk = np.where(np.isfinite(curves), w[:, None, None], 0.0)
            total = wk.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[n] = np.where(total > 0, (wk * np.nan_to_num(curves)).sum(axis=0) / total,
                                  np.nan)
        return out


class MCTCurves:
    """MCT curves solved so far, so that a state tested in several splits is solved once.

    ``function(ds, i, times)`` gives the (n_time, 2) F_s of state ``i`` (default
    :func:`supercooled.mct_table.state_fs`, a few seconds a state). Curves are keyed by the
    state's label and a hash of its S(k), so that the same cache serves any Dataset holding
    the state.
    """

    def __init__(self, function=state_fs):
        self.function = function
        self._curves: dict[tuple[str, str], np.ndarray] = {}

    def curve(self, ds, i: int) -> np.ndarray:
        """(n_time, 2) MCT F_s^AA, F_s^BB of state ``i`` on ``ds.time`` (solved once)."""
        key = self._key(ds, int(i))
        if key not in self._curves:
            self._curves[key] = np.asarray(self.function(ds, int(i), ds["time"].values), float)
        return self._curves[key]

    @staticmethod
    def _key(ds, i: int) -> tuple[str, str]:
        s = np.ascontiguousarray(ds["S"].isel(state=i).values)
        return state_labels(ds, [i])[0], hashlib.sha1(s.tobytes()).hexdigest()

    def __len__(self) -> int:
        return len(self._curves)

    def table(self, ds):
        """The solved curves of the states of ``ds`` as a long DataFrame (state, t, F_AA,
        F_BB), or None if none is solved."""
        import pandas as pd

        labels = set(state_labels(ds))
        frames = [pd.DataFrame({"state": label, "t": ds["time"].values,
                                "F_AA": curve[:, 0], "F_BB": curve[:, 1]})
                  for (label, _), curve in self._curves.items() if label in labels]
        return pd.concat(frames, ignore_index=True) if frames else None


class MCTBaseline:
    """MCT's F_s^aa(k_p, t) from the state's own S(k), rho and T (no fitted parameters).

    Tagged (self) equations and Newtonian dynamics, as the simulations are Newtonian, on the
    library's time grid (:func:`supercooled.mct_table.state_fs`). A state is solved only when
    it is predicted, and kept in ``curves`` (an :class:`MCTCurves`, a fresh one unless given).
    """

    name = "mct"

    def __init__(self, curves: MCTCurves | None = None):
        self.curves = MCTCurves() if curves is None else curves

    def fit(self, ds, train_states):  # MCT has no free parameters
        return self

    def predict(self, ds, states):
        return np.stack([self.curves.curve(ds, int(i)) for i in np.asarray(states, int)])


def fit_all(ds, train_states, mct_curves: MCTCurves | None = None) -> dict:
    """The baselines fitted on the training states: {name: fitted}; MCT only when an
    :class:`MCTCurves` cache is given (it holds the curves MCT solves)."""
    fitted = {"ridge": RidgeBaseline().fit(ds, train_states),
              "knn": NearestNeighbourBaseline().fit(ds, train_states)}
    if mct_curves is not None:
        fitted["mct"] = MCTBaseline(mct_curves).fit(ds, train_states)
    return fitted
