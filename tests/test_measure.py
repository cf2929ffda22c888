"""End to end: a GSD trajectory following the contract -> a valid state file."""

import json

import numpy as np
import pytest

from supercooled.cli import main
from supercooled.errors import SupercooledError
from supercooled.grids import TIME_GRID
from supercooled.library import read_state, state_filename
from supercooled.measure import measure_run
from supercooled.trajectory import read_trajectory, write_trajectory

DT = 0.005
BLOCK = 1000


def log_periodic_steps(block_length=BLOCK, n_blocks=6, n_offsets=31):
    """Frames at block_start + s, s in {0} U log-spaced offsets < B, and a final frame."""
    offsets = np.unique(np.round(np.logspace(0, np.log10(block_length), n_offsets)).astype(int))
    offsets = np.r_[0, offsets[offsets < block_length]]
    starts = np.arange(n_blocks)[:, None] * block_length
    return np.unique(np.r_[(starts + offsets).ravel(), n_blocks * block_length])


def ideal_gas(steps, n_particles=1000, box_length=10.0, temperature=0.8, seed=0):
    """Non-interacting particles: r(t) = r(0) + v t, Maxwell velocities at ``temperature``."""
    rng = np.random.default_rng(seed)
    r0 = rng.uniform(-box_length / 2, box_length / 2, (n_particles, 3))
    v = rng.normal(0.0, np.sqrt(temperature), (n_particles, 3))
    v -= v.mean(axis=0)
    positions = r0[None] + v[None] * (steps[:, None, None] * DT)
    typeid = np.zeros(n_particles, dtype=int)
    typeid[int(0.8 * n_particles):] = 1
    return positions, typeid, v


@pytest.fixture(scope="module")
def gas_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    steps = log_periodic_steps()
    positions, typeid, v = ideal_gas(steps)
    write_trajectory(run_dir / "trajectory.gsd", steps, positions, typeid, 10.0, dt=DT,
                     velocities=np.repeat(v[None], steps.size, axis=0))
    run = {"state": {"interaction": "WCA", "density": 1.0, "temperature": 0.8,
                     "n_particles": 1000, "box_length": 10.0},
           "temperature": 0.79, "temperature_target": 0.8, "seed": 7, "dt": DT,
           "engine": "test", "engine_version": "0", "equilibration_time": 1.0,
           "production_time": 30.0, "energy_drift": 1e-5, "crystallized": False,
           "created": "2026-01-01T00:00:00+00:00",
           "schedule": {"block_length_steps": BLOCK, "n_blocks": 6}}
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir, steps, positions, typeid, v


def test_measure_run_writes_valid_state_with_ideal_gas_dynamics(gas_run):
    run_dir, steps, positions, typeid, v = gas_run
    path = measure_run(run_dir, progress=False)
    assert path == run_dir / "state.nc"
    ds = read_state(path)
    assert "nve_start" not in ds.attrs  # its run.json does not say how NVE started
    assert ds.attrs["interaction"] == "WCA" and ds.attrs["seed"] == 7
    assert ds.attrs["temperature"] == 0.79 and ds.attrs["temperature_target"] == 0.8
    assert ds.attrs["equilibrated"] == 1 and ds.attrs["crystallized"] == 0
    k_p = float(ds["k_p"])
    # Exact expectation of the estimator for these very particles: phi_s = <sin(kvt)/(kvt)>,
    # MSD = <v^2> t^2 (ballistic motion, the same at every time origin).
    speed = np.linalg.norm(v, axis=1)
    sampled = np.isfinite(ds["phi_s"].values[0])
    t = TIME_GRID[sampled]
    for a in range(2):
        s = speed[typeid == a]
        expected = np.sinc(k_p * s[None] * t[:, None] / np.pi).mean(axis=1)
        assert np.allclose(ds["phi_s"].values[a, sampled], expected, atol=2e-3)
        assert np.allclose(ds["msd"].values[a, sampled], np.mean(s**2) * t**2, rtol=2e-3)
    # and the ideal-gas law phi_s = exp(-k^2 T t^2 / 2m) within the sampling error of 800 A's
    gaussian = np.exp(-(k_p**2) * 0.8 * t**2 / 2)
    assert np.max(np.abs(ds["phi_s"].values[0, sampled] - gaussian)) < 0.03
    # the last sampled lag is the whole run; beyond it NaN
    assert TIME_GRID[sampled][-1] <= steps[-1] * DT * (1 + 1e-9)
    assert np.isnan(ds["phi_s"].values[:, -1]).all()
    # stationary process: both halves agree
    assert float(ds["ageing_check"]) < 0.05


def test_random_positions_give_flat_structure(gas_run):
    run_dir, *_ = gas_run
    ds = read_state(measure_run(run_dir, run_dir / "other.nc", progress=False))
    s = ds["S"].values
    high = ds["k"].values > 10
    assert abs(s[0, high].mean() - 0.8) < 0.01
    assert abs(s[1, high].mean()) < 0.01
    assert abs(s[2, high].mean() - 0.2) < 0.01


def test_gsd_without_run_json_needs_interaction_then_uses_velocities(tmp_path):
    steps = log_periodic_steps(n_blocks=3)
    positions, typeid, v = ideal_gas(steps, n_particles=200, box_length=6.0)
    gsd_path = write_trajectory(tmp_path / "mine.gsd", steps, positions, typeid, 6.0, dt=DT,
                                velocities=np.repeat(v[None], steps.size, axis=0))
    with pytest.raises(SupercooledError, match="interaction"):
        measure_run(gsd_path, progress=False)
    ds = read_state(measure_run(gsd_path, progress=False, interaction="lj", equilibrated=False))
    assert ds.attrs["interaction"] == "LJ" and ds.attrs["equilibrated"] == 0
    kinetic = np.sum(v**2) / (3 * 200 - 3)
    assert ds.attrs["temperature"] == pytest.approx(kinetic, rel=1e-5)
    assert ds.attrs["density"] == pytest.approx(200 / 6.0**3)
    assert (tmp_path / "mine.state.nc").is_file()


def test_trajectory_round_trip_unwraps(tmp_path):
    steps = np.arange(5) * 10
    positions, typeid, _ = ideal_gas(steps, n_particles=50, box_length=3.0, temperature=50.0)
    write_trajectory(tmp_path / "t.gsd", steps, positions, typeid, 3.0, dt=DT)
    trajectory = read_trajectory(tmp_path / "t.gsd")
    assert np.allclose(trajectory.positions, positions, atol=1e-5)
    assert trajectory.dt == DT and list(trajectory.steps) == list(steps)


def test_missing_time_step_is_a_clear_error(tmp_path):
    steps = np.arange(4) * 10
    positions, typeid, _ = ideal_gas(steps, n_particles=50, box_length=3.0)
    write_trajectory(tmp_path / "t.gsd", steps, positions, typeid, 3.0)
    with pytest.raises(SupercooledError, match="--dt"):
        measure_run(tmp_path / "t.gsd", progress=False, interaction="LJ", temperature=1.0)


def test_cli_measure(gas_run, tmp_path, capsys):
    run_dir, *_ = gas_run
    out = tmp_path / state_filename("WCA", 1.0, 0.8)
    assert main(["measure", str(run_dir), "--out", str(out), "--quiet"]) == 0
    assert "k_p" in capsys.readouterr().out and out.is_file()
    assert main(["measure", str(tmp_path / "nowhere")]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_measure_a_run_from_simulate(tmp_path, capsys):
    """The real pipeline: supercooled.md.simulate (LAMMPS) -> supercooled measure -> state file."""
    from supercooled.md import simulate
    from supercooled.systems import StatePoint

    result = simulate(StatePoint("LJ", 1.2, 2.0, 500), tmp_path / "run", equilibration_time=2.0,
                      production_time=4.0, seed=5, progress=False)
    assert main(["measure", str(result.run_dir), "--quiet", "--structure-frames", "5"]) == 0
    ds = read_state(result.run_dir / "state.nc")
    assert ds.attrs["engine"] == result.engine and ds.attrs["seed"] == 5
    assert ds.attrs["temperature"] == pytest.approx(result.temperature)
    assert ds.attrs["n_particles"] == 500 and ds.attrs["equilibrated"] == 1
    assert ds.attrs["nve_start"] == "energy-matched"
    assert ds.attrs["nve_velocity_scale"] == pytest.approx(result.nve_velocity_scale)
    assert 6.5 < float(ds["k_p"]) < 8.0  # main peak of a dense KA liquid
    assert float(ds["S"].sel(pair="AA").max()) > 1.5
    # hot liquid (T = 2): relaxes within the run; an independent LAMMPS run (LJ, rho = 1.2,
    # T = 2.0, N = 1200, 20 tau NVT then NVE) measured tau_alpha(A, k = 7.25) = 0.36 tau
    assert 0.2 < float(ds["tau_alpha"]) < 0.6
    assert np.nanmax(ds["phi_s"].values) <= 1.0 and ds["phi_s"].values[0, 0] > 0.99
    msd = ds["msd"].values[0]
    assert np.all(np.diff(msd[np.isfinite(msd)]) > 0)
    assert main(["measure", str(result.run_dir), "--aged", "--out", str(tmp_path / "a.nc"),
                 "--quiet"]) == 0
    assert read_state(tmp_path / "a.nc").attrs["equilibrated"] == 0


def test_stale_image_flags_are_refused(tmp_path):
    """HOOMD-blue's default GSD stores particles.image only in frame 0: wrapped positions jump."""
    import gsd.hoomd

    steps = np.arange(6) * 100
    positions, typeid, _ = ideal_gas(steps, n_particles=100, box_length=4.0, temperature=4.0)
    wrapped = positions - 4.0 * np.floor(positions / 4.0 + 0.5)
    with gsd.hoomd.open(str(tmp_path / "hoomd.gsd"), "w") as trajectory:
        for step, x in zip(steps, wrapped, strict=True):
            frame = gsd.hoomd.Frame()
            frame.configuration.step = int(step)
            frame.configuration.box = [4.0, 4.0, 4.0, 0, 0, 0]
            frame.particles.N = 100
            frame.particles.types = ["A", "B"]
            frame.particles.typeid = typeid.astype(np.uint32)
            frame.particles.position = x.astype(np.float32)
            trajectory.append(frame)
    with pytest.raises(SupercooledError, match="image"):
        read_trajectory(tmp_path / "hoomd.gsd")


def test_wrong_types_and_box_are_refused(tmp_path):
    import gsd.hoomd

    def write(name, types, box):
        with gsd.hoomd.open(str(tmp_path / name), "w") as trajectory:
            for step in (0, 10):
                frame = gsd.hoomd.Frame()
                frame.configuration.step = step
                frame.configuration.box = box
                frame.particles.N = 2
                frame.particles.types = types
                frame.particles.typeid = np.array([0, 1], dtype=np.uint32)
                frame.particles.position = np.zeros((2, 3), dtype=np.float32)
                trajectory.append(frame)
        return tmp_path / name

    with pytest.raises(SupercooledError, match="'A' and 'B'"):
        read_trajectory(write("types.gsd", ["A", "C"], [4.0, 4.0, 4.0, 0, 0, 0]))
    with pytest.raises(SupercooledError, match="cubic"):
        read_trajectory(write("box.gsd", ["A", "B"], [4.0, 4.0, 5.0, 0, 0, 0]))
    (tmp_path / "text.gsd").write_text("not a trajectory")
    with pytest.raises(SupercooledError, match="is not a GSD file"):
        read_trajectory(tmp_path / "text.gsd")


def small_gas(tmp_path, name="mine.gsd", dt=DT):
    steps = log_periodic_steps(n_blocks=3)
    positions, typeid, v = ideal_gas(steps, n_particles=200, box_length=6.0)
    return write_trajectory(tmp_path / name, steps, positions, typeid, 6.0, dt=dt,
                            velocities=np.repeat(v[None], steps.size, axis=0))


def test_unknown_interaction_is_refused_and_nothing_is_written(tmp_path, capsys):
    gsd_path = small_gas(tmp_path)
    with pytest.raises(SupercooledError, match="unknown interaction 'Morse'"):
        measure_run(gsd_path, progress=False, interaction="Morse")
    assert main(["measure", str(gsd_path), "--interaction", "Morse", "--quiet"]) == 2
    assert "unknown interaction" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.gsd"]


def test_interaction_contradicting_run_json_is_refused(gas_run, tmp_path):
    run_dir, *_ = gas_run  # run.json says WCA
    out = tmp_path / "state.nc"
    with pytest.raises(SupercooledError, match="contradicts run.json"):
        measure_run(run_dir, out, progress=False, interaction="LJ")
    assert not out.exists()
    ds = read_state(measure_run(run_dir, out, progress=False, interaction="wca"))
    assert ds.attrs["interaction"] == "WCA"


def test_metadata_is_checked_before_the_expensive_work(tmp_path, monkeypatch):
    import supercooled.measure as measure

    gsd_path = small_gas(tmp_path)
    trajectory = read_trajectory(gsd_path)

    def expensive(*args, **kwargs):
        raise AssertionError("S(k) or correlations computed before the metadata was checked")

    monkeypatch.setattr(measure, "partial_structure_factors", expensive)
    monkeypatch.setattr(measure, "self_correlations", expensive)
    cases = [({"interaction": "LJ", "temperature": float("nan")}, "temperature"),
             ({"interaction": "LJ", "temperature": -1.0}, "temperature"),
             ({"interaction": "Morse"}, "unknown interaction"),
             ({}, "interaction"),
             ({"interaction": "LJ", "run": {"temperature": -0.5}}, "temperature")]
    for kwargs, message in cases:
        run = kwargs.pop("run", None)
        with pytest.raises(SupercooledError, match=message):
            measure.measure_trajectory(trajectory, run, **kwargs)
    # measure_run refuses given metadata before it even reads the trajectory
    monkeypatch.setattr(measure, "read_trajectory", expensive)
    for kwargs, message in cases[:4]:
        with pytest.raises(SupercooledError, match=message):
            measure_run(gsd_path, progress=False, **kwargs)


def test_given_time_step_overrides_the_gsd_log(tmp_path):
    """As documented: the caller's dt first, then the GSD log, then run.json."""
    gsd_path = small_gas(tmp_path)
    ds = read_state(measure_run(gsd_path, progress=False, interaction="LJ", dt=2 * DT))
    assert ds.attrs["dt"] == 2 * DT


def test_write_trajectory_never_stores_the_upper_boundary(tmp_path):
    """float64 wraps below L/2 that round onto +L/2 in float32 go to -L/2 with image + 1."""
    import gsd.hoomd

    length = 3.0
    steps = np.arange(3) * 10
    positions, typeid, _ = ideal_gas(steps, n_particles=50, box_length=length)
    positions[:, 0] = [1.5 - 1e-9, -1.5, 4.5 - 1e-9]
    path = write_trajectory(tmp_path / "edge.gsd", steps, positions, typeid, length, dt=DT)
    with gsd.hoomd.open(str(path), "r") as trajectory:
        stored = np.array([frame.particles.position for frame in trajectory])
    assert np.all(stored < length / 2) and np.all(stored >= -length / 2)
    assert np.allclose(read_trajectory(path).positions, positions, atol=1e-5)


def test_stale_image_flags_after_some_stored_ones_are_refused(tmp_path):
    """Frame 1 stores particles.image, later frames do not: they inherit frame 0's flags."""
    import gsd.hoomd

    length = 4.0
    steps = np.arange(6) * 100
    positions, typeid, _ = ideal_gas(steps, n_particles=100, box_length=length, temperature=4.0)
    image = np.floor(positions / length + 0.5).astype(np.int32)
    assert np.any(image[1] != image[0]) and np.any(image[2:] != image[1])
    with gsd.hoomd.open(str(tmp_path / "mixed.gsd"), "w") as trajectory:
        for i, step in enumerate(steps):
            frame = gsd.hoomd.Frame()
            frame.configuration.step = int(step)
            frame.configuration.box = [length, length, length, 0, 0, 0]
            frame.particles.N = 100
            frame.particles.types = ["A", "B"]
            frame.particles.typeid = typeid.astype(np.uint32)
            frame.particles.position = (positions[i] - image[i] * length).astype(np.float32)
            if i < 2:
                frame.particles.image = image[i]
            trajectory.append(frame)
    with gsd.hoomd.open(str(tmp_path / "mixed.gsd"), "r") as trajectory:
        assert trajectory.file.chunk_exists(frame=1, name="particles/image")
    with pytest.raises(SupercooledError, match="image"):
        read_trajectory(tmp_path / "mixed.gsd")


def test_typeid_outside_the_types_is_refused():
    from supercooled.trajectory import _species_index

    with pytest.raises(SupercooledError, match="outside the 2 particle types"):
        _species_index(["A", "B"], np.array([0, 1, 2], dtype=np.uint32))


def test_diffusion_variables_give_d_with_its_window_and_say_when_it_is_an_estimate():
    from supercooled.grids import TIME_GRID
    from supercooled.measure import diffusion_variables

    long_run = 0.05 + 6 * 0.01 * TIME_GRID  # reaches MSD = 1 sigma^2 early
    short_run = np.where(TIME_GRID <= 20.0, 0.05 + 6 * 0.01 * TIME_GRID, np.nan)  # MSD <= 1.25
    variables = diffusion_variables(np.stack([long_run, short_run]))
    d = variables["D"][1]
    assert d[0] == pytest.approx(0.01, rel=1e-6) and d[1] == pytest.approx(0.01, rel=1e-3)
    assert variables["D_diffusive"][1] == [1, 0]
    window = variables["D_window"][1]
    assert window[1][1] == TIME_GRID[TIME_GRID <= 20.0][-1] and window[0][1] == TIME_GRID[-1]
