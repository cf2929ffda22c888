"""Tests of supercooled.memory: eq. 6 parametrisation, eq. 8, Omega^2 and the memory equation."""

import numpy as np
import pytest

from supercooled import memory
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


def test_transforms_map_any_vector_into_valid_ranges():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 30, size=(200, memory.n_parameters(3)))
    parts = memory.unpack(memory.to_physical(z, 3), 3)
    diagonal = [0, 2]  # AA, BB amplitudes are positive; AB is signed
    assert np.all(parts["c"][:, diagonal] >= 0) and np.all(parts["w"][:, diagonal] >= 0)
    assert np.any(parts["c"][:, 1] < 0) and np.any(parts["w"][:, 1] > 0)
    assert np.all(parts["tau"] >= 0)
    assert np.all((parts["a"] >= 0) & (parts["a"] <= 1))
    lo, hi = memory.EXPONENT_RANGE
    assert np.all((parts["b"] >= lo) & (parts["b"] <= hi))
    # inverse on interior values
    theta = known_theta()
    theta_back = memory.to_physical(memory.to_unconstrained(theta, 2), 2)
    np.testing.assert_allclose(theta_back, np.where(theta == 0, 1e-12, theta), rtol=1e-9, atol=1e-11)


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
    m = memory.schematic_memory(t, 2.0, 0.5, 3.0, 0.1, 1.0)
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
    m = memory.schematic_memory(t, *truth.values())
    params, r2 = memory.fit_schematic(t, m)
    assert r2 > 0.9999
    for name, value in truth.items():
        assert params[name] == pytest.approx(value, rel=0.02), name
