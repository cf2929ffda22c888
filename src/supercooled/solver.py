"""A time-doubling solver for batches of small matrix memory equations.

The equation, for a batch of B independent s x s matrix problems (B wave numbers in MCT, or a
CMA-ES population in the memory fit; s = 1 or 2 species), is

    alpha F''(t) + beta F'(t) + gamma F(t) + int_0^t K(t - u) F'(u) du = 0,
    F(0) = F0,  F'(0) = dF0 (default 0, used only when alpha != 0),

with constant matrices alpha, beta, gamma of shape (B, s, s), all products matrix products
with the coefficient on the left (K(t - u) F'(u), gamma F). ``alpha = 0`` gives first-order
(overdamped, Brownian) dynamics, e.g. eq. (5) of Ciarella et al. (2023) with beta = 1 and
gamma = Omega^2; ``alpha = 1, beta = 0`` (or a damping beta) gives Newtonian dynamics. The
memory K(t) = kernel(F(t), t) is a callable returning shape (B, s, s): for mode-coupling theory
it is a quadratic functional of F(t) (self-consistent), for a given memory function it ignores
F and evaluates M(t).

Algorithm (Fuchs, Götze, Hofacker & Latz 1991). Time is covered by blocks of N equidistant
points t_i = i h, i = 0 ... N - 1. The first block starts with h = ``t_initial``; its first
four points come from the short-time Taylor series (F0 + t dF0 - t^2/2 alpha^-1 (gamma F0 +
beta dF0) for second order, two orders of the exact series for first order), the others are
solved. After a block, the step doubles: the new first half is the old block decimated
(F_i <- F_2i) and the integrals' moments dF_i = (1/h) int_{t_{i-1}}^{t_i} F dt are averaged
pairwise, then the second half (i = N/2 ... N - 1) is solved. The convolution at t_i is
split at t_ibar, ibar = floor(i / 2), so that the slowly varying factor is averaged over each
interval, and the fast one enters through its interval mean (the moments, kept exact by the
decimation, carry the fast short-time decay that a coarse step cannot resolve):

    int_0^{t_i} K(t_i - u) F'(u) du ~ K_{i-ibar} F_ibar - K_i F_0
        + sum_{k=1}^{ibar} (K_{i-k+1} - K_{i-k}) dF_k + sum_{k=1}^{i-ibar} dK_k (F_{i-k+1} - F_{i-k})

(the part u < t_ibar integrated by parts, so that F, fast near u = 0, appears as dF_k).
Derivatives are second-order backward differences,
F'' ~ (2 F_i - 5 F_{i-1} + 4 F_{i-2} - F_{i-3}) / h^2 and F' ~ (3 F_i - 4 F_{i-1} + F_{i-2}) / 2h.
Collecting the unknowns F_i and K_i = kernel(F_i, t_i) gives

    [2 alpha / h^2 + 3 beta / 2h + gamma + dK_1] F_i = K_i (F_0 - dF_1) - C_i,

solved by fixed-point iteration in F_i (the matrix is inverted once per block) until
max |F_i^(n+1) - F_i^(n)| <= tolerance. Everything is vectorised over the batch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from supercooled.errors import SupercooledError

Kernel = Callable[[np.ndarray, float], np.ndarray]

#: Points of the first block that come from the short-time Taylor series.
_N_TAYLOR = 4


@dataclass(frozen=True)
class SolverSettings:
    """Numerical settings of :func:`solve_memory_equation`.

    n_per_block: points per block N (even, >= 8); each block doubles the step.
    t_initial: the time step h of the first block (the first point after t = 0).
    t_max: the solver stops at the first grid time >= t_max.
    tolerance: absolute convergence threshold on F_i of the fixed-point iteration.
    max_iterations: iterations per time point before giving up (a warning, and
        ``Solution.converged`` is False).
    """

    n_per_block: int = 128
    t_initial: float = 1e-6
    t_max: float = 1e5
    tolerance: float = 1e-10
    max_iterations: int = 10_000

    def __post_init__(self):
        n = self.n_per_block
        if int(n) != n or n < 8 or n % 2:
            raise SupercooledError(f"n_per_block must be an even integer >= 8, got {n!r}")
        for name in ("t_initial", "t_max", "tolerance"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise SupercooledError(f"{name} must be a positive finite number, got {value!r}")
        if self.t_max <= self.t_initial * _N_TAYLOR:
            raise SupercooledError(
                f"t_max = {self.t_max} must exceed {_N_TAYLOR} t_initial = {_N_TAYLOR * self.t_initial}"
            )
        if int(self.max_iterations) != self.max_iterations or self.max_iterations < 1:
            raise SupercooledError(f"max_iterations must be a positive integer, got {self.max_iterations!r}")


@dataclass
class Solution:
    """Solution of a batch of memory equations.

    t: (n_t,) ascending times, t[0] = 0. F, K: (n_t, B, s, s), the correlator and the memory
    at those times. converged: False if any time point hit ``max_iterations``.
    """

    t: np.ndarray
    F: np.ndarray
    K: np.ndarray
    converged: bool = True

    def on_grid(self, times, which: str = "F") -> np.ndarray:
        """F (or K with ``which="K"``) at arbitrary ``times`` by interpolation in log t.

        Returns shape (len(times), B, s, s); NaN beyond the last solved time.
        See :func:`interpolate_log_time`.
        """
        if which not in ("F", "K"):
            raise SupercooledError(f"which must be 'F' or 'K', got {which!r}")
        return interpolate_log_time(self.t, getattr(self, which), times)


def interpolate_log_time(t, values, times) -> np.ndarray:
    """Interpolate ``values`` (n_t, ...) given at ascending ``t`` (t[0] = 0 allowed) onto ``times``.

    Linear in log t between positive solver times (the solver's points are log-uniform in
    density, so this is the natural interpolation for a log-spaced target grid such as
    grids.TIME_GRID); linear in t between t = 0 and the first positive time; NaN for times
    beyond t[-1] or below 0.
    """
    t = np.asarray(t, dtype=float)
    values = np.asarray(values, dtype=float)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if t.ndim != 1 or values.shape[0] != t.size:
        raise SupercooledError("values must have the length of t along their first axis")
    flat = values.reshape(t.size, -1)
    out = np.full((times.size, flat.shape[1]), np.nan)
    positive = t > 0
    tp, vp = t[positive], flat[positive]
    logt = np.log(tp)
    inside = (times >= tp[0]) & (times <= t[-1])
    if inside.any():
        x = np.log(times[inside])
        idx = np.clip(np.searchsorted(logt, x, side="right") - 1, 0, tp.size - 2)
        w = ((x - logt[idx]) / (logt[idx + 1] - logt[idx]))[:, None]
        out[inside] = (1 - w) * vp[idx] + w * vp[idx + 1]
    early = (times >= 0) & (times < tp[0])
    if early.any():
        if t[0] == 0:
            w = (times[early] / tp[0])[:, None]
            out[early] = (1 - w) * flat[0] + w * vp[0]
    return out.reshape((times.size,) + values.shape[1:])


def _batch(name: str, value, shape) -> np.ndarray:
    """Broadcast to (B, s, s); a scalar c means c times the identity matrix."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        array = array * np.eye(shape[-1])
    try:
        array = np.broadcast_to(array, shape).copy()
    except ValueError:
        raise SupercooledError(f"{name} of shape {array.shape} does not broadcast to {shape}") from None
    if not np.all(np.isfinite(array)):
        raise SupercooledError(f"{name} contains NaN or infinite values")
    return array


def _taylor(alpha, beta, gamma, F0, dF0, K0, times, first_order):
    """Short-time series of F at ``times`` (n, B, s, s), per batch element.

    Second order: F = F0 + t dF0 - t^2/2 alpha^-1 (gamma F0 + beta dF0) (the memory term
    enters F only at O(t^3) when dF0 = 0). First order: beta F' = -gamma F at t = 0 and
    beta F'' = -(gamma + K0) F'(0), so F = F0 + t F'(0) + t^2/2 F''(0).
    """
    eye = np.broadcast_to(np.eye(F0.shape[-1]), F0.shape)
    fo = first_order[:, None, None]
    safe_alpha = np.where(fo, eye, alpha)
    safe_beta = np.where(fo, beta, eye)
    acc2 = -np.linalg.solve(safe_alpha, gamma @ F0 + beta @ dF0)
    v1 = -np.linalg.solve(safe_beta, gamma @ F0)
    acc1 = -np.linalg.solve(safe_beta, (gamma + K0) @ v1)
    velocity = np.where(fo, v1, dF0)
    accel = np.where(fo, acc1, acc2)
    t = np.asarray(times, dtype=float)[:, None, None, None]
    return F0 + t * velocity + 0.5 * t**2 * accel


def _check_kernel_output(K, shape):
    K = np.asarray(K, dtype=float)
    if K.shape != shape:
        raise SupercooledError(f"kernel returned shape {K.shape}, expected {shape}")
    return K


def solve_memory_equation(alpha, beta, gamma, F0, kernel: Kernel, *,
                          settings: SolverSettings | None = None, dF0=None,
                          progress: bool = False) -> Solution:
    """Solve alpha F'' + beta F' + gamma F + int_0^t K(t-u) F'(u) du = 0 for a batch.

    F0 has shape (B, s, s); alpha, beta, gamma, dF0 broadcast to it: a scalar c means c times
    the s x s identity, an (s, s) matrix is shared by the batch, or give (B, s, s). ``kernel(F, t)`` maps F(t) of shape (B, s, s) to K(t) of the same shape.
    Per batch element, alpha = 0 (all entries) selects first-order dynamics (beta must then
    be invertible); otherwise alpha must be invertible. Returns a :class:`Solution` with all
    solver times (ascending, from 0 to the first grid time >= t_max).
    """
    settings = settings or SolverSettings()
    F0 = np.asarray(F0, dtype=float)
    if F0.ndim != 3 or F0.shape[1] != F0.shape[2]:
        raise SupercooledError(f"F0 must have shape (B, s, s), got {F0.shape}")
    shape = F0.shape
    F0 = _batch("F0", F0, shape)
    alpha, beta, gamma = (_batch(n, v, shape) for n, v in (("alpha", alpha), ("beta", beta),
                                                            ("gamma", gamma)))
    dF0 = np.zeros(shape) if dF0 is None else _batch("dF0", dF0, shape)
    first_order = np.all(alpha == 0.0, axis=(1, 2))
    for name, matrix, mask in (("beta", beta, first_order), ("alpha", alpha, ~first_order)):
        if mask.any() and np.any(np.abs(np.linalg.det(matrix[mask])) == 0.0):
            raise SupercooledError(f"{name} must be invertible where it is the highest order")

    N, half = int(settings.n_per_block), int(settings.n_per_block) // 2
    h = float(settings.t_initial)
    F = np.zeros((N,) + shape)
    K = np.zeros_like(F)
    dF = np.zeros_like(F)      # dF[i]: mean of F over (t_{i-1}, t_i)
    dK = np.zeros_like(F)
    diffF = np.zeros_like(F)   # diffF[i] = F[i] - F[i-1]
    diffK = np.zeros_like(F)

    K0 = _check_kernel_output(kernel(F0, 0.0), shape)
    F[:_N_TAYLOR] = _taylor(alpha, beta, gamma, F0, dF0, K0, h * np.arange(_N_TAYLOR), first_order)
    F[0] = F0
    K[0] = K0
    for i in range(1, _N_TAYLOR):
        K[i] = _check_kernel_output(kernel(F[i], i * h), shape)
    _moments(F, K, dF, dK, diffF, diffK, 1, _N_TAYLOR)

    times, Fs, Ks = [h * np.arange(_N_TAYLOR)], [F[:_N_TAYLOR].copy()], [K[:_N_TAYLOR].copy()]
    n_blocks = 1 + max(0, math.ceil(math.log2(settings.t_max / (h * (N - 1)))))
    converged = True
    # a memory given as a function of time alone (no F) is known before each block: the
    # whole block is then solved exactly, in one compiled loop
    explicit = callable(getattr(kernel, "at_times", None))
    bar = _progress(n_blocks, progress)
    start, block = _N_TAYLOR, 0
    while True:
        A_inv = np.linalg.inv(2 * alpha / h**2 + 1.5 * beta / h + gamma + dK[1])
        if explicit:
            stop = _block_stop(start, N, h, settings.t_max)
            K_block = _check_kernel_output(kernel.at_times(h * np.arange(start, stop)),
                                           (stop - start,) + shape)
            _given_memory_block()(start, stop, h, alpha, beta, F, K, dF, dK, diffF, diffK,
                                  A_inv, K_block)
        else:
            stop = N
            for i in range(start, N):
                ok = _solve_point(i, h, alpha, beta, F, K, dF, dK, diffF, diffK, A_inv,
                                  kernel, settings, shape)
                converged &= ok
                if i * h >= settings.t_max:
                    stop = i + 1
                    break
        times.append(h * np.arange(start, stop))
        Fs.append(F[start:stop].copy())
        Ks.append(K[start:stop].copy())
        block += 1
        bar.update(1)
        if stop < N or (N - 1) * h >= settings.t_max:
            break
        _decimate(F, K, dF, dK, diffF, diffK, half)
        h *= 2.0
        start = half
    bar.close()
    if not converged:
        warnings.warn("memory equation: fixed-point iteration did not converge at some times "
                      f"within {settings.max_iterations} iterations", RuntimeWarning, stacklevel=2)
    return Solution(np.concatenate(times), np.concatenate(Fs), np.concatenate(Ks), converged)


def _progress(total, enabled):
    if enabled:
        from tqdm import tqdm  # text bar: tqdm.auto warns in notebooks without ipywidgets

        return tqdm(total=total, desc="time blocks", unit="block")

    class _Null:
        def update(self, n):
            pass

        def close(self):
            pass

    return _Null()


def _moments(F, K, dF, dK, diffF, diffK, lo, hi):
    """Trapezoidal interval means and differences for points lo ... hi - 1 (lo >= 1)."""
    dF[lo:hi] = 0.5 * (F[lo:hi] + F[lo - 1:hi - 1])
    dK[lo:hi] = 0.5 * (K[lo:hi] + K[lo - 1:hi - 1])
    diffF[lo:hi] = F[lo:hi] - F[lo - 1:hi - 1]
    diffK[lo:hi] = K[lo:hi] - K[lo - 1:hi - 1]


def _decimate(F, K, dF, dK, diffF, diffK, half):
    """Double the step: keep every second point, average the moments pairwise."""
    N = F.shape[0]
    dF[1:half] = 0.5 * (dF[1:N - 2:2] + dF[2:N - 1:2])
    dK[1:half] = 0.5 * (dK[1:N - 2:2] + dK[2:N - 1:2])
    F[:half] = F[0:N:2]
    K[:half] = K[0:N:2]
    diffF[1:half] = F[1:half] - F[:half - 1]
    diffK[1:half] = K[1:half] - K[:half - 1]


def _history_sums_numpy(i, ibar, dF, dK, diffF, diffK, out):
    """out += sum_{k=2}^{ibar} (K_{i-k+1} - K_{i-k}) dF_k + sum_{k=2}^{i-ibar} dK_k (F_{i-k+1} - F_{i-k})."""
    if ibar >= 2:
        out += np.matmul(diffK[i - ibar + 1:i][::-1], dF[2:ibar + 1]).sum(axis=0)
    if i - ibar >= 2:
        out += np.matmul(dK[2:i - ibar + 1], diffF[ibar + 1:i][::-1]).sum(axis=0)
    return out


_HISTORY = None


def _history_sums():
    """The O(i) history sums of one time point: compiled with numba (several times faster
    than batched 2 x 2 matmuls in numpy), or the numpy version if numba is missing."""
    global _HISTORY
    if _HISTORY is not None:
        return _HISTORY
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is pinned in requirements.txt
        _HISTORY = _history_sums_numpy
        return _HISTORY

    @numba.njit(cache=True, fastmath=True)
    def history(i, ibar, dF, dK, diffF, diffK, out):
        n_b, s = dF.shape[1], dF.shape[2]
        for b in range(n_b):
            for x in range(s):
                for z in range(s):
                    acc = 0.0
                    for k in range(2, ibar + 1):
                        for y in range(s):
                            acc += diffK[i - k + 1, b, x, y] * dF[k, b, y, z]
                    for k in range(2, i - ibar + 1):
                        for y in range(s):
                            acc += dK[k, b, x, y] * diffF[i - k + 1, b, y, z]
                    out[b, x, z] += acc
        return out

    _HISTORY = history
    return _HISTORY


def _block_stop(start, N, h, t_max) -> int:
    """End (exclusive) of the points solved in a block: N, or one past the first t_i >= t_max
    (the same stop as the point-by-point loop)."""
    past = np.flatnonzero(h * np.arange(start, N) >= t_max)
    return int(start + past[0] + 1) if past.size else N


_GIVEN_BLOCK = None


def _given_memory_block():
    """Points start ... stop - 1 of one block for a memory known in advance (K_block[i - start]
    = K(t_i), independent of F): the equation of the module docstring is then linear in F_i,
    F_i = A^-1 (K_i (F_0 - dF_1) - C_i), solved exactly without iteration. Compiled with
    numba; the numpy fallback runs the same arithmetic point by point."""
    global _GIVEN_BLOCK
    if _GIVEN_BLOCK is not None:
        return _GIVEN_BLOCK
    history = _history_sums()
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is pinned in requirements.txt
        _GIVEN_BLOCK = _given_memory_block_numpy
        return _GIVEN_BLOCK

    @numba.njit(cache=True)
    def block(start, stop, h, alpha, beta, F, K, dF, dK, diffF, diffK, A_inv, K_block):
        n_b, s = F.shape[1], F.shape[2]
        C = np.empty((n_b, s, s))
        R = np.empty((n_b, s, s))
        for i in range(start, stop):
            ibar = i // 2
            for b in range(n_b):
                for x in range(s):
                    for z in range(s):
                        acc = 0.0
                        for y in range(s):
                            acc += alpha[b, x, y] * (-5.0 * F[i - 1, b, y, z]
                                                     + 4.0 * F[i - 2, b, y, z]
                                                     - F[i - 3, b, y, z]) / h**2
                            acc += beta[b, x, y] * (-4.0 * F[i - 1, b, y, z]
                                                    + F[i - 2, b, y, z]) / (2.0 * h)
                            acc += (K[i - ibar, b, x, y] * F[ibar, b, y, z]
                                    - K[i - 1, b, x, y] * dF[1, b, y, z]
                                    - dK[1, b, x, y] * F[i - 1, b, y, z])
                        C[b, x, z] = acc
            history(i, ibar, dF, dK, diffF, diffK, C)
            Ki = K_block[i - start]
            for b in range(n_b):
                for x in range(s):
                    for z in range(s):
                        acc = 0.0
                        for y in range(s):
                            acc += Ki[b, x, y] * (F[0, b, y, z] - dF[1, b, y, z])
                        R[b, x, z] = acc - C[b, x, z]
                for x in range(s):
                    for z in range(s):
                        acc = 0.0
                        for y in range(s):
                            acc += A_inv[b, x, y] * R[b, y, z]
                        F[i, b, x, z] = acc
                        K[i, b, x, z] = Ki[b, x, z]
                        dF[i, b, x, z] = 0.5 * (F[i, b, x, z] + F[i - 1, b, x, z])
                        dK[i, b, x, z] = 0.5 * (K[i, b, x, z] + K[i - 1, b, x, z])
                        diffF[i, b, x, z] = F[i, b, x, z] - F[i - 1, b, x, z]
                        diffK[i, b, x, z] = K[i, b, x, z] - K[i - 1, b, x, z]

    _GIVEN_BLOCK = block
    return _GIVEN_BLOCK


def _given_memory_block_numpy(start, stop, h, alpha, beta, F, K, dF, dK, diffF, diffK, A_inv,
                              K_block):
    for i in range(start, stop):
        C = _known_terms(i, h, alpha, beta, F, K, dF, dK, diffF, diffK, _history_sums_numpy)
        F[i] = A_inv @ (K_block[i - start] @ (F[0] - dF[1]) - C)
        K[i] = K_block[i - start]
        _moments(F, K, dF, dK, diffF, diffK, i, i + 1)


def _known_terms(i, h, alpha, beta, F, K, dF, dK, diffF, diffK, history) -> np.ndarray:
    """C_i of the module docstring: the parts of the equation at t_i that do not involve the
    unknown F_i, K_i (backward differences and the convolution's history sums)."""
    ibar = i // 2
    C = (alpha @ (-5.0 * F[i - 1] + 4.0 * F[i - 2] - F[i - 3])) / h**2
    C += (beta @ (-4.0 * F[i - 1] + F[i - 2])) / (2.0 * h)
    C += K[i - ibar] @ F[ibar] - K[i - 1] @ dF[1] - dK[1] @ F[i - 1]
    history(i, ibar, dF, dK, diffF, diffK, C)
    return C


def _solve_point(i, h, alpha, beta, F, K, dF, dK, diffF, diffK, A_inv, kernel, settings, shape):
    """Solve for F[i], K[i] by fixed-point iteration; fill the moments. Returns convergence."""
    C = _known_terms(i, h, alpha, beta, F, K, dF, dK, diffF, diffK, _history_sums())
    B = F[0] - dF[1]
    # Linear extrapolation is a better first guess than F[i-1] on a smooth curve.
    Fi = 2.0 * F[i - 1] - F[i - 2]
    t = i * h
    ok = False
    for _ in range(int(settings.max_iterations)):
        Ki = _check_kernel_output(kernel(Fi, t), shape)
        new = A_inv @ (Ki @ B - C)
        delta = np.max(np.abs(new - Fi))
        Fi = new
        if delta <= settings.tolerance:
            ok = True
            break
    F[i] = Fi
    # K of the previous iterate differs from K(F_i) by O(tolerance): no extra evaluation.
    K[i] = Ki
    _moments(F, K, dF, dK, diffF, diffK, i, i + 1)
    return ok
