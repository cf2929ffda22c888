"""Kob-Andersen potentials and StatePoint validation."""

import numpy as np
import pytest

from supercooled import systems
from supercooled.errors import SupercooledError

CASES = [(i, p) for i in systems.INTERACTIONS for p in systems.PAIRS]


@pytest.mark.parametrize(("interaction", "pair"), CASES)
def test_potential_vanishes_at_cutoff(interaction, pair):
    potential = systems.pair_potential(interaction, pair)
    rc = potential.cutoff
    assert potential.energy(rc) == 0.0
    assert abs(potential.energy(rc * (1 - 1e-9))) < 1e-7
    assert np.all(potential.energy(np.linspace(rc, 2 * rc, 7)) == 0.0)
    assert np.all(potential.force(np.linspace(rc, 2 * rc, 7)) == 0.0)


@pytest.mark.parametrize(("interaction", "pair"), CASES)
def test_force_is_minus_derivative(interaction, pair):
    potential = systems.pair_potential(interaction, pair)
    r = np.linspace(0.75 * potential.sigma, 0.999 * potential.cutoff, 200)
    h = 1e-6
    numeric = -(potential.energy(r + h) - potential.energy(r - h)) / (2 * h)
    np.testing.assert_allclose(potential.force(r), numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pair", systems.PAIRS)
def test_wca_minimum_sits_at_cutoff(pair):
    wca = systems.pair_potential("WCA", pair)
    lj = systems.pair_potential("LJ", pair)
    r = np.linspace(0.9 * lj.sigma, 2.0 * lj.sigma, 200001)
    r_min = r[np.argmin(lj.energy(r))]
    assert wca.cutoff == pytest.approx(r_min, abs=1e-5)
    # Purely repulsive: the force is non-negative everywhere inside the cutoff.
    assert np.all(wca.force(np.linspace(0.8 * wca.sigma, wca.cutoff, 500)) >= -1e-12)


def test_kob_andersen_parameters():
    ab = systems.pair_potential("LJ", "BA")
    assert (ab.epsilon, ab.sigma, ab.cutoff) == (1.5, 0.8, 2.0)
    assert systems.pair_potential("LJ", "AA").shift == pytest.approx(4 * (2.5**-12 - 2.5**-6))


@pytest.mark.parametrize(("rho", "n"), [(1.2, 1200), (1.4, 1400), (1.6, 1600), (1.8, 1800)])
def test_default_box_gives_paper_particle_numbers(rho, n):
    state = systems.StatePoint("lj", rho, 0.5)
    assert state.interaction == "LJ"
    assert state.n_particles == n
    assert (state.n_a, state.n_b) == (n * 4 // 5, n // 5)
    assert state.box_length == pytest.approx(10.0)
    assert state.n_particles / state.volume == pytest.approx(rho)


def test_explicit_particle_number_sets_box():
    state = systems.StatePoint("WCA", 1.2, 1.0, n_particles=500)
    assert state.box_length**3 * 1.2 == pytest.approx(500)
    assert systems.StatePoint.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interaction": "Morse"}, "unknown interaction"),
        ({"density": 0.0}, "density must be positive"),
        ({"density": -1.2}, "density must be positive"),
        ({"temperature": -0.5}, "temperature must be positive"),
        ({"temperature": float("nan")}, "temperature must be positive"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"n_particles": 1201}, "80:20"),
        ({"n_particles": 0}, "positive integer"),
        ({"n_particles": float("nan")}, "positive integer"),
        ({"n_particles": float("inf")}, "positive integer"),
    ],
)
def test_state_point_rejects_bad_input(kwargs, message):
    args = {"interaction": "LJ", "density": 1.2, "temperature": 0.5} | kwargs
    with pytest.raises(SupercooledError, match=message):
        systems.StatePoint(**args)


def test_density_scaling():
    assert systems.density_scaled_temperature(0.5, 1.2) == pytest.approx(0.5)
    assert systems.density_scaled_temperature(0.5, 1.44, gamma=5.0) == pytest.approx(0.5 * 1.2**5)


@pytest.mark.parametrize("n", [float("nan"), float("inf"), -float("inf"), "many", None, 12.5])
def test_composition_rejects_non_integers_with_one_error_type(n):
    with pytest.raises(SupercooledError, match="positive integer"):
        systems.composition(n)
