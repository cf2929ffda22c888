"""Single-particle dynamics: self intermediate scattering function, MSD, tau_alpha, D.

For species a with N_a particles and unwrapped positions r_i(t),

    phi_s^a(k, t) = < (1/N_a) sum_{i in a} exp(i k . (r_i(t0 + t) - r_i(t0))) >_{t0, directions}
                  = < (1/N_a) sum_{i in a} sin(k dr_i) / (k dr_i) >_{t0},

    MSD_a(t) = < (1/N_a) sum_{i in a} |r_i(t0 + t) - r_i(t0)|^2 >_{t0},

with dr_i = |r_i(t0 + t) - r_i(t0)|. The second form of phi_s is the exact average of
exp(i k . dr) over all directions of k (isotropic liquid), so phi_s can be evaluated at any k,
in particular at the peak k_p of S_AA, not only at lattice wavevectors; phi_s(k, 0) = 1.

Time origins (the log-periodic schedule of supercooled.md): a run is cut into blocks of B
steps; each block stores frames at log-spaced offsets from its start. Every block start is a
time origin, and every later frame is paired with it: lags inside a block (0 < s < B) and lags
m B + s spanning blocks. A uniform schedule is the special case where every frame is a block
start. See :func:`block_starts` for how B is found when it is not given.

Correlations are first averaged per distinct lag (over all origins that reach it), then put on
the common log-spaced TIME_GRID (:func:`to_time_grid`), NaN where the run has no data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.grids import POINTS_PER_DECADE, TIME_GRID
from supercooled.systems import SPECIES

#: Target frames handled at once per origin: bounds memory to ~(chunk x N x 3) doubles.
_FRAME_CHUNK = 256


def _in_schedule(steps: np.ndarray, start: int, period: int, last: int, offsets: set) -> bool:
    """True if every start + j*period <= last is a frame and every window repeats ``offsets``."""
    n_starts = (last - start) // period + 1
    if n_starts > steps.size:  # more block starts than frames: cannot all be present
        return False
    if not np.isin(start + period * np.arange(n_starts), steps).all():
        return False
    relative = (steps - start) % period
    return set(relative.tolist()) <= offsets


def block_starts(steps, block_length: int | None = None) -> tuple[np.ndarray, int]:
    """Indices of the frames that serve as time origins, and the block length B in steps.

    With ``block_length`` given (run.json's schedule), the origins are the frames whose step
    minus the first step is a multiple of B. Without it, B is inferred from the steps alone:
    B is the smallest period d (tried among the distances of frames from the first frame) such
    that (i) every first + j d up to the last block start is a frame and (ii) every window
    [first + j d, first + (j + 1) d) holds frames only at the offsets of the first window.
    The final frame (end of production, which need not fall on the pattern) is exempt. A
    uniformly sampled run gives B = its frame spacing (every frame an origin). The search ends
    at the latest at d = the last frame before the final one (two blocks). The choice of
    origins only changes how many pairs are averaged, never what is estimated: in a stationary
    run every origin gives an unbiased estimate of the same correlation function.
    """
    steps = np.asarray(steps, dtype=np.int64)
    if steps.ndim != 1 or steps.size < 2:
        raise SupercooledError("a trajectory needs at least two frames to measure dynamics")
    if np.any(np.diff(steps) <= 0):
        raise SupercooledError("frame steps must increase strictly (is the trajectory sorted?)")
    first = int(steps[0])
    if block_length is None:
        block_length = _infer_block_length(steps)
    block_length = int(block_length)
    if block_length <= 0:
        raise SupercooledError(f"block length must be positive, got {block_length}")
    origins = np.flatnonzero((steps - first) % block_length == 0)
    return origins, block_length


def _infer_block_length(steps: np.ndarray) -> int:
    first = int(steps[0])
    body = steps[:-1] if steps.size > 2 else steps
    for d in (steps[1:] - first).tolist():
        window = body[body < first + d] - first
        last_start = first + ((int(body[-1]) - first) // d) * d
        if _in_schedule(body, first, d, last_start, set(window.tolist())):
            return int(d)
    return int(steps[-1] - first)


@dataclass
class LagCorrelations:
    """Correlations averaged per distinct lag: ``lags`` in steps, ``counts`` = origins per lag.

    ``phi`` and ``msd`` have shape (n_species, n_lags).
    """

    lags: np.ndarray
    counts: np.ndarray
    phi: np.ndarray
    msd: np.ndarray

    def times(self, dt: float) -> np.ndarray:
        return self.lags * float(dt)


class _Accumulator:
    def __init__(self):
        self.lags, self.phi, self.msd = [], [], []

    def add(self, lags, phi, msd):
        self.lags.append(lags)
        self.phi.append(phi)
        self.msd.append(msd)

    def result(self, n_species: int) -> LagCorrelations:
        if not self.lags:
            empty = np.zeros((n_species, 0))
            return LagCorrelations(np.zeros(0, np.int64), np.zeros(0, np.int64), empty, empty)
        lags = np.concatenate(self.lags)
        unique, inverse, counts = np.unique(lags, return_inverse=True, return_counts=True)
        phi = np.concatenate(self.phi, axis=1)
        msd = np.concatenate(self.msd, axis=1)

        def mean(values):
            return np.stack([np.bincount(inverse, weights=v) / counts for v in values])

        return LagCorrelations(unique, counts, mean(phi), mean(msd))


def _species_weights(typeid: np.ndarray, n_species: int) -> np.ndarray:
    """(N, n_species) matrix of 1/N_a for particles of species a: a matrix product averages."""
    weights = np.zeros((typeid.size, n_species))
    for a in range(n_species):
        members = typeid == a
        if not members.any():
            raise SupercooledError(f"no particle of species {SPECIES[a]} in the trajectory")
        weights[members, a] = 1.0 / members.sum()
    return weights


def self_correlations(positions, steps, typeid, k: float, *, origins=None, block_length=None,
                      max_origins: int | None = None, split_halves: bool = False,
                      progress: bool = False):
    """phi_s^a(k, lag) and MSD_a(lag) for every distinct lag, averaged over time origins.

    ``positions`` is (n_frames, N, 3) of *unwrapped* positions, ``steps`` the MD step of each
    frame, ``typeid`` 0/1 per particle, ``k`` the wave number. Origins default to the block
    starts of :func:`block_starts`; ``max_origins`` keeps an evenly spaced subset of them.

    Returns a :class:`LagCorrelations`; with ``split_halves=True`` a tuple
    (all, first_half, second_half), where the halves use only origin-target pairs that lie
    entirely in the first or in the second half of the run (the no-ageing check).
    """
    positions = np.asarray(positions, dtype=float)
    steps = np.asarray(steps, dtype=np.int64)
    typeid = np.asarray(typeid)
    if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[0] != steps.size:
        raise SupercooledError("positions must have shape (n_frames, N, 3) matching the steps")
    if not (np.isfinite(k) and k > 0):
        raise SupercooledError(f"wave number must be positive, got {k}")
    if origins is None:
        origins, _ = block_starts(steps, block_length)
    origins = np.asarray(origins)
    if max_origins is not None and origins.size > max_origins:
        origins = origins[np.unique(np.linspace(0, origins.size - 1, max_origins).round().astype(int))]
    weights = _species_weights(typeid, len(SPECIES))
    middle = 0.5 * (steps[0] + steps[-1])
    parts = [_Accumulator() for _ in range(3)]
    iterator = origins
    if progress:
        from tqdm import tqdm  # text bar: tqdm.auto warns in notebooks without ipywidgets

        iterator = tqdm(origins, desc="F_s(k,t), MSD", unit="origin", leave=False)
    for o in iterator:
        for start in range(o + 1, steps.size, _FRAME_CHUNK):
            targets = np.arange(start, min(start + _FRAME_CHUNK, steps.size))
            dr2 = np.sum((positions[targets] - positions[o]) ** 2, axis=2)
            # np.sinc(x) = sin(pi x) / (pi x), so sinc(k r / pi) = sin(k r) / (k r), 1 at r = 0.
            phi = (np.sinc(k * np.sqrt(dr2) / np.pi) @ weights).T
            msd = (dr2 @ weights).T
            lags = steps[targets] - steps[o]
            parts[0].add(lags, phi, msd)
            if split_halves:
                first = steps[targets] <= middle
                parts[1].add(lags[first], phi[:, first], msd[:, first])
                if steps[o] >= middle:
                    parts[2].add(lags, phi, msd)
    results = [p.result(len(SPECIES)) for p in parts]
    return tuple(results) if split_halves else results[0]


def _isf_forward(phi):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(-np.log(phi))


def _isf_inverse(g):
    return np.exp(-np.exp(g))


def _msd_forward(msd_values):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(msd_values)


#: Variables in which a correlation function is nearly linear in ln t, for interpolation:
#: ln(-ln phi) is exactly linear (slope 2) for ballistic motion, phi = exp(-k^2 T t^2 / 2m),
#: and ln MSD likewise (MSD = 3 T t^2 / m); both stay smooth through plateau and diffusion.
TRANSFORMS = {
    "isf": (_isf_forward, _isf_inverse),
    "msd": (_msd_forward, np.exp),
    None: (lambda v: v, lambda v: v),
}


def _fit_at(log_t, values, weights, log_tj, window) -> np.ndarray:
    """Weighted straight line through the window's points, read at log_tj."""
    x = log_t[window] - log_tj
    w = weights[window]
    xm = np.sum(w * x) / np.sum(w)
    ym = values[:, window] @ w / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    slope = ((values[:, window] - ym[:, None]) @ (w * (x - xm))) / sxx
    return ym - slope * xm


def to_time_grid(times, values, counts=None, time_grid=TIME_GRID, *, kind=None) -> np.ndarray:
    """Put values sampled at ``times`` (per lag) onto ``time_grid``; NaN outside the sampled range.

    ``kind`` ("isf", "msd" or None) selects a variable in which the function is nearly linear
    in ln t: y = ln(-ln phi) for an ISF, y = ln MSD for an MSD (both exact straight lines of
    slope 2 in the ballistic regime), y = value otherwise. Rows or windows where y is not
    finite (phi <= 0 or >= 1 from noise) fall back to the raw values.

    For each grid time t_j, the lags within half a grid spacing in ln t
    (|ln t - ln t_j| <= ln(10) / (2 * points per decade)) are fitted by a straight line y(ln t),
    weighted by ``counts`` (the number of origins per lag), and the line is read at t_j: this
    averages the many noisy lags of the long-time tail without the bias of a plain bin mean.
    Where the window holds fewer than two distinct lags, y is linearly interpolated in ln t
    between the neighbouring lags. Grid times below the shortest or above the longest sampled
    lag are NaN (a relative tolerance of 1e-9 lets a lag equal to a grid point count).
    """
    forward, inverse = TRANSFORMS[kind]
    times = np.asarray(times, dtype=float)
    values = np.atleast_2d(np.asarray(values, dtype=float))
    time_grid = np.asarray(time_grid, dtype=float)
    counts = np.ones(times.size) if counts is None else np.asarray(counts, dtype=float)
    out = np.full((values.shape[0], time_grid.size), np.nan)
    if times.size == 0:
        return out
    order = np.argsort(times)
    log_t, values, counts = np.log(times[order]), values[:, order], counts[order]
    transformed = forward(values)
    half_width = np.log(10.0) / (2.0 * POINTS_PER_DECADE)
    tolerance = 1e-9
    for j, log_tj in enumerate(np.log(time_grid)):
        if log_tj < log_t[0] - tolerance or log_tj > log_t[-1] + tolerance:
            continue
        window = np.abs(log_t - log_tj) <= half_width
        if np.count_nonzero(window) < 2:  # interpolate between the two neighbouring lags
            right = min(int(np.searchsorted(log_t, log_tj)), log_t.size - 1)
            window = np.zeros(log_t.size, dtype=bool)
            window[max(right - 1, 0) : right + 1] = True
            if np.count_nonzero(window) < 2:
                out[:, j] = values[:, window][:, 0]
                continue
        for row in range(values.shape[0]):
            y = transformed[row : row + 1]
            if np.isfinite(y[:, window]).all():
                out[row, j] = inverse(_fit_at(log_t, y, counts, log_tj, window))[0]
            else:
                out[row, j] = _fit_at(log_t, values[row : row + 1], counts, log_tj, window)[0]
    return out


def self_isf(positions, steps, typeid, k: float, dt: float, *, time_grid=TIME_GRID,
             block_length=None, progress=False) -> np.ndarray:
    """phi_s^a(k, t) for a = A, B on ``time_grid``, shape (2, n_time); see the module docstring."""
    lag = self_correlations(positions, steps, typeid, k, block_length=block_length,
                            progress=progress)
    return to_time_grid(lag.times(dt), lag.phi, lag.counts, time_grid, kind="isf")


def msd(positions, steps, typeid, dt: float, *, time_grid=TIME_GRID, block_length=None,
        progress=False) -> np.ndarray:
    """MSD_a(t) for a = A, B on ``time_grid``, shape (2, n_time), in sigma_AA^2."""
    lag = self_correlations(positions, steps, typeid, 1.0, block_length=block_length,
                            progress=progress)
    return to_time_grid(lag.times(dt), lag.msd, lag.counts, time_grid, kind="msd")


def tau_alpha(phi, time_grid=TIME_GRID, *, level: float = np.exp(-1.0)) -> float:
    """First time where ``phi`` drops below ``level`` (1/e), interpolated linearly in ln t.

    Between the last grid point t_1 with phi >= level and the next t_2 with phi < level,
    ln tau = ln t_1 + (phi_1 - level) / (phi_1 - phi_2) (ln t_2 - ln t_1).
    Returns NaN when phi never crosses the level within the sampled times (glass, short run)
    or is already below it at the first finite point.
    """
    phi = np.asarray(phi, dtype=float)
    time_grid = np.asarray(time_grid, dtype=float)
    finite = np.flatnonzero(np.isfinite(phi))
    if finite.size < 2 or phi[finite[0]] < level:
        return float("nan")
    below = finite[phi[finite] < level]
    if below.size == 0:
        return float("nan")
    j = below[0]
    i = finite[finite < j][-1]
    fraction = (phi[i] - level) / (phi[i] - phi[j])
    log_tau = np.log(time_grid[i]) + fraction * (np.log(time_grid[j]) - np.log(time_grid[i]))
    return float(np.exp(log_tau))


#: MSD (sigma_AA^2) beyond which a particle has left its cage and the MSD grows linearly
DIFFUSIVE_MSD = 1.0


@dataclass(frozen=True)
class DiffusionFit:
    """D from MSD = 6 D t + c over ``window`` (t_start, t_end) in tau; ``exponent`` is the
    slope of ln MSD against ln t over that window (1 in the diffusive regime) and
    ``diffusive`` says whether the window lies where MSD >= :data:`DIFFUSIVE_MSD`."""

    D: float
    window: tuple[float, float]
    exponent: float
    diffusive: bool


def diffusion_fit(msd_values, time_grid=TIME_GRID, *, min_msd: float = DIFFUSIVE_MSD
                  ) -> DiffusionFit:
    """The diffusion coefficient from the long-time end of one species' MSD.

    Once a particle has moved farther than about one diameter (MSD >= ``min_msd``, 1 sigma_AA^2
    by default) it has left its cage and the MSD grows linearly; a straight line
    MSD = 6 D t + c through those grid points gives D (the intercept c absorbs the ballistic
    and plateau history). A run too short for three such points (the MSD of dense states
    reaches 1.2-1.5 sigma_AA^2 at the end of a 20 tau_alpha run, covered by one or two
    log-spaced points) is fitted over its last three sampled points instead, with
    ``diffusive=False``: an estimate whose window and exponent say how far it is from the
    diffusive regime, never a silent NaN. NaN only with fewer than three sampled points.
    """
    msd_values = np.asarray(msd_values, dtype=float)
    time_grid = np.asarray(time_grid, dtype=float)
    ok = np.flatnonzero(np.isfinite(msd_values) & (msd_values > 0))
    if ok.size < 3:
        return DiffusionFit(float("nan"), (float("nan"), float("nan")), float("nan"), False)
    beyond = ok[msd_values[ok] >= min_msd]
    use = beyond if beyond.size >= 3 else ok[-3:]
    slope, _ = np.polyfit(time_grid[use], msd_values[use], 1)
    exponent = np.polyfit(np.log(time_grid[use]), np.log(msd_values[use]), 1)[0]
    return DiffusionFit(float(slope / 6.0), (float(time_grid[use[0]]), float(time_grid[use[-1]])),
                        float(exponent), bool(beyond.size >= 3))


def diffusion_coefficient(msd_values, time_grid=TIME_GRID) -> float:
    """D of :func:`diffusion_fit` (sigma_AA^2 / tau)."""
    return diffusion_fit(msd_values, time_grid).D


def density_scaling_collapse(density, temperature, tau, gamma: float):
    """Scaling variable Gamma = rho^gamma / T for each state, and ln of the reduced tau_alpha.

    Under density scaling the dynamics depend on rho and T only through rho^gamma / T when
    time is measured in the density- and temperature-reduced unit
    t_0 = rho^(-1/3) sqrt(m / (k_B T)) (the mean interparticle distance over the thermal
    velocity), so ln(tau_alpha / t_0) = ln(tau_alpha rho^(1/3) T^(1/2)) of all densities
    falls on one curve when plotted against Gamma (m = 1).
    """
    density, temperature, tau = (np.asarray(a, dtype=float) for a in (density, temperature, tau))
    return density**gamma / temperature, np.log(tau * np.cbrt(density) * np.sqrt(temperature))


def density_scaling_exponent(density, temperature, tau, gammas=None, degree: int = 3) -> tuple[float, np.ndarray]:
    """The exponent gamma that best collapses tau_alpha(rho, T) onto one curve of rho^gamma / T.

    For each trial gamma, ln of the reduced tau_alpha (:func:`density_scaling_collapse`) is fitted by a polynomial of ``degree`` in ln(rho^gamma / T)
    over all finite states; the gamma with the smallest mean squared residual wins. Returns
    (gamma, residuals for every trial gamma). Needs states at two densities or more.
    """
    density, temperature, tau = (np.asarray(a, dtype=float) for a in (density, temperature, tau))
    keep = np.isfinite(tau) & (tau > 0)
    if len(np.unique(density[keep])) < 2 or keep.sum() <= degree + 1:
        raise SupercooledError("density scaling needs finite tau_alpha at two densities or more")
    gammas = np.linspace(2.0, 8.0, 121) if gammas is None else np.asarray(gammas, dtype=float)
    residuals = np.empty(len(gammas))
    for i, gamma in enumerate(gammas):
        x, y = density_scaling_collapse(density[keep], temperature[keep], tau[keep], gamma)
        coefficients = np.polyfit(np.log(x), y, degree)
        residuals[i] = np.mean((np.polyval(coefficients, np.log(x)) - y) ** 2)
    return float(gammas[np.argmin(residuals)]), residuals
