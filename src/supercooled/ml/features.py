"""What the MLP sees and what it must predict: feature rows, eq. 1 targets, standardisation.

Features (304 per row, exactly as Ciarella et al. 2023): the three partial structure factors
S_AA, S_AB, S_BB on the 100-point grid :data:`supercooled.grids.K_GRID` (300 values), the
temperature T, the density rho, an interaction label (LJ = 0, WCA = 1) and log10 t. One row
per state and time point; varying t reconstructs the curve. Every feature is standardised,
z = (x - mean) / max(std, MIN_STD), with the mean and standard deviation of the *training*
rows only (see :class:`Scaler`); the statistics are stored with the model so that a
prediction sees the same transformation.

The physics architecture (:mod:`supercooled.ml.physics`) uses one row per state instead
(:class:`StateDesign`): the 302 state features without T, and the phi_s^a curves
(:func:`phi_curves`) as targets.

Targets (the paper's eq. 1, the conventions page (book/conventions.md)):
F_s^AA(k_p, t) = phi_s^A(k_p, t) S_AA(k_p) and F_s^BB(k_p, t) = phi_s^B(k_p, t) S_BB(k_p),
with S_aa(k_p) from :func:`supercooled.library.structure_at_peak`. :func:`target_curves` is
the one place they are built. Times a run did not sample are NaN in the library; they are
masked out of the loss (never zero-filled).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID
from supercooled.library import load_library, state_labels, target_curves
from supercooled.systems import INTERACTIONS, normalize_interaction

N_FEATURES = 3 * len(K_GRID) + 4
FEATURE_NAMES = (
    [f"S_AA[{k:.1f}]" for k in K_GRID]
    + [f"S_AB[{k:.1f}]" for k in K_GRID]
    + [f"S_BB[{k:.1f}]" for k in K_GRID]
    + ["T", "rho", "interaction", "log10_t"]
)
TARGET_NAMES = ("F_AA", "F_BB")
INTERACTION_LABEL = {name: float(i) for i, name in enumerate(INTERACTIONS)}
#: Smallest standard deviation used to standardise a feature (in the feature's units).
MIN_STD = 0.02


def load_states(library):
    """The library as an xarray Dataset with crystallised states removed.

    ``library`` is a Dataset (the library schema of the conventions page
    (book/conventions.md), with its ``label`` coordinate) or a folder that
    :func:`supercooled.library.load_library` reads. Crystallised runs are not supercooled
    liquids, so they are dropped (the paper removes them too); aged glasses are kept.
    """
    if isinstance(library, xr.Dataset):
        ds = library
    else:
        path = Path(library)
        if not path.exists():
            raise SupercooledError(f"library folder {path} does not exist")
        ds = load_library(path)
    if "label" not in ds.coords:
        raise SupercooledError("the library Dataset has no 'label' coordinate (the state names):"
                               " load it with supercooled.library.load_library")
    if "crystallized" in ds.coords or "crystallized" in ds:
        keep = np.asarray(ds["crystallized"].values) == 0
        ds = ds.isel(state=np.flatnonzero(keep))
    if ds.sizes.get("state", 0) < 2:
        raise SupercooledError(f"the library holds {ds.sizes.get('state', 0)} usable states; need >= 2")
    return ds


def interaction_labels(ds) -> np.ndarray:
    """0 for LJ, 1 for WCA, per state."""
    return np.array([INTERACTION_LABEL[normalize_interaction(str(v))]
                     for v in np.atleast_1d(ds["interaction"].values)])


def state_features(ds) -> np.ndarray:
    """(n_state, 303): S_AA, S_AB, S_BB on the k grid, then T, rho and the interaction label."""
    s = ds["S"].transpose("state", "pair", "k").sel(pair=["AA", "AB", "BB"]).values
    n = s.shape[0]
    return np.concatenate(
        [s.reshape(n, -1),
         np.asarray(ds["temperature"].values, float)[:, None],
         np.asarray(ds["density"].values, float)[:, None],
         interaction_labels(ds)[:, None]], axis=1)


def phi_curves(ds) -> np.ndarray:
    """(n_state, n_time, 2): phi_s^A, phi_s^B of the library (NaN where unsampled)."""
    return ds["phi_s"].transpose("state", "time", "species").sel(species=["A", "B"]).values


def peak_heights(state_feats) -> np.ndarray:
    """(n_state, 2): S_AA(k_p), S_BB(k_p) from the S on the k grid of the 303 state features,
    with k_p = :func:`supercooled.structure.peak_position` of S_AA (as the library defines it)
    and linear interpolation in k (as :func:`supercooled.library.structure_at_peak`)."""
    from supercooled.structure import peak_position

    f = np.atleast_2d(state_feats)
    nk = len(K_GRID)
    out = np.empty((len(f), 2))
    for n, row in enumerate(f):
        k_p = peak_position(row[:nk])
        out[n] = np.interp(k_p, K_GRID, row[:nk]), np.interp(k_p, K_GRID, row[2 * nk:3 * nk])
    return out


def rows_for(state_feats: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Feature rows (n_state * n_time, 304): each state's 303 features with log10 t appended."""
    n, nt = state_feats.shape[0], len(times)
    rep = np.repeat(state_feats, nt, axis=0)
    logt = np.tile(np.log10(times), n)[:, None]
    return np.concatenate([rep, logt], axis=1)


@dataclass
class Design:
    """Rows of one set of states: features x, targets y (NaN where unsampled), mask, state ids."""

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    state: np.ndarray


def design(ds, states=None) -> Design:
    """Rows of the given state indices (all if None); rows with no sampled target are dropped."""
    states = np.arange(ds.sizes["state"]) if states is None else np.asarray(states, int)
    sub = ds.isel(state=states)
    times = np.asarray(ds["time"].values, float)
    x = rows_for(state_features(sub), times)
    y = target_curves(sub).reshape(-1, 2)
    mask = np.isfinite(y)
    keep = mask.any(axis=1)
    ids = np.repeat(states, len(times))
    return Design(x[keep], y[keep], mask[keep], ids[keep])


@dataclass
class StateDesign:
    """One row per state for the physics architecture: inputs x (state features without T,
    :data:`supercooled.ml.physics.INPUT_COLUMNS`), interpolation ``weights`` of each state's
    reduced times onto the network's grid, targets phi_s ``y`` (n, n_time, 2), mask, state ids."""

    x: np.ndarray
    weights: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    state: np.ndarray


def state_design(ds, states=None) -> StateDesign:
    """The :class:`StateDesign` of the given state indices (all if None)."""
    from supercooled.ml import physics

    states = np.arange(ds.sizes["state"]) if states is None else np.asarray(states, int)
    sub = ds.isel(state=states)
    feats = state_features(sub)
    y = phi_curves(sub)
    return StateDesign(feats[:, physics.INPUT_COLUMNS],
                       physics.state_weights(feats, ds["time"].values), y, np.isfinite(y),
                       states)


@dataclass
class Scaler:
    """Standardisation z = (x - mean) / max(std, MIN_STD) with training statistics."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, min_std: float = MIN_STD) -> Scaler:
        mean = x.mean(axis=0)
        # S(k) at large k hardly varies between states (std ~ 1e-3, the size of its statistical
        # noise): dividing by that would turn noise, or a user's extrapolated tail, into
        # z-scores of several units. The floor (0.02, a typical error of a measured S(k))
        # keeps such features quiet; constant features (one interaction only) become 0.
        std = np.maximum(x.std(axis=0), min_std)
        return cls(mean, std)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def library_hash(ds) -> str:
    """sha256 of the numbers the model is trained on (S, phi_s, k_p, T, rho, interaction)."""
    h = hashlib.sha256()
    for arr in (state_features(ds), np.nan_to_num(target_curves(ds), nan=-1.0)):
        h.update(np.ascontiguousarray(np.round(arr, 10)).tobytes())
    return h.hexdigest()


def training_ranges(ds, train_labels) -> dict:
    """Ranges of the training states (given by label): sampled times, T, rho, interactions and
    the S(k) envelope; stored with a model so that :mod:`supercooled.ml.predict` can flag an
    extrapolation."""
    labels = state_labels(ds)
    idx = np.array([labels.index(lab) for lab in train_labels])
    feats = state_features(ds.isel(state=idx))
    nk = len(K_GRID)
    sampled = np.isfinite(target_curves(ds.isel(state=idx))).any(axis=(0, 2))
    times = np.asarray(ds["time"].values, float)[sampled]
    return {
        "time": [float(times.min()), float(times.max())],
        "T": [float(feats[:, 3 * nk].min()), float(feats[:, 3 * nk].max())],
        "rho": [float(feats[:, 3 * nk + 1].min()), float(feats[:, 3 * nk + 1].max())],
        "interactions": sorted({normalize_interaction(str(ds["interaction"].values[i]))
                                for i in idx}),
        "S_min": feats[:, :3 * nk].min(axis=0).tolist(),
        "S_max": feats[:, :3 * nk].max(axis=0).tolist(),
    }
