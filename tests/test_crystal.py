"""Tests of the crystallisation check on crystals, liquids and mixed configurations."""

from __future__ import annotations

import numpy as np
import pytest

from supercooled.crystal import fcc_positions, is_crystallized, solid_fraction, solid_like
from supercooled.engines import make_engine
from supercooled.errors import SupercooledError
from supercooled.systems import StatePoint


@pytest.fixture(scope="module")
def liquid():
    """A Kob-Andersen liquid at rho = 1.2, T = 0.8 (N = 500) after 2 tau of NVT."""
    state = StatePoint("LJ", 1.2, 0.8, n_particles=500)
    engine = make_engine("lammps", state, dt=0.005)
    engine.create(np.random.default_rng(3).uniform(0, state.box_length, (500, 3)), 99)
    engine.use_thermostat(0.8, 0.5)
    engine.advance(400)
    positions = engine.unwrapped_positions()
    engine.close()
    return positions, state.box_length


def test_perfect_fcc_is_crystal():
    cells, a = 5, (4 / 1.2) ** (1 / 3)  # fcc at the mixture's density
    positions = fcc_positions(cells, a) - cells * a / 2
    assert len(positions) == 500
    assert solid_fraction(positions, cells * a) == 1.0
    assert is_crystallized(positions, cells * a)


def test_thermal_fcc_is_crystal():
    cells, a = 5, (4 / 1.2) ** (1 / 3)
    rng = np.random.default_rng(0)
    # Lindemann-sized vibrations (~10 % of the neighbour distance) keep the crystal solid-like
    positions = fcc_positions(cells, a) + rng.normal(scale=0.07, size=(500, 3))
    assert solid_fraction(positions, cells * a) > 0.9


def test_liquid_is_not_crystal(liquid):
    positions, length = liquid
    assert solid_fraction(positions, length) < 0.02
    assert not is_crystallized(positions, length)
    # unwrapped coordinates are accepted: shifting by box vectors changes nothing
    shifted = positions + length * np.random.default_rng(1).integers(-3, 4, size=positions.shape)
    np.testing.assert_array_equal(solid_like(shifted, length), solid_like(positions, length))


def test_ideal_gas_is_not_crystal():
    rng = np.random.default_rng(5)
    assert not is_crystallized(rng.uniform(0, 8, size=(600, 3)), 8.0)


def test_crystallite_in_liquid_is_detected():
    """Half the box crystalline: the fraction is about one half and the flag is set."""
    cells, a = 6, (4 / 1.2) ** (1 / 3)
    length = cells * a
    rng = np.random.default_rng(2)
    lattice = fcc_positions(cells, a) + rng.normal(scale=0.05, size=(4 * cells**3, 3))
    keep = lattice[:, 0] < length / 2
    gas = rng.uniform(0, 1, size=((~keep).sum(), 3)) * [length / 2, length, length]
    positions = np.concatenate([lattice[keep], gas + [length / 2, 0, 0]])
    fraction = solid_fraction(positions, length)
    assert 0.3 < fraction < 0.6
    assert is_crystallized(positions, length)


def test_bad_input():
    with pytest.raises(SupercooledError, match="positions"):
        solid_fraction(np.zeros((5, 3)), 3.0)
    with pytest.raises(SupercooledError, match="positions"):
        solid_fraction(np.zeros((50, 2)), 3.0)
    with pytest.raises(SupercooledError, match="box length"):
        solid_fraction(np.random.default_rng(0).uniform(size=(50, 3)), -1.0)
    with pytest.raises(SupercooledError, match="cells"):
        fcc_positions(0, 1.0)


def test_points_on_the_upper_boundary_are_wrapped_to_the_lower_one():
    """x just below L/2 (or an image of it) rounds to +L/2 in float32: freud needs [-L/2, L/2)."""
    from supercooled.crystal import _system

    length = 3.0
    positions = np.random.default_rng(4).uniform(-1.5, 1.5, (50, 3))
    positions[0] = [1.5 - 1e-9, -1.5, 4.5 - 1e-9]
    _, points = _system(positions, length)
    assert points.dtype == np.float32
    assert np.all(points < length / 2) and np.all(points >= -length / 2)
    assert points[0, 0] == -1.5 and points[0, 2] == -1.5
    assert 0.0 <= solid_fraction(positions, length) <= 1.0
