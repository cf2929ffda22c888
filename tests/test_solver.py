"""Known answers for the time-doubling memory-equation solver (supercooled.solver)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from supercooled.errors import SupercooledError
from supercooled.grids import TIME_GRID
from supercooled.solver import (
    Solution,
    SolverSettings,
    interpolate_log_time,
    solve_memory_equation,
)

GAMMA2 = np.array([[2.0, 0.3], [0.4, 1.5]])
F0_2 = np.array([[1.0, 0.1], [0.1, 0.8]])


def zero_kernel(F, t):
    return np.zeros_like(F)


def test_no_memory_first_order_is_matrix_exponential():
    # beta F' + gamma F = 0  ->  F(t) = expm(-beta^-1 gamma t) F0, for a batch of matrices.
    gammas = np.stack([GAMMA2, 0.5 * GAMMA2, GAMMA2.T])
    beta = np.diag([1.0, 2.0])
    F0 = np.broadcast_to(F0_2, (3, 2, 2))
    settings = SolverSettings(n_per_block=128, t_initial=1e-5, t_max=20.0, tolerance=1e-13)
    sol = solve_memory_equation(0.0, beta, gammas, F0, zero_kernel, settings=settings)
    assert sol.converged and sol.t[0] == 0 and np.all(np.diff(sol.t) > 0)
    assert sol.t[-1] >= 20.0 and sol.F.shape == (sol.t.size, 3, 2, 2)
    for b in range(3):
        gen = np.linalg.solve(beta, gammas[b])
        # expm(-gen t) for every t by diagonalisation (expm itself is slow at large |gen t|)
        values, vectors = np.linalg.eig(gen)
        exact = np.einsum("ij,tj,jk,kl->til", vectors, np.exp(-np.outer(sol.t, values)),
                          np.linalg.inv(vectors), F0_2).real
        np.testing.assert_allclose(exact[5], expm(-gen * sol.t[5]) @ F0_2, atol=1e-12)
        assert np.max(np.abs(sol.F[:, b] - exact)) < 5e-5


@pytest.mark.parametrize("c", [0.3, 2.0])
def test_constant_memory_first_order_analytic(c):
    # F' + gamma F + c (F(t) - F0) = 0  ->  F = F0 [c + gamma exp(-(gamma + c) t)] / (gamma + c)
    g = np.array([0.5, 1.0, 4.0])
    F0 = np.ones((3, 1, 1))
    settings = SolverSettings(n_per_block=256, t_initial=1e-6, t_max=50.0, tolerance=1e-13)
    sol = solve_memory_equation(0.0, 1.0, g[:, None, None], F0,
                                lambda F, t: np.full_like(F, c), settings=settings)
    exact = (c + g * np.exp(-(g + c) * sol.t[:, None])) / (g + c)
    assert np.max(np.abs(sol.F[:, :, 0, 0] - exact)) < 2e-5
    np.testing.assert_allclose(sol.F[-1, :, 0, 0], c / (g + c), atol=1e-8)
    np.testing.assert_allclose(sol.K, c)


def _exponential_memory_reference(order, gamma, c, tau, F0, damping, times):
    """Integrate the same equation as an ODE: Z(t) = int_0^t K(t-u) F'(u) du with
    K = c exp(-t / tau) obeys Z' = c F' - Z / tau."""
    def rhs(t, y):
        if order == 1:
            F, Z = y[:4].reshape(2, 2), y[4:].reshape(2, 2)
            dF = -(gamma @ F + Z)
            return np.concatenate([dF.ravel(), (c @ dF - Z / tau).ravel()])
        F, V, Z = y[:4].reshape(2, 2), y[4:8].reshape(2, 2), y[8:].reshape(2, 2)
        dV = -(damping * V + gamma @ F + Z)
        return np.concatenate([V.ravel(), dV.ravel(), (c @ V - Z / tau).ravel()])

    y0 = np.concatenate([F0.ravel(), np.zeros(4 if order == 1 else 8)])
    result = solve_ivp(rhs, (0, times[-1]), y0, t_eval=times, rtol=1e-11, atol=1e-13,
                       method="DOP853")
    return result.y[:4].T.reshape(-1, 2, 2)


@pytest.mark.parametrize("order, tolerance", [(1, 5e-5), (2, 2e-3)])
def test_exponential_memory_matches_ode(order, tolerance):
    c = np.array([[1.0, 0.2], [0.2, 0.5]])
    tau = 1.3

    def kernel(F, t):
        return np.broadcast_to(c * np.exp(-t / tau), F.shape).copy()

    alpha, beta = (0.0, 1.0) if order == 1 else (1.0, 0.3)
    settings = SolverSettings(n_per_block=256 if order == 2 else 128, t_initial=1e-5,
                              t_max=50.0, tolerance=1e-13)
    sol = solve_memory_equation(alpha, beta, GAMMA2, F0_2[None], kernel, settings=settings)
    ref = _exponential_memory_reference(order, GAMMA2, c, tau, F0_2, 0.3, sol.t)
    assert np.max(np.abs(sol.F[:, 0] - ref)) < tolerance
    # the returned memory is the kernel evaluated on the solver's times
    np.testing.assert_allclose(sol.K[:, 0], c * np.exp(-sol.t / tau)[:, None, None], atol=1e-14)


def test_newtonian_oscillator_converges_at_second_order():
    # F'' + w^2 F = 0, F'(0) = 0  ->  cos(w t): the error falls ~4x per doubling of N.
    w2 = np.array([1.0, 3.0])[:, None, None]
    errors = []
    for n in (32, 64, 128):
        settings = SolverSettings(n_per_block=n, t_initial=1e-4, t_max=3.0, tolerance=1e-13)
        sol = solve_memory_equation(1.0, 0.0, w2, np.ones((2, 1, 1)), zero_kernel,
                                    settings=settings)
        errors.append(np.max(np.abs(sol.F[:, :, 0, 0] - np.cos(np.sqrt(w2[:, 0, 0]) * sol.t[:, None]))))
    assert errors[2] < 3e-3
    assert errors[0] / errors[1] > 3.0 and errors[1] / errors[2] > 3.0


def test_initial_velocity_second_order():
    # F'' + F = 0, F(0) = 1, F'(0) = 2  ->  cos t + 2 sin t
    settings = SolverSettings(n_per_block=256, t_initial=1e-4, t_max=2.0, tolerance=1e-13)
    sol = solve_memory_equation(1.0, 0.0, 1.0, np.ones((1, 1, 1)), zero_kernel,
                                settings=settings, dF0=2.0)
    exact = np.cos(sol.t) + 2 * np.sin(sol.t)
    assert np.max(np.abs(sol.F[:, 0, 0, 0] - exact)) < 1e-3


def schematic_f2(lam):
    return lambda F, t: lam * F**2


def test_self_consistent_f2_model_plateau():
    # F2 model, F' + F + int lam F^2(t-u) F'(u) du = 0: the long-time limit f solves
    # f / (1 - f) = lam f^2, i.e. f = (1 + sqrt(1 - 4 / lam)) / 2 for lam > 4 (glass),
    # and f = 0 for lam < 4 (liquid).
    lams = np.array([2.0, 6.0, 10.0])
    settings = SolverSettings(n_per_block=128, t_initial=1e-6, t_max=1e6, tolerance=1e-12)
    sol = solve_memory_equation(0.0, 1.0, 1.0, np.ones((3, 1, 1)),
                                lambda F, t: lams[:, None, None] * F**2, settings=settings)
    assert sol.converged
    late = sol.F[-1, :, 0, 0]
    assert abs(late[0]) < 1e-3
    np.testing.assert_allclose(late[1:], (1 + np.sqrt(1 - 4 / lams[1:])) / 2, atol=2e-4)


def test_refinement_invariance_on_time_grid():
    # Near the F2 critical point (lam = 4) the two-step relaxation is slow and sensitive.
    # Refining N per block converges at second order; refining the first step changes nothing.
    lam = 3.6

    def solve(n, t0):
        settings = SolverSettings(n_per_block=n, t_initial=t0, t_max=1e4, tolerance=1e-12)
        return solve_memory_equation(0.0, 1.0, 1.0, np.ones((1, 1, 1)), schematic_f2(lam),
                                     settings=settings).on_grid(TIME_GRID)[:, 0, 0, 0]

    n128, n256, n512, n128_small_t0 = solve(128, 1e-6), solve(256, 1e-6), solve(512, 1e-6), solve(128, 1e-8)
    finite = np.isfinite(n128)
    assert finite.sum() > 60 and n128[finite].min() < 0.05  # it relaxed (liquid side)
    d1 = np.max(np.abs(n128[finite] - n256[finite]))
    d2 = np.max(np.abs(n256[finite] - n512[finite]))
    assert d2 < 1e-3 and d1 / d2 > 3.0
    assert np.max(np.abs(n128[finite] - n128_small_t0[finite])) < 1e-3


def test_identical_batch_rows_are_identical():
    lam = np.array([3.0, 3.0, 3.0])[:, None, None]
    gamma = np.broadcast_to(GAMMA2, (3, 2, 2))
    F0 = np.broadcast_to(F0_2, (3, 2, 2))

    def kernel(F, t):
        return 0.3 * lam * np.matmul(F, F)

    settings = SolverSettings(n_per_block=64, t_initial=1e-4, t_max=100.0)
    sol = solve_memory_equation(0.0, 1.0, gamma, F0, kernel, settings=settings)
    assert np.array_equal(sol.F[:, 0], sol.F[:, 1]) and np.array_equal(sol.F[:, 0], sol.F[:, 2])


def test_interpolation_in_log_time():
    settings = SolverSettings(n_per_block=128, t_initial=1e-5, t_max=30.0, tolerance=1e-13)
    sol = solve_memory_equation(0.0, 1.0, 0.5, np.ones((1, 1, 1)), zero_kernel, settings=settings)
    values = sol.on_grid(TIME_GRID)[:, 0, 0, 0]
    inside = TIME_GRID <= sol.t[-1]
    np.testing.assert_allclose(values[inside], np.exp(-0.5 * TIME_GRID[inside]), atol=1e-4)
    assert np.all(np.isnan(values[~inside])) and (~inside).any()
    # between t = 0 and the first positive time: linear in t
    t = np.array([0.0, 0.5 * sol.t[1]])
    np.testing.assert_allclose(interpolate_log_time(sol.t, sol.F, t)[:, 0, 0, 0],
                               [1.0, 0.5 * (1 + sol.F[1, 0, 0, 0])])
    assert isinstance(sol, Solution)


def test_bad_input_raises_one_line_errors():
    F0 = np.ones((2, 1, 1))
    with pytest.raises(SupercooledError, match="shape"):
        solve_memory_equation(0.0, 1.0, 1.0, np.ones((2, 2)), zero_kernel)
    with pytest.raises(SupercooledError, match="invertible"):
        solve_memory_equation(0.0, 0.0, 1.0, F0, zero_kernel)
    with pytest.raises(SupercooledError, match="NaN"):
        solve_memory_equation(0.0, 1.0, np.nan, F0, zero_kernel)
    with pytest.raises(SupercooledError, match="kernel returned shape"):
        solve_memory_equation(0.0, 1.0, 1.0, F0, lambda F, t: np.zeros(3))
    with pytest.raises(SupercooledError, match="n_per_block"):
        SolverSettings(n_per_block=7)
    with pytest.raises(SupercooledError, match="t_max"):
        SolverSettings(t_initial=1.0, t_max=2.0)


def test_compiled_history_sums_match_numpy():
    from supercooled.solver import _history_sums, _history_sums_numpy

    rng = np.random.default_rng(5)
    arrays = [rng.normal(size=(64, 7, 2, 2)) for _ in range(4)]
    for i in (4, 5, 33, 63):
        ibar = i // 2
        fast = _history_sums()(i, ibar, *arrays, np.ones((7, 2, 2)))
        slow = _history_sums_numpy(i, ibar, *arrays, np.ones((7, 2, 2)))
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
