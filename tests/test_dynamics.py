"""Self ISF, MSD, time origins, gridding, tau_alpha and D against known answers."""

import numpy as np
import pytest

from supercooled.dynamics import (
    block_starts,
    diffusion_coefficient,
    diffusion_fit,
    msd,
    self_correlations,
    self_isf,
    tau_alpha,
    to_time_grid,
)
from supercooled.errors import SupercooledError
from supercooled.grids import TIME_GRID

DT = 0.005


def log_periodic_steps(block_length=1000, n_blocks=8, per_decade=10, final=True):
    decades = np.log10(block_length)
    offsets = np.unique(np.round(np.logspace(0, decades, int(decades * per_decade) + 1)))
    offsets = np.r_[0, offsets[offsets < block_length]].astype(int)
    steps = (np.arange(n_blocks)[:, None] * block_length + offsets).ravel()
    return np.r_[steps, n_blocks * block_length] if final else steps


def random_walk(steps, n_particles, step_sigma, seed=0):
    """Gaussian increments of variance step_sigma^2 per MD step and component, exact at frames."""
    rng = np.random.default_rng(seed)
    gaps = np.diff(steps, prepend=steps[0])
    increments = rng.normal(size=(steps.size, n_particles, 3)) * step_sigma * np.sqrt(gaps)[:, None, None]
    return np.cumsum(increments, axis=0)


def species(n_particles):
    typeid = np.zeros(n_particles, dtype=int)
    typeid[int(0.8 * n_particles):] = 1
    return typeid


def test_block_starts_from_a_log_periodic_schedule():
    steps = log_periodic_steps()
    origins, block = block_starts(steps)
    assert block == 1000
    assert list(steps[origins]) == list(range(0, 8001, 1000))
    # a final frame that does not close a block is exempt; a given B wins
    odd = np.r_[log_periodic_steps(final=False), 8500]
    assert block_starts(odd)[1] == 1000
    assert block_starts(steps, block_length=2000)[1] == 2000
    assert len(block_starts(steps, block_length=2000)[0]) == 5


def test_block_starts_uniform_and_irregular_schedules():
    uniform = np.arange(0, 500, 10)
    origins, block = block_starts(uniform)
    assert block == 10 and origins.size == uniform.size
    irregular = np.array([0, 5, 6, 50])  # 5 is no period (6 would be off-pattern), 6 is
    origins, block = block_starts(irregular)
    assert block == 6 and list(origins) == [0, 2]
    assert block_starts(np.array([0, 7]))[1] == 7
    with pytest.raises(SupercooledError, match="increase"):
        block_starts(np.array([0, 5, 5, 9]))


def test_ideal_gas_isf_and_msd_are_exact_at_every_lag():
    steps = log_periodic_steps(n_blocks=4)
    rng = np.random.default_rng(1)
    n, temperature, k = 2000, 1.5, 7.2
    v = rng.normal(0, np.sqrt(temperature), (n, 3))
    positions = rng.uniform(0, 10, (n, 3))[None] + v[None] * steps[:, None, None] * DT
    typeid = species(n)
    lag = self_correlations(positions, steps, typeid, k)
    t = lag.times(DT)
    speed = np.linalg.norm(v, axis=1)
    for a in range(2):
        s = speed[typeid == a]
        expected = np.sinc(k * s[None] * t[:, None] / np.pi).mean(axis=1)
        np.testing.assert_allclose(lag.phi[a], expected, atol=1e-9)
        np.testing.assert_allclose(lag.msd[a], np.mean(s**2) * t**2, rtol=1e-9)
    # and the ideal-gas laws phi = exp(-k^2 T t^2 / 2m), MSD = 3 T t^2 / m on the grid
    phi = self_isf(positions, steps, typeid, k, DT)
    sampled = np.isfinite(phi[0])
    grid_t = TIME_GRID[sampled]
    assert np.max(np.abs(phi[0, sampled] - np.exp(-(k**2) * temperature * grid_t**2 / 2))) < 0.02
    m = msd(positions, steps, typeid, DT)
    np.testing.assert_allclose(m[0, sampled] / (3 * temperature * grid_t**2), 1, atol=0.05)
    assert grid_t[0] == TIME_GRID[0] and grid_t[-1] <= steps[-1] * DT * (1 + 1e-9)
    assert np.isnan(phi[:, ~sampled]).all()


def test_time_origin_average_reproduces_single_origin():
    """A random walk is stationary: all origins estimate the same phi_s and MSD."""
    steps = log_periodic_steps(block_length=200, n_blocks=6, per_decade=5)
    n, sigma, k = 3000, 0.02, 7.2
    positions = random_walk(steps, n, sigma, seed=2)
    typeid = species(n)
    many = self_correlations(positions, steps, typeid, k)
    single = self_correlations(positions, steps, typeid, k, origins=[0])
    common, i_many, i_single = np.intersect1d(many.lags, single.lags, return_indices=True)
    assert common.size > 10 and many.counts.max() == 6
    exact_msd = 3 * sigma**2 * common
    exact_phi = np.exp(-(k**2) * sigma**2 * common / 2)
    n_a = 2400
    for estimate, index in ((many, i_many), (single, i_single)):
        # MSD/(3 sigma^2 t) of N_a walkers has relative error sqrt(2/(3 N_a)) per origin
        np.testing.assert_allclose(estimate.msd[0, index] / exact_msd, 1, atol=5 * np.sqrt(2 / (3 * n_a)))
        assert np.max(np.abs(estimate.phi[0, index] - exact_phi)) < 5 * np.sqrt(0.5 / n_a)
    assert np.max(np.abs(many.phi[0, i_many] - single.phi[0, i_single])) < 5 * np.sqrt(0.5 / n_a)
    # averaging over 6 origins beats one origin on the lags all origins reach
    inner = common < 200
    err_many = np.abs(many.msd[0, i_many][inner] / exact_msd[inner] - 1).mean()
    err_single = np.abs(single.msd[0, i_single][inner] / exact_msd[inner] - 1).mean()
    assert err_many < err_single


def test_split_halves_of_a_stationary_process_agree():
    steps = log_periodic_steps(block_length=200, n_blocks=8, per_decade=5)
    positions = random_walk(steps, 2000, 0.02, seed=3)
    whole, first, second = self_correlations(positions, steps, species(2000), 7.2,
                                             split_halves=True)
    assert first.lags.max() <= steps[-1] / 2 and second.lags.max() <= steps[-1] / 2
    common, i, j = np.intersect1d(first.lags, second.lags, return_indices=True)
    assert np.max(np.abs(first.phi[0, i] - second.phi[0, j])) < 0.05
    assert whole.counts.sum() > first.counts.sum() + second.counts.sum()


def test_to_time_grid_is_exact_for_power_laws_and_nan_outside():
    times = np.geomspace(0.01, 20.0, 23)
    values = 3.0 * times**2
    grid = to_time_grid(times, values, kind="msd")[0]
    inside = (TIME_GRID >= 0.01 * (1 - 1e-9)) & (TIME_GRID <= 20.0)
    np.testing.assert_allclose(grid[inside], 3.0 * TIME_GRID[inside] ** 2, rtol=1e-9)
    assert np.isnan(grid[~inside]).all()
    phi = np.exp(-((times / 0.7) ** 2))
    grid = to_time_grid(times, phi, kind="isf")[0]
    np.testing.assert_allclose(grid[inside], np.exp(-((TIME_GRID[inside] / 0.7) ** 2)), atol=1e-9)


def test_tau_alpha_and_diffusion_coefficient():
    for tau in (0.1, 3.0, 2000.0):
        phi = np.exp(-TIME_GRID / tau)
        assert tau_alpha(phi) == pytest.approx(tau, rel=0.01)
    stretched = np.exp(-((TIME_GRID / 50.0) ** 0.6))
    assert tau_alpha(stretched) == pytest.approx(50.0, rel=0.01)
    assert np.isnan(tau_alpha(np.full(TIME_GRID.size, 0.9)))  # glass: never decays
    truncated = np.exp(-TIME_GRID / 10.0)
    truncated[TIME_GRID > 5] = np.nan  # run too short to see 1/e
    assert np.isnan(tau_alpha(truncated))
    d = 0.013
    cage = 0.05 * (1 - np.exp(-TIME_GRID / 0.2))
    msd_values = cage + 6 * d * TIME_GRID
    assert diffusion_coefficient(msd_values) == pytest.approx(d, rel=1e-3)
    fit = diffusion_fit(msd_values)
    assert fit.diffusive and fit.exponent == pytest.approx(1.0, abs=0.01)
    assert fit.window[0] == TIME_GRID[np.argmax(msd_values >= 1.0)]


def test_diffusion_of_a_run_too_short_to_reach_one_diameter_is_an_estimate_saying_so():
    d = 0.002
    msd_values = 0.05 * (1 - np.exp(-TIME_GRID / 0.2)) + 6 * d * TIME_GRID
    msd_values[TIME_GRID > 90.0] = np.nan  # the run ended at MSD ~ 1.1, one point >= 1
    fit = diffusion_fit(msd_values)
    assert not fit.diffusive and fit.window[1] == TIME_GRID[TIME_GRID <= 90.0][-1]
    assert fit.D == pytest.approx(d, rel=0.02) and 0.9 < fit.exponent < 1.0
    caged = diffusion_fit(np.full(TIME_GRID.size, 0.1))  # never leaves the cage
    assert not caged.diffusive and caged.D == pytest.approx(0.0, abs=1e-12)
    assert caged.exponent == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(diffusion_fit(np.full(TIME_GRID.size, np.nan)).D)


def test_bad_input():
    steps = np.arange(5)
    with pytest.raises(SupercooledError, match="shape"):
        self_correlations(np.zeros((4, 10, 3)), steps, species(10), 7.0)
    with pytest.raises(SupercooledError, match="wave number"):
        self_correlations(np.zeros((5, 10, 3)), steps, species(10), -1.0)
    with pytest.raises(SupercooledError, match="species B"):
        self_correlations(np.zeros((5, 10, 3)), steps, np.zeros(10, int), 7.0)
    with pytest.raises(SupercooledError, match="two frames"):
        block_starts([0])


def test_density_scaling_exponent_recovers_known_gamma():
    from supercooled.dynamics import density_scaling_exponent

    rng = np.random.default_rng(3)
    density = np.repeat([1.2, 1.4, 1.6, 1.8], 6)
    temperature = np.concatenate([np.linspace(0.5, 2.0, 6) * (r / 1.2) ** 4.3 for r in (1.2, 1.4, 1.6, 1.8)])
    scaled = density**4.3 / temperature
    reduced = 0.1 * np.exp(0.4 * scaled**1.5) * np.exp(rng.normal(0, 0.01, scaled.size))
    tau = reduced / (np.cbrt(density) * np.sqrt(temperature))
    gamma, residuals = density_scaling_exponent(density, temperature, tau)
    assert gamma == pytest.approx(4.3, abs=0.1)
    assert residuals.min() < 0.1 * residuals.max()
