"""Tests of supercooled.evolution: the species-normalised loss, the eq. 6 start fit, the
CMA-ES + polish recovery of known memories per species, validity and the warm start."""

import numpy as np
import pytest

from supercooled import evolution, memory
from supercooled.errors import SupercooledError
from supercooled.grids import TIME_GRID

MEMORY_TIMES = TIME_GRID[:51]  # 0.005 ... 500 tau, as the conftest's synthetic state
S_KP = [2.8, 0.1, 0.6]
K_P, TEMPERATURE = 7.2, 0.5
# coarse but consistent solver settings: data and fits use the same discretisation
FAST = dict(n_per_block=16, t_initial=1e-4)


def synthetic_problem(theta, n_exp, coupling="paper"):
    settings = memory.solver_settings(MEMORY_TIMES[-1], **FAST)
    base = memory.MemoryProblem(MEMORY_TIMES, np.ones((MEMORY_TIMES.size, 2)), S_KP, K_P,
                                TEMPERATURE, coupling=coupling, label="synthetic")
    target = memory.solve_for_memory(base, theta, n_exp, settings=settings)[0]
    problem = memory.MemoryProblem(MEMORY_TIMES, target, S_KP, K_P, TEMPERATURE,
                                   coupling=coupling, label="synthetic")
    return problem, settings


def quick(**changes):
    return evolution.FitSettings(**({"progress": False} | changes))


def test_settings_validation():
    for bad in ({"n_exp": 0}, {"sigma0": -1.0}, {"lasso": -1.0}, {"tolerance": 0.0},
                {"restarts": -1}, {"max_polish_evaluations": 0}):
        with pytest.raises(SupercooledError):
            evolution.FitSettings(**bad)
    assert evolution.FitSettings().sigma0 == evolution.DEFAULT_SIGMA0
    assert evolution.PAPER_SIGMA0 == 5e-4


def test_fit_parametrisation_recovers_an_eq6_memory():
    theta = memory.pack(np.array([1.0, 0.2, 0.5]), np.array([[40.0, 6.0], [5.0, 1.0], [25.0, 3.0]]),
                        np.array([[0.0, 0.3], [0.0, 0.2], [0.0, 0.4]]),
                        np.array([[0.05, 20.0], [0.1, 10.0], [0.04, 30.0]]),
                        np.array([[1.0, 0.6], [1.0, 0.8], [1.2, 0.5]]))
    t = np.geomspace(1e-3, 1e4, 80)
    target = memory.memory_matrix(t, theta, 2)
    fitted = evolution.fit_parametrisation(t, target, 2, memory.Bounds.for_data(t, 40.0))
    m = memory.memory_matrix(t, fitted, 2)
    scale = np.max(np.abs(target), axis=0)
    assert np.max(np.abs(m - target) / scale) < 2e-3


def test_loss_puts_each_species_on_its_own_scale_and_scores_a_population_at_once(one_exp_theta):
    problem, settings = synthetic_problem(one_exp_theta, 1)
    objective = evolution.Objective(problem, 1, lasso=0.0, solver_settings=settings)
    calls = []
    simulate = objective.simulate
    objective.simulate = lambda th: calls.append(th.shape) or simulate(th)
    z = memory.to_unconstrained(one_exp_theta, 1, problem.bounds)
    losses = objective(np.stack([z, z + 0.05, z - 0.05]))
    assert calls == [(3, memory.n_parameters(1))]
    # zero at the truth up to the parameter round trip (1e-9 relative)
    assert losses[0] < 1e-14 and losses[1] > 1e-4 and losses[2] > 1e-4
    # the misfit is that of phi = F / F(0): shifting F_BB by 0.01 F_BB(0) costs as much as
    # shifting F_AA by 0.01 F_AA(0), although F_BB(0) = 0.6 and F_AA(0) = 2.8
    f0 = np.diag(problem.f0)
    for species in (0, 1):
        shifted = memory.MemoryProblem(problem.times, problem.target, S_KP, K_P, TEMPERATURE)
        shifted.target[:, species] += 0.01 * f0[species]
        misfit, _ = evolution.Objective(shifted, 1, 0.0, settings).terms(one_exp_theta[None])
        assert misfit[0] == pytest.approx(problem.times.size * 1e-4, rel=1e-6)
    # the lasso adds lambda * sum of amplitudes / mean diag Omega^2
    objective.lasso = 1e-3
    amp = sum(memory.unpack(one_exp_theta, 1)["c"]) + memory.unpack(one_exp_theta, 1)["w"].sum()
    expected = 1e-3 * amp / np.mean(np.diag(problem.omega2))
    assert objective(z[None])[0] == pytest.approx(expected, rel=1e-6)


def test_validity_of_a_correlator():
    f0 = np.diag([2.0, 0.5])
    t = MEMORY_TIMES[:, None]
    decaying = np.exp(-t / [1.0, 3.0]) * [2.0, 0.5]
    assert evolution.is_valid_correlator(decaying, f0)
    rising = decaying.copy()
    rising[20, 1] += 0.05  # phi_B jumps up by 0.1
    assert not evolution.is_valid_correlator(rising, f0)
    undershoot = decaying - 0.02 * np.array([2.0, 0.5])  # phi ends at -0.02
    assert not evolution.is_valid_correlator(undershoot, f0)
    assert not evolution.is_valid_correlator(np.full_like(decaying, np.nan), f0)


def test_same_seed_same_fit(one_exp_theta):
    problem, settings = synthetic_problem(one_exp_theta, 1)
    bounds = problem.bounds
    start = memory.to_physical(memory.to_unconstrained(one_exp_theta, 1, bounds) + 0.05, 1, bounds)
    runs = [evolution.fit_memory(problem, quick(n_exp=1, seed=3, max_generations=5, restarts=0,
                                                max_polish_evaluations=5),
                                 start=start, solver_settings=settings) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].theta, runs[1].theta)
    assert runs[0].history == runs[1].history and runs[0].generations == 5
    assert runs[0].loss <= runs[0].history[0]


def test_fit_recovers_a_known_memory_of_each_species(one_exp_theta):
    """Known N_exp = 1 memory -> F -> fit from a perturbed start -> the same memory, and each
    species' F to R^2 > 0.9999; the fit converges and its correlator is valid."""
    problem, settings = synthetic_problem(one_exp_theta, 1)
    bounds = problem.bounds
    rng = np.random.default_rng(7)
    z = memory.to_unconstrained(one_exp_theta, 1, bounds) + rng.normal(0, 0.05, 15)
    result = evolution.fit_memory(problem, quick(n_exp=1, seed=1, lasso=0.0),
                                  start=memory.to_physical(z, 1, bounds), solver_settings=settings)
    assert result.loss < 1e-6 < result.history[0]
    assert result.converged and result.valid
    assert result.r2_A > 0.9999 and result.r2_B > 0.9999
    t = np.geomspace(MEMORY_TIMES[0], MEMORY_TIMES[-1], 40)
    truth, fitted = memory.memory_matrix(t, one_exp_theta, 1), result.memory(t)
    # the diagonal memories are pinned by the data, each species' by its own F (B's less
    # tightly at the earliest times: 4.2 % at t = 0.005 for loss 1.4e-7, 1.2 % for A)
    for i, tolerance in ((0, 0.02), (1, 0.05)):
        assert np.max(np.abs(fitted[:, i, i] - truth[:, i, i])) < tolerance * truth[0, i, i]


def test_nested_fits_never_lose_and_start_at_the_smaller_optimum(one_exp_theta):
    problem, settings = synthetic_problem(one_exp_theta, 1)
    bounds = problem.bounds
    z = memory.to_unconstrained(one_exp_theta, 1, bounds) + 0.05
    start = memory.to_physical(z, 1, bounds)
    fits = evolution.fit_nested(problem, [1, 2, 3],
                                quick(max_generations=15, max_polish_evaluations=10),
                                starts={1: (start, "perturbed")}, solver_settings=settings)
    assert [fits[n].n_exp for n in (1, 2, 3)] == [1, 2, 3]
    assert fits[2].loss <= fits[1].loss * (1 + 1e-9)
    assert fits[3].loss <= fits[2].loss * (1 + 1e-9)
    assert fits[2].start == "warm from N_exp = 1" and fits[2].history[0] == pytest.approx(
        fits[1].loss, rel=1e-6, abs=1e-12)


@pytest.mark.slow
def test_fitting_mct_own_F_s_recovers_mct_memory():
    """The paper's sanity check: the fit, started from the data heuristic (not from MCT),
    fits eq. 6 to tagged MCT's F_s(k_p, t) and recovers MCT's tagged memory at k_p, of each
    species.

    Statics: an 80:20 Percus-Yevick hard-sphere mixture (size ratio 0.8) at packing 0.50, a
    liquid with a cage; tagged MCT with Brownian dynamics and unit friction solves exactly
    eq. 5 with coupling "self", and both solves use the same time discretisation.
    """
    from supercooled import mct
    from supercooled.grids import K_GRID
    from supercooled.solver import SolverSettings

    system = mct.binary_hard_sphere_system(0.50, fractions=(0.8, 0.2), size_ratio=0.8)
    i = int(np.argmax(system.S[:, 0, 0]))
    k_p, s = float(K_GRID[i]), system.S[i]
    settings = memory.solver_settings(TIME_GRID[-1], n_per_block=32)
    mct_settings = SolverSettings(n_per_block=32, t_initial=settings.t_initial,
                                  t_max=float(TIME_GRID[-1]), tolerance=1e-10)
    peak = mct.mct_at_peak(system.S, system.density, 1.0, k_p, kind="tagged",
                           settings=mct_settings)
    keep = peak.F_s[:, 0] > 1e-3 * peak.F_s[0, 0]  # times before F has decayed away
    problem = memory.MemoryProblem(TIME_GRID[keep], peak.F_s[keep], [s[0, 0], s[0, 1], s[1, 1]],
                                   k_p, 1.0, coupling="self")
    np.testing.assert_allclose(problem.omega2, peak.omega2)
    result = evolution.fit_memory(problem, quick(n_exp=2, seed=0), solver_settings=settings,
                                  start=evolution.heuristic_start(problem, 2))
    assert result.r2_A > 0.9999 and result.r2_B > 0.9999 and result.valid
    fitted, truth = result.memory(problem.times), peak.M[keep]
    error = np.abs(fitted - truth).max(axis=0) / truth[0].max(axis=0)
    assert error[0, 0] < 0.05 and error[1, 1] < 0.05  # each species' memory within 5 %
