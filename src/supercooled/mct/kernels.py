"""MCT memory kernels: the Bengtzelius summation of the bipolar integrals, compiled with numba.

The kernels are quadratic functionals (C = n c the dimensionless direct correlation matrix):

    M_ab(q, t) = T / (n x_b m_a) int d^3k / (2 pi)^3
                 [ (q^.k)^2 (C F C)_ab(k) F_ab(p) + (q^.k)(q^.p) (C F)_ab(k) (F C)_ab(p) ],
    M_s,a(q, t) = T / (n m_a) int d^3k / (2 pi)^3 (q^.k)^2 (C F C)_aa(k) phi_s^a(p),

with p = q - k, q^.k = (q^2 + k^2 - p^2) / 2q and q^.p = (q^2 - k^2 + p^2) / 2q. (The
Nauroth–Kob vertex V_a,alpha,beta = (q^.k) delta_a,beta c_a,alpha(k) + (q^.p) delta_a,alpha
c_a,beta(p) gives four terms; the k <-> p symmetry of the domain pairs them, hence the missing
1/2.) In bipolar coordinates d^3k = 2 pi k p dk dp / q over |q - k| < p < q + k; on the
midpoint grid k_j = (j - 1/2) dk this is the Riemann sum over p_l with |i - j| < l < i + j
(1-based), truncated at N_k. Expanding (q^.k)^2 and (q^.k)(q^.p) in powers of p^2 turns the
inner sums into differences of prefix sums of p^(1+2m) Y(p), m = 0, 1, 2 (Bengtzelius, Götze
& Sjölander 1984), so a kernel evaluation costs O(N_k^2 s^2). The functions here return the
bare sums; :class:`supercooled.mct.statics.MCTSystem` multiplies them by the prefactors
T / (n x_b m_a) dk^2 / (4 pi^2 q) (collective) and T / (n m_a) dk^2 / (4 pi^2 q) (tagged).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, fastmath=True)
def prefix_moments(p, Y, diagonal):
    """P[a, b, l, m] = sum_{l' < l} p_l'^(1 + 2m) Y[l', a, b], shape (s, s, N + 1, 3)."""
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
    """out[i] = sum_j k_j sum_{l in D_ij} p_l [(q.k)^2 X1_j Y1_l + (q.k)(q.p) X2_j Y2_l].

    Elementwise in (a, b); D_ij = {l : |i - j| <= l <= min(i + j, N - 1)} (0-based);
    coef[i, j, m]: the coefficient of p^2m of the geometric factor; P1, P2: the
    :func:`prefix_moments` of Y1, Y2. mode 0: one term, diagonal only (tagged); mode 1: both
    terms, upper triangle mirrored (collective, whose integrated sum is symmetric in (a, b) by
    the k <-> p symmetry of the domain).
    """
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


def geometric_coefficients(q) -> tuple[np.ndarray, np.ndarray]:
    """(q.k)^2 = sum_m A_m p^2m and (q.k)(q.p) = sum_m B_m p^2m: A, B of shape (N, N, 3)."""
    q2 = (q**2)[:, None]
    k2 = (q**2)[None, :]
    inv = np.broadcast_to(1.0 / (4.0 * q2), (q.size, q.size))
    A = np.stack([(q2 + k2) ** 2 * inv, -2.0 * (q2 + k2) * inv, inv], axis=-1)
    B = np.stack([(q2**2 - k2**2) * inv, 2.0 * k2 * inv, -inv], axis=-1)
    return np.ascontiguousarray(A), np.ascontiguousarray(B)


def collective_sum(k, coefficients, C, F) -> np.ndarray:
    """The bipolar sum of the collective kernel, (N_k, s, s), before its prefactor:
    sum [(q.k)^2 (C F C)(k) F(p) + (q.k)(q.p) (C F)(k) (F C)(p)] elementwise in (a, b)."""
    coef_a, coef_b = coefficients
    F = np.ascontiguousarray(F, dtype=float)
    CF = C @ F
    FC = F @ C
    CFC = CF @ C
    return bipolar(k, coef_a, CFC, prefix_moments(k, F, False),
                   coef_b, CF, prefix_moments(k, FC, False), 1)


def tagged_sum(k, coefficients, C, F, phi_s) -> np.ndarray:
    """The bipolar sum of the tagged kernel, (N_k, s), before its prefactor:
    sum (q.k)^2 (C F C)_aa(k) phi_s^a(p)."""
    coef_a, coef_b = coefficients
    F = np.asarray(F, dtype=float)
    s = F.shape[1]
    idx = np.arange(s)
    X = np.zeros((k.size, s, s))
    Y = np.zeros((k.size, s, s))
    X[:, idx, idx] = np.einsum("kaa->ka", C @ F @ C)
    Y[:, idx, idx] = np.asarray(phi_s, dtype=float)
    out = bipolar(k, coef_a, X, prefix_moments(k, Y, True), coef_b, X,
                  np.zeros((s, s, 1, 3)), 0)
    return out[:, idx, idx]
