"""Tests of the OpenMM engine (supercooled.engines.openmm) against the LAMMPS engine.

The same configuration gives the same energy, forces and pressure (the Reference platform in
double precision to round-off, the CPU platform to its single-precision forces); from the
same positions and velocities both engines follow the same NVT (Nose–Hoover chain) and NVE
trajectory; a whole :func:`supercooled.md.simulate` run writes the same run directory,
conserves energy as well as LAMMPS, resumes from a checkpoint and gives the same tau_alpha.
Units and the mixture are those of the conventions page (book/conventions.md).
"""

from __future__ import annotations

import json

import gsd.hoomd
import numpy as np
import openmm  # noqa: F401 - a pinned requirement: fail, do not skip, where it is missing
import pytest

from supercooled import run_files
from supercooled.cli import main
from supercooled.dynamics import self_isf, tau_alpha
from supercooled.engines import make_engine
from supercooled.errors import SupercooledError
from supercooled.md import simulate
from supercooled.systems import StatePoint
from supercooled.trajectory import TRAJECTORY_NAME, read_trajectory, unwrapped_positions


def lammps_liquid(state: StatePoint, dt: float, steps: int = 300):
    """A LAMMPS engine holding a liquid of ``state`` after ``steps`` NVT steps, and its
    positions (by tag), velocities, forces and thermodynamics."""
    engine = make_engine("lammps", state, dt=dt)
    rng = np.random.default_rng(3)
    engine.create(rng.uniform(0.0, state.box_length, (state.n_particles, 3)), 17)
    engine.use_thermostat(state.temperature, 100 * dt)
    engine.advance(steps)
    thermo = engine.thermo()
    n = state.n_particles
    gather = engine.lmp.gather_atoms  # ordered by atom ID (tag), like every engine's output
    velocities = np.ctypeslib.as_array(gather("v", 1, 3)).reshape(n, 3).copy()
    forces = np.ctypeslib.as_array(gather("f", 1, 3)).reshape(n, 3).copy()
    return engine, engine.unwrapped_positions(), velocities, forces, thermo


@pytest.fixture(scope="module", params=["LJ", "WCA"])
def liquid(request):
    state = StatePoint(request.param, 1.2, 2.0)  # the default box, N = 1200
    engine, x, v, f, thermo = lammps_liquid(state, dt=0.002)
    engine.close()
    return state, x, v, f, thermo


def relative_errors(engine, state, x, v, f, thermo):
    engine.set_configuration(x, v)
    values = engine.thermo()
    forces = engine.forces()
    return {"potential_energy": abs(values["potential_energy"] / thermo["potential_energy"] - 1),
            "pressure": abs(values["pressure"] / thermo["pressure"] - 1),
            "temperature": abs(values["temperature"] / thermo["temperature"] - 1),
            "forces": np.linalg.norm(forces - f) / np.linalg.norm(f)}


def test_energy_forces_pressure_equal_lammps_reference_platform(liquid):
    """Double precision: U, P and F agree with LAMMPS to round-off (1e-6 asked, ~1e-14 found)."""
    state, x, v, f, thermo = liquid
    engine = make_engine("openmm", state, dt=0.002, platform="Reference")
    errors = relative_errors(engine, state, x, v, f, thermo)
    engine.close()
    assert max(errors.values()) < 1e-9, errors


def test_energy_forces_pressure_equal_lammps_cpu_platform(liquid):
    """The CPU platform sums forces in single precision: U and P within 1e-6 relative (found
    1-3e-7 and 0.1-1.2e-6), the force vector within 3e-5 (found ~6e-6, i.e. float's 1e-7 per
    pair contribution of magnitude ~ 100 summed over ~ 50 neighbours)."""
    state, x, v, f, thermo = liquid
    engine = make_engine("openmm", state, dt=0.002, platform="CPU")
    errors = relative_errors(engine, state, x, v, f, thermo)
    engine.close()
    assert errors["potential_energy"] < 1e-6 and errors["temperature"] < 1e-12, errors
    assert errors["pressure"] < 5e-6 and errors["forces"] < 3e-5, errors


@pytest.mark.parametrize("platform, tolerance", [("Reference", 1e-9), ("CPU", 1e-4)])
def test_nvt_then_nve_follow_the_lammps_trajectory(platform, tolerance):
    """From LAMMPS' positions and velocities, 100 Nose–Hoover NVT steps and then 100 NVE
    steps in both engines end at the same positions and energies: the thermostat is LAMMPS'
    fix nvt step for step (chain of 3, same masses), the NVE integrator velocity Verlet."""
    state = StatePoint("LJ", 1.2, 1.5, n_particles=500)
    lammps, x, v, _, _ = lammps_liquid(state, dt=0.003, steps=200)
    ours = make_engine("openmm", state, dt=0.003, platform=platform)
    ours.set_configuration(x, v)
    for engine in (lammps, ours):
        engine.use_thermostat(1.5, 0.3)  # LAMMPS: a new fix, chain at rest, as ours
        engine.advance(100)
    after_nvt = [e.unwrapped_positions() for e in (lammps, ours)]
    temperatures = [e.thermo()["temperature"] for e in (lammps, ours)]
    for engine in (lammps, ours):
        engine.use_nve()
        engine.advance(100)
    after_nve = [e.unwrapped_positions() for e in (lammps, ours)]
    energies = [e.thermo()["total_energy"] for e in (lammps, ours)]
    lammps.close()
    ours.close()
    assert np.max(np.abs(after_nvt[1] - after_nvt[0])) < tolerance
    assert np.max(np.abs(after_nvt[1] - after_nvt[0])) > 0 or platform == "Reference"
    assert temperatures[1] == pytest.approx(temperatures[0], rel=tolerance)
    assert np.max(np.abs(after_nve[1] - after_nve[0])) < tolerance
    assert energies[1] == pytest.approx(energies[0], rel=tolerance)
    # the run moved the particles by far more than the tolerance
    assert np.max(np.abs(after_nve[0] - x)) > 0.1


# -- whole runs -------------------------------------------------------------------------------

SMALL = StatePoint("LJ", 1.2, 1.0, n_particles=400)
NVE_RUN = {"equilibration_time": 2.0, "production_time": 10.0, "dt": 0.005, "seed": 2,
           "progress": False}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    return {engine: simulate(SMALL, folder / engine, engine=engine, **NVE_RUN)
            for engine in ("lammps", "openmm")}


def production_energy(result):
    rows = run_files.read_thermo(result.thermo)
    return np.array([float(r["total_energy"]) for r in rows if r["phase"] == "production"])


def test_openmm_run_directory_is_the_lammps_one(runs):
    ours, theirs = runs["openmm"], runs["lammps"]
    assert ours.engine == "openmm" and ours.engine_version.endswith("CPU")
    assert ours.thermostat == theirs.thermostat  # Nose-Hoover chain of 3, same damping
    assert ours.schedule == theirs.schedule
    with gsd.hoomd.open(ours.trajectory, "r") as a, gsd.hoomd.open(theirs.trajectory, "r") as b:
        assert [f.configuration.step for f in a] == [f.configuration.step for f in b]
        last = a[len(a) - 1]
        assert last.particles.types == ["A", "B"] and last.particles.N == 400
        assert np.all(last.particles.typeid[:320] == 0) and np.all(last.particles.typeid[320:] == 1)
        assert last.log["supercooled/dt"][0] == 0.005
        half = SMALL.box_length / 2
        assert np.all(last.particles.position >= -half) and np.all(last.particles.position < half)
        assert np.any(last.particles.image != 0)
        frames = [unwrapped_positions(f) for f in a]
        steps = np.diff([f.configuration.step for f in a])
    jumps = [np.abs(q - p).max() / s for p, q, s in zip(frames[:-1], frames[1:], steps,
                                                         strict=True)]
    assert max(jumps) < 0.05  # ~ v dt per step: never a box length, so unwrapped correctly
    rows = [r for r in run_files.read_thermo(ours.thermo) if r["phase"] == "production"]
    for r in rows:
        assert float(r["kinetic_energy"]) == pytest.approx(
            1.5 * (399 / 400) * float(r["temperature"]), rel=1e-9)
    assert [r["step"] for r in rows] == [r["step"] for r in run_files.read_thermo(theirs.thermo)
                                         if r["phase"] == "production"]
    data = json.loads(ours.run_json.read_text())
    assert data["settings"]["engine"] == "openmm"


def test_nve_drift_comparable_to_lammps(runs):
    """Same state, time step and protocol: OpenMM's relative drift over 10 tau (found
    1.6e-5, LAMMPS 1.9e-5) is below 1e-4 and within 3x LAMMPS', and E fluctuates alike."""
    ours, theirs = runs["openmm"], runs["lammps"]
    assert ours.energy_drift < 1e-4 and theirs.energy_drift < 1e-4
    assert ours.energy_drift < 3 * theirs.energy_drift + 1e-6
    spread = [production_energy(r).std() for r in (ours, theirs)]
    assert 0.5 < spread[0] / spread[1] < 2.0
    assert ours.temperature == pytest.approx(theirs.temperature, abs=0.1)


def test_same_seed_same_trajectory(tmp_path):
    state = StatePoint("WCA", 1.2, 1.0, n_particles=200)
    kwargs = {"equilibration_time": 0.5, "production_time": 0.5, "block_time": 0.25,
              "dt": 0.002, "engine": "openmm", "progress": False}
    a, b = (simulate(state, tmp_path / name, seed=7, **kwargs) for name in "ab")
    with gsd.hoomd.open(a.trajectory, "r") as fa, gsd.hoomd.open(b.trajectory, "r") as fb:
        np.testing.assert_array_equal(fa[len(fa) - 1].particles.position,
                                      fb[len(fb) - 1].particles.position)


def test_resume_from_checkpoint(tmp_path, kill_after_checkpoint):
    """Kill an OpenMM run after its first production checkpoint, resume it: the same frames,
    the same log rows, the frames up to the checkpoint unchanged, the first one after it equal
    to float32 rounding. Later frames drift apart as single-precision force round-off (the
    neighbour list is rebuilt at the restart, which reorders the sums) grows chaotically:
    found 1.6e-4 sigma after 1.3 tau, hence 1e-3 for the final frame."""
    kill = kill_after_checkpoint
    kwargs = {"equilibration_time": 1.0, "production_time": 2.0, "block_time": 0.5,
              "dt": 0.005, "seed": 7, "engine": "openmm", "progress": False}
    whole = simulate(SMALL, tmp_path / "whole", **kwargs)
    seen = kill.seen
    with pytest.raises(kill.Killed):
        simulate(SMALL, tmp_path / "r", on_checkpoint=kill.remember, **kwargs)
    assert len(list((tmp_path / "r").glob("checkpoint_*.restart"))) == 1
    kill.stop()
    resumed = simulate(SMALL, tmp_path / "r", **kwargs)
    assert not list((tmp_path / "r").glob("checkpoint_*"))
    n_kept = seen["checkpoint"]["n_frames"]
    with gsd.hoomd.open(whole.trajectory, "r") as a, gsd.hoomd.open(resumed.trajectory, "r") as b:
        assert [f.configuration.step for f in a] == [f.configuration.step for f in b]
        deviation = [np.abs(unwrapped_positions(p) - unwrapped_positions(q)).max()
                     for p, q in zip(a, b, strict=True)]
    assert max(deviation[:n_kept]) == 0.0
    assert deviation[n_kept] < 1e-6 and max(deviation) < 1e-3
    assert [r["step"] for r in run_files.read_thermo(resumed.thermo)] == \
        [r["step"] for r in run_files.read_thermo(whole.thermo)]
    assert resumed.temperature == pytest.approx(whole.temperature, rel=1e-4)


def test_resume_during_equilibration_keeps_the_thermostat(tmp_path):
    """A checkpoint taken in NVT holds the chain velocities; restoring it continues the
    same NVT trajectory (bit for bit on one thread)."""
    state = StatePoint("LJ", 1.2, 1.0, n_particles=400)
    first = make_engine("openmm", state, dt=0.005)
    first.create(np.random.default_rng(0).uniform(0, state.box_length, (400, 3)), 5)
    first.use_thermostat(1.0, 0.5)
    first.advance(100)
    path = str(tmp_path / "state.restart")
    first.checkpoint(path)
    first.advance(100)
    second = make_engine("openmm", state, dt=0.005)
    second.restore(path)
    assert second.step == 100
    second.use_thermostat(1.0, 0.5)
    second.advance(100)
    assert second.step == first.step == 200
    np.testing.assert_allclose(second.unwrapped_positions(), first.unwrapped_positions(),
                               atol=1e-6)
    assert second._chain_velocities() == pytest.approx(first._chain_velocities(), rel=1e-6)


def fixed_k_tau_alpha(result, k=7.25):
    trajectory = read_trajectory(result.trajectory)
    phi = self_isf(trajectory.positions, trajectory.steps, trajectory.typeid, k, result.dt,
                   block_length=result.schedule["block_length_steps"])
    return tau_alpha(phi[0])


@pytest.mark.slow
def test_tau_alpha_agrees_with_lammps(tmp_path):
    """LJ rho = 1.2, T = 2.0, N = 1200, 5 tau NVT + 5 tau NVE, one seed per engine (the
    three-seed comparison at 20 + 20 tau is benchmarks/openmm_validation.py): tau_alpha of
    phi_s^A at k = 7.25 agrees within 6 % (one seed's statistical scatter is ~2-3 %)."""
    state = StatePoint("LJ", 1.2, 2.0)
    kwargs = {"equilibration_time": 5.0, "production_time": 5.0, "seed": 1, "progress": False}
    taus = {engine: fixed_k_tau_alpha(simulate(state, tmp_path / engine, engine=engine,
                                               **kwargs))
            for engine in ("lammps", "openmm")}
    assert 0.25 < taus["lammps"] < 0.5  # the field notes' 0.36 after 20 tau NVT
    assert taus["openmm"] == pytest.approx(taus["lammps"], rel=0.06), taus


# -- choices and bad input -------------------------------------------------------------------

def test_platforms_and_bad_input(tmp_path):
    with pytest.raises(SupercooledError, match="unknown OpenMM platform"):
        make_engine("openmm", SMALL, dt=0.005, platform="Metal")
    with pytest.raises(SupercooledError, match="applies to engine openmm only"):
        make_engine("lammps", SMALL, dt=0.005, platform="CPU")
    with pytest.raises(SupercooledError, match="box side of at least"):
        make_engine("openmm", StatePoint("LJ", 1.2, 1.0, n_particles=100), dt=0.005)
    import openmm as mm

    names = [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]
    if "CUDA" not in names:
        with pytest.raises(SupercooledError, match="CUDA is not available here"):
            make_engine("openmm", SMALL, dt=0.005, platform="cuda")
    assert not (tmp_path / "x").exists()


def cli_args(out, *extra):
    return ["simulate", "--interaction", "wca", "--density", "1.2", "--temperature", "1.5",
            "--particles", "200", "--equilibration-time", "0.2", "--production-time", "0.5",
            "--out", str(out), "--quiet", *extra]


def test_cli_simulate_openmm(tmp_path, capsys):
    assert main(cli_args(tmp_path / "cli", "--engine", "openmm", "--platform", "cpu")) == 0
    assert "energy drift" in capsys.readouterr().out
    with gsd.hoomd.open(tmp_path / "cli" / TRAJECTORY_NAME, "r") as trajectory:
        assert len(trajectory) > 10
    data = json.loads((tmp_path / "cli" / run_files.RUN_JSON).read_text())
    assert data["engine"] == "openmm" and "CPU" in data["engine_version"]
    assert main(cli_args(tmp_path / "y", "--platform", "CPU")) == 2  # lammps has none
    assert "--platform applies to --engine openmm" in capsys.readouterr().err
    # argparse: not one of CPU, CUDA, OpenCL (one line, status 2)
    assert main(cli_args(tmp_path / "z", "--engine", "openmm", "--platform", "Metal")) == 2
    err = capsys.readouterr().err.strip()
    assert "invalid choice" in err and err.count("\n") == 0
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_cpu_threads_same_physics(liquid):
    """Two CPU threads (deterministic summation) give the one-thread energies and path."""
    state, x, v, _, _ = liquid
    results = []
    for threads in (1, 2):
        engine = make_engine("openmm", state, dt=0.002, threads=threads)
        engine.set_configuration(x, v)
        engine.advance(50)
        results.append((engine.thermo(), engine.unwrapped_positions()))
        engine.close()
    (one, x1), (two, x2) = results
    for key in ("potential_energy", "total_energy", "pressure"):
        assert two[key] == pytest.approx(one[key], rel=1e-5)
    np.testing.assert_allclose(x2, x1, atol=1e-5)


def test_scale_velocities_scales_the_kinetic_energy_as_lammps_does():
    state = StatePoint("LJ", 1.2, 1.5, n_particles=500)
    lammps, x, v, _, _ = lammps_liquid(state, dt=0.003, steps=50)
    ours = make_engine("openmm", state, dt=0.003, platform="Reference")
    ours.set_configuration(x, v)
    ours.use_nve()
    lammps.use_nve()
    before = ours.thermo()
    for engine in (lammps, ours):
        engine.scale_velocities(0.9)
    after = [e.thermo() for e in (lammps, ours)]
    lammps.close()
    ours.close()
    assert after[1]["kinetic_energy"] == pytest.approx(0.81 * before["kinetic_energy"], rel=1e-9)
    assert after[1]["potential_energy"] == pytest.approx(before["potential_energy"], rel=1e-12)
    assert after[1]["kinetic_energy"] == pytest.approx(after[0]["kinetic_energy"], rel=1e-9)
