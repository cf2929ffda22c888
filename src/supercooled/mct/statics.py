"""Statics of multi-component MCT: Ornstein–Zernike, Percus–Yevick hard spheres, Omega^2.

Conventions (the conventions page, book/conventions.md). Partial structure factors are
normalised by the total number N, S_ab(k) = (1/N) <rho_a(k) rho_b(-k)>, so S_aa(inf) = x_a.
Ornstein–Zernike for mixtures then reads, with n the total number density and x_a the number
fractions,

    n c_ab(k) = delta_ab / x_a - (S^-1)_ab(k),

and the frequency matrix of the equations of motion is

    Omega^2_ab(k) = k^2 T x_a / m_a (S^-1)_ab(k),  Omega_s,a^2(k) = k^2 T / m_a (tagged).

:class:`MCTSystem` bundles the static input of MCT (S on the midpoint k grid, composition,
density, temperature, masses) with the memory kernels M[F] and M_s[F, phi_s] defined and
summed in :mod:`supercooled.mct.kernels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID
from supercooled.mct.kernels import collective_sum, geometric_coefficients, tagged_sum
from supercooled.systems import FRACTION_A, MASS


def check_fractions(fractions) -> np.ndarray:
    """Number fractions as a 1-D array; positive and summing to 1, else an error."""
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


def _positive(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise SupercooledError(f"{name} must be positive, got {value}")
    return value


def _masses(masses, n_species: int) -> np.ndarray:
    m = np.ones(n_species) if masses is None else np.broadcast_to(
        np.asarray(masses, dtype=float), (n_species,)).copy()
    if np.any(m <= 0):
        raise SupercooledError("masses must be positive")
    return m


def frequency_matrix(k, S, fractions, temperature, masses=None) -> np.ndarray:
    """Omega^2_ab(k) = k^2 T x_a / m_a (S^-1)_ab(k): the one definition of Omega^2.

    ``k``: a wave number with ``S`` of shape (s, s), or (N_k,) wave numbers with ``S`` of
    shape (N_k, s, s), normalised by N (the conventions page, book/conventions.md).
    ``fractions``: (s,) number fractions x_a; ``masses``: (s,) m_a (default 1). Returns the
    shape of ``S``. For an ideal mixture, S = diag(x), it is k^2 T / m_a on the diagonal.
    """
    x = check_fractions(fractions)
    S = np.asarray(S, dtype=float)
    s = x.size
    if S.shape[-2:] != (s, s) or S.ndim not in (2, 3):
        raise SupercooledError(f"S has shape {S.shape}, expected (s, s) or (N_k, s, s) with s = {s}")
    if not np.all(np.isfinite(S)):
        raise SupercooledError("S(k) contains NaN or infinite values")
    k = np.asarray(k, dtype=float)
    if k.shape != S.shape[:-2]:
        raise SupercooledError(f"k has shape {k.shape}, S has shape {S.shape}")
    k2T = k[..., None, None] ** 2 * _positive("temperature", temperature)
    return k2T * (x / _masses(masses, s))[:, None] * np.linalg.inv(S)


def direct_correlation(S, fractions, density) -> np.ndarray:
    """c_ab(k) from S_ab(k) (normalised by N) by Ornstein–Zernike: n c = diag(1/x) - S^-1.

    Returns c (units of volume, sigma_AA^3), shape (N_k, s, s).
    """
    S, x = _as_matrix_S(S), check_fractions(fractions)
    return (np.diag(1.0 / x) - np.linalg.inv(S)) / float(density)


def structure_from_direct_correlation(c, fractions, density) -> np.ndarray:
    """Inverse of :func:`direct_correlation`: S = (diag(1/x) - n c)^-1."""
    c = _as_matrix_S(c)
    x = check_fractions(fractions)
    return np.linalg.inv(np.diag(1.0 / x) - float(density) * c)


def check_packing(eta) -> float:
    """A packing fraction in (0, 1), else an error."""
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
    eta = check_packing(packing_fraction)
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
    eta = check_packing(packing_fraction)
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
    x = check_fractions(fractions)
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
    (N_k, s, s) = :func:`frequency_matrix` and ``omega2_self`` (N_k, s) = k^2 T / m_a.
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
        self.fractions = check_fractions(self.fractions)
        s = self.fractions.size
        if self.S.shape != (self.k.size, s, s):
            raise SupercooledError(f"S has shape {self.S.shape}, expected {(self.k.size, s, s)}")
        self.density = _positive("density", self.density)
        self.temperature = _positive("temperature", self.temperature)
        self.masses = _masses(self.masses, s)
        self.C = np.diag(1.0 / self.fractions) - np.linalg.inv(self.S)
        self.omega2 = frequency_matrix(self.k, self.S, self.fractions, self.temperature,
                                       self.masses)
        self.omega2_self = self.k[:, None] ** 2 * self.temperature / self.masses[None, :]
        geometry = self.dk**2 / (4 * np.pi**2 * self.k)
        self._pre = (self.temperature / self.density * geometry[:, None, None]
                     / (self.masses[None, :, None] * self.fractions[None, None, :]))
        self._pre_self = self.temperature / self.density * geometry[:, None] / self.masses[None, :]
        self._coefficients = geometric_coefficients(self.k)

    @property
    def n_species(self) -> int:
        return self.fractions.size

    def collective_kernel(self, F) -> np.ndarray:
        """M_ab(k) (N_k, s, s) of the collective correlators F (N_k, s, s); see mct.kernels."""
        return self._pre * collective_sum(self.k, self._coefficients, self.C, F)

    def tagged_kernel(self, F, phi_s) -> np.ndarray:
        """M_s,a(k) (N_k, s) for the tagged correlators phi_s (N_k, s) given F (N_k, s, s)."""
        return self._pre_self * tagged_sum(self.k, self._coefficients, self.C, F, phi_s)

    def at_temperature(self, S, temperature) -> MCTSystem:
        """The same composition, density and masses with another S(k) and temperature."""
        return MCTSystem(self.k, S, self.fractions, self.density, temperature, self.masses)


def hard_sphere_system(packing_fraction, k=K_GRID) -> MCTSystem:
    """One-component Percus–Yevick hard spheres (d = 1, T = 1, m = 1) on the grid ``k``."""
    eta = check_packing(packing_fraction)
    return MCTSystem(np.asarray(k), percus_yevick_structure(k, eta), [1.0], 6 * eta / np.pi)


def binary_hard_sphere_system(packing_fraction, fractions=(0.5, 0.5), size_ratio=1.0,
                              k=K_GRID) -> MCTSystem:
    """Binary Percus–Yevick hard spheres (sigma_A = 1, sigma_B = size_ratio) at total packing
    fraction eta = (pi/6) n sum_a x_a sigma_a^3, via :func:`percus_yevick_mixture`."""
    eta = check_packing(packing_fraction)
    x = check_fractions(fractions)
    sig = np.array([1.0, float(size_ratio)])
    density = 6 * eta / (np.pi * np.sum(x * sig**3))
    return MCTSystem(np.asarray(k), percus_yevick_mixture(k, sig, x, density), x, density)


def ka_system(S, density, temperature, k=K_GRID) -> MCTSystem:
    """MCTSystem of the 80:20 Kob–Andersen mixture (equal masses m = 1) from S (N_k, 2, 2)."""
    return MCTSystem(np.asarray(k), S, [FRACTION_A, 1 - FRACTION_A], density, temperature,
                     [MASS, MASS])
