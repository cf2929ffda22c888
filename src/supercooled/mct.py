"""Multi-component mode-coupling theory (MCT) on the k grid of design.md.

Conventions (design.md). Partial structure factors are normalised by the total number N,
S_ab(k) = (1/N) <rho_a(k) rho_b(-k)>, so S_aa(inf) = x_a. Ornstein–Zernike for mixtures then
reads, with n the total number density and x_a the number fractions,

    n c_ab(k) = delta_ab / x_a - (S^-1)_ab(k).

Equations of motion (Götze 2009; Nauroth & Kob 1997), matrices in species space, products
with the coefficient on the left, for the collective correlators F_ab(k, t) (F(k, 0) = S(k))
and for the tagged-particle (self) correlators phi_s^a(k, t) (phi_s^a(k, 0) = 1):

    Newtonian: F'' + Omega^2 F + int_0^t M(t - u) F'(u) du = 0,  F'(0) = 0,
    Brownian:  zeta/m F' + Omega^2 F + int_0^t M(t - u) F'(u) du = 0,
    Omega^2_ab(k) = k^2 T x_a / m_a (S^-1)_ab(k),  Omega_s,a^2(k) = k^2 T / m_a.

The Brownian form is the overdamped limit written with the *same* Omega^2 and M: divide it by
zeta/m and it is F' + D0 k^2 x S^-1 [F + int m F'] with D0 = T / zeta and the normalised
memory m = Omega^-2 M, the usual Brownian MCT. With zeta = m = 1 (``friction=1``, the
default) it is exactly the paper's eq. (5), dF/dt + Omega^2 F + int M dF = 0: the memory of
eq. (5) *is* MCT's M(k, t) below, in units of tau^-2. Both dynamics share the long-time limit.

Memory kernels (quadratic functionals; C = n c the dimensionless direct correlation matrix):

    M_ab(q, t) = T / (n x_b m_a) int d^3k / (2 pi)^3
                 [ (q^.k)^2 (C F C)_ab(k) F_ab(p) + (q^.k)(q^.p) (C F)_ab(k) (F C)_ab(p) ],
    M_s,a(q, t) = T / (n m_a) int d^3k / (2 pi)^3 (q^.k)^2 (C F C)_aa(k) phi_s^a(p),

with p = q - k, q^.k = (q^2 + k^2 - p^2) / 2q and q^.p = (q^2 - k^2 + p^2) / 2q. (The
Nauroth–Kob vertex V_a,alpha,beta = (q^.k) delta_a,beta c_a,alpha(k) + (q^.p) delta_a,alpha
c_a,beta(p) gives four terms; the k <-> p symmetry of the domain pairs them, hence the missing
1/2.) In bipolar coordinates d^3k = 2 pi k p dk dp / q over |q - k| < p < q + k; on the
midpoint grid k_j = (j - 1/2) dk this is the Riemann sum over p_l with |i - j| < l < i + j
(1-based), truncated at N_k. Expanding (q^.k)^2 and (q^.k)(q^.p) in powers of p^2 turns the
inner sums into differences of prefix sums of p^(1+2m) F(p), m = 0, 1, 2 (Bengtzelius,
Götze & Sjölander 1984), so a kernel evaluation costs O(N_k^2 s^2) (compiled with numba).

Long-time limits (non-ergodicity parameters): F(inf) = (Omega^2 + M[F(inf)])^-1 M[F(inf)] S,
found by the monotone fixed-point iteration from F = S (Götze); the tagged analogue is
f_s,a = M_s,a / (Omega_s,a^2 + M_s,a). The glass transition is where the largest solution
jumps from 0 to a finite value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.solver import SolverSettings, interpolate_log_time, solve_memory_equation

#: Critical packing fraction of Percus–Yevick hard spheres on K_GRID (Franosch et al. 1997).
HARD_SPHERE_PACKING_FRACTION_C = 0.515912

_GLASS_THRESHOLD = 1e-6


# ============================================================================================
# Statics: Ornstein–Zernike and Percus–Yevick hard spheres
# ============================================================================================


def _fractions(fractions) -> np.ndarray:
    x = np.atleast_1d(np.asarray(fractions, dtype=float))
    if x.ndim != 1 or np.any(x <= 0) or not np.isclose(x.sum(), 1.0):
        raise SupercooledError(f"number fractions must be positive and sum to 1, got {fractions!r}")
    return x


def _as_matrix_S(S) -> np.ndarray:
    S = np.asarray(S, dtype=float)
    if S.ndim == 1:
        S = S[:, None, None]
    if S.ndim != 3 or S.shape[1] != S.shape[2]:
        raise SupercooledError(f"S must have shape (N_k,) or (N_k, s, s), got {S.shape}")
    if not np.all(np.isfinite(S)):
        raise SupercooledError("S(k) contains NaN or infinite values")
    return S


def direct_correlation(S, fractions, density) -> np.ndarray:
    """c_ab(k) from S_ab(k) (normalised by N) by Ornstein–Zernike: n c = diag(1/x) - S^-1.

    Returns c (units of volume, sigma_AA^3), shape (N_k, s, s).
    """
    S, x = _as_matrix_S(S), _fractions(fractions)
    return (np.diag(1.0 / x) - np.linalg.inv(S)) / float(density)


def structure_from_direct_correlation(c, fractions, density) -> np.ndarray:
    """Inverse of :func:`direct_correlation`: S = (diag(1/x) - n c)^-1."""
    c = _as_matrix_S(c)
    x = _fractions(fractions)
    return np.linalg.inv(np.diag(1.0 / x) - float(density) * c)


def _packing(eta) -> float:
    eta = float(eta)
    if not 0.0 < eta < 1.0:
        raise SupercooledError(f"packing fraction must lie in (0, 1), got {eta}")
    return eta


def percus_yevick_direct_correlation(k, packing_fraction, diameter: float = 1.0) -> np.ndarray:
    """c(k) of one-component hard spheres in the Percus–Yevick approximation (Wertheim 1963).

    c(r) = -a + b r/d - (eta a / 2) (r/d)^3 for r < d (zero outside), with
    a = (1 + 2 eta)^2 / (1 - eta)^4 and b = 6 eta (1 + eta/2)^2 / (1 - eta)^4;
    c(k) = 4 pi int_0^d r^2 c(r) sin(kr)/(kr) dr in closed form (units of d^3).
    """
    eta = _packing(packing_fraction)
    d = float(diameter)
    kd = np.asarray(k, dtype=float) * d
    if np.any(kd <= 0):
        raise SupercooledError("wave numbers must be positive")
    a = (1 + 2 * eta) ** 2 / (1 - eta) ** 4
    b = 6 * eta * (1 + eta / 2) ** 2 / (1 - eta) ** 4
    s, c = np.sin(kd), np.cos(kd)
    # J_m = int_0^1 x^m sin(kd x) dx for m = 1, 2, 4
    j1 = (s - kd * c) / kd**2
    j2 = (2 * kd * s - (kd**2 - 2) * c - 2) / kd**3
    j4 = ((4 * kd**3 - 24 * kd) * s - (kd**4 - 12 * kd**2 + 24) * c + 24) / kd**5
    # the closed forms cancel catastrophically for small k d: use the sine series there
    small = kd < 0.05
    if np.any(small):
        j1, j2, j4 = (np.where(small, kd / (m + 2) - kd**3 / (6 * (m + 4)) + kd**5 / (120 * (m + 6)), j)
                      for m, j in ((1, j1), (2, j2), (4, j4)))
    return 4 * np.pi * d**3 / kd * (-a * j1 + b * j2 - 0.5 * eta * a * j4)


def percus_yevick_structure(k, packing_fraction, diameter: float = 1.0) -> np.ndarray:
    """S(k) = 1 / (1 - n c(k)) of Percus–Yevick hard spheres, n = 6 eta / (pi d^3)."""
    eta = _packing(packing_fraction)
    n = 6 * eta / (np.pi * float(diameter) ** 3)
    return 1.0 / (1.0 - n * percus_yevick_direct_correlation(k, eta, diameter))


def percus_yevick_mixture(k, diameters, fractions, density) -> np.ndarray:
    """Partial S_ab(k) (normalised by N) of an additive hard-sphere mixture, Percus–Yevick.

    Baxter's (1970) factorisation: with rho_i = x_i n, sigma_ij = (sigma_i + sigma_j)/2,
    lambda_ij = (sigma_i - sigma_j)/2, xi_m = (pi/6) sum_l rho_l sigma_l^m,

        Q_ij(r) = a_i (r^2 - sigma_ij^2)/2 + b_i (r - sigma_ij)   on lambda_ij < r < sigma_ij,
        a_i = (1 - xi_3 + 3 sigma_i xi_2) / (1 - xi_3)^2,  b_i = -3 sigma_i^2 xi_2 / 2(1 - xi_3)^2,
        Q^_ij(k) = delta_ij - 2 pi sqrt(rho_i rho_j) int e^{ikr} Q_ij(r) dr,

    and the Ashcroft–Langreth matrix S^AL = [Q^(k)^T Q^(-k)]^-1 is converted to the
    N-normalisation S_ab = sqrt(x_a x_b) S^AL_ab. The r integrals are done by Gauss–Legendre
    quadrature (64 + k_max sigma_max nodes: exact for the polynomial, resolved phase).
    """
    k = np.asarray(k, dtype=float)
    sig = np.atleast_1d(np.asarray(diameters, dtype=float))
    x = _fractions(fractions)
    if sig.shape != x.shape or np.any(sig <= 0):
        raise SupercooledError("need one positive diameter per species")
    n = float(density)
    rho = n * x
    xi2 = np.pi / 6 * np.sum(rho * sig**2)
    xi3 = np.pi / 6 * np.sum(rho * sig**3)
    if not 0 < xi3 < 1:
        raise SupercooledError(f"packing fraction {xi3} out of (0, 1)")
    a = (1 - xi3 + 3 * sig * xi2) / (1 - xi3) ** 2
    b = -1.5 * sig**2 * xi2 / (1 - xi3) ** 2
    # enough nodes to resolve the phase k r over the longest interval (sigma_max)
    n_nodes = 64 + int(np.max(np.abs(k), initial=0.0) * sig.max())
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    s = sig.size
    Q = np.zeros((k.size, s, s), dtype=complex)
    for i in range(s):
        for j in range(s):
            lo, hi = 0.5 * (sig[i] - sig[j]), 0.5 * (sig[i] + sig[j])
            r = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
            w = 0.5 * (hi - lo) * weights
            q_r = 0.5 * a[i] * (r**2 - hi**2) + b[i] * (r - hi)
            integral = (np.exp(1j * np.outer(k, r)) * (w * q_r)).sum(axis=1)
            Q[:, i, j] = (i == j) - 2 * np.pi * np.sqrt(rho[i] * rho[j]) * integral
    inverse_al = np.einsum("kji,kjl->kil", Q, Q.conj())  # Q^T(k) Q(-k)
    s_al = np.linalg.inv(inverse_al).real
    return s_al * np.sqrt(np.outer(x, x))


# ============================================================================================
# Kernels: Bengtzelius summation on the midpoint grid (numba)
# ============================================================================================

_NUMBA_KERNELS = None


def _numba_kernels():
    """Compile (once, cached on disk) the O(N_k^2) bipolar sums."""
    global _NUMBA_KERNELS
    if _NUMBA_KERNELS is not None:
        return _NUMBA_KERNELS
    import numba

    @numba.njit(cache=True, fastmath=True)
    def prefix_moments(p, Y, diagonal):
        # P[a, b, l, m] = sum_{l' < l} p_l'^(1 + 2m) Y[l', a, b]  (shape (s, s, N + 1, 3))
        n, s = Y.shape[0], Y.shape[1]
        P = np.zeros((s, s, n + 1, 3))
        for a in range(s):
            for b in range(s):
                if diagonal and a != b:
                    continue
                c0 = 0.0
                c1 = 0.0
                c2 = 0.0
                for m in range(n):
                    w0 = p[m]
                    p2 = w0 * w0
                    y = Y[m, a, b]
                    c0 += w0 * y
                    c1 += w0 * p2 * y
                    c2 += w0 * p2 * p2 * y
                    P[a, b, m + 1, 0] = c0
                    P[a, b, m + 1, 1] = c1
                    P[a, b, m + 1, 2] = c2
        return P

    @numba.njit(cache=True, fastmath=True)
    def bipolar(q, coef1, X1, P1, coef2, X2, P2, mode):
        # out[i] = sum_j k_j sum_{l in D_ij} p_l [ (q.k)^2 X1_j Y1_l + (q.k)(q.p) X2_j Y2_l ]
        # elementwise in (a, b); D_ij = {l : |i - j| <= l <= min(i + j, N - 1)} (0-based);
        # coef[i, j, m]: the coefficient of p^2m of the geometric factor. mode 0: one term,
        # diagonal only (tagged); mode 1: both terms, upper triangle mirrored (collective,
        # whose integrated sum is symmetric in (a, b) by the k <-> p symmetry of the domain).
        n, s = X1.shape[0], X1.shape[1]
        out = np.zeros((n, s, s))
        for a in range(s):
            for b in range(a, s):
                if mode == 0 and b != a:
                    continue
                for i in range(n):
                    acc = 0.0
                    for j in range(n):
                        lo = abs(i - j)
                        hi = min(i + j, n - 1) + 1
                        t = X1[j, a, b] * (coef1[i, j, 0] * (P1[a, b, hi, 0] - P1[a, b, lo, 0])
                                           + coef1[i, j, 1] * (P1[a, b, hi, 1] - P1[a, b, lo, 1])
                                           + coef1[i, j, 2] * (P1[a, b, hi, 2] - P1[a, b, lo, 2]))
                        if mode == 1:
                            t += X2[j, a, b] * (coef2[i, j, 0] * (P2[a, b, hi, 0] - P2[a, b, lo, 0])
                                                + coef2[i, j, 1] * (P2[a, b, hi, 1] - P2[a, b, lo, 1])
                                                + coef2[i, j, 2] * (P2[a, b, hi, 2] - P2[a, b, lo, 2]))
                        acc += q[j] * t
                    out[i, a, b] = acc
                    out[i, b, a] = acc
        return out

    _NUMBA_KERNELS = (prefix_moments, bipolar)
    return _NUMBA_KERNELS


def _geometric_coefficients(q):
    """(q.k)^2 = sum_m A_m p^2m and (q.k)(q.p) = sum_m B_m p^2m: A, B of shape (N, N, 3)."""
    q2 = (q**2)[:, None]
    k2 = (q**2)[None, :]
    inv = np.broadcast_to(1.0 / (4.0 * q2), (q.size, q.size))
    A = np.stack([(q2 + k2) ** 2 * inv, -2.0 * (q2 + k2) * inv, inv], axis=-1)
    B = np.stack([(q2**2 - k2**2) * inv, 2.0 * k2 * inv, -inv], axis=-1)
    return np.ascontiguousarray(A), np.ascontiguousarray(B)


def _check_midpoint_grid(k) -> tuple[np.ndarray, float]:
    k = np.asarray(k, dtype=float)
    if k.ndim != 1 or k.size < 4:
        raise SupercooledError("the k grid must be 1-D with at least 4 points")
    dk = 2 * k[0]
    expected = (np.arange(k.size) + 0.5) * dk
    if dk <= 0 or not np.allclose(k, expected, rtol=1e-9, atol=1e-12):
        raise SupercooledError("MCT needs the midpoint grid k_i = (i - 1/2) dk (like grids.K_GRID)")
    return expected, dk


@dataclass
class MCTSystem:
    """Static input of MCT: S_ab(k) on a midpoint grid, composition, density, temperature.

    k: (N_k,) grid k_i = (i - 1/2) dk. S: (N_k, s, s) normalised by N (or (N_k,) for one
    component). fractions: (s,) number fractions x_a. density: total n. temperature: k_B T.
    masses: (s,) m_a (default 1). Derived: ``C`` = n c (dimensionless, from OZ), ``omega2``
    (N_k, s, s) = k^2 T x_a / m_a (S^-1)_ab and ``omega2_self`` (N_k, s) = k^2 T / m_a.
    """

    k: np.ndarray
    S: np.ndarray
    fractions: np.ndarray
    density: float
    temperature: float = 1.0
    masses: np.ndarray | None = None
    C: np.ndarray = field(init=False, repr=False)
    omega2: np.ndarray = field(init=False, repr=False)
    omega2_self: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.k, self.dk = _check_midpoint_grid(self.k)
        self.S = _as_matrix_S(self.S)
        self.fractions = _fractions(self.fractions)
        s = self.fractions.size
        if self.S.shape != (self.k.size, s, s):
            raise SupercooledError(f"S has shape {self.S.shape}, expected {(self.k.size, s, s)}")
        for name in ("density", "temperature"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise SupercooledError(f"{name} must be positive, got {value}")
            setattr(self, name, value)
        self.masses = np.ones(s) if self.masses is None else np.broadcast_to(
            np.asarray(self.masses, dtype=float), (s,)).copy()
        if np.any(self.masses <= 0):
            raise SupercooledError("masses must be positive")
        s_inv = np.linalg.inv(self.S)
        self.C = np.diag(1.0 / self.fractions) - s_inv
        k2T = self.k[:, None, None] ** 2 * self.temperature
        self.omega2 = k2T * (self.fractions / self.masses)[None, :, None] * s_inv
        self.omega2_self = self.k[:, None] ** 2 * self.temperature / self.masses[None, :]
        geometry = self.dk**2 / (4 * np.pi**2 * self.k)
        self._pre = (self.temperature / self.density * geometry[:, None, None]
                     / (self.masses[None, :, None] * self.fractions[None, None, :]))
        self._pre_self = self.temperature / self.density * geometry[:, None] / self.masses[None, :]
        self._coefA, self._coefB = _geometric_coefficients(self.k)

    @property
    def n_species(self) -> int:
        return self.fractions.size

    def collective_kernel(self, F) -> np.ndarray:
        """M_ab(k) (N_k, s, s) of the collective correlators F (N_k, s, s); see module doc."""
        prefix, bipolar = _numba_kernels()
        F = np.ascontiguousarray(F, dtype=float)
        CF = self.C @ F
        FC = F @ self.C
        CFC = CF @ self.C
        out = bipolar(self.k, self._coefA, CFC, prefix(self.k, F, False),
                      self._coefB, CF, prefix(self.k, FC, False), 1)
        return self._pre * out

    def tagged_kernel(self, F, phi_s) -> np.ndarray:
        """M_s,a(k) (N_k, s) for the tagged correlators phi_s (N_k, s) given F (N_k, s, s)."""
        prefix, bipolar = _numba_kernels()
        F = np.asarray(F, dtype=float)
        s, idx = self.n_species, np.arange(self.n_species)
        X = np.zeros((self.k.size, s, s))
        Y = np.zeros((self.k.size, s, s))
        X[:, idx, idx] = np.einsum("kaa->ka", self.C @ F @ self.C)
        Y[:, idx, idx] = np.asarray(phi_s, dtype=float)
        out = bipolar(self.k, self._coefA, X, prefix(self.k, Y, True), self._coefB, X,
                      np.zeros((s, s, 1, 3)), 0)
        return self._pre_self * out[:, idx, idx]

    def at_temperature(self, S, temperature) -> MCTSystem:
        """The same composition, density and masses with another S(k) and temperature."""
        return MCTSystem(self.k, S, self.fractions, self.density, temperature, self.masses)


def hard_sphere_system(packing_fraction, k=K_GRID) -> MCTSystem:
    """One-component Percus–Yevick hard spheres (d = 1, T = 1, m = 1) on the grid ``k``."""
    eta = _packing(packing_fraction)
    return MCTSystem(np.asarray(k), percus_yevick_structure(k, eta), [1.0], 6 * eta / np.pi)


def binary_hard_sphere_system(packing_fraction, fractions=(0.5, 0.5), size_ratio=1.0,
                              k=K_GRID) -> MCTSystem:
    """Binary Percus–Yevick hard spheres (sigma_A = 1, sigma_B = size_ratio) at total packing
    fraction eta = (pi/6) n sum_a x_a sigma_a^3, via :func:`percus_yevick_mixture`."""
    eta = _packing(packing_fraction)
    x = _fractions(fractions)
    sig = np.array([1.0, float(size_ratio)])
    density = 6 * eta / (np.pi * np.sum(x * sig**3))
    return MCTSystem(np.asarray(k), percus_yevick_mixture(k, sig, x, density), x, density)


# ============================================================================================
# Long-time limits, glass transition, exponent parameter
# ============================================================================================


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
    result = NonErgodicity(F, glass, iterations, converged)
    if tagged:
        result.f_s = tagged_nonergodicity(system, F, tolerance=tolerance)
    return result


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
        from tqdm.auto import tqdm

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


# ============================================================================================
# Dynamics
# ============================================================================================


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


# ============================================================================================
# Library: KA mixtures, T_mct, F_s and memory at k_p
# ============================================================================================


def _state_S(ds_state) -> np.ndarray:
    """(N_k, 2, 2) S matrix from one library state's S(pair, k)."""
    S = ds_state["S"]
    aa, ab, bb = (np.asarray(S.sel(pair=p).values, dtype=float) for p in ("AA", "AB", "BB"))
    return np.stack([np.stack([aa, ab], -1), np.stack([ab, bb], -1)], -2)


def ka_system(S, density, temperature, k=K_GRID) -> MCTSystem:
    """MCTSystem of the 80:20 Kob–Andersen mixture (equal masses m = 1) from S (N_k, 2, 2)."""
    from supercooled.systems import FRACTION_A, MASS

    return MCTSystem(np.asarray(k), S, [FRACTION_A, 1 - FRACTION_A], density, temperature,
                     [MASS, MASS])


def temperature_series(library_ds, interaction, density, *, equilibrated_only: bool = True):
    """(T, S) of one (interaction, density) series: measured temperatures ascending and
    S (n_T, N_k, 2, 2); states with the same target temperature are averaged; crystallised
    states are dropped, and non-equilibrated ones unless ``equilibrated_only`` is False."""
    from supercooled.library import select
    from supercooled.systems import normalize_interaction

    ds = select(library_ds, interaction=normalize_interaction(interaction), density=float(density))
    keep = np.ones(ds.sizes.get("state", 0), dtype=bool)
    if "crystallized" in ds.coords:
        keep &= np.asarray(ds["crystallized"].values).astype(float) == 0
    if equilibrated_only and "equilibrated" in ds.coords:
        keep &= np.asarray(ds["equilibrated"].values).astype(float) == 1
    ds = ds.isel(state=np.flatnonzero(keep))
    if ds.sizes.get("state", 0) == 0:
        return np.empty(0), np.empty((0, K_GRID.size, 2, 2))
    targets = np.asarray(ds["temperature_target"].values, dtype=float)
    temps, structures = [], []
    for target in np.unique(targets):
        members = np.flatnonzero(np.isclose(targets, target))
        temps.append(float(np.mean(np.asarray(ds["temperature"].values, float)[members])))
        structures.append(np.mean([_state_S(ds.isel(state=m)) for m in members], axis=0))
    order = np.argsort(temps)
    return np.asarray(temps)[order], np.asarray(structures)[order]


@dataclass
class CriticalTemperature:
    """T_mct of one series. extrapolated: the series did not bracket T_mct and S(k; T) was
    extrapolated linearly in T from the two nearest states. bracket: the two temperatures
    used (liquid side, glass side, where available). plateau, system: the glass-side
    non-ergodicity parameters at T_mct and the interpolated statics there (not in the CSV)."""

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

    def as_row(self) -> dict:
        return {"interaction": self.interaction, "density": self.density,
                "T_mct": self.T_mct, "extrapolated": int(self.extrapolated),
                "n_states": self.n_states, "T_lowest": self.T_lowest,
                "T_highest": self.T_highest, "T_bracket_low": self.bracket[0],
                "T_bracket_high": self.bracket[1], "note": self.note}


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


def critical_temperature(library_ds, interaction, density, **kwargs) -> CriticalTemperature:
    """T_mct of one (interaction, density) series of the library (an xarray Dataset with a
    ``state`` dimension, see supercooled.library), from its equilibrated S(k; T)."""
    from supercooled.systems import normalize_interaction

    interaction = normalize_interaction(interaction)
    temps, structures = temperature_series(library_ds, interaction, density)
    if temps.size == 0:
        raise SupercooledError(f"the library has no equilibrated {interaction} states at "
                               f"density {density}")
    return critical_temperature_from_series(temps, structures, density,
                                            interaction=interaction, **kwargs)


def critical_temperature_table(library=None, out=None, *, densities=None,
                               interactions=("LJ", "WCA"), tolerance: float = 1e-4,
                               progress: bool = False):
    """T_mct for every (interaction, density) as a pandas DataFrame; written to ``out`` (CSV).

    ``library`` is a Dataset or a folder (default: data/library); ``tolerance`` is the relative
    bisection tolerance on T_mct. Series without equilibrated states get a
    row with NaN and a note, so the table always has len(interactions) x len(densities) rows.
    Default ``out``: data/mct/critical_temperatures.csv when ``out`` is True.
    """
    import pandas as pd

    from supercooled.systems import DENSITIES

    ds = _library_dataset(library)
    rows = []
    pairs = [(i, d) for i in interactions for d in (densities or DENSITIES)]
    if progress:
        from tqdm.auto import tqdm

        pairs = tqdm(pairs, desc="T_mct", unit="series")
    for interaction, density in pairs:
        try:
            rows.append(critical_temperature(ds, interaction, density,
                                             tolerance=tolerance).as_row())
        except SupercooledError as error:
            rows.append(CriticalTemperature(interaction, float(density), float("nan"), False,
                                            0, float("nan"), float("nan"), (np.nan, np.nan),
                                            str(error)).as_row())
    table = pd.DataFrame(rows)
    if out is not None and out is not False:
        path = default_critical_temperature_path() if out is True else out
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(path).with_suffix(".csv.tmp")
        table.to_csv(temporary, index=False, float_format="%.6g")
        temporary.replace(path)  # atomic: a reader never sees half a table
    return table


def library_fingerprint(library_ds) -> str:
    """A hash of the states T_mct depends on (label, measured T, flags), to detect changes."""
    import hashlib

    n = library_ds.sizes.get("state", 0)
    keys = []
    for i in range(n):
        st = library_ds.isel(state=i)
        keys.append("|".join(str(st[c].values) for c in ("interaction", "density",
                                                         "temperature_target") if c in st.coords)
                    + f"|{float(st['temperature'].values):.6g}"
                    + f"|{int(st['equilibrated'].values) if 'equilibrated' in st.coords else 1}"
                    + f"|{int(st['crystallized'].values) if 'crystallized' in st.coords else 0}")
    return hashlib.sha1("\n".join(sorted(keys)).encode()).hexdigest()


def ensure_critical_temperature_table(library=None, out=None, *, refresh: bool = False,
                                      progress: bool = False):
    """The T_mct table, recomputed only if the library changed since ``out`` was written.

    The library's :func:`library_fingerprint` is stored beside the CSV (same name, .json);
    if it matches and ``refresh`` is False the CSV is read, otherwise
    :func:`critical_temperature_table` regenerates both. Returns a pandas DataFrame.
    """
    import json
    from pathlib import Path

    import pandas as pd

    ds = _library_dataset(library)
    if not ds.sizes.get("state", 0):
        # A mistyped folder loads as an empty library: never replace a table with NaN rows.
        raise SupercooledError(f"library {library or 'data/library'} holds no states; "
                               "T_mct table not written")
    path = Path(out) if out is not None else Path(default_critical_temperature_path())
    sidecar = path.with_suffix(".json")
    fingerprint = library_fingerprint(ds)
    if not refresh and path.is_file() and sidecar.is_file():
        try:
            if json.loads(sidecar.read_text()).get("library_fingerprint") == fingerprint:
                return pd.read_csv(path)
        except (OSError, ValueError):
            pass
    table = critical_temperature_table(ds, path, progress=progress)
    temporary = sidecar.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({"library_fingerprint": fingerprint,
                                     "n_states": int(ds.sizes.get("state", 0))}, indent=1) + "\n")
    temporary.replace(sidecar)
    return table


def default_critical_temperature_path():
    """data/mct/critical_temperatures.csv of the repository."""
    from supercooled.library import default_library_path

    return default_library_path().parent / "mct" / "critical_temperatures.csv"


def _library_dataset(library):
    import xarray as xr

    if isinstance(library, xr.Dataset):
        return library
    from supercooled.library import load_library

    return load_library(library)


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

    Relation to the paper's first-order memory equation (eq. 5), which the memory fit solves:
    with ``dynamics="brownian"`` and ``friction=1`` (zeta = m = 1), MCT solves exactly

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


def predict_fs(state_ds, times=TIME_GRID, *, dynamics: str = "newtonian", n_per_block: int = 64,
               settings: SolverSettings | None = None) -> np.ndarray:
    """MCT's F_s^AA(k_p, t), F_s^BB(k_p, t) (the paper's eq. 1 target) for one library state.

    ``state_ds``: one state of the library (its S, density, measured temperature, k_p).
    Returns (len(times), 2), NaN beyond the solved window. Newtonian by default, like the MD;
    ``n_per_block`` = 64 keeps the discretisation error near 1e-3 (see tests). The MCT
    chapter uses it to check that discretisation; the MLP chapter's MCT baseline does not
    call it but solves the same tagged equations through :func:`mct_for_state`
    (:func:`supercooled.baselines.mct_function`).
    """
    times = np.asarray(times, dtype=float)
    settings = settings or SolverSettings(n_per_block=n_per_block, t_initial=1e-6,
                                          t_max=float(np.nanmax(times)), tolerance=1e-9)
    result = mct_at_peak(_state_S(state_ds), float(state_ds["density"].values),
                         float(state_ds["temperature"].values), float(state_ds["k_p"].values),
                         kind="tagged", dynamics=dynamics, times=times, settings=settings)
    return result.F_s


def mct_for_state(library_ds, state: int, **kwargs) -> MCTAtPeak:
    """:func:`mct_at_peak` for state index ``state`` of a library Dataset (its S, density,
    measured temperature and k_p)."""
    st = library_ds.isel(state=int(state))
    return mct_at_peak(_state_S(st), float(st["density"].values), float(st["temperature"].values),
                       float(st["k_p"].values), **kwargs)


__all__ = [
    "HARD_SPHERE_PACKING_FRACTION_C", "MCTSystem", "MCTSolution", "NonErgodicity",
    "CriticalPoint", "CriticalTemperature", "MCTAtPeak", "direct_correlation",
    "structure_from_direct_correlation", "percus_yevick_direct_correlation",
    "percus_yevick_structure", "percus_yevick_mixture", "hard_sphere_system",
    "binary_hard_sphere_system", "nonergodicity_parameters", "tagged_nonergodicity",
    "find_critical_point", "hard_sphere_critical_point", "exponent_parameter", "solve_mct",
    "ka_system", "temperature_series", "critical_temperature_from_series",
    "critical_temperature", "critical_temperature_table", "default_critical_temperature_path",
    "library_fingerprint", "ensure_critical_temperature_table",
    "mct_at_peak", "mct_memory_at_kp", "mct_for_state", "predict_fs",
]
