"""Partial structure factors against known answers and against freud's direct method."""

import numpy as np
import pytest

from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID
from supercooled.structure import partial_structure_factors, peak_position, shell_counts


def species(n_particles, seed=0):
    typeid = np.zeros(n_particles, dtype=int)
    typeid[np.random.default_rng(seed).permutation(n_particles)[: n_particles // 5]] = 1
    return typeid


def test_random_positions_give_composition():
    """Uncorrelated particles: S_aa(k) = x_a and S_ab(k) = 0 at every k (ideal gas)."""
    rng = np.random.default_rng(0)
    n, length = 1000, 9.0
    frames = rng.uniform(-length / 2, length / 2, (3, n, 3))
    s = partial_structure_factors(frames, species(n), length)
    counts = shell_counts(length)
    # each |rho_a(q)|^2 / N is exponentially distributed: relative error 1/sqrt(vectors * frames)
    for pair, expected in ((0, 0.8), (2, 0.2)):
        z = (s[pair] - expected) / (expected / np.sqrt(3 * counts.clip(1)))
        assert np.max(np.abs(z[counts > 0])) < 5
    assert np.max(np.abs(s[1][counts > 20])) < 0.05
    assert abs(s[1][K_GRID > 10].mean()) < 2e-3
    # unwrapped input (periodic images far from the box) gives the same numbers
    shifted = frames + length * rng.integers(-50, 50, frames.shape)
    np.testing.assert_allclose(partial_structure_factors(shifted, species(n), length), s,
                               atol=1e-6)


def test_simple_cubic_crystal_has_bragg_peaks_at_the_reciprocal_lattice():
    """A perfect crystal filling the box: rho(q) = N_a at reciprocal lattice vectors, 0 elsewhere."""
    a, cells = 1.1, 6
    length = a * cells
    grid = np.arange(cells) * a - length / 2
    positions = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    n = positions.shape[0]
    typeid = np.zeros(n, dtype=int)
    # every fifth site is B: not a sub-lattice of the box (the index is 36 i + 6 j + k), so the
    # single partials are not Bragg-like. Their species-blind sum S_AA + 2 S_AB + S_BB is
    # (1/N) <|rho(q)|^2> of the whole crystal, whatever the labels: that is what is checked.
    typeid[::5] = 1
    s = partial_structure_factors(positions, typeid, length)
    total = s[0] + 2 * s[1] + s[2]
    # expected: N x (fraction of the bin's lattice vectors that are multiples of `cells`)
    n_max = int(K_GRID[-1] * length / (2 * np.pi)) + 1
    m = np.arange(-n_max, n_max + 1)
    vec = np.stack(np.meshgrid(m, m, m, indexing="ij"), -1).reshape(-1, 3)
    vec = vec[(vec[:, 2] > 0) | ((vec[:, 2] == 0) & ((vec[:, 1] > 0) | ((vec[:, 1] == 0) & (vec[:, 0] > 0))))]
    q = np.linalg.norm(vec, axis=1) * 2 * np.pi / length
    bragg = np.all(vec % cells == 0, axis=1)
    index = np.floor(q / 0.4).astype(int)
    keep = index < K_GRID.size
    n_all = np.bincount(index[keep], minlength=K_GRID.size)
    n_bragg = np.bincount(index[keep], weights=bragg[keep], minlength=K_GRID.size)
    sampled = n_all > 0
    np.testing.assert_allclose(total[sampled], n * n_bragg[sampled] / n_all[sampled], atol=1e-3)
    # the first peak is at 2 pi / a
    first = np.flatnonzero(n_bragg > 0)[0]
    assert abs(K_GRID[first] - 2 * np.pi / a) <= 0.2


@pytest.fixture(scope="module")
def liquid():
    """A real Kob-Andersen liquid configuration (LJ, rho = 1.2, T = 2) from a short LAMMPS run."""
    import tempfile
    from pathlib import Path

    import gsd.hoomd

    from supercooled.md import simulate
    from supercooled.systems import StatePoint

    with tempfile.TemporaryDirectory() as folder:
        result = simulate(StatePoint("LJ", 1.2, 2.0), Path(folder) / "run", equilibration_time=2.0,
                          production_time=1.0, seed=3, progress=False)
        with gsd.hoomd.open(str(result.trajectory), "r") as trajectory:
            frame = trajectory[-1]
            positions = frame.particles.position.astype(float)
            typeid = frame.particles.typeid.astype(int)
    return positions, typeid, result.state.box_length


def _freud_partials(positions, typeid, length, k_max, bins):
    import freud

    box = freud.box.Box.cube(length)
    out = []
    for a, b in ((0, 0), (0, 1), (1, 1)):
        sf = freud.diffraction.StaticStructureFactorDirect(bins=bins, k_max=k_max, k_min=0)
        sf.compute((box, positions[typeid == a]), query_points=positions[typeid == b],
                   N_total=positions.shape[0])
        out.append(np.asarray(sf.S_k, dtype=float))
    return np.array(out)


def test_agrees_with_freud_direct(liquid):
    positions, typeid, length = liquid
    k_grid = K_GRID[:50]  # up to k = 20: bins identical to freud's 50 bins on [0, 20]
    reference = _freud_partials(positions, typeid, length, 20.0, 50)
    # 1) restricted to freud's vectors (n_x, n_y, n_z >= 0): the same numbers, to rounding
    octant = partial_structure_factors(positions, typeid, length, k_grid=k_grid, octant=True)
    np.testing.assert_allclose(octant[:, 1:], reference[:, 1:], atol=1e-4)
    # 2) all vectors (the default): the same within freud's statistical error. |rho(q)|^2/N
    # has standard deviation ~ S per vector, and freud's set is a quarter of ours.
    full = partial_structure_factors(positions, typeid, length, k_grid=k_grid)
    counts = shell_counts(length, k_grid=k_grid).clip(1)
    octant_counts = counts / 4
    sigma = np.abs(full[0]) * np.sqrt(np.clip(1 / octant_counts - 1 / counts, 0, None)) + 1e-6
    z = (full[0] - reference[0]) / sigma
    use = k_grid > 2
    assert np.max(np.abs(z[use])) < 5
    assert 0.3 < np.mean(z[use] ** 2) < 3  # deviations are statistical, not systematic
    # a dense liquid: main peak of S_AA near k = 7.2, S_AA -> x_A at large k
    assert peak_position(full[0], k_grid) == pytest.approx(7.2, abs=0.3)


def test_peak_position_refines_between_grid_points():
    k0 = 7.13
    s_aa = 0.8 + 2.0 * np.exp(-((K_GRID - k0) ** 2) / 0.5)
    assert peak_position(s_aa) == pytest.approx(k0, abs=0.02)
    with pytest.raises(SupercooledError):
        peak_position(np.full(K_GRID.size, np.nan))


def test_bad_input():
    with pytest.raises(SupercooledError, match="shape"):
        partial_structure_factors(np.zeros((10, 2)), np.zeros(10, int), 5.0)
    with pytest.raises(SupercooledError, match="NaN"):
        partial_structure_factors(np.full((10, 3), np.nan), np.zeros(10, int), 5.0)
    with pytest.raises(SupercooledError, match="no frames"):
        partial_structure_factors([], np.zeros(10, int), 5.0)


def test_bad_box_typeid_and_grid_are_refused_before_any_work(monkeypatch):
    import supercooled.structure as structure

    def no_lattice(*args, **kwargs):
        raise AssertionError("the reciprocal lattice was built before the input was checked")

    monkeypatch.setattr(structure, "_ReciprocalLattice", no_lattice)
    rng = np.random.default_rng(1)
    positions = rng.uniform(0, 5.0, (10, 3))
    typeid = species(10)
    for box in (0.0, -5.0, np.nan, np.inf, "wide"):
        with pytest.raises(SupercooledError, match="box length"):
            partial_structure_factors(positions, typeid, box)
    bad_frame = positions.copy()
    bad_frame[3, 1] = np.inf
    with pytest.raises(SupercooledError, match="NaN or infinity"):  # in the second frame
        partial_structure_factors([positions, bad_frame], typeid, 5.0)
    for bad in (np.full(10, 2), np.r_[typeid[:-1], -1], np.full(10, 0.5)):
        with pytest.raises(SupercooledError, match="typeid values"):
            partial_structure_factors(positions, bad, 5.0)
    with pytest.raises(SupercooledError, match="one species index per particle"):
        partial_structure_factors(positions, typeid[:-1], 5.0)
    grids = {"ascending": K_GRID[::-1], "uniformly": np.r_[K_GRID[:10], K_GRID[11:20]],
             "differs from the bin width": K_GRID[::2], "finite": np.r_[K_GRID[:5], np.nan]}
    for message, grid in grids.items():
        with pytest.raises(SupercooledError, match=message):
            partial_structure_factors(positions, typeid, 5.0, k_grid=grid)
    with pytest.raises(SupercooledError, match="dk"):
        partial_structure_factors(positions, typeid, 5.0, dk=0.0)
    with pytest.raises(SupercooledError, match="box length"):
        shell_counts(-1.0)


def test_a_coarser_grid_with_its_own_dk_is_accepted():
    rng = np.random.default_rng(2)
    positions = rng.uniform(0, 6.0, (200, 3))
    grid = (np.arange(1, 21) - 0.5) * 0.8
    s = partial_structure_factors(positions, species(200), 6.0, k_grid=grid, dk=0.8)
    assert s.shape == (3, 20) and np.isfinite(s).all()


def test_peak_position_needs_matching_lengths():
    with pytest.raises(SupercooledError, match="same length"):
        peak_position(np.ones(K_GRID.size - 1))
