"""The schematic memory of Ciarella et al. 2023 (eq. 8) and its fit to a memory function.

    M(t) = exp(-Omega^2 t^nu) + K exp(-Omegat^2 t^mu),

a fast (cage) decay of unit amplitude and a slow structural relaxation of weight K. Chapter 7
fits it to the diagonal memories in units of their frequency, m_aa = M_aa / Omega^2_aa.
"""

from __future__ import annotations

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.memory import EXPONENT_RANGE


def schematic_memory(t, omega2, nu, kappa, omega2_tilde, mu) -> np.ndarray:
    """The schematic model, eq. 8: exp(-Omega^2 t^nu) + K exp(-Omegat^2 t^mu).

    All parameters broadcast against each other; the time axis is appended last. The first
    term is the fast (cage) decay with amplitude fixed to 1, the second the slow structural
    relaxation with weight K.
    """
    t = np.asarray(t, dtype=float)
    args = [np.asarray(p, dtype=float)[..., None] for p in (omega2, nu, kappa, omega2_tilde, mu)]
    omega2, nu, kappa, omega2_tilde, mu = args
    return np.exp(-omega2 * t**nu) + kappa * np.exp(-omega2_tilde * t**mu)


SCHEMATIC_NAMES = ("omega2", "nu", "K", "omega2_tilde", "mu")


#: largest slow weight K of eq. 8 (m(0) = 1 + K; a Brownian plateau of 0.99 needs K ~ 100)
SCHEMATIC_K_MAX = 1e4


def fit_schematic(t, m) -> tuple[dict[str, float], float]:
    """Least-squares fit of eq. 8 to one memory m(t); returns (parameters, R^2).

    ``m`` should be dimensionless with the fast part of order one: the chapter fits the
    diagonal memories in units of their frequency, m_aa = M_aa / Omega^2_aa (the normalised
    MCT memory). Eq. 8 then fixes m(0) = 1 + K. The fit runs in the decay times
    tau_1 = (Omega^2)^(-1/nu) and tau_2 = (Omegat^2)^(-1/mu), bounded to [t_min / 10,
    10 t_max] of the given times (a decay faster or slower than that is not determined by
    m on those times), nu and mu to the eq. 6 exponent range and K to [1e-6, SCHEMATIC_K_MAX];
    the rates returned are Omega^2 = tau_1^(-nu) and Omegat^2 = tau_2^(-mu).
    """
    from scipy.optimize import least_squares

    t, m = np.asarray(t, dtype=float), np.asarray(m, dtype=float)
    ok = np.isfinite(m) & np.isfinite(t) & (t > 0)
    t, m = t[ok], m[ok]
    if t.size < 6:
        raise SupercooledError("need at least 6 finite memory values to fit eq. 8")
    lo, hi = EXPONENT_RANGE
    log_tau = (np.log(t[0] / 10), np.log(10 * t[-1]))

    def physical(x):
        tau1, nu, kappa, tau2, mu = np.exp(x[0]), x[1], np.exp(x[2]), np.exp(x[3]), x[4]
        return tau1 ** (-nu), nu, kappa, tau2 ** (-mu), mu

    def residual(x):
        return schematic_memory(t, *physical(x)) - m

    # start: K from the memory at mid times, the slow time where m falls below K / e
    kappa = float(np.clip(np.interp(np.log(1.0), np.log(t), m), 1e-3, SCHEMATIC_K_MAX))
    below = m < kappa / np.e
    t_slow = t[np.argmax(below)] if below.any() else t[-1]
    bounds = ([log_tau[0], lo, np.log(1e-6), log_tau[0], lo],
              [log_tau[1], hi, np.log(SCHEMATIC_K_MAX), log_tau[1], hi])
    x0 = np.clip([np.log(t[0]), 1.0, np.log(kappa), np.log(t_slow), 1.0], *bounds)
    sol = least_squares(residual, x0, bounds=bounds, max_nfev=4000)
    params = dict(zip(SCHEMATIC_NAMES, map(float, physical(sol.x)), strict=True))
    ss_tot = np.sum((m - m.mean()) ** 2)
    return params, float(1.0 - np.sum(sol.fun**2) / ss_tot) if ss_tot > 0 else float("nan")
