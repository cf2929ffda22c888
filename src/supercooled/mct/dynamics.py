"""MCT dynamics: the collective and tagged correlators in time, and their values at k_p.

Equations of motion (Götze 2009; Nauroth & Kob 1997), matrices in species space, products
with the coefficient on the left, for the collective correlators F_ab(k, t) (F(k, 0) = S(k))
and for the tagged-particle (self) correlators phi_s^a(k, t) (phi_s^a(k, 0) = 1):

    Newtonian: F'' + Omega^2 F + int_0^t M(t - u) F'(u) du = 0,  F'(0) = 0,
    Brownian:  zeta/m F' + Omega^2 F + int_0^t M(t - u) F'(u) du = 0,

with Omega^2 of :func:`supercooled.mct.statics.frequency_matrix` (Omega_s,a^2 = k^2 T / m_a
for the tagged ones). The Brownian form is the overdamped limit written with the *same*
Omega^2 and M: divide it by zeta/m and it is F' + D0 k^2 x S^-1 [F + int m F'] with
D0 = T / zeta and the normalised memory m = Omega^-2 M, the usual Brownian MCT. With
zeta = m = 1 (``friction=1``, the default) it is exactly the paper's eq. (5),
dF/dt + Omega^2 F + int M dF = 0: the memory of eq. (5) *is* MCT's M(k, t), in units of
tau^-2. Both dynamics share the long-time limit. The equations are integrated by the
time-doubling solver of :mod:`supercooled.solver`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.grids import TIME_GRID
from supercooled.mct.statics import MCTSystem, ka_system
from supercooled.solver import SolverSettings, interpolate_log_time, solve_memory_equation


@dataclass
class MCTSolution:
    """MCT dynamics on the solver's times. t: (n_t,); F, M: (n_t, N_k, s, s) collective
    correlator and memory; phi_s, M_s: (n_t, N_k, s) tagged correlator (1 at t = 0) and its
    memory (None if not solved); ``system`` and ``dynamics`` as solved."""

    t: np.ndarray
    F: np.ndarray
    M: np.ndarray
    phi_s: np.ndarray | None
    M_s: np.ndarray | None
    system: MCTSystem
    dynamics: str
    converged: bool


def _dynamics_coefficients(system, dynamics, friction, self_part):
    s, nk = system.n_species, system.k.size
    eye = np.eye(s)
    if dynamics == "newtonian":
        alpha, beta = eye, np.zeros((s, s))
    elif dynamics == "brownian":
        zeta = np.broadcast_to(np.asarray(friction, dtype=float), (s,))
        if np.any(zeta <= 0):
            raise SupercooledError("friction must be positive")
        alpha, beta = np.zeros((s, s)), np.diag(zeta / system.masses)
    else:
        raise SupercooledError(f"dynamics must be 'newtonian' or 'brownian', got {dynamics!r}")
    gamma = system.omega2
    F0 = system.S
    if self_part:
        gamma_s = np.zeros((nk, s, s))
        gamma_s[:, np.arange(s), np.arange(s)] = system.omega2_self
        gamma = np.concatenate([gamma, gamma_s])
        F0 = np.concatenate([F0, np.broadcast_to(eye, (nk, s, s))])
    return alpha, beta, gamma, F0


def solve_mct(system: MCTSystem, *, dynamics: str = "newtonian", friction=1.0,
              tagged: bool = True, settings: SolverSettings | None = None,
              progress: bool = False) -> MCTSolution:
    """Solve the collective (and tagged) MCT equations with the time-doubling solver.

    Collective and tagged problems go in one batch of 2 N_k matrices (the tagged ones
    diagonal), so they share a time grid; the tagged kernel reads the collective F(t) of the
    same time point. Default settings: 128 points per block, first step 1e-6, up to the end
    of grids.TIME_GRID.
    """
    settings = settings or SolverSettings(n_per_block=128, t_initial=1e-6,
                                          t_max=float(TIME_GRID[-1]), tolerance=1e-10)
    alpha, beta, gamma, F0 = _dynamics_coefficients(system, dynamics, friction, tagged)
    nk, s = system.k.size, system.n_species
    idx = np.arange(s)

    def kernel(F, t):
        K = np.zeros_like(F)
        K[:nk] = system.collective_kernel(F[:nk])
        if tagged:
            K[nk + np.arange(nk)[:, None], idx, idx] = system.tagged_kernel(F[:nk], F[nk:, idx, idx])
        return K

    sol = solve_memory_equation(alpha, beta, gamma, F0, kernel, settings=settings,
                                progress=progress)
    phi_s = sol.F[:, nk:, idx, idx] if tagged else None
    M_s = sol.K[:, nk:, idx, idx] if tagged else None
    return MCTSolution(sol.t, sol.F[:, :nk], sol.K[:, :nk], phi_s, M_s, system, dynamics,
                       sol.converged)


@dataclass
class MCTAtPeak:
    """MCT at k_p of one state, on ``times`` (grids.TIME_GRID by default).

    phi_s: (n_t, 2) tagged phi_s^a(k_p, t) (1 at t = 0); F_s: (n_t, 2) the paper's eq. (1)
    target F_s^aa = phi_s^a S_aa(k_p); M: (n_t, 2, 2) memory at k_p (collective M_ab or
    diag(M_s,a) for ``kind="tagged"``); omega2: (2, 2) Omega^2(k_p) of that equation; F0:
    (2, 2) its initial value. NaN beyond the solved window."""

    times: np.ndarray
    k_p: float
    phi_s: np.ndarray
    F_s: np.ndarray
    M: np.ndarray
    omega2: np.ndarray
    F0: np.ndarray
    kind: str
    dynamics: str


def _interpolate_in_k(k, values, k_p):
    """Linear interpolation along axis 1 (the k axis) of values (n_t, N_k, ...)."""
    j = int(np.clip(np.searchsorted(k, k_p) - 1, 0, k.size - 2))
    w = (k_p - k[j]) / (k[j + 1] - k[j])
    return (1 - w) * values[:, j] + w * values[:, j + 1]


def mct_at_peak(S, density, temperature, k_p, *, kind: str = "collective",
                dynamics: str = "brownian", friction=1.0, times=TIME_GRID,
                settings: SolverSettings | None = None, progress: bool = False) -> MCTAtPeak:
    """Solve MCT for one KA state and return F_s and the memory at k_p on ``times``.

    ``S``: (N_k, 2, 2) on grids.K_GRID, normalised by N. Relation to the paper's first-order
    memory equation (eq. 5), which the memory fit solves: with ``dynamics="brownian"`` and
    ``friction=1`` (zeta = m = 1), MCT solves exactly

        dF/dt + Omega^2 F + int_0^t M(t - u) dF/du du = 0

    at every k; so at k_p, ``M`` here is the memory of eq. (5) in the same units (tau^-2):
    - ``kind="collective"``: M_ab(k_p, t) with Omega^2 = k_p^2 T x S^-1(k_p) (the paper's
      coupling), F0 = S(k_p); solving eq. 5 with them gives MCT's collective F_ab(k_p, t);
    - ``kind="tagged"``: diag(M_s,A, M_s,B) with Omega^2 = k_p^2 T I, F0 = diag(S_aa(k_p));
      solving eq. 5 with them gives exactly ``F_s``.
    With ``dynamics="newtonian"`` M is the memory of the second-order equation (same Omega^2;
    its long-time plateau is the same, the short-time shape is not).
    Values at k_p are interpolated linearly between the neighbouring grid points.
    """
    if kind not in ("collective", "tagged"):
        raise SupercooledError(f"kind must be 'collective' or 'tagged', got {kind!r}")
    system = ka_system(S, density, temperature)
    k = system.k
    if not k[0] <= float(k_p) <= k[-1]:
        raise SupercooledError(f"k_p = {k_p} outside the k grid")
    sol = solve_mct(system, dynamics=dynamics, friction=friction, tagged=True,
                    settings=settings, progress=progress)
    phi_kp = _interpolate_in_k(k, sol.phi_s, k_p)
    S_kp = _interpolate_in_k(k, system.S[None], k_p)[0]
    if kind == "collective":
        M_kp = _interpolate_in_k(k, sol.M, k_p)
        omega2 = _interpolate_in_k(k, system.omega2[None], k_p)[0]
        F0 = S_kp
    else:
        Ms = _interpolate_in_k(k, sol.M_s, k_p)
        M_kp = np.zeros(Ms.shape + (2,))
        M_kp[:, [0, 1], [0, 1]] = Ms
        omega2 = np.diag(float(k_p) ** 2 * system.temperature / system.masses)
        F0 = np.diag(np.diag(S_kp))
    times = np.asarray(times, dtype=float)
    phi = interpolate_log_time(sol.t, phi_kp, times)
    return MCTAtPeak(times, float(k_p), phi, phi * np.diag(S_kp)[None, :],
                     interpolate_log_time(sol.t, M_kp, times), omega2, F0, kind, dynamics)


def mct_memory_at_kp(S, density, temperature, k_p, **kwargs):
    """(times, M) of :func:`mct_at_peak`: MCT's memory at k_p, (n_t, 2, 2), for the ES start.

    See :func:`mct_at_peak` for the normalisation (Brownian, friction 1 = the paper's eq. 5).
    """
    result = mct_at_peak(S, density, temperature, k_p, **kwargs)
    return result.times, result.M
