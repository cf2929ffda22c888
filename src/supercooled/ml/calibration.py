"""Calibrated intervals from the ensemble spread, and an out-of-distribution score of a state.

Calibration (split conformal, Vovk et al. 2005; Lei et al. 2018): on *calibration states*,
held out of the training pool so that no member fits or early-stops on them, the
non-conformity score of every sampled (state, time, species) is

    s = |phi_sim - phi_mean| / (sigma + SIGMA_FLOOR),

with phi_mean and sigma the mean and standard deviation over the members. For each species a,
decade of t (bin b, :data:`TIME_BIN_EDGES`) and nominal level p (0.68, 0.90) the scale
q_{a,b}(p) is :func:`supercooled.metrics.conformal_quantile` of those scores; a bin with fewer
than :data:`MIN_POINTS` scores takes the quantile of the species' scores at all times. The
interval of a new prediction is

    phi_mean -+ w q_{a,b}(p) (sigma + SIGMA_FLOOR),   intersected with [0, 1],

(the support of phi_s), with w = 1 inside the training distribution and w = the OOD score
(below) when it exceeds 1. Points of one state are correlated, so the guarantee of conformal
prediction holds only approximately; the empirical coverage on test states and on the
independent set is what chapters 4 and 5 report.

Out-of-distribution score (:func:`ood_score`), from the training states of the model:

* structure: distance d of the state's standardised S_AA, S_AB, S_BB (same standardisation as
  the features) to the nearest training state of the same interaction, in the space of the
  leading principal components of the training S(k) (whitened: each component divided by its
  standard deviation, floored at :data:`COMPONENT_STD_FLOOR`); s_S = d / d_95, with d_95 the 95th percentile of the same
  leave-one-out distance among the training states;
* temperature: T_S, the temperature the structure implies. Along one series (training states
  of the same interaction and density) ln T is close to linear in the two leading
  coordinates of that space, so with at least SERIES_FIT_MIN states there ln T_S is the
  least-squares linear function of the series' positions along its own principal axes in
  (x_1, x_2) (axes with under SERIES_AXIS_FLOOR of the first's spread left out: leave-one-out
  |ln(T / T_S)| on the shipped model's 82 training states: median 0.047, 95th percentile
  0.18, against 0.08 and 0.64 for the two nearest neighbours, which cannot extrapolate at the
  ends of a series);
  with fewer states, the geometric mean, weighted by 1 / (d + 0.001), of the T of the two
  nearest states of the series;
  s_T = |ln(T / T_S)| / l_95 with l_95 the 95th percentile of the leave-one-out values among
  training states; outside the T range of the training states at that density,
  s_T >= 1 + |ln(T / T_edge)| / l_95.

The OOD score is max(s_S, s_T); above 1 the state is further from the training states than
95 % of those are from each other.
"""

from __future__ import annotations

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID
from supercooled.metrics import conformal_quantile, interval_coverage
from supercooled.ml.features import MIN_STD

LEVELS = (0.68, 0.90)
#: Edges of the time bins (log10 t / tau): one decade each.
TIME_BIN_EDGES = np.arange(-3.0, 5.01, 1.0)
#: Added to the ensemble's sigma (in phi units): a finite scale where all members agree.
SIGMA_FLOOR = 1e-3
MIN_POINTS = 20
#: Principal components of the training S(k) used by the structure distance.
N_COMPONENTS = 8
#: Smallest standard deviation of a component (standardised units): a direction along which
#: the training states hardly differ is not allowed to turn noise into a large distance.
COMPONENT_STD_FLOOR = 1.0
#: States of a series from which T_S is the series' least-squares plane in the leading
#: TEMPERATURE_COMPONENTS coordinates (fewer: the two nearest states).
SERIES_FIT_MIN = 4
TEMPERATURE_COMPONENTS = 2
SERIES_AXIS_FLOOR = 0.1


def _bins(times) -> np.ndarray:
    return np.clip(np.searchsorted(TIME_BIN_EDGES, np.log10(np.asarray(times, float))) - 1, 0,
                   len(TIME_BIN_EDGES) - 2)


def fit_calibration(truth, mean, sigma, times, levels=LEVELS) -> dict:
    """Conformal scales q[level][species][bin] from calibration curves (n, n_time, 2) of phi."""
    truth, mean, sigma = (np.asarray(a, float) for a in (truth, mean, sigma))
    scores = np.abs(truth - mean) / (sigma + SIGMA_FLOOR)
    bins = _bins(times)
    nb = len(TIME_BIN_EDGES) - 1
    out = {"levels": [float(p) for p in levels], "time_bin_edges": TIME_BIN_EDGES.tolist(),
           "sigma_floor": SIGMA_FLOOR, "n_states": int(len(truth)), "scale": {}, "n_points": []}
    for a in range(2):
        s_a = scores[:, :, a]
        counts = [int(np.isfinite(s_a[:, bins == b]).sum()) for b in range(nb)]
        out["n_points"].append(counts)
    for p in levels:
        table = []
        for a in range(2):
            s_a = scores[:, :, a]
            pooled = conformal_quantile(s_a.ravel(), p)
            table.append([conformal_quantile(s_a[:, bins == b].ravel(), p)
                          if out["n_points"][a][b] >= MIN_POINTS else pooled for b in range(nb)])
        out["scale"][f"{p:g}"] = table
    return out


def interval(calibration: dict, mean, sigma, times, level: float, widen=1.0):
    """(lower, upper) of phi (n, n_time, 2) at nominal ``level``; ``widen`` (scalar or (n,))
    multiplies the half width."""
    key = f"{level:g}"
    if not calibration or key not in calibration.get("scale", {}):
        raise SupercooledError(f"the model has no calibration at level {level:g} (calibrated: "
                               f"{', '.join(calibration.get('scale', {})) or 'none'}): retrain")
    q = np.asarray(calibration["scale"][key], float)[:, _bins(times)]  # (2, n_time)
    half = q.T[None] * (np.asarray(sigma, float) + calibration["sigma_floor"])
    half = half * np.reshape(np.asarray(widen, float), (-1, 1, 1))
    mean = np.asarray(mean, float)
    return np.clip(mean - half, 0.0, 1.0), np.clip(mean + half, 0.0, 1.0)


def coverage_table(truth, mean, sigma, times, calibration, widen=1.0, levels=LEVELS) -> list:
    """Rows (species, nominal, coverage, n_points) of the intervals against ``truth``."""
    rows = []
    for p in levels:
        lo, hi = interval(calibration, mean, sigma, times, p, widen)
        for a, name in enumerate(("A", "B")):
            rows.append({"species": name, "nominal": p,
                         "coverage": interval_coverage(truth[..., a], lo[..., a], hi[..., a]),
                         "n_points": int(np.isfinite(truth[..., a]).sum())})
    return rows


# --- out-of-distribution score --------------------------------------------------------------

def _structure(state_feats) -> np.ndarray:
    return np.atleast_2d(state_feats)[:, :3 * len(K_GRID)]


def fit_reference(state_feats, labels=None) -> dict:
    """The OOD reference of the training states (303 state features each)."""
    f = np.atleast_2d(np.asarray(state_feats, float))
    s = _structure(f)
    mean, std = s.mean(axis=0), np.maximum(s.std(axis=0), MIN_STD)
    z = (s - mean) / std
    _, sv, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    n_comp = max(1, min(N_COMPONENTS, len(f) - 1))
    scale = np.maximum(sv[:n_comp] / np.sqrt(max(len(f) - 1, 1)), COMPONENT_STD_FLOOR)
    ref = {"s_mean": mean.tolist(), "s_std": std.tolist(), "z_mean": z.mean(axis=0).tolist(),
           "components": vt[:n_comp].tolist(), "component_std": scale.tolist(),
           "T": f[:, 300].tolist(), "rho": f[:, 301].tolist(), "interaction": f[:, 302].tolist(),
           "labels": list(labels) if labels is not None else None}
    ref["coords"] = _coords(ref, f).tolist()
    return with_loo_scales(ref)


def with_loo_scales(ref: dict) -> dict:
    """``ref`` with d_95 and log_t_95, the 95th percentiles of the leave-one-out structure
    distance and |ln(T / T_S)| among its training states (from the stored coordinates alone,
    so a saved reference can be rescored when the T_S estimate changes)."""
    coords = np.asarray(ref["coords"])
    T, rho, inter = (np.asarray(ref[k]) for k in ("T", "rho", "interaction"))
    d_loo, l_loo = [], []
    for i in range(len(T)):
        others = np.flatnonzero((np.arange(len(T)) != i) & (inter == inter[i]))
        if len(others) == 0:
            continue
        d_loo.append(float(np.sqrt(((coords[others] - coords[i]) ** 2).sum(axis=1)).min()))
        series = others[np.abs(rho[others] - rho[i]) < 1e-3]
        if len(series) >= 2:
            l_loo.append(abs(np.log(T[i]) - _structure_log_t(coords[series], T[series],
                                                              coords[i])))
    ref = dict(ref)
    ref["d_95"] = float(np.percentile(d_loo, 95)) if d_loo else float("nan")
    ref["log_t_95"] = float(max(np.percentile(l_loo, 95), 0.05)) if l_loo else float("nan")
    return ref


def _coords(ref, state_feats) -> np.ndarray:
    z = (_structure(state_feats) - np.asarray(ref["s_mean"])) / np.asarray(ref["s_std"])
    return ((z - np.asarray(ref["z_mean"])) @ np.asarray(ref["components"]).T
            / np.asarray(ref["component_std"]))


def _distances(ref, feats):
    """(nearest distance among same-interaction states, ln(T / T_S), (T_lo, T_hi) at rho)."""
    coords = np.asarray(ref["coords"])
    T, rho, inter = (np.asarray(ref[k]) for k in ("T", "rho", "interaction"))
    idx = np.arange(len(T))
    x = _coords(ref, feats)[0]
    same = idx[inter[idx] == feats[302]]
    if len(same) == 0:
        return float("inf"), float("nan"), None
    d = np.sqrt(((coords[same] - x) ** 2).sum(axis=1))
    at_rho = same[np.abs(rho[same] - feats[301]) < 1e-3]
    log_t, t_range = float("nan"), None
    if len(at_rho) >= 2:
        log_t = float(np.log(feats[300]) - _structure_log_t(coords[at_rho], T[at_rho], x))
        t_range = (float(T[at_rho].min()), float(T[at_rho].max()))
    return float(d.min()), log_t, t_range


def _structure_log_t(series_coords, series_T, x) -> float:
    """ln T_S of coordinates x from the states of one series (module docstring)."""
    log_T = np.log(series_T)
    k = min(TEMPERATURE_COMPONENTS, series_coords.shape[1])
    if len(log_T) >= max(SERIES_FIT_MIN, k + 2):
        # regress on the directions the series itself spans (its own principal axes in the
        # leading k coordinates), dropping any with under SERIES_AXIS_FLOOR of the first's
        # spread: a direction the series hardly moves along would get an ill-determined slope
        # and turn a small change of S(k) into a large change of T_S
        points, probe = series_coords[:, :k], np.asarray(x)[:k]
        centre = points.mean(axis=0)
        _, sv, axes = np.linalg.svd(points - centre, full_matrices=False)
        axes = axes[sv >= SERIES_AXIS_FLOOR * sv[0]]
        design = np.c_[np.ones(len(log_T)), (points - centre) @ axes.T]
        coef, *_ = np.linalg.lstsq(design, log_T, rcond=None)
        return float(np.r_[1.0, (probe - centre) @ axes.T] @ coef)
    d = np.sqrt(((series_coords - x) ** 2).sum(axis=1))
    order = np.argsort(d)[:2]
    w = 1.0 / (d[order] + 1e-3)
    return float(np.sum(w * log_T[order]) / w.sum())


def ood_score(ref: dict, state_feats) -> dict:
    """OOD score of one state (303 features): see the module docstring. Returns score,
    structure, temperature (the s_S, s_T), T_structure, T_range and messages (one per
    problem)."""
    f = np.asarray(state_feats, float).reshape(-1)
    d, log_t, t_range = _distances(ref, f)
    s_struct = d / ref["d_95"] if np.isfinite(ref["d_95"]) and ref["d_95"] > 0 else float("nan")
    msgs = []
    if not np.isfinite(d):
        msgs.append("no training state of this interaction")
    elif s_struct > 1:
        msgs.append(f"S(k) is {s_struct:.1f} times further from the training states than 95 % "
                    "of them are from each other")
    s_temp, t_struct = 0.0, float("nan")
    if t_range is None:
        msgs.append(f"no training states at density {f[301]:g} for this interaction: the "
                    "temperature cannot be checked")
    else:
        t_struct = float(f[300] / np.exp(log_t))
        s_temp = abs(log_t) / ref["log_t_95"]
        if s_temp > 1:
            msgs.append(f"T = {f[300]:g} differs from T = {t_struct:.3g} of the training states "
                        "with the nearest S(k)")
        lo, hi = t_range
        if not lo <= f[300] <= hi:
            edge = lo if f[300] < lo else hi
            s_temp = max(s_temp, 1.0 + abs(np.log(f[300] / edge)) / ref["log_t_95"])
            msgs.append(f"T = {f[300]:g} outside the training range [{lo:g}, {hi:g}] at this "
                        "density")
    score = float(np.nanmax([s_struct, s_temp]))
    return {"score": score, "structure": float(s_struct), "temperature": float(s_temp),
            "T_structure": t_struct, "T_range": t_range, "messages": msgs}


def widening(score: float) -> float:
    """Factor on the interval half width: max(1, OOD score) (infinite score: infinite)."""
    return float(max(1.0, score)) if np.isfinite(score) or score > 0 else 1.0
