"""Mode-coupling theory: statics, kernels, critical points and dynamics with known answers,
and its library side (supercooled.mct_table: T_mct table, cache, F_s of a library state)."""

import numpy as np
import pytest
import xarray as xr
from scipy.integrate import quad

from supercooled import mct, mct_table
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.mct import statics
from supercooled.solver import SolverSettings, interpolate_log_time, solve_memory_equation

FAST = SolverSettings(n_per_block=64, t_initial=1e-6, t_max=1e3, tolerance=1e-10)


# ------------------------------------------------------------------------------- statics


def test_ornstein_zernike_round_trip_and_ideal_gas():
    x = np.array([0.8, 0.2])
    rng = np.random.default_rng(0)
    A = rng.normal(size=(K_GRID.size, 2, 2)) * 0.1
    S = np.diag(x) + A @ A.transpose(0, 2, 1) * 0.1
    c = statics.direct_correlation(S, x, 1.2)
    np.testing.assert_allclose(statics.structure_from_direct_correlation(c, x, 1.2), S, atol=1e-12)
    # ideal mixture S = diag(x): no direct correlation
    ideal = np.broadcast_to(np.diag(x), (K_GRID.size, 2, 2))
    np.testing.assert_allclose(statics.direct_correlation(ideal, x, 1.2), 0.0, atol=1e-12)


def test_percus_yevick_direct_correlation_matches_quadrature():
    eta = 0.45
    a = (1 + 2 * eta) ** 2 / (1 - eta) ** 4
    b = 6 * eta * (1 + eta / 2) ** 2 / (1 - eta) ** 4

    def c_r(r):
        return -a + b * r - 0.5 * eta * a * r**3

    for k in (0.2, 3.7, 7.1, 25.0, 39.8):
        ref = 4 * np.pi * quad(lambda r, k=k: r**2 * c_r(r) * np.sin(k * r) / (k * r), 0, 1,
                               limit=200, epsabs=1e-13)[0]
        assert statics.percus_yevick_direct_correlation(k, eta) == pytest.approx(ref, rel=1e-9, abs=1e-12)
    # S(k -> 0) is the PY compressibility (1 - eta)^4 / (1 + 2 eta)^2
    assert statics.percus_yevick_structure(1e-4, eta) == pytest.approx((1 - eta) ** 4 / (1 + 2 * eta) ** 2,
                                                                   rel=1e-6)


def test_binary_percus_yevick_of_identical_species_is_one_component():
    eta = 0.5
    two = mct.binary_hard_sphere_system(eta, (0.3, 0.7), size_ratio=1.0)
    one = mct.hard_sphere_system(eta)
    np.testing.assert_allclose(two.S.sum(axis=(1, 2)), one.S[:, 0, 0], atol=1e-12)
    # the same n h(k) for every pair: S_ab = x_a delta_ab + x_a x_b n h
    nh = (two.S[:, 0, 0] - 0.3) / 0.09
    np.testing.assert_allclose((two.S[:, 1, 1] - 0.7) / 0.49, nh, atol=1e-12)
    np.testing.assert_allclose(two.S[:, 0, 1] / 0.21, nh, atol=1e-12)
    np.testing.assert_allclose(two.S[-1], np.diag([0.3, 0.7]), atol=1e-2)  # S_ab -> x_a delta_ab


def test_binary_percus_yevick_core_condition():
    # g_ab(r) = 0 inside the core r < sigma_ab: h_ab(r) = -1, from an inverse Fourier transform.
    sig, x, eta = np.array([1.0, 0.6]), np.array([0.5, 0.5]), 0.4
    density = 6 * eta / (np.pi * np.sum(x * sig**3))
    k = np.linspace(0.005, 150.0, 30000)
    S = statics.percus_yevick_mixture(k, sig, x, density)
    np.testing.assert_allclose(S, S.transpose(0, 2, 1), atol=1e-12)
    h_k = (S - np.diag(x)) / (density * np.outer(x, x))
    dk = k[1] - k[0]

    def h_r(r):
        return (k[:, None, None] * h_k * np.sin(k * r)[:, None, None]).sum(0) * dk / (2 * np.pi**2 * r)

    sigma_ab = 0.5 * (sig[:, None] + sig[None, :])
    for r in (0.25, 0.45, 0.7):
        inside = r < sigma_ab - 0.05
        np.testing.assert_allclose(h_r(r)[inside], -1.0, atol=0.06)
    assert np.all(np.abs(h_r(2.5)) < 0.1)  # decays outside


def test_frequency_matrix_is_the_omega2_of_mct_and_of_one_wave_number():
    x, T, m = np.array([0.8, 0.2]), 0.45, np.array([1.0, 2.0])
    # ideal mixture S = diag(x): Omega^2 = k^2 T / m_a, the free rates
    np.testing.assert_allclose(mct.frequency_matrix(7.0, np.diag(x), x, T),
                               49 * T * np.eye(2), atol=1e-12)
    S = statics.percus_yevick_mixture(K_GRID, [1.0, 0.88], x, 1.2)
    system = mct.MCTSystem(K_GRID, S, x, 1.2, temperature=T, masses=m)
    np.testing.assert_array_equal(mct.frequency_matrix(K_GRID, S, x, T, m), system.omega2)
    j = 17   # one wave number with its 2 x 2 S gives the same matrix
    np.testing.assert_allclose(mct.frequency_matrix(K_GRID[j], S[j], x, T, m), system.omega2[j],
                               rtol=1e-14)
    # Omega^2 S = k^2 T x / m
    np.testing.assert_allclose(system.omega2[j] @ S[j], K_GRID[j] ** 2 * T * np.diag(x / m),
                               atol=1e-12)
    with pytest.raises(SupercooledError, match="shape"):
        mct.frequency_matrix(K_GRID, S[j], x, T)
    with pytest.raises(SupercooledError, match="temperature"):
        mct.frequency_matrix(1.0, S[j], x, 0.0)


# ------------------------------------------------------------------------------- kernels


def _brute_force_collective(system, F):
    """Direct O(N^3) bipolar sum of the module-doc kernel (all four Nauroth–Kob terms)."""
    q, dk = system.k, system.dk
    C = system.C
    n = q.size
    M = np.zeros_like(F)
    for i in range(n):
        for j in range(n):
            for m in range(n):
                if not abs(i - j) <= m <= i + j:
                    continue
                k, p = q[j], q[m]
                qk = (q[i] ** 2 + k**2 - p**2) / (2 * q[i])
                qp = (q[i] ** 2 - k**2 + p**2) / (2 * q[i])
                for a in range(F.shape[1]):
                    for b in range(F.shape[1]):
                        total = 0.0
                        for al in range(F.shape[1]):
                            for be in range(F.shape[1]):
                                for al2 in range(F.shape[1]):
                                    for be2 in range(F.shape[1]):
                                        v1 = qk * (a == be) * C[j, a, al] + qp * (a == al) * C[m, a, be]
                                        v2 = qk * (b == be2) * C[j, b, al2] + qp * (b == al2) * C[m, b, be2]
                                        total += v1 * v2 * F[j, al, al2] * F[m, be, be2]
                        M[i, a, b] += k * p * total
    pre = (system.temperature / (2 * system.density) * dk**2 / (4 * np.pi**2 * q)[:, None, None]
           / (system.masses[None, :, None] * system.fractions[None, None, :]))
    return pre * M


def test_bengtzelius_summation_equals_direct_triple_sum():
    k = (np.arange(14) + 0.5) * 0.8
    x = np.array([0.8, 0.2])
    sig = np.array([1.0, 0.88])
    S = statics.percus_yevick_mixture(k, sig, x, 1.1)
    system = mct.MCTSystem(k, S, x, 1.1, temperature=0.7, masses=[1.0, 2.0])
    rng = np.random.default_rng(3)
    G = rng.normal(size=(k.size, 2, 2))
    F = S + 0.1 * (G + G.transpose(0, 2, 1))
    np.testing.assert_allclose(system.collective_kernel(F), _brute_force_collective(system, F),
                               rtol=1e-10, atol=1e-12)
    # tagged kernel: T/(n m_a) sum (q.k)^2 (CFC)_aa(k) phi_s(p)
    phi = rng.uniform(size=(k.size, 2))
    CFC = system.C @ F @ system.C
    ref = np.zeros((k.size, 2))
    for i in range(k.size):
        for j in range(k.size):
            for m in range(abs(i - j), min(i + j, k.size - 1) + 1):
                qk = (k[i] ** 2 + k[j] ** 2 - k[m] ** 2) / (2 * k[i])
                ref[i] += k[j] * k[m] * qk**2 * np.diag(CFC[j]) * phi[m]
    ref *= 0.7 / 1.1 * 0.8**2 / (4 * np.pi**2 * k[:, None]) / np.array([1.0, 2.0])
    np.testing.assert_allclose(system.tagged_kernel(F, phi), ref, rtol=1e-10)


# ------------------------------------------------------------------------------- transition


@pytest.fixture(scope="module")
def hard_sphere_critical():
    return mct.hard_sphere_critical_point(bracket=(0.5155, 0.5163), tolerance=5e-6)


def test_hard_sphere_critical_packing_fraction(hard_sphere_critical):
    # Franosch et al. (1997): 0.515912 on k = 0.2 ... 39.8, dk = 0.4
    cp = hard_sphere_critical
    assert abs(cp.value - 0.515912) < 2e-5
    assert cp.glass_side - cp.liquid_side <= 5e-6
    f = cp.plateau.normalized(cp.system)[:, 0, 0]
    assert 0.8 < f[np.argmax(cp.system.S[:, 0, 0])] < 0.9  # the plateau at the peak of S


def test_hard_sphere_exponent_parameter(hard_sphere_critical):
    cp = hard_sphere_critical
    lam = mct.exponent_parameter(cp.system, cp.plateau.F[:, 0, 0])
    assert abs(lam - 0.735) < 0.005


def test_exponent_parameter_of_f2_model_scalar_limit():
    # lambda = (1 - f)^3 m''/2 for one mode; with the F2 model (m = 4 f^2, f_c = 1/2): 1/2.
    class F2:
        n_species = 1
        S = np.ones((1, 1, 1))
        omega2 = np.ones((1, 1, 1))

        @staticmethod
        def collective_kernel(F):
            return 4.0 * F**2

    assert mct.exponent_parameter(F2(), np.array([0.5])) == pytest.approx(0.5, rel=1e-9)


def test_identical_species_mixture_reproduces_one_component_plateaus():
    for eta, glass in ((0.51, False), (0.53, True)):
        one = mct.nonergodicity_parameters(mct.hard_sphere_system(eta), tagged=True)
        two = mct.nonergodicity_parameters(
            mct.binary_hard_sphere_system(eta, (0.35, 0.65), 1.0), tagged=True)
        assert one.glass == two.glass == glass
        np.testing.assert_allclose(two.F.sum(axis=(1, 2)), one.F[:, 0, 0], atol=1e-8)
        np.testing.assert_allclose(two.f_s, np.repeat(one.f_s, 2, axis=1), atol=1e-8)


def test_dilute_species_is_a_tagged_particle():
    # A species of a different size at vanishing concentration x_B: its collective plateau
    # F_BB / S_BB is the tagged-particle f_s^B, and the solvent is the one-component liquid.
    # This checks the asymmetric vertex and the 1/x_b of the kernel (errors are O(x_B)).
    x_b = 1e-5
    mixture = mct.binary_hard_sphere_system(0.53, (1 - x_b, x_b), size_ratio=0.8)
    plateau = mct.nonergodicity_parameters(mixture, tagged=True)
    assert plateau.glass
    np.testing.assert_allclose(plateau.F[:, 1, 1] / mixture.S[:, 1, 1], plateau.f_s[:, 1],
                               atol=1e-5)
    one = mct.nonergodicity_parameters(mct.hard_sphere_system(0.53))
    np.testing.assert_allclose(plateau.F[:, 0, 0] / (1 - x_b), one.F[:, 0, 0], atol=5e-4)


@pytest.mark.slow
def test_identical_species_mixture_reproduces_one_component_dynamics():
    eta = 0.505
    one = mct.solve_mct(mct.hard_sphere_system(eta), settings=FAST)
    two = mct.solve_mct(mct.binary_hard_sphere_system(eta, (0.35, 0.65), 1.0), settings=FAST)
    np.testing.assert_array_equal(one.t, two.t)
    np.testing.assert_allclose(two.F.sum(axis=(2, 3)), one.F[:, :, 0, 0], atol=1e-7)
    np.testing.assert_allclose(two.phi_s[..., 0], one.phi_s[..., 0], atol=1e-7)
    np.testing.assert_allclose(two.phi_s[..., 1], one.phi_s[..., 0], atol=1e-7)


def test_newtonian_and_brownian_share_the_plateau():
    system = mct.hard_sphere_system(0.53)
    plateau = mct.nonergodicity_parameters(system, tagged=True)
    for dynamics in ("newtonian", "brownian"):
        sol = mct.solve_mct(system, dynamics=dynamics, settings=FAST)
        assert sol.converged
        np.testing.assert_allclose(sol.F[-1], plateau.F, atol=1e-6)
        np.testing.assert_allclose(sol.phi_s[-1], plateau.f_s, atol=1e-6)
        assert np.all(sol.phi_s[0] == 1.0)


@pytest.mark.slow
def test_mct_dynamics_invariant_under_refinement():
    system = mct.hard_sphere_system(0.50)   # liquid, two-step decay
    grid = TIME_GRID[TIME_GRID < 50]

    def phi(n, t0):
        settings = SolverSettings(n_per_block=n, t_initial=t0, t_max=60.0, tolerance=1e-10)
        sol = mct.solve_mct(system, dynamics="brownian", settings=settings)
        return np.stack([interpolate_log_time(sol.t, sol.F[:, 17, 0, 0] / system.S[17, 0, 0], grid),
                         interpolate_log_time(sol.t, sol.phi_s[:, 17, 0], grid)])

    base, finer, earlier = phi(64, 1e-6), phi(128, 1e-6), phi(64, 1e-7)
    assert base[0, -1] < 0.5 * base[0, 0]   # it decays within the window
    assert np.max(np.abs(finer - base)) < 1e-3
    assert np.max(np.abs(earlier - base)) < 1e-3


# ------------------------------------------------------------------------------- T_mct


def _hard_sphere_family(temperatures, eta_of_T):
    """An 80:20 mixture of identical hard spheres whose packing fraction depends on 'T'."""
    return np.array([mct.binary_hard_sphere_system(eta_of_T(t), (0.8, 0.2), 1.0).S
                     for t in temperatures])


def eta_of_T(t):
    # eta_c = 0.515912 at T = 1; colder is denser
    return 0.515912 + 0.02 * (1.0 - t)


# The number density belongs to the statics (the kernel's prefactor): keep the one at T = 1.
HS_DENSITY = 6 * 0.515912 / np.pi


@pytest.mark.slow
def test_critical_temperature_from_a_bracketing_series():
    temps = np.array([0.9, 0.95, 1.05, 1.1, 1.2])
    result = mct.critical_temperature_from_series(temps, _hard_sphere_family(temps, eta_of_T),
                                                  HS_DENSITY, interaction="HS", tolerance=1e-3)
    assert not result.extrapolated
    assert result.bracket == (1.05, 0.95)
    assert abs(result.T_mct - 1.0) < 5e-3


def test_critical_temperature_extrapolates_and_flags():
    temps = np.array([1.04, 1.08])   # all liquid
    result = mct.critical_temperature_from_series(temps, _hard_sphere_family(temps, eta_of_T),
                                                  HS_DENSITY, tolerance=1e-3)
    assert result.extrapolated and "extrapolated" in result.note
    assert abs(result.T_mct - 1.0) < 0.02


def _library(temps, interaction="LJ", density=HS_DENSITY):
    S = _hard_sphere_family(temps, eta_of_T)
    states = []
    for t, s in zip(temps, S, strict=True):
        pair_S = np.stack([s[:, 0, 0], s[:, 0, 1], s[:, 1, 1]])
        states.append(xr.Dataset(
            {"S": (("state", "pair", "k"), pair_S[None]),
             "k_p": (("state",), [7.2])},
            coords={"k": K_GRID, "pair": ["AA", "AB", "BB"],
                    "interaction": ("state", [interaction]), "density": ("state", [density]),
                    "temperature": ("state", [t]), "temperature_target": ("state", [t]),
                    "equilibrated": ("state", [1]), "crystallized": ("state", [0])}))
    return xr.concat(states, dim="state")


@pytest.mark.slow
def test_critical_temperature_from_library_and_table(tmp_path):
    ds = _library(np.array([0.9, 1.05, 1.2]))
    result = mct_table.critical_temperature(ds, "lj", HS_DENSITY, tolerance=1e-3)
    assert abs(result.T_mct - 1.0) < 0.01 and result.n_states == 3
    out = tmp_path / "tc.csv"
    table = mct_table.critical_temperature_table(ds, out, densities=(HS_DENSITY, 1.4), tolerance=1e-3)
    assert out.is_file() and len(table) == 4
    lj12 = table[(table.interaction == "LJ") & np.isclose(table.density, HS_DENSITY)].iloc[0]
    assert lj12.T_mct == pytest.approx(result.T_mct)
    assert table.T_mct.isna().sum() == 3   # the series without states are NaN with a note
    with pytest.raises(SupercooledError, match="no equilibrated"):
        mct_table.critical_temperature(ds, "WCA", HS_DENSITY)


def test_table_is_cached_by_library_fingerprint(tmp_path, monkeypatch):
    ds = _library(np.array([1.1, 1.2]))   # at a density outside DENSITIES: rows are NaN (fast)
    out = tmp_path / "tc.csv"
    first = mct_table.ensure_critical_temperature_table(ds, out)
    assert out.is_file() and out.with_suffix(".json").is_file() and len(first) == 8
    assert first.T_mct.isna().all() and first.note.str.contains("no equilibrated").all()

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(mct_table, "critical_temperature_table", fail)
    assert mct_table.ensure_critical_temperature_table(ds, out).equals(first)   # cache hit
    with pytest.raises(AssertionError, match="recomputed"):   # the library changed
        mct_table.ensure_critical_temperature_table(ds.isel(state=[0]), out)


def test_table_written_is_the_table_read_beside_the_library(tmp_path, monkeypatch):
    from supercooled.paths import LIBRARY_VARIABLE

    monkeypatch.setenv(LIBRARY_VARIABLE, str(tmp_path / "lib"))
    path = mct_table.default_critical_temperature_path()
    assert path == tmp_path / "mct" / "critical_temperatures.csv"
    assert mct_table.read_table() is None
    ds = _library(np.array([1.1, 1.2]))
    assert np.isnan(mct_table.reduced_temperature(ds)).all()   # no table yet
    written = mct_table.ensure_critical_temperature_table(ds)   # default out
    assert path.is_file() and path.with_suffix(".json").is_file()
    read = mct_table.read_table()
    assert list(read.columns) == list(mct_table.TABLE_COLUMNS) and len(read) == len(written)
    table = read.assign(T_mct=[0.5] + [np.nan] * (len(read) - 1), density=HS_DENSITY)
    np.testing.assert_allclose(mct_table.reduced_temperature(ds, table), [2.2, 2.4])


def test_command_line(capsys):
    from supercooled.cli import main

    assert main(["mct", "critical", "--hard-spheres", "--tolerance", "1e-4"]) == 0
    out = capsys.readouterr().out
    eta = float(out.split("):")[1].split()[0])
    assert abs(eta - 0.515912) < 1e-4 and "lambda" in out
    assert main(["mct", "critical", "--library", "/no/such/folder", "--interaction", "LJ",
                 "--density", "1.2"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["mct", "critical", "--hard-spheres", "--tolerance", "-1"]) == 2


# ------------------------------------------------------------------------------- at k_p


@pytest.mark.slow
def test_tagged_memory_at_kp_reproduces_fs_through_the_paper_equation():
    # The documented normalisation: with Brownian MCT (friction 1), solving eq. (5)
    # F' + Omega^2 F + int M F' = 0 with MCT's tagged memory at k_p gives MCT's F_s.
    S = mct.binary_hard_sphere_system(0.505, (0.8, 0.2), 1.0).S
    density = 6 * 0.505 / np.pi
    k_p = K_GRID[17]
    settings = SolverSettings(n_per_block=32, t_initial=1e-6, t_max=10.0, tolerance=1e-12)
    probe = solve_memory_equation(0.0, 1.0, 1.0, np.ones((1, 1, 1)), lambda F, t: 0 * F,
                                  settings=settings)
    res = mct.mct_at_peak(S, density, 1.0, k_p, kind="tagged", times=probe.t, settings=settings)
    lookup = {t: i for i, t in enumerate(probe.t)}
    replay = solve_memory_equation(0.0, 1.0, res.omega2, res.F0[None],
                                   lambda F, t: res.M[lookup[t]][None], settings=settings)
    np.testing.assert_allclose(replay.F[:, 0, [0, 1], [0, 1]], res.F_s, atol=1e-8)
    assert res.F_s[0] == pytest.approx(np.diag(S[17]))
    times, M = mct.mct_memory_at_kp(S, density, 1.0, k_p, settings=settings)
    assert M.shape == (TIME_GRID.size, 2, 2) and np.all(np.isfinite(M[times <= 10]))
    assert np.all(np.isnan(M[times > 20]))


def test_state_fs_of_a_library_state():
    ds = _library(np.array([1.6]))   # a liquid state in the library schema
    times = TIME_GRID[:30]           # up to ~4 tau
    F = mct_table.state_fs(ds, 0, times)
    S = _hard_sphere_family([1.6], eta_of_T)[0]
    S_kp = [np.interp(7.2, K_GRID, S[:, a, a]) for a in (0, 1)]
    assert F.shape == (30, 2) and np.all(np.isfinite(F))
    # F_s^aa(k_p, t) = S_aa(k_p) phi_s, ballistic (ideal-gas) at short times
    ballistic = np.array(S_kp) * np.exp(-(7.2**2) * 1.6 * times[0] ** 2 / 2)
    np.testing.assert_allclose(F[0], ballistic, rtol=2e-5)
    assert np.all(np.diff(F[:, 0]) <= 1e-12) and F[-1, 0] < 0.8 * F[0, 0]


# ------------------------------------------------------------------------------- errors


def test_bad_input():
    with pytest.raises(SupercooledError, match="midpoint grid"):
        mct.MCTSystem(np.linspace(0.1, 10, 20), np.ones(20), [1.0], 1.0)
    with pytest.raises(SupercooledError, match="fractions"):
        mct.MCTSystem(K_GRID, np.ones(100), [0.5], 1.0)
    with pytest.raises(SupercooledError, match="packing fraction"):
        mct.hard_sphere_system(1.2)
    with pytest.raises(SupercooledError, match="dynamics"):
        mct.solve_mct(mct.hard_sphere_system(0.4), dynamics="langevin")
    with pytest.raises(SupercooledError, match="no glass"):
        mct.hard_sphere_critical_point(bracket=(0.40, 0.45))
    with pytest.raises(SupercooledError, match="NaN"):
        mct.MCTSystem(K_GRID, np.full(100, np.nan), [1.0], 1.0)


def test_table_of_a_missing_or_empty_library_is_an_error_and_writes_nothing(tmp_path, capsys):
    from supercooled.cli import main

    out = tmp_path / "tc.csv"
    assert main(["mct", "table", "--library", str(tmp_path / "typo"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SupercooledError, match="holds no states"):
        mct_table.ensure_critical_temperature_table(tmp_path / "empty", out, refresh=True)
    assert not list(tmp_path.glob("tc.*"))
