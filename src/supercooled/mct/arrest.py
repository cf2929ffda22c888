"""Structural arrest in MCT: non-ergodicity parameters, critical points, exponent parameter.

Long-time limits (non-ergodicity parameters): F(inf) = (Omega^2 + M[F(inf)])^-1 M[F(inf)] S,
found by the monotone fixed-point iteration from F = S (Götze); the tagged analogue is
f_s,a = M_s,a / (Omega_s,a^2 + M_s,a). The glass transition is where the largest solution
jumps from 0 to a finite value: bisection in a control parameter finds it, for hard spheres
in the packing fraction, for a family S(k; T) given at a few temperatures in T (T_mct).
Everything here takes arrays; reading a series from the library is
:mod:`supercooled.mct_table`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID
from supercooled.mct.statics import MCTSystem, hard_sphere_system, ka_system

#: Critical packing fraction of Percus–Yevick hard spheres on K_GRID (Franosch et al. 1997).
HARD_SPHERE_PACKING_FRACTION_C = 0.515912

#: A state is glassy if max |F(inf)| / max |S| exceeds this at the end of the iteration.
_GLASS_THRESHOLD = 1e-6


@dataclass
class NonErgodicity:
    """Long-time limits. F: (N_k, s, s) F_ab(k, inf) (0 in the liquid); f_s: (N_k, s) tagged
    f_s^a(k) (None unless asked for); glass: F != 0; iterations: fixed-point iterations."""

    F: np.ndarray
    glass: bool
    iterations: int
    converged: bool
    f_s: np.ndarray | None = None

    def normalized(self, system: MCTSystem) -> np.ndarray:
        """f_ab(k) = F_ab(k, inf) / S_ab(k) (elementwise)."""
        return self.F / system.S


def nonergodicity_parameters(system: MCTSystem, *, tolerance: float = 1e-10,
                             max_iterations: int = 200_000, start=None,
                             tagged: bool = False) -> NonErgodicity:
    """Iterate F <- (Omega^2 + M[F])^-1 M[F] S from F = S (or ``start``, an upper bound).

    The map is monotone, so from above it converges to the largest solution: zero in the
    liquid, the glass plateau otherwise. Stops when max |dF| <= tolerance; the state is glassy
    if max |F| / max |S| > 1e-6 at the end. With ``tagged`` the tagged f_s^a are iterated too.
    """
    S = system.S
    F = S.copy() if start is None else np.array(start, dtype=float)
    scale = np.max(np.abs(S))
    converged, iterations = False, 0
    while iterations < int(max_iterations):
        iterations += 1
        M = system.collective_kernel(F)
        new = np.linalg.solve(system.omega2 + M, M @ S)
        delta = np.max(np.abs(new - F))
        F = new
        if delta <= tolerance * scale or np.max(np.abs(F)) < 1e-12 * scale:
            converged = True
            break
    glass = bool(np.max(np.abs(F)) > _GLASS_THRESHOLD * scale)
    f_s = tagged_nonergodicity(system, F, tolerance=tolerance) if tagged else None
    return NonErgodicity(F, glass, iterations, converged, f_s)


def tagged_nonergodicity(system: MCTSystem, F_inf, *, tolerance: float = 1e-10,
                         max_iterations: int = 100_000) -> np.ndarray:
    """Iterate f_s <- M_s[F_inf, f_s] / (Omega_s^2 + M_s[F_inf, f_s]) from f_s = 1."""
    f = np.ones((system.k.size, system.n_species))
    for _ in range(int(max_iterations)):
        M = system.tagged_kernel(F_inf, f)
        new = M / (system.omega2_self + M)
        delta = np.max(np.abs(new - f))
        f = new
        if delta <= tolerance:
            break
    return f


@dataclass
class CriticalPoint:
    """Result of :func:`find_critical_point`: the control parameter at the transition
    (bracketed within ``tolerance``), the glass-side plateau there and the bracket."""

    value: float
    liquid_side: float
    glass_side: float
    plateau: NonErgodicity
    system: MCTSystem
    evaluations: int


def find_critical_point(make_system: Callable[[float], MCTSystem], liquid, glass, *,
                        tolerance: float = 1e-7, max_iterations: int = 200_000,
                        fixed_point_tolerance: float = 1e-9,
                        progress: bool = False) -> CriticalPoint:
    """Bisect a control parameter between a ``liquid`` and a ``glass`` value (either order).

    ``make_system(value)`` builds the MCTSystem (packing fraction for hard spheres,
    temperature for a family S(k; T)). Each step decides glass/liquid by
    :func:`nonergodicity_parameters`, warm-started from the last glass solution: it lies close
    to the new plateau, and from any non-zero start the iteration still ends at zero in the
    liquid and on the (single) glass solution otherwise. ``fixed_point_tolerance`` only has to
    separate glass from liquid.
    """
    liquid, glass = float(liquid), float(glass)
    opts = dict(max_iterations=max_iterations, tolerance=fixed_point_tolerance)
    first_glass = nonergodicity_parameters(make_system(glass), **opts)
    if not first_glass.glass:
        raise SupercooledError(f"no glass at the glass-side bound {glass}: widen the bracket")
    if nonergodicity_parameters(make_system(liquid), **opts).glass:
        raise SupercooledError(f"already glassy at the liquid-side bound {liquid}")
    best, evaluations = first_glass, 2
    n_steps = max(0, math.ceil(math.log2(abs(glass - liquid) / tolerance)))
    steps = range(n_steps)
    if progress:
        from tqdm import tqdm  # text bar: tqdm.auto warns in notebooks without ipywidgets

        steps = tqdm(steps, desc="bisection", unit="step")
    for _ in steps:
        middle = 0.5 * (liquid + glass)
        system = make_system(middle)
        result = nonergodicity_parameters(system, start=best.F, **opts)
        evaluations += 1
        if result.glass:
            glass, best = middle, result
        else:
            liquid = middle
    system = make_system(glass)
    return CriticalPoint(0.5 * (liquid + glass), liquid, glass, best, system, evaluations)


def hard_sphere_critical_point(k=K_GRID, *, bracket=(0.50, 0.53), tolerance: float = 1e-7,
                               progress: bool = False) -> CriticalPoint:
    """Critical packing fraction of PY hard spheres (0.515912 on grids.K_GRID)."""
    return find_critical_point(lambda eta: hard_sphere_system(eta, k), bracket[0], bracket[1],
                               tolerance=tolerance, progress=progress)


def exponent_parameter(system: MCTSystem, F_c) -> float:
    """MCT exponent parameter lambda at a (one-component) critical point.

    With the normalised plateau f_q = F_q / S_q and m_q[f] = M_q[S f] / Omega_q^2, the
    stability matrix is C_qk = (1 - f_q)^2 dm_q/df_k; e and e^ are its right and left
    eigenvectors for the eigenvalue closest to 1, and

        lambda = sum_q e^_q (1 - f_q)^2 m_q[e] / sum_q e^_q e_q^2 / (1 - f_q),

    (m quadratic, so (1/2) d^2 m [e, e] = m[e]); this reduces to lambda = (1 - f)^3 m''/2 for
    a single mode (1/2 for the F2 model). Derivatives of the quadratic M are exact central
    differences.
    """
    if system.n_species != 1:
        raise SupercooledError("exponent_parameter is implemented for one component")
    S = system.S[:, 0, 0]
    w2 = system.omega2[:, 0, 0]
    F_c = np.asarray(F_c, dtype=float).reshape(-1)
    f = F_c / S
    n = f.size

    def m(f_vec):
        return system.collective_kernel((S * f_vec)[:, None, None])[:, 0, 0] / w2

    jac = np.empty((n, n))
    for j in range(n):
        step = np.zeros(n)
        step[j] = 1e-3
        jac[:, j] = (m(f + step) - m(f - step)) / 2e-3
    C = (1 - f)[:, None] ** 2 * jac
    values, right = np.linalg.eig(C)
    i = np.argmin(np.abs(values - 1))
    lvalues, left = np.linalg.eig(C.T)
    li = np.argmin(np.abs(lvalues - 1))
    e, e_hat = right[:, i].real, left[:, li].real
    numerator = np.sum(e_hat * (1 - f) ** 2 * m(e))
    denominator = np.sum(e_hat * e**2 / (1 - f))
    return float(numerator / denominator)


@dataclass
class CriticalTemperature:
    """T_mct of one series. extrapolated: the series did not bracket T_mct and S(k; T) was
    extrapolated linearly in T from the two nearest states. bracket: the two temperatures
    used (liquid side, glass side, where available). plateau, system: the glass-side
    non-ergodicity parameters at T_mct and the interpolated statics there."""

    interaction: str
    density: float
    T_mct: float
    extrapolated: bool
    n_states: int
    T_lowest: float
    T_highest: float
    bracket: tuple
    note: str = ""
    plateau: NonErgodicity | None = field(default=None, repr=False)
    system: MCTSystem | None = field(default=None, repr=False)


def critical_temperature_from_series(temperatures, structures, density, *, k=K_GRID,
                                     tolerance: float = 1e-4, interaction: str = "",
                                     max_extrapolation: float = 0.5) -> CriticalTemperature:
    """T_mct of a family S(k; T) given at ascending ``temperatures`` (structures (n_T, N_k, 2, 2)).

    Each state is classified (glass: non-zero long-time limit). Between the highest glassy
    and the next liquid temperature S(k; T) is interpolated linearly in T and T_mct is found
    by bisection to ``tolerance`` (relative). If every state is liquid (glassy), S is
    extrapolated linearly in T from the two lowest (highest) states, searching at most
    ``max_extrapolation`` x T below (above) the end of the series; the result is flagged
    ``extrapolated`` and is NaN if no transition lies within that range.
    """
    T = np.asarray(temperatures, dtype=float)
    S = np.asarray(structures, dtype=float)
    n = T.size
    if n < 2:
        return CriticalTemperature(interaction, float(density), float("nan"), False, n,
                                   float(T.min()) if n else float("nan"),
                                   float(T.max()) if n else float("nan"), (np.nan, np.nan),
                                   "need at least two temperatures")

    def family(i, j):
        def make(temp):
            w = (temp - T[i]) / (T[j] - T[i])
            return ka_system((1 - w) * S[i] + w * S[j], density, temp, k)
        return make

    glassy = np.array([nonergodicity_parameters(ka_system(S[i], density, T[i], k),
                                                tolerance=1e-9).glass for i in range(n)])
    common = dict(interaction=interaction, density=float(density), n_states=n,
                  T_lowest=float(T[0]), T_highest=float(T[-1]))
    liquid_above = np.flatnonzero(glassy[:-1] & ~glassy[1:])
    if liquid_above.size:
        i = int(liquid_above[-1])
        cp = find_critical_point(family(i, i + 1), T[i + 1], T[i], tolerance=tolerance * T[i])
        note = "" if glassy[:i].all() and not glassy[i + 1:].any() else \
            "non-monotonic glass/liquid classification along the series"
        return CriticalTemperature(T_mct=cp.value, extrapolated=False,
                                   bracket=(float(T[i + 1]), float(T[i])), note=note,
                                   plateau=cp.plateau, system=cp.system, **common)
    if not glassy.any():   # all liquid: extrapolate below the lowest temperature
        i, j = 0, 1
        liquid_end, glass_end = T[0], T[0] * (1 - max_extrapolation)
        note = "all states liquid: S(k;T) extrapolated linearly below the lowest T"
    else:                  # all glassy: extrapolate above the highest temperature
        i, j = n - 2, n - 1
        liquid_end, glass_end = T[-1] * (1 + max_extrapolation), T[-1]
        note = "all states glassy: S(k;T) extrapolated linearly above the highest T"
    try:
        cp = find_critical_point(family(i, j), liquid_end, glass_end, tolerance=tolerance * T[j])
        value, plateau, system = cp.value, cp.plateau, cp.system
    except SupercooledError as error:
        value, plateau, system = float("nan"), None, None
        note = f"{note}; {error}"
    return CriticalTemperature(T_mct=value, extrapolated=True,
                               bracket=(float(T[i]), float(T[j])), note=note, plateau=plateau,
                               system=system, **common)
