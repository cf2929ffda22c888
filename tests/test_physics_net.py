"""The physics architecture: a valid correlator and the kinematic T^(-1/2) for any weights."""

from __future__ import annotations

import numpy as np
import pytest

from supercooled.dynamics import tau_alpha
from supercooled.grids import TIME_GRID
from supercooled.ml import physics
from supercooled.ml.ensemble import Ensemble
from supercooled.ml.features import Scaler, state_features


def _random_ensemble(seed, n_members=3, hidden=(32, 16)):
    import torch

    torch.manual_seed(seed)
    members = []
    for _ in range(n_members):
        net = physics.build_correlator_network(hidden)
        with torch.no_grad():  # random weights of all sizes, random output biases
            for p in net.parameters():
                p.normal_(0.0, float(torch.empty(1).uniform_(0.05, 1.0)))
        members.append(net.eval())
    n_in = len(physics.INPUT_COLUMNS)
    rng = np.random.default_rng(seed)
    scaler = Scaler(rng.normal(0, 1, n_in), rng.uniform(0.02, 2, n_in))
    return Ensemble(members, scaler, hidden, {}, "physics")


def _random_states(rng, n=20):
    feats = rng.normal(1.0, 1.0, (n, 303))
    feats[:, 300] = rng.uniform(0.2, 20.0, n)  # T
    feats[:, 301] = rng.uniform(1.0, 2.0, n)  # rho
    feats[:, 302] = rng.integers(0, 2, n)
    return feats


@pytest.mark.parametrize("seed", range(5))
def test_any_weights_and_inputs_give_a_valid_correlator(seed):
    rng = np.random.default_rng(seed)
    ens = _random_ensemble(seed)
    times = np.r_[0.0, 1e-6, TIME_GRID, 1e6, 1e8]
    phi = ens.predict_phi(_random_states(rng), times)  # (M, n, n_time, 2)
    np.testing.assert_array_equal(phi[:, :, 0], 1.0)  # phi_s(t = 0) = 1
    assert np.isfinite(phi).all() and (phi >= 0).all() and (phi <= 1).all()
    assert (np.diff(phi, axis=2) <= 1e-12).all()  # non-increasing in t


@pytest.mark.parametrize("seed", range(5))
def test_tau_alpha_at_fixed_structure_falls_as_t_to_the_minus_half(seed):
    """At fixed S(k) and rho, tau_alpha(1.25 T) <= 0.95 tau_alpha(T) (here exactly 1.25^-1/2)."""
    rng = np.random.default_rng(100 + seed)
    ens = _random_ensemble(seed)
    states = _random_states(rng, 10)
    warm = states.copy()
    warm[:, 300] *= 1.25
    # grid ratio 1.25^(1/16): 1.25^(1/2) in t~ is 8 grid steps, so tau_alpha's log-t
    # interpolation meets the same phi values at both temperatures
    times = 1.25 ** (np.arange(-1000, 1400) / 16.0)
    cold_phi = ens.predict_phi(states, times).mean(axis=0)
    warm_phi = ens.predict_phi(warm, times).mean(axis=0)
    checked = 0
    for j in range(len(states)):
        t_cold, t_warm = tau_alpha(cold_phi[j, :, 0], times), tau_alpha(warm_phi[j, :, 0], times)
        if np.isfinite(t_cold) and np.isfinite(t_warm):
            assert t_warm <= 0.95 * t_cold
            assert t_warm / t_cold == pytest.approx(1.25 ** -0.5, rel=1e-9)
            checked += 1
    assert checked >= 5


def test_interpolation_is_exact_on_the_grid_and_ballistic_below_it():
    g = np.cumsum(np.random.default_rng(0).uniform(0, 1, len(physics.REDUCED_TIME_GRID)))
    w = physics.interpolation_weights(physics.REDUCED_TIME_GRID)
    np.testing.assert_allclose(w @ g, g)
    t0 = physics.REDUCED_TIME_GRID[0]
    np.testing.assert_allclose(physics.interpolation_weights(np.array([t0 / 2])) @ g, g[0] / 4)
    mid = np.sqrt(physics.REDUCED_TIME_GRID[3] * physics.REDUCED_TIME_GRID[4])
    np.testing.assert_allclose(physics.interpolation_weights(np.array([mid])) @ g,
                               (g[3] + g[4]) / 2)


def test_reduced_time():
    assert physics.reduced_time(2.0, 4.0, 8.0) == pytest.approx(2.0 * 2.0 * 2.0)


def test_trained_physics_model_has_positive_scaling(synthetic_library):
    from supercooled.library import split_indices
    from supercooled.ml.ensemble import train_ensemble
    from supercooled.ml.network import TrainConfig

    ds = synthetic_library()
    train, test = split_indices(ds.sizes["state"], 0.2, seed=0)
    ens = train_ensemble(ds, train, n_members=2, progress=False,
                         config=TrainConfig(hidden=(16,), epochs=3, threads=1, patience=None))
    assert ens.architecture == "physics" and (ens.scaler.std > 0).all()
    phi = ens.predict_phi(state_features(ds.isel(state=test)))
    assert (phi <= 1).all() and (np.diff(phi, axis=2) <= 1e-12).all()
