"""Tests of supercooled.memory: eq. 6 parametrisation, eq. 8, Omega^2 and the memory equation.

The memory equation (solve_for_memory, both dynamics and both couplings) is checked against
an independent scipy ODE solution, including its accuracy against n_per_block.
"""

import numpy as np
import pytest

from supercooled import memory, schematic
from supercooled.errors import SupercooledError
from supercooled.grids import TIME_GRID


def known_theta(n_exp=2):
    """A glassy-looking memory: fast cage exponential plus slow stretched one, small AB."""
    c = np.array([0.5, 0.1, 0.3])
    w = np.array([[20.0, 8.0], [3.0, 1.0], [15.0, 5.0]])[:, :n_exp]
    a = np.array([[0.02, 0.1], [0.05, 0.0], [0.01, 0.2]])[:, :n_exp]
    tau = np.array([[0.05, 30.0], [0.08, 20.0], [0.04, 50.0]])[:, :n_exp]
    b = np.array([[1.0, 0.6], [1.2, 0.7], [0.9, 0.5]])[:, :n_exp]
    return memory.pack(c, w, a, tau, b)


def test_parameter_count_and_names():
    for n in (1, 2, 3):
        assert memory.n_parameters(n) == 3 * (1 + 4 * n)
        assert len(memory.parameter_names(n)) == memory.n_parameters(n)
    assert memory.parameter_names(1)[:5] == ["AA_c", "AA_w1", "AA_a1", "AA_tau1", "AA_b1"]
    with pytest.raises(SupercooledError):
        memory.n_parameters(0)


def test_pack_unpack_round_trip():
    theta = known_theta()
    parts = memory.unpack(theta, 2)
    assert parts["w"].shape == (3, 2) and parts["c"].shape == (3,)
    assert parts["tau"][0, 1] == 30.0 and parts["b"][2, 0] == 0.9
    np.testing.assert_array_equal(memory.pack(**parts), theta)
    with pytest.raises(SupercooledError):
        memory.unpack(theta[:-1], 2)


BOUNDS = memory.Bounds(amplitude=1e3, tau=(5e-4, 1e5))


def test_transforms_map_any_vector_into_the_bounds():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 30, size=(200, memory.n_parameters(3)))
    parts = memory.unpack(memory.to_physical(z, 3, BOUNDS), 3)
    diagonal = [0, 2]  # AA, BB amplitudes are positive; AB is signed
    for name in ("c", "w"):
        values = parts[name][:, diagonal]
        assert np.all(values >= memory.AMPLITUDE_FLOOR * 1e3 * (1 - 1e-9))
        assert np.all(values <= 1e3 * (1 + 1e-9))
        assert np.all(np.abs(parts[name][:, 1]) <= 1e3)
    assert np.any(parts["c"][:, 1] < 0) and np.any(parts["w"][:, 1] > 0)
    assert np.all((parts["tau"] >= 5e-4 * (1 - 1e-9)) & (parts["tau"] <= 1e5 * (1 + 1e-9)))
    assert np.all((parts["a"] >= 0) & (parts["a"] <= 1))
    lo, hi = memory.EXPONENT_RANGE
    assert np.all((parts["b"] >= lo) & (parts["b"] <= hi))
    # inverse on interior values
    theta = known_theta()
    theta_back = memory.to_physical(memory.to_unconstrained(theta, 2, BOUNDS), 2, BOUNDS)
    np.testing.assert_allclose(theta_back, np.where(theta == 0, 1e-12, theta), rtol=1e-8,
                               atol=1e-10)
    # degenerate values (a huge weight at a tiny time) are pulled onto the bounds
    wild = memory.pack(np.array([1.0, 0.1, 1.0]), np.full((3, 1), 6e5), np.full((3, 1), 0.5),
                       np.full((3, 1), 8e-8), np.ones((3, 1)))
    back = memory.unpack(memory.to_physical(memory.to_unconstrained(wild, 1, BOUNDS), 1, BOUNDS), 1)
    assert np.all(back["w"] <= 1e3) and np.all(back["tau"] >= 5e-4 * (1 - 1e-9))


def test_bounds_of_a_problem_follow_its_times_and_frequencies():
    problem = memory.MemoryProblem(TIME_GRID[:51], np.ones((51, 2)), [2.8, 0.1, 0.6], 7.2, 0.5)
    bounds = problem.bounds
    assert bounds.tau == pytest.approx((TIME_GRID[0] / 10, 100 * TIME_GRID[50]))
    assert bounds.amplitude == pytest.approx(100 * np.mean(np.diag(problem.omega2)))
    with pytest.raises(SupercooledError):
        memory.Bounds(amplitude=-1.0, tau=(1e-3, 1.0))
    with pytest.raises(SupercooledError):
        memory.Bounds(amplitude=1.0, tau=(1.0, 1e-3))


def test_an_added_exponential_leaves_the_memory_unchanged():
    theta = known_theta(2)
    extended = memory.add_exponential(theta, 2)
    assert extended.size == memory.n_parameters(3)
    t = np.geomspace(1e-3, 1e4, 50)
    np.testing.assert_allclose(memory.pair_memories(t, extended, 3),
                               memory.pair_memories(t, theta, 2), rtol=1e-13)
    parts = memory.unpack(extended, 3)  # the slow term (tau 30, 20, 50) split in halves
    np.testing.assert_array_equal(parts["tau"][:, 1], parts["tau"][:, 2])
    np.testing.assert_array_equal(parts["w"][:, 1], memory.unpack(theta, 2)["w"][:, 1] / 2)


def test_eq6_limits_and_simple_exponential():
    theta = known_theta()
    parts = memory.unpack(theta, 2)
    m = memory.pair_memories(np.array([0.0, 1e12]), theta, 2)
    np.testing.assert_allclose(m[:, 0], parts["c"] + parts["w"].sum(-1))
    np.testing.assert_allclose(m[:, 1], parts["c"] + (parts["w"] * parts["a"]).sum(-1))
    # one simple exponential, no plateau: M = w exp(-t / tau)
    one = memory.pack(np.zeros(3), np.full((3, 1), 2.0), np.zeros((3, 1)),
                      np.full((3, 1), 0.5), np.ones((3, 1)))
    t = TIME_GRID[:30]
    np.testing.assert_allclose(memory.pair_memories(t, one, 1), np.tile(2 * np.exp(-t / 0.5), (3, 1)))


def test_memory_matrix_is_symmetric_and_self_coupling_drops_ab():
    theta = np.stack([known_theta(), 2 * known_theta()])
    m = memory.memory_matrix(TIME_GRID, theta, 2)
    assert m.shape == (2, TIME_GRID.size, 2, 2)
    np.testing.assert_array_equal(m[..., 0, 1], m[..., 1, 0])
    assert np.all(m[..., 0, 1] > 0)
    m_self = memory.memory_matrix(TIME_GRID, theta, 2, coupling="self")
    assert np.all(m_self[..., 0, 1] == 0) and np.all(m_self[..., 0, 0] == m[..., 0, 0])


def test_canonical_order_sorts_by_tau_and_keeps_memory():
    theta = known_theta()
    parts = memory.unpack(theta, 2)
    swapped = memory.pack(parts["c"], *(parts[k][:, ::-1] for k in memory.EXP_FIELDS))
    ordered = memory.canonical_order(swapped, 2)
    np.testing.assert_array_equal(ordered, theta)
    np.testing.assert_allclose(memory.pair_memories(TIME_GRID, swapped, 2),
                               memory.pair_memories(TIME_GRID, theta, 2))


def test_schematic_model_eq8():
    t = np.array([0.0, 1.0, 4.0])
    m = schematic.schematic_memory(t, 2.0, 0.5, 3.0, 0.1, 1.0)
    np.testing.assert_allclose(m, np.exp(-2.0 * t**0.5) + 3.0 * np.exp(-0.1 * t))
    assert m[0] == pytest.approx(4.0)  # M(0) = 1 + K


def test_omega_squared_ideal_mixture_and_self():
    # ideal mixture: S = diag(x_A, x_B) -> Omega^2 = k^2 T I, the free-diffusion rate
    omega2 = memory.omega_squared([0.8, 0.0, 0.2], 7.0, 0.5)
    np.testing.assert_allclose(omega2, 49 * 0.5 * np.eye(2), atol=1e-12)
    omega2 = memory.omega_squared([2.8, 0.2, 0.6], 7.2, 0.45)
    s = np.array([[2.8, 0.2], [0.2, 0.6]])
    np.testing.assert_allclose(omega2 @ s, 7.2**2 * 0.45 * np.diag([0.8, 0.2]), atol=1e-12)
    np.testing.assert_allclose(memory.omega_squared([2.8, 0.2, 0.6], 7.2, 0.45, coupling="self"),
                               7.2**2 * 0.45 * np.eye(2))
    with pytest.raises(SupercooledError):
        memory.omega_squared([1.0, 2.0, 1.0], 7.0, 0.5)  # not positive definite
    with pytest.raises(SupercooledError):
        memory.omega_squared([1.0, 0.0, 1.0], 7.0, -1.0)
    with pytest.raises(SupercooledError):
        memory.omega_squared([1.0, 0.0, 1.0], 7.0, 1.0, coupling="both")


def test_problem_drops_unsampled_times_and_checks_shapes():
    target = np.tile(np.exp(-TIME_GRID)[:, None], (1, 2)) * [2.5, 0.5]
    target[60:] = np.nan
    problem = memory.MemoryProblem(TIME_GRID, target, [2.5, 0.1, 0.5], 7.2, 0.5)
    assert problem.times.size == 60 and np.all(np.isfinite(problem.target))
    np.testing.assert_array_equal(problem.f0, np.diag([2.5, 0.5]))
    with pytest.raises(SupercooledError):
        memory.MemoryProblem(TIME_GRID, target[:, :1], [2.5, 0.1, 0.5], 7.2, 0.5)
    with pytest.raises(SupercooledError):
        memory.MemoryProblem(TIME_GRID[:3], target[:3], [2.5, 0.1, 0.5], 7.2, 0.5)


def test_fit_schematic_recovers_eq8_parameters():
    t = np.geomspace(1e-3, 1e3, 70)
    truth = dict(omega2=20.0, nu=1.2, K=3.0, omega2_tilde=0.05, mu=0.7)
    m = schematic.schematic_memory(t, *truth.values())
    params, r2 = schematic.fit_schematic(t, m)
    assert r2 > 0.9999
    for name, value in truth.items():
        assert params[name] == pytest.approx(value, rel=0.02), name


# --- the memory equation against an independent reference --------------------------------
#
# With simple exponentials, M_ik(t) = c_ik + sum_j w_ik,j exp(-t / tau_ik,j), the convolution
# G(t) = int_0^t M(t - u) F'(u) du obeys an ODE: G = c (F - F0) + sum_j sum_k H_j,ik,., with
# dH_j,ikl/dt = w_ik,j F'_kl - H_j,ikl / tau_ik,j and H(0) = 0. Eq. 5 (and its Newtonian form)
# is then a linear ODE system that scipy integrates to 1e-10: a reference that shares nothing
# with the time-doubling solver.

S_KP = [2.8, 0.1, 0.6]
K_P, TEMPERATURE = 7.2, 0.5
REF_TIMES = np.geomspace(5e-3, 200.0, 60)


def _sym(values):
    return np.array([[values[0], values[1]], [values[1], values[2]]])


def exponential_theta(w, tau, c=(0.2, 0.05, 0.1)):
    """Eq. 6 parameters with a = 0, b = 1 (simple exponentials): w, tau (3, N_exp)."""
    w, tau = np.asarray(w, float), np.asarray(tau, float)
    return memory.pack(np.asarray(c, float), w, np.zeros_like(w), tau, np.ones_like(w))


def reference_solution(problem, theta, n_exp, *, dynamics, memory_factor=1.0):
    """F_aa(t) (n_t, 2) on problem.times from scipy's solve_ivp (see above)."""
    from scipy.integrate import solve_ivp

    parts = memory.unpack(theta, n_exp)
    assert np.all(parts["a"] == 0) and np.all(parts["b"] == 1)
    keep = np.array([1.0, 0.0 if problem.coupling == "self" else 1.0, 1.0])
    c = _sym(parts["c"] * keep) * memory_factor
    w = [_sym(parts["w"][:, j] * keep) * memory_factor for j in range(n_exp)]
    tau = [_sym(parts["tau"][:, j]) for j in range(n_exp)]
    omega2, f0 = problem.omega2, problem.f0
    newtonian = dynamics == "newtonian"
    n_f = 8 if newtonian else 4

    def rhs(_t, y):
        F = y[:4].reshape(2, 2)
        H = y[n_f:].reshape(n_exp, 2, 2, 2)  # (term, i, k, l)
        G = H.sum(axis=(0, 2)) + c @ (F - f0)
        if newtonian:
            dF = y[4:8].reshape(2, 2)
            dV = -omega2 @ F - G
        else:
            dF = -omega2 @ F - G
        dH = [w[j][:, :, None] * dF[None] - H[j] / tau[j][:, :, None] for j in range(n_exp)]
        head = [dF.ravel(), dV.ravel()] if newtonian else [dF.ravel()]
        return np.concatenate(head + [np.ravel(dH)])

    y0 = np.zeros(n_f + 8 * n_exp)
    y0[:4] = f0.ravel()  # F(0) = F0, F'(0) = 0 (Newtonian), G(0) = 0
    times = problem.times
    sol = solve_ivp(rhs, (0.0, times[-1]), y0, method="Radau", t_eval=times, rtol=1e-10,
                    atol=1e-12)
    assert sol.success
    F = sol.y[:4].T.reshape(-1, 2, 2)
    return np.stack([F[:, 0, 0], F[:, 1, 1]], axis=-1)


#: A glassy but well-damped memory: a fast (cage) exponential and a slow one, plus c.
TWO_EXP = exponential_theta([[300.0, 15.0], [20.0, 3.0], [250.0, 10.0]],
                            [[0.05, 5.0], [0.08, 3.0], [0.04, 8.0]])


def _problem(coupling, dynamics):
    return memory.MemoryProblem(REF_TIMES, np.ones((REF_TIMES.size, 2)), S_KP, K_P, TEMPERATURE,
                                coupling=coupling, dynamics=dynamics)


@pytest.mark.parametrize("dynamics", memory.DYNAMICS)
@pytest.mark.parametrize("coupling", memory.COUPLINGS)
def test_solve_for_memory_matches_an_independent_ode_solution(coupling, dynamics):
    problem = _problem(coupling, dynamics)
    reference = reference_solution(problem, TWO_EXP, 2, dynamics=dynamics)
    got = memory.solve_for_memory(problem, TWO_EXP, 2)[0]  # the settings the fits use
    tolerance = 2e-3  # F_AA(0) = 2.8: below 0.1 % (measured: 3e-4 ... 9e-4)
    np.testing.assert_allclose(got, reference, rtol=0, atol=tolerance)
    # The tolerance is tight enough to see a wrong factor, memory or dynamics:
    wrong_memory = reference_solution(problem, TWO_EXP, 2, dynamics=dynamics, memory_factor=1.1)
    assert np.abs(wrong_memory - reference).max() > 10 * tolerance
    other = "brownian" if dynamics == "newtonian" else "newtonian"
    assert np.abs(reference_solution(problem, TWO_EXP, 2, dynamics=other) - reference).max() \
        > 10 * tolerance
    # The long-time limit (non-ergodicity from the constant c) is where it must be.
    # (Omega^2 + c) F(inf) = c F0, from the Laplace transform of either form at s -> 0.
    c = _sym(memory.unpack(TWO_EXP, 2)["c"] * [1.0, float(coupling == "paper"), 1.0])
    f_inf = np.linalg.solve(problem.omega2 + c, c @ problem.f0)
    np.testing.assert_allclose(got[-1], np.diag(f_inf), rtol=0.02)


def test_the_ab_memory_enters_only_with_the_paper_coupling():
    flipped = TWO_EXP.copy()
    flipped[memory.parameter_names(2).index("AB_w1")] *= -1
    for coupling, changes in (("paper", True), ("self", False)):
        problem = _problem(coupling, "brownian")
        a, b = (memory.solve_for_memory(problem, th, 2)[0] for th in (TWO_EXP, flipped))
        assert (np.abs(a - b).max() > 5e-3) == changes, coupling


def test_newtonian_solution_starts_flat_and_brownian_with_slope_omega2():
    times = np.geomspace(1e-4, 1.0, 30)
    problem = memory.MemoryProblem(times, np.ones((30, 2)), S_KP, K_P, TEMPERATURE,
                                   coupling="self", dynamics="newtonian")
    F = memory.solve_for_memory(problem, TWO_EXP, 2)[0]
    omega2 = K_P**2 * TEMPERATURE
    # F(t) = F0 (1 - Omega^2 t^2 / 2 + O(t^3)) for Newtonian dynamics with F'(0) = 0
    np.testing.assert_allclose(F[0], np.diag(problem.f0) * (1 - omega2 * times[0] ** 2 / 2),
                               rtol=1e-6)
    problem.dynamics = "brownian"
    F = memory.solve_for_memory(problem, TWO_EXP, 2)[0]
    np.testing.assert_allclose(F[0], np.diag(problem.f0) * (1 - omega2 * times[0]), rtol=1e-4)


#: A stiff memory, M_AA(0) ~ 1e4 (the largest solver_settings is meant for).
STIFF = exponential_theta([[1e4, 15.0], [300.0, 3.0], [8e3, 10.0]],
                          [[0.002, 5.0], [0.003, 3.0], [0.003, 8.0]])


@pytest.mark.parametrize("dynamics", memory.DYNAMICS)
def test_solver_accuracy_against_n_per_block(dynamics):
    """The error of solver_settings(n_per_block) against the ODE reference, for M(0) ~ 1e4.

    Measured max |error| / F_AA(0): n = 16: 4e-3, 32: 2e-3, 64: 8e-4 (brownian) and
    9e-4 (newtonian). The fits use n_per_block = 64 (memory.N_PER_BLOCK).
    """
    problem = _problem("paper", dynamics)
    reference = reference_solution(problem, STIFF, 2, dynamics=dynamics)
    errors = []
    for n in (16, 32, memory.N_PER_BLOCK):
        settings = memory.solver_settings(REF_TIMES[-1], n_per_block=n)
        got = memory.solve_for_memory(problem, STIFF, 2, settings=settings)[0]
        errors.append(np.abs(got - reference).max() / problem.f0[0, 0])
    assert errors[0] > 1.8 * errors[1] > 3.2 * errors[2]
    assert errors[2] < 1.5e-3


class _PointByPoint:
    """The same eq. 6 memory without ``at_times``: the solver then takes its general
    point-by-point path (the one MCT uses), an independent implementation of each step."""

    def __init__(self, kernel):
        self.kernel, self.theta = kernel, kernel.theta

    def __call__(self, F, t):
        return self.kernel(F, t)


@pytest.mark.parametrize("dynamics", memory.DYNAMICS)
@pytest.mark.parametrize("coupling", memory.COUPLINGS)
def test_block_solver_of_a_given_memory_equals_the_point_by_point_solver(coupling, dynamics,
                                                                         monkeypatch):
    from supercooled import solver

    rng = np.random.default_rng(3)
    problem = _problem(coupling, dynamics)
    z = rng.normal(0.0, 1.0, size=(6, memory.n_parameters(2)))
    theta = memory.to_physical(z, 2, problem.bounds)  # stretched (b != 1), a != 0 memories
    block = memory.solve_for_memory(problem, theta, 2)
    original = memory.GivenMemory
    monkeypatch.setattr(memory, "GivenMemory", lambda *a: _PointByPoint(original(*a)))
    point = memory.solve_for_memory(problem, theta, 2)
    finite = np.all(np.isfinite(point), axis=(1, 2))
    assert finite.sum() >= 3 and np.array_equal(finite, np.all(np.isfinite(block), axis=(1, 2)))
    scale = np.abs(point[finite]).max(axis=(1, 2), keepdims=True)
    # equal up to rounding (the Newtonian 1 / h^2 differences amplify it to ~3e-9), far below
    # the solver's discretisation error of ~1e-3 (test_solver_accuracy_against_n_per_block)
    np.testing.assert_allclose(block[finite] / scale, point[finite] / scale, rtol=0, atol=1e-8)
    # the numpy fallback of the compiled block does the same arithmetic
    monkeypatch.setattr(memory, "GivenMemory", original)
    monkeypatch.setattr(solver, "_GIVEN_BLOCK", solver._given_memory_block_numpy)
    fallback = memory.solve_for_memory(problem, theta, 2)
    np.testing.assert_allclose(fallback[finite] / scale, block[finite] / scale, rtol=0, atol=1e-8)
