"""F_s(k_p, t) of a user's state from its structure factor, with the trained ensemble.

A user's S(k) (a CSV file or DataFrame with columns k, S_AA, S_AB, S_BB, normalised by the
total N as on the conventions page (book/conventions.md): S_aa(k -> inf) = x_a) is read and
checked (:func:`read_structure_factor`), put on the model's k grid
(:func:`structure_on_grid`), checked for a per-species normalisation
(:func:`normalisation_warnings`) and against the range of the training states
(:func:`out_of_range`) and scored for how far it lies from the training states
(:func:`supercooled.ml.calibration.ood_score`); :func:`predict` then returns phi_s and F_s
with calibrated bounds and tau_alpha with its interval, from the MLP ensemble (``method="mlp"``,
the default) or the memory predictor (``method="memory"``,
:mod:`supercooled.ml.memory_predictor`), with the same checks, columns and warnings.
"""

from __future__ import annotations

import math
import numbers
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from supercooled.dynamics import tau_alpha
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import structure_at_peak
from supercooled.ml.ensemble import Ensemble
from supercooled.ml.features import INTERACTION_LABEL
from supercooled.structure import peak_position
from supercooled.systems import FRACTION_A, PAIRS, normalize_interaction

REQUIRED_COLUMNS = ("k", "S_AA", "S_AB", "S_BB")
PAIR_COLUMNS = tuple(f"S_{pair}" for pair in PAIRS)
#: Smallest k the user's S(k) must reach (the MLP needs the main peak and the first
#: oscillations; beyond it S relaxes to its large-k limit).
MIN_K_MAX = 20.0
#: Width of the large-k window whose mean S_aa is compared with x_a (one period 2 pi / sigma_AA of
#: the oscillations of S(k), so that they average out), and the largest deviation accepted.
#: Over the library's states the mean over any such window ending at k >= 20 lies within 0.04
#: of x_a; a per-species normalisation (S_aa -> 1) is off by 0.2 (AA) and 0.8 (BB).
LARGE_K_WINDOW = 2.0 * math.pi
NORMALISATION_TOLERANCE = 0.1
#: The main peak must be resolved: at least MIN_PEAK_POINTS k points of the user's grid within
#: PEAK_HALF_WIDTH of the maximum of S_AA (the peak's half width at half maximum is about
#: 0.6 sigma_AA^-1; the library's grid, dk = 0.4, has 6 points there).
MIN_PEAK_POINTS = 5
PEAK_HALF_WIDTH = 1.2
#: Fewest rows (k values) a structure factor may have: a grid to k >= 20 that resolves the
#: main peak has many more; fewer is a truncated file or a few hand-typed values.
MIN_ROWS = 10


def read_structure_factor(source):
    """A user's S(k) as a DataFrame with columns k, S_AA, S_AB, S_BB (path or DataFrame)."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source)
        if not path.exists():
            raise SupercooledError(f"structure-factor file {path} does not exist")
        try:
            frame = pd.read_csv(path, comment="#", skipinitialspace=True)
        except Exception as error:  # pandas raises several parser errors; all are bad input
            raise SupercooledError(f"cannot read {path} as CSV: {error}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in REQUIRED_COLUMNS:
        if col not in frame.columns:
            raise SupercooledError(
                f"structure factor is missing column {col!r} (need {', '.join(REQUIRED_COLUMNS)};"
                f" found {', '.join(map(str, frame.columns))})")
    try:
        frame = frame[list(REQUIRED_COLUMNS)].astype(float)
    except (TypeError, ValueError):
        raise SupercooledError("structure factor has non-numeric values") from None
    return frame


def structure_on_grid(frame) -> tuple[np.ndarray, dict]:
    """Interpolate a user's S(k) onto the model's k grid; return ((3, 100) array, flags).

    Checks: at least :data:`MIN_ROWS` rows, no NaN, k strictly increasing and positive, S_AA
    and S_BB non-negative (S_AB may be negative), the grid reaches at least k = 20. Inside
    the user's range S is linearly interpolated. Below the user's first k, S is held at its first value, as
    :mod:`supercooled.structure` does below the box's smallest wave vector (S(k) is even in k
    and nearly flat there in a dense liquid).
    Above the user's last k, S relaxes to its large-k limit (S_AA -> x_A, S_BB -> x_B,
    S_AB -> 0, the conventions page (book/conventions.md)) as
    S_inf + (S(k_last) - S_inf) exp(-(k - k_last)), because the oscillations of S(k) die out
    there. Flags list the extrapolated grid points.
    """
    values = frame.to_numpy(float)
    if len(values) < MIN_ROWS:
        raise SupercooledError(
            f"structure factor has {len(values)} row(s) of data; need S(k) at at least "
            f"{MIN_ROWS} k values, on a grid up to k >= {MIN_K_MAX:g} that resolves the main peak")
    if not np.isfinite(values).all():
        bad = [c for c in frame.columns if not np.isfinite(frame[c].to_numpy(float)).all()]
        raise SupercooledError(f"structure factor has NaN or infinite values in {', '.join(bad)}")
    k = values[:, 0]
    if len(k) < 2 or np.any(np.diff(k) <= 0) or k[0] < 0:
        raise SupercooledError("column k must be non-negative and strictly increasing")
    for j, col in ((1, "S_AA"), (3, "S_BB")):
        if np.any(values[:, j] < 0):
            raise SupercooledError(f"{col} has negative values; a partial S_aa(k) is >= 0")
    if k[-1] < MIN_K_MAX:
        raise SupercooledError(
            f"structure factor grid ends at k = {k[-1]:g}; the model needs it up to at least "
            f"k = {MIN_K_MAX:g} sigma_AA^-1")
    if not np.any(values[:, 1:] != 0):
        raise SupercooledError("structure factor is all zero: not a liquid's S(k)")
    search = (k >= 2.0) & (k <= MIN_K_MAX)
    if search.sum() < 3 or values[search, 1].max() <= 0:
        raise SupercooledError("S_AA has no main peak between k = 2 and 20 sigma_AA^-1")
    k_max = k[search][np.argmax(values[search, 1])]
    n_peak = int(np.sum(np.abs(k - k_max) <= PEAK_HALF_WIDTH))
    if n_peak < MIN_PEAK_POINTS:
        raise SupercooledError(
            f"too few k points to cover the main peak of S_AA: {n_peak} within "
            f"{PEAK_HALF_WIDTH:g} of k = {k_max:.3g}, need >= {MIN_PEAK_POINTS}")
    limits = (FRACTION_A, 0.0, 1.0 - FRACTION_A)
    out = np.empty((3, len(K_GRID)))
    # a grid point within rounding of the file's last or first k (a file written with one
    # decimal ends at 39.8, the grid at 39.800000000000004) is inside the file's range
    tolerance = 1e-6 * max(1.0, float(k[-1]))
    above = K_GRID > k[-1] + tolerance
    below = K_GRID < k[0] - tolerance
    for j in range(3):
        s = values[:, j + 1]
        inside = np.interp(K_GRID, k, s)  # np.interp holds end values outside
        decay = np.exp(-(K_GRID[above] - k[-1]))
        inside[above] = limits[j] + (s[-1] - limits[j]) * decay
        out[j] = inside
    flags = {"extrapolated_below": K_GRID[below].tolist(),
             "extrapolated_above": K_GRID[above].tolist()}
    return out, flags


def normalisation_warnings(frame) -> list[str]:
    """Messages for S_AA, S_BB whose large-k mean is far from x_a (a wrong normalisation).

    The package's S_ab(k) are normalised by the total number of particles N (the conventions
    page (book/conventions.md)), so S_aa(k -> inf) = x_a (x_A = 0.8, x_B = 0.2). A structure
    factor normalised per species (by N_a, S_aa -> 1) is silently wrong input for the MLP: it
    is flagged when the mean of S_aa over the last :data:`LARGE_K_WINDOW` of the user's grid
    (trapezoidal, in k) differs from x_a by more than :data:`NORMALISATION_TOLERANCE`.
    """
    k = frame["k"].to_numpy(float)
    window = k >= k[-1] - LARGE_K_WINDOW
    if window.sum() < 2:  # one point in the window: use the last two
        window[-2:] = True
    kw = k[window]
    msgs = []
    for col, expected, name in (("S_AA", FRACTION_A, "x_A"), ("S_BB", 1.0 - FRACTION_A, "x_B")):
        s = frame[col].to_numpy(float)[window]
        mean = float(np.sum(0.5 * (s[1:] + s[:-1]) * np.diff(kw)) / (kw[-1] - kw[0]))
        if abs(mean - expected) > NORMALISATION_TOLERANCE:
            msgs.append(
                f"{col} averages {mean:.2f} over k = {kw[0]:.3g} ... {kw[-1]:.3g}, but the model "
                f"expects S_ab normalised by the total N, so that {col}(k -> inf) = {name} = "
                f"{expected:g} (a per-species normalisation gives 1); predictions will be wrong")
    return msgs


def out_of_range(ensemble: Ensemble, structure: np.ndarray, interaction: str, density: float,
                 temperature: float, tolerance: float = 0.1) -> list[str]:
    """Names of inputs outside the training range widened by ``tolerance`` of its width."""
    r = ensemble.metadata.get("training_ranges")
    if not r:
        return []
    msgs = []
    for name, value in (("T", temperature), ("rho", density)):
        lo, hi = r[name]
        pad = tolerance * max(hi - lo, 1e-12 + 0.1 * abs(hi))
        if not lo - pad <= value <= hi + pad:
            msgs.append(f"{name} = {value:g} outside training range [{lo:g}, {hi:g}]")
    if interaction not in r["interactions"]:
        msgs.append(f"interaction {interaction} not in training set {r['interactions']}")
    s_min, s_max = np.array(r["S_min"]), np.array(r["S_max"])
    pad = tolerance * np.maximum(s_max - s_min, 0.05)
    flat = structure.reshape(-1)
    outside = (flat < s_min - pad) | (flat > s_max + pad)
    if outside.mean() > 0.05:
        pairs = sorted({PAIR_COLUMNS[i // len(K_GRID)] for i in np.flatnonzero(outside)})
        msgs.append(f"{outside.mean():.0%} of the S(k) values ({', '.join(pairs)}) lie outside "
                    "the range of the training states")
    return msgs



def _check_state_variable(name: str, value) -> None:
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
            and math.isfinite(value) and value > 0):
        raise SupercooledError(f"{name} must be a positive number, got {value!r}")


def _trained_times(ensemble: Ensemble) -> np.ndarray:
    """The grid times the training data covered (no extrapolation in t)."""
    times = np.asarray(ensemble.metadata.get("time_grid", TIME_GRID), float)
    lo, hi = ensemble.metadata.get("training_ranges", {}).get("time", [0.0, np.inf])
    return times[(times >= lo * (1 - 1e-9)) & (times <= hi * (1 + 1e-9))]


def _peak(structure: np.ndarray) -> tuple[float, np.ndarray]:
    """k_p of a (3, 100) S on the model grid (as the library defines it) and S_AA, S_BB there."""
    k_p = peak_position(structure[0])
    state = xr.Dataset({"S": (("pair", "k"), structure), "k_p": k_p},
                       coords={"pair": list(PAIRS), "k": K_GRID})
    return k_p, structure_at_peak(state)[[0, 2]]


METHODS = ("mlp", "memory")


def load_model(model=None, method: str = "mlp"):
    """The predictor of ``method``: ``model`` itself if it is one, else read from the path
    ``model`` (an MLP model folder, or a memory predictor's JSON file), else the shipped one."""
    from supercooled.ml.memory_predictor import MemoryPredictor
    from supercooled.paths import memory_predictor_path

    if method not in METHODS:
        raise SupercooledError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if isinstance(model, Ensemble | MemoryPredictor):
        return model
    if method == "memory":
        return MemoryPredictor.load(model if model is not None else memory_predictor_path())
    return Ensemble.load(model)


def predict(structure_factor, interaction: str, density: float, temperature: float,
            model=None, times=None, level: float = 0.68, method: str = "mlp"):
    """Predict phi_s^a(k_p, t) and F_s^aa(k_p, t) with calibrated bounds for a user's S(k).

    ``structure_factor``: CSV path or DataFrame with columns k, S_AA, S_AB, S_BB (normalised
    as on the conventions page (book/conventions.md): S_aa(k -> inf) = x_a) on any grid
    reaching k >= 20 that resolves the main peak (:data:`MIN_PEAK_POINTS`). ``model``: an
    :class:`~supercooled.ml.ensemble.Ensemble`, a model folder, or None for the shipped model.
    ``times``: default the grid times the training data covered. ``level``: nominal coverage
    of the bounds (a calibrated level of the model, 0.68 or 0.9). ``method``: ``mlp`` (the
    ensemble of :mod:`supercooled.ml.ensemble`) or ``memory`` (the memory predictor; ``model``
    is then its JSON file, default :func:`supercooled.paths.memory_predictor_path`).

    Returns a DataFrame with columns t, phi_A, phi_A_lo, phi_A_hi, phi_B, phi_B_lo, phi_B_hi,
    F_AA, F_AA_lo, F_AA_hi, F_BB, F_BB_lo, F_BB_hi (F = phi S_aa(k_p), eq. 1) and the ensemble
    std phi_A_std, phi_B_std. The bounds are the split-conformal intervals of
    :mod:`supercooled.ml.calibration`, widened by the OOD score when it exceeds 1; a model
    without calibration (written before it existed) gives mean -+ 1 std and says so. ``attrs``:
    tau_alpha (1/e time of phi_A) with tau_alpha_lo, tau_alpha_hi (those of phi_A_lo and
    phi_A_hi), level, calibrated, ood (the dict of
    :func:`~supercooled.ml.calibration.ood_score`, or None), architecture, k_p, the
    extrapolation flags, the out-of-range and the normalisation warnings (all warnings also
    issued as :class:`UserWarning`, one line each). ``density`` and ``temperature``: positive
    finite real numbers (Python or NumPy; not bool).
    """
    import pandas as pd

    from supercooled.ml import calibration

    interaction = normalize_interaction(interaction)
    _check_state_variable("density", density)
    _check_state_variable("temperature", temperature)
    ensemble = load_model(model, method)
    user_frame = read_structure_factor(structure_factor)
    structure, flags = structure_on_grid(user_frame)
    normalisation = normalisation_warnings(user_frame)
    times = _trained_times(ensemble) if times is None else np.asarray(times, float)
    feats = np.concatenate([structure.reshape(-1),
                            [temperature, density, INTERACTION_LABEL[interaction]]])
    members = ensemble.predict_phi(feats[None, :], times)[:, 0]
    mean, std = members.mean(axis=0), members.std(axis=0)
    k_p, s_peak = _peak(structure)
    warn = out_of_range(ensemble, structure, interaction, float(density), float(temperature))
    ref, calib = ensemble.metadata.get("ood_reference"), ensemble.metadata.get("calibration")
    ood = calibration.ood_score(ref, feats) if ref else None
    widen = calibration.widening(ood["score"]) if ood else 1.0
    if ood and ood["score"] > 1:
        warn.append(f"out of distribution (OOD score {ood['score']:.2f} > 1): "
                    f"{'; '.join(ood['messages'])}; bounds widened x{widen:.2f}")
    if calib:
        lo, hi = calibration.interval(calib, mean[None], std[None], times, level, widen)
        lo, hi = lo[0], hi[0]
    else:
        lo, hi = np.clip(mean - std, 0.0, 1.0), np.clip(mean + std, 0.0, 1.0)
        warn.append("the model has no calibration (trained before it existed): bounds are "
                    "-+ 1 ensemble std, which is overconfident")
    frame = pd.DataFrame({"t": times})
    for a, name in enumerate(("A", "B")):
        frame[f"phi_{name}"], frame[f"phi_{name}_lo"], frame[f"phi_{name}_hi"] = (
            mean[:, a], lo[:, a], hi[:, a])
    for a, name in enumerate(("AA", "BB")):
        for suffix in ("", "_lo", "_hi"):
            frame[f"F_{name}{suffix}"] = frame[f"phi_{name[0]}{suffix}"] * s_peak[a]
    frame["phi_A_std"], frame["phi_B_std"] = std[:, 0], std[:, 1]
    for msg in warn:
        warnings.warn(f"extrapolation: {msg}", UserWarning, stacklevel=2)
    for msg in normalisation:
        warnings.warn(f"structure factor normalisation: {msg}", UserWarning, stacklevel=2)
    frame.attrs.update({"tau_alpha": tau_alpha(mean[:, 0], times),
                        "tau_alpha_lo": tau_alpha(lo[:, 0], times),
                        "tau_alpha_hi": tau_alpha(hi[:, 0], times), "level": level,
                        "calibrated": bool(calib), "ood": ood, "widening": widen,
                        "architecture": ensemble.architecture, "k_p": k_p,
                        "out_of_range": warn, "normalisation": normalisation, **flags})
    return frame
