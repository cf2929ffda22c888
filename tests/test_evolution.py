"""Tests of supercooled.evolution: the loss, the eq. 6 start fit and CMA-ES recovery of memories."""

import numpy as np
import pytest

from supercooled import evolution, memory
from supercooled.errors import SupercooledError
from supercooled.grids import TIME_GRID

S_KP = [2.8, 0.1, 0.6]
K_P, TEMPERATURE = 7.2, 0.5
TIMES = TIME_GRID[:51]  # 0.005 ... 500 tau
# coarse but consistent solver settings: data and fits use the same discretisation
FAST = dict(n_per_block=16, t_initial=1e-4)


def one_exp_theta():
    """N_exp = 1: a cage-like memory with a plateau, decaying over ~ 1 tau."""
    return memory.pack(np.array([0.2, 0.05, 0.1]), np.array([[30.0], [4.0], [20.0]]),
                       np.array([[0.3], [0.1], [0.4]]), np.array([[0.8], [0.5], [1.2]]),
                       np.array([[0.8], [1.0], [0.7]]))


def synthetic_problem(theta, n_exp, coupling="paper"):
    settings = memory.solver_settings(TIMES[-1], **FAST)
    base = memory.MemoryProblem(TIMES, np.ones((TIMES.size, 2)), S_KP, K_P, TEMPERATURE,
                                coupling=coupling, label="synthetic")
    target = memory.solve_for_memory(base, theta, n_exp, settings=settings)[0]
    problem = memory.MemoryProblem(TIMES, target, S_KP, K_P, TEMPERATURE, coupling=coupling,
                                   label="synthetic")
    return problem, settings


def test_r_squared():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert evolution.r_squared(y, y) == 1.0
    assert evolution.r_squared(y, np.full(4, y.mean())) == pytest.approx(0.0)
    assert evolution.r_squared(y, y + 0.5) == pytest.approx(1 - 4 * 0.25 / 5.0)


def test_settings_validation():
    with pytest.raises(SupercooledError):
        evolution.FitSettings(n_exp=0)
    with pytest.raises(SupercooledError):
        evolution.FitSettings(sigma0=-1.0)
    with pytest.raises(SupercooledError):
        evolution.FitSettings(lasso=-1.0)
    assert evolution.FitSettings().sigma0 == evolution.DEFAULT_SIGMA0
    assert evolution.PAPER_SIGMA0 == 5e-4


def test_fit_parametrisation_recovers_an_eq6_memory():
    theta = memory.pack(np.array([1.0, 0.2, 0.5]), np.array([[40.0, 6.0], [5.0, 1.0], [25.0, 3.0]]),
                        np.array([[0.0, 0.3], [0.0, 0.2], [0.0, 0.4]]),
                        np.array([[0.05, 20.0], [0.1, 10.0], [0.04, 30.0]]),
                        np.array([[1.0, 0.6], [1.0, 0.8], [1.2, 0.5]]))
    t = np.geomspace(1e-3, 1e4, 80)
    target = memory.memory_matrix(t, theta, 2)
    fitted = evolution.fit_parametrisation(t, target, 2)
    m = memory.memory_matrix(t, fitted, 2)
    scale = np.max(np.abs(target), axis=0)
    assert np.max(np.abs(m - target) / scale) < 2e-3


def test_loss_is_zero_at_the_truth_and_scores_the_population_in_one_call():
    theta = one_exp_theta()
    problem, settings = synthetic_problem(theta, 1)
    objective = evolution.Objective(problem, 1, lasso=0.0, solver_settings=settings)
    calls = []
    simulate = objective.simulate
    objective.simulate = lambda th: calls.append(th.shape) or simulate(th)
    z = memory.to_unconstrained(theta, 1)
    losses = objective(np.stack([z, z + 0.2, z - 0.2]))
    assert calls == [(3, memory.n_parameters(1))]
    assert losses[0] < 1e-20 and losses[1] > 1e-4 and losses[2] > 1e-4
    # the lasso adds lambda * sum of amplitudes / mean diag Omega^2
    objective.lasso = 1e-3
    amp = sum(memory.unpack(theta, 1)["c"]) + memory.unpack(theta, 1)["w"].sum()
    expected = 1e-3 * amp / np.mean(np.diag(problem.omega2))
    assert objective(z[None])[0] == pytest.approx(expected, rel=1e-6)


def test_same_seed_same_fit():
    theta = one_exp_theta()
    problem, settings = synthetic_problem(theta, 1)
    start = memory.to_physical(memory.to_unconstrained(theta, 1) + 0.2, 1)
    runs = [evolution.fit_memory(problem, evolution.FitSettings(n_exp=1, seed=3, max_generations=5,
                                                                progress=False),
                                 start=start, solver_settings=settings) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].theta, runs[1].theta)
    assert runs[0].history == runs[1].history and runs[0].generations == 5
    assert runs[0].loss <= runs[0].history[0]


def test_cmaes_recovers_a_known_memory_from_the_F_it_produces():
    """Known N_exp = 1 memory -> F -> CMA-ES from a perturbed start -> the same memory."""
    theta = one_exp_theta()
    problem, settings = synthetic_problem(theta, 1)
    rng = np.random.default_rng(7)
    start = memory.to_physical(memory.to_unconstrained(theta, 1) + rng.normal(0, 0.3, 15), 1)
    result = evolution.fit_memory(
        problem, evolution.FitSettings(n_exp=1, seed=1, target_loss=1e-9, lasso=0.0,
                                       max_generations=1500, progress=False),
        start=start, solver_settings=settings)
    assert result.loss < 1e-6 < result.history[0]
    assert result.r2 > 0.99999
    t = np.geomspace(TIMES[0], TIMES[-1], 40)
    truth, fitted = memory.memory_matrix(t, theta, 1), result.memory(t)
    for i, j in [(0, 0), (1, 1)]:  # the diagonal memories are pinned by the data
        assert np.max(np.abs(fitted[:, i, j] - truth[:, i, j])) < 0.02 * truth[0, i, j]


@pytest.mark.slow
def test_fitting_mct_own_F_s_recovers_mct_memory():
    """The paper's sanity check: CMA-ES, started from the data heuristic (not from MCT), fits
    eq. 6 to tagged MCT's F_s(k_p, t) and recovers MCT's tagged memory at k_p.

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
    result = evolution.fit_memory(
        problem, evolution.FitSettings(n_exp=2, seed=0, popsize=13, max_generations=600,
                                       target_loss=1e-9, progress=False),
        start=evolution.heuristic_start(problem, 2), solver_settings=settings)
    assert result.r2 > 0.9999
    fitted, truth = result.memory(problem.times), peak.M[keep]
    error = np.abs(fitted - truth).max(axis=0) / truth[0].max(axis=0)
    assert error[0, 0] < 0.05  # M_s,A within 5 % of its initial value
    assert error[1, 1] < 0.25  # B: smaller F_BB, weaker constraint


def write_synthetic_state(folder, temperature=0.5):
    """A library state file whose phi_s comes from the memory equation with one_exp_theta()."""
    import xarray as xr

    from supercooled import mct
    from supercooled.grids import K_GRID
    from supercooled.library import state_filename, write_state

    system = mct.binary_hard_sphere_system(0.45, fractions=(0.8, 0.2), size_ratio=0.8)
    i = int(np.argmax(system.S[:, 0, 0]))
    s_kp = [system.S[i, 0, 0], system.S[i, 0, 1], system.S[i, 1, 1]]
    base = memory.MemoryProblem(TIMES, np.ones((TIMES.size, 2)), s_kp, K_GRID[i], temperature)
    F = memory.solve_for_memory(base, one_exp_theta(), 1)[0]
    phi = np.full((2, TIME_GRID.size), np.nan)
    phi[:, :TIMES.size] = (F / np.diag(base.f0)).T
    S = np.stack([system.S[:, 0, 0], system.S[:, 0, 1], system.S[:, 1, 1]])
    attrs = dict(interaction="LJ", density=1.2, temperature=temperature,
                 temperature_target=temperature, n_particles=1200, seed=1, dt=0.005,
                 engine="synthetic", engine_version="0", equilibration_time=1.0,
                 production_time=1.0, energy_drift=0.0, crystallized=0, equilibrated=1,
                 created="test")
    ds = xr.Dataset({"S": (("pair", "k"), S), "phi_s": (("species", "time"), phi),
                     "msd": (("species", "time"), np.zeros((2, TIME_GRID.size))),
                     "k_p": ((), float(K_GRID[i])), "tau_alpha": ((), 1.0)},
                    coords={"k": K_GRID, "time": TIME_GRID, "pair": ["AA", "AB", "BB"],
                            "species": ["A", "B"]}, attrs=attrs)
    write_state(ds, folder / state_filename("LJ", 1.2, temperature))


def test_fit_memory_command_writes_a_row_and_rejects_bad_input(tmp_path, capsys):
    import pandas as pd

    from supercooled.cli import main

    write_synthetic_state(tmp_path)
    out = tmp_path / "fit.csv"
    code = main(["fit-memory", "--library", str(tmp_path), "--interaction", "LJ", "--density",
                 "1.2", "--temperature", "0.5", "--n-exp", "1", "--start", "heuristic",
                 "--max-generations", "3", "--quiet", "--out", str(out)])
    assert code == 0
    row = pd.read_csv(out).iloc[0]
    assert row["state"] == "LJ_rho1.200_T0.5000" and row["n_exp"] == 1 and row["generations"] == 3
    assert np.isfinite(row["loss"]) and np.isfinite(row["AA_w1"]) and np.isnan(row["AA_w2"])
    # unknown temperature, interaction, density: one-line errors, exit 2
    for bad in (["--temperature", "0.9"], ["--interaction", "XY"], ["--density", "1.4"]):
        args = dict(zip(["--interaction", "--density", "--temperature"], ["LJ", "1.2", "0.5"],
                        strict=True))
        args[bad[0]] = bad[1]
        argv = ["fit-memory", "--library", str(tmp_path)] + [x for kv in args.items() for x in kv]
        assert main(argv + ["--quiet"]) == 2
        assert "supercooled: error:" in capsys.readouterr().err


def test_fit_plan_series_first_then_every_equilibrated_state():
    import xarray as xr

    inter = ["LJ", "LJ", "LJ", "WCA", "WCA", "LJ"]
    dens = [1.2, 1.2, 1.4, 1.2, 1.2, 1.2]
    temps = [0.8, 0.6, 1.0, 0.7, 0.9, 0.5]
    equil = [1, 1, 1, 1, 1, 0]  # the aged LJ state is never fitted
    lib = xr.Dataset(coords={"interaction": ("state", inter), "density": ("state", dens),
                             "temperature": ("state", temps), "equilibrated": ("state", equil)})
    plan = evolution.fit_plan(lib, series_density=1.2)
    # LJ series at rho = 1.2 (ascending T), all N_exp; then WCA; then the rest with N_exp = 2
    assert plan[:6] == [(1, 1), (1, 2), (1, 3), (0, 1), (0, 2), (0, 3)]
    assert plan[6:12] == [(3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3)]
    assert plan[12:] == [(2, 2)]
    assert all(i != 5 for i, _ in plan)


def _select_library(temps, targets, equil):
    import xarray as xr

    n = len(temps)
    return xr.Dataset(coords={"interaction": ("state", ["LJ"] * n), "density": ("state", [1.2] * n),
                              "temperature": ("state", temps),
                              "temperature_target": ("state", targets),
                              "equilibrated": ("state", equil)})


def test_select_state_prefers_equilibrated_only_at_the_same_temperature():
    # aged glass exactly at T = 0.35, an equilibrated state 1.4 % away: the nearer one wins
    lib = _select_library([0.3502, 0.355], [0.35, 0.355], [0, 1])
    assert float(evolution.select_state(lib, "LJ", 1.2, 0.35).temperature) == 0.3502
    assert float(evolution.select_state(lib, "LJ", 1.2, 0.355).temperature) == 0.355
    # same target temperature: the equilibrated run wins although its measured T is further
    lib = _select_library([0.3501, 0.3512], [0.35, 0.35], [0, 1])
    assert float(evolution.select_state(lib, "LJ", 1.2, 0.3501).temperature) == 0.3512
    # ... and so it does when the two differ from T by (nearly) the same amount
    lib = _select_library([0.3495, 0.3505], [0.349, 0.351], [0, 1])
    assert float(evolution.select_state(lib, "LJ", 1.2, 0.35).temperature) == 0.3505
    # between two equilibrated states the nearer wins
    lib = _select_library([0.34, 0.352, 0.3485], [0.34, 0.352, 0.3485], [1, 1, 1])
    assert float(evolution.select_state(lib, "LJ", 1.2, 0.35).temperature) == 0.3485
    with pytest.raises(SupercooledError, match="no LJ state at rho = 1.2 near T = 0.4"):
        evolution.select_state(lib, "LJ", 1.2, 0.4)
