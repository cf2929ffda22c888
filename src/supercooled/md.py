"""Molecular dynamics of the Kob–Andersen mixture: one state point in, one run directory out.

:func:`simulate` runs the paper's protocol for a :class:`~supercooled.systems.StatePoint`:

1. exactly N_A = 0.8 N particles of type A (tags 1 ... N_A) and N_B of type B are inserted at
   uniformly random positions (seeded), overlaps are removed by minimising a harmonic
   repulsion and then the LJ/WCA energy (conjugate gradients);
2. velocities are drawn from the Maxwell–Boltzmann distribution at T with zero total momentum;
3. equilibration for ``equilibration_time`` with a Nose–Hoover thermostat (NVT, damping time
   100 dt);
4. at the switch to NVE the velocities are scaled once so that the total energy is the
   thermostatted run's (:mod:`supercooled.nve`; ``nve_start="as-thermostatted"`` skips it);
5. production for ``production_time`` in NVE (velocity Verlet). The measured temperature of
   the state is the mean kinetic temperature of the NVE run (3N - 3 degrees of freedom).

Run directory ``out_dir/``:

- ``trajectory.gsd``: production frames in HOOMD-blue's GSD schema on the log-periodic
  schedule of :mod:`supercooled.trajectory` (``block_time=None``: B = max(production / 20,
  100 steps));
- ``thermo.csv``: columns step, time, temperature, potential_energy, kinetic_energy,
  total_energy, pressure, phase; energies per particle; ``step``/``time`` count from the
  start of production (negative during equilibration), ``phase`` is ``equilibration`` or
  ``production``; 100 rows over the equilibration, and in production one row at every frame
  plus 20 evenly spaced rows per block;
- ``run.json``: every setting and result (:class:`RunResult`), written when the run is done;
- while running: ``checkpoint_<step>.restart`` and ``checkpoint.json`` (see
  :mod:`supercooled.run_files`; a run killed at any moment resumes from the last one).

Checkpoints: the engine state is written at the end of equilibration chunks and at block
starts in production, at most every :data:`CHECKPOINT_WALL_SECONDS` of wall time (serial
runs; at every such point with MPI, whose ranks must agree without a shared clock). With
``resume=True``, a directory holding a finished ``run.json`` with the same settings is
returned as is, and one holding a checkpoint continues from it (the GSD file and the log are
cut back to the checkpoint first).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from supercooled import __version__, run_files, trajectory
from supercooled.crystal import is_crystallized, solid_fraction
from supercooled.engines import ENGINES, Engine, make_engine
from supercooled.errors import SupercooledError
from supercooled.nve import LEGACY_NVE_START, NVE_START, NVE_STARTS, energy_drift, velocity_scale
from supercooled.systems import StatePoint
from supercooled.timestep import reduced_timestep

#: thermodynamic log rows in the whole equilibration
EQUILIBRATION_THERMO_ROWS = 100
#: Nose-Hoover damping time in units of the time step (LAMMPS' recommended ~100 dt)
THERMOSTAT_DAMPING_STEPS = 100
#: minimum wall time between checkpoints of a serial run (seconds)
CHECKPOINT_WALL_SECONDS = 300.0
#: block-start frames at the end of production that the crystallisation check examines
CRYSTAL_CHECK_FRAMES = 3


def default_timestep(state: StatePoint) -> float:
    """The time step of a run that does not set one: the reduced (isomorph) rule
    dt = min(DT_REDUCED rho^(-1/3) (m/T)^(1/2), DT_MAX) of :mod:`supercooled.timestep`,
    chosen there from a measured drift study."""
    return reduced_timestep(state)


@dataclass
class RunResult:
    """What :func:`simulate` did: the settings, the measured results and the file paths.

    ``temperature`` is the mean kinetic temperature of the NVE production run;
    ``energy_drift`` = |b| t_prod / |<E>| with b the slope of a least-squares line through the
    total energy per particle E(t) of the production log (``energy_drift_per_particle`` =
    |b| t_prod in eps_AA); ``crystallized`` is the result of
    :func:`supercooled.crystal.is_crystallized` on the last block-start frames;
    ``atom_steps_per_second`` = N * production steps / production wall time
    (``production_wall_time``; ``production_cpu_time`` is the CPU time of this process);
    ``nve_velocity_scale``: the factor of the energy-matched NVE start (NaN if not applied).
    """

    run_dir: Path
    state: StatePoint
    temperature: float
    temperature_target: float
    seed: int
    dt: float
    engine: str
    engine_version: str
    equilibration_time: float
    production_time: float
    thermostat: dict
    schedule: dict
    energy_drift: float
    crystallized: bool
    crystal_fraction: float
    wall_time: float
    atom_steps_per_second: float
    created: str
    supercooled_version: str
    requested: dict = field(default_factory=dict)
    energy_drift_per_particle: float = math.nan
    production_wall_time: float = math.nan
    production_cpu_time: float = math.nan
    nve_start: str = LEGACY_NVE_START
    nve_velocity_scale: float = math.nan

    @property
    def trajectory(self) -> Path:
        return self.run_dir / trajectory.TRAJECTORY_NAME

    @property
    def thermo(self) -> Path:
        return self.run_dir / run_files.THERMO

    @property
    def run_json(self) -> Path:
        return self.run_dir / run_files.RUN_JSON

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("run_dir")
        data["state"] = self.state.to_dict()
        return data

    @classmethod
    def from_run_dir(cls, run_dir) -> RunResult:
        """Load the ``run.json`` of a finished run directory."""
        path = Path(run_dir) / run_files.RUN_JSON
        if not path.is_file():
            raise SupercooledError(f"{run_dir} holds no finished run ({path.name} is missing)")
        data = json.loads(path.read_text())
        names = {f.name for f in cls.__dataclass_fields__.values()} - {"run_dir", "state"}
        kwargs = {k: v for k, v in data.items() if k in names}
        return cls(run_dir=Path(run_dir), state=StatePoint.from_dict(data["state"]), **kwargs)


@dataclass(frozen=True)
class _Plan:
    """Validated settings of one run; ``settings`` identifies it for resuming."""

    state: StatePoint
    dt: float
    seed: int
    engine: str
    equilibration_steps: int
    schedule: trajectory.Schedule
    threads: int
    requested: dict
    nve_start: str = NVE_START

    @property
    def damping_time(self) -> float:
        return THERMOSTAT_DAMPING_STEPS * self.dt

    @property
    def thermostat(self) -> dict:
        # LAMMPS fix nvt (and the OpenMM engine's copy of it): a chain of 3 thermostats;
        # HOOMD-blue MTTK: a single one
        return {"kind": "Nose-Hoover", "ensemble": "NVT", "damping_time": self.damping_time,
                "chain_length": 1 if self.engine == "hoomd" else 3}

    @property
    def settings(self) -> dict:
        return {"state": self.state.to_dict(), "dt": self.dt, "seed": self.seed,
                "engine": self.engine, "equilibration_steps": self.equilibration_steps,
                "schedule": self.schedule.to_dict(), "thermostat": self.thermostat,
                "nve_start": self.nve_start}


def _number(name: str, value, *, allow_zero: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SupercooledError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise SupercooledError(f"{name} must be {bound} and finite, got {value}")
    return value


def _plan(state, equilibration_time, production_time, dt, seed, engine, block_time,
          threads, nve_start=NVE_START) -> _Plan:
    if not isinstance(state, StatePoint):
        raise SupercooledError(f"state must be a StatePoint, got {type(state).__name__}")
    engine = str(engine).strip().lower()
    if engine not in ENGINES:
        raise SupercooledError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SupercooledError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise SupercooledError(f"threads must be a positive integer, got {threads!r}")
    t_eq = _number("equilibration_time", equilibration_time, allow_zero=True)
    t_prod = _number("production_time", production_time)
    dt = default_timestep(state) if dt is None else _number("dt", dt)
    n_prod = round(t_prod / dt)
    if n_prod < 1:
        raise SupercooledError(f"production_time {t_prod} is shorter than one time step dt = {dt}")
    block_steps = None
    if block_time is not None:
        block_steps = round(_number("block_time", block_time) / dt)
        if block_steps < 1 or block_steps > n_prod:
            raise SupercooledError(
                f"block_time {block_time} must lie between dt = {dt} and production_time {t_prod}")
    requested = {"equilibration_time": t_eq, "production_time": t_prod, "block_time": block_time}
    if nve_start not in NVE_STARTS:
        raise SupercooledError(f"unknown nve_start {nve_start!r}: choose one of "
                               f"{', '.join(NVE_STARTS)}")
    return _Plan(state, float(dt), int(seed), engine, round(t_eq / dt),
                 trajectory.make_schedule(n_prod, block_steps), int(threads), requested,
                 nve_start)


# -- the run ----------------------------------------------------------------------------

class _Clock:
    """Wall and CPU (this process, all threads) seconds of the production, summed over the
    segments of a resumed run. CPU time is what the throughput benchmark compares, since
    wall time on a shared machine depends on the other processes."""

    def __init__(self, wall: float = 0.0, cpu: float = 0.0):
        self.wall, self.cpu, self._since = wall, cpu, None

    def start(self) -> None:
        self._since = (time.monotonic(), time.process_time())

    def read(self) -> tuple[float, float]:
        if self._since is None:
            return self.wall, self.cpu
        return (self.wall + time.monotonic() - self._since[0],
                self.cpu + time.process_time() - self._since[1])

    def stop(self) -> None:
        self.wall, self.cpu = self.read()
        self._since = None


#: ``on_checkpoint(run_dir, checkpoint)``: called after every committed checkpoint
CheckpointCallback = Callable[[Path, dict], None]


class _Run:
    """Drives one engine through the protocol and writes the run directory."""

    def __init__(self, engine: Engine, plan: _Plan, run_dir: Path, progress: bool,
                 on_checkpoint: CheckpointCallback | None = None):
        self.engine = engine
        self.plan = plan
        self.dir = run_dir
        self.on_checkpoint = on_checkpoint
        self.progress = progress and engine.rank == 0
        self.root = engine.rank == 0
        self.n_eq = plan.equilibration_steps
        self.schedule = plan.schedule
        self.n_frames = 0
        self.n_rows = 0
        self.elapsed = 0.0  # wall time of earlier segments (resumed runs)
        self.production_clock = _Clock()
        self.t0 = time.monotonic()  # reset when the run starts
        self.last_checkpoint = self.t0
        self.thermo_file = None
        self.thermo_writer = None
        self.gsd_file = None
        self.block_frames: list[np.ndarray] = []
        # (time, temperature, total energy) of the production log, kept in memory so that
        # every MPI rank computes the same results without reading files rank 0 writes
        self.production_rows: list[tuple[float, float, float]] = []
        # (step, total energy) of the equilibration log: the NVE start's target energy
        self.equilibration_rows: list[tuple[int, float]] = []
        self.nve_velocity_scale = math.nan

    # -- starting ----------------------------------------------------------------------
    def start(self, resume: bool) -> None:
        checkpoint = run_files.load_checkpoint(self.dir, self.plan.settings) if resume else None
        if checkpoint is None:
            if self.root:
                run_files.clear(self.dir)
            state = self.plan.state
            rng = np.random.default_rng(self.plan.seed)
            positions = rng.uniform(0.0, state.box_length, size=(state.n_particles, 3))
            self.engine.create(positions, int(rng.integers(1, 2**30)))
            if self.root:
                with open(self.dir / run_files.THERMO, "w", newline="") as handle:
                    csv.writer(handle).writerow(run_files.THERMO_COLUMNS)
        else:
            self.engine.restore(os.fspath(self.dir / checkpoint["restart"]))
            self.n_frames = checkpoint["n_frames"]
            self.n_rows = checkpoint["n_thermo_rows"]
            self.elapsed = checkpoint["wall_time"]
            self.production_clock = _Clock(checkpoint["production_wall_time"],
                                           checkpoint.get("production_cpu_time", 0.0))
            rows = run_files.read_thermo(self.dir / run_files.THERMO)[:self.n_rows]
            self.production_rows = [(float(r["time"]), float(r["temperature"]),
                                     float(r["total_energy"]))
                                    for r in rows if r["phase"] == "production"]
            self.equilibration_rows = [(int(r["step"]), float(r["total_energy"]))
                                       for r in rows if r["phase"] == "equilibration"]
            self.nve_velocity_scale = float(checkpoint.get("nve_velocity_scale", math.nan))
            if self.root:
                run_files.cut_thermo(self.dir / run_files.THERMO, self.n_rows)
                trajectory.cut_trajectory(self.dir / trajectory.TRAJECTORY_NAME, self.n_frames)
        if self.root:
            self.thermo_file = open(self.dir / run_files.THERMO, "a", newline="")  # noqa: SIM115
            self.thermo_writer = csv.writer(self.thermo_file)

    # -- recording ---------------------------------------------------------------------
    def _row(self, step: int, phase: str) -> None:
        values = self.engine.thermo()
        self.n_rows += 1
        if phase == "production":
            self.production_rows.append((step * self.plan.dt, values["temperature"],
                                         values["total_energy"]))
        else:
            self.equilibration_rows.append((step, values["total_energy"]))
        if self.root:
            self.thermo_writer.writerow(
                [step, repr(step * self.plan.dt)]
                + [f"{values[c]:.12g}" for c in run_files.THERMO_COLUMNS[2:7]] + [phase])

    def _frame(self, step: int) -> None:
        unwrapped = self.engine.unwrapped_positions()
        if step % self.schedule.block_length_steps == 0:
            self.block_frames = [*self.block_frames[-(CRYSTAL_CHECK_FRAMES - 1):], unwrapped]
        self.n_frames += 1
        if self.root:
            frame = trajectory.gsd_frame(self.plan.state, step, unwrapped, self.plan.dt)
            self.gsd_file.append(frame)

    def _checkpoint(self, phase: str, *, force: bool = False) -> None:
        due = time.monotonic() - self.last_checkpoint >= CHECKPOINT_WALL_SECONDS
        if not (force or due or self.engine.n_ranks > 1):
            return
        if self.root:
            self.thermo_file.flush()
            if self.gsd_file is not None:
                self.gsd_file.flush()
        restart = run_files.CHECKPOINT_RESTART.format(step=self.engine.step)
        self.engine.checkpoint(os.fspath(self.dir / restart))
        now = time.monotonic()
        production_wall, production_cpu = self.production_clock.read()
        checkpoint = {"phase": phase, "engine_step": self.engine.step, "restart": restart,
                      "n_frames": self.n_frames, "n_thermo_rows": self.n_rows,
                      "wall_time": self.elapsed + now - self.t0,
                      "production_wall_time": production_wall,
                      "production_cpu_time": production_cpu,
                      "nve_velocity_scale": self.nve_velocity_scale, "settings": self.plan.settings}
        if self.root:
            run_files.write_json_atomic(self.dir / run_files.CHECKPOINT_JSON, checkpoint)
            run_files.remove_restarts(self.dir, keep=restart)
        self.last_checkpoint = now
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.dir, checkpoint)

    # -- phases ------------------------------------------------------------------------
    def equilibrate(self) -> None:
        from tqdm import tqdm

        engine, n_eq = self.engine, self.n_eq
        if engine.step >= n_eq:
            return
        engine.use_thermostat(self.plan.state.temperature, self.plan.damping_time)
        interval = max(1, n_eq // EQUILIBRATION_THERMO_ROWS)
        stops = np.union1d(np.arange(0, n_eq + 1, interval), [n_eq])
        with tqdm(total=n_eq, initial=engine.step, desc="equilibration (NVT)", unit="step",
                  disable=not self.progress, leave=False) as bar:
            if engine.step == 0:
                self._row(-n_eq, "equilibration")
            for stop in stops[stops > engine.step]:
                before = engine.step
                engine.advance(int(stop) - before)
                bar.update(int(stop) - before)
                if stop < n_eq:
                    self._row(int(stop) - n_eq, "equilibration")
                    self._checkpoint("equilibration")

    def produce(self) -> None:
        import gsd.hoomd
        from tqdm import tqdm

        engine, sched, n_eq = self.engine, self.schedule, self.n_eq
        engine.use_nve()
        if self.root:
            path = self.dir / trajectory.TRAJECTORY_NAME
            self.gsd_file = gsd.hoomd.open(path, "a" if path.exists() else "w")
        frames, rows = sched.frame_steps(), sched.thermo_steps()
        self.production_clock.start()
        if engine.step == n_eq and self.n_frames == 0:
            if self.plan.nve_start == NVE_START:
                self._match_energy()
            self._row(0, "production")
            self._frame(0)
            self._checkpoint("production", force=True)
        stops = np.union1d(frames, rows)
        is_frame, is_row = np.isin(stops, frames), np.isin(stops, rows)
        done = engine.step - n_eq
        with tqdm(total=sched.production_steps, initial=done, desc="production (NVE)",
                  unit="step", disable=not self.progress) as bar:
            for i in np.flatnonzero(stops > done):
                stop = int(stops[i])
                before = engine.step - n_eq
                engine.advance(stop - before)
                bar.update(stop - before)
                if is_row[i]:
                    self._row(stop, "production")
                if is_frame[i]:
                    self._frame(stop)
                if stop % sched.block_length_steps == 0 and stop < sched.production_steps:
                    self._checkpoint("production")
        self.production_clock.stop()

    def _match_energy(self) -> None:
        """The energy-matched NVE start (:func:`supercooled.nve.velocity_scale`)."""
        values = self.engine.thermo()
        self.nve_velocity_scale = velocity_scale(
            self.equilibration_rows, self.n_eq, values["potential_energy"],
            values["kinetic_energy"], where=str(self.dir))
        if math.isfinite(self.nve_velocity_scale):
            self.engine.scale_velocities(self.nve_velocity_scale)

    def run(self, resume: bool) -> RunResult:
        self.t0 = time.monotonic()
        self.start(resume)
        try:
            self.equilibrate()
            self.produce()
        finally:
            if self.thermo_file is not None:
                self.thermo_file.close()
            if self.gsd_file is not None:
                self.gsd_file.close()
        return self.finish()

    def finish(self) -> RunResult:
        plan, sched = self.plan, self.schedule
        times, temperatures, energy = np.array(self.production_rows).T
        temperature = float(np.mean(temperatures))
        configurations = self._last_block_frames()
        length = plan.state.box_length
        fraction = max(solid_fraction(x, length) for x in configurations)
        crystallized = any(is_crystallized(x, length) for x in configurations)
        wall = self.elapsed + time.monotonic() - self.t0
        production_wall, production_cpu = self.production_clock.read()
        rate = plan.state.n_particles * sched.production_steps / max(production_wall, 1e-12)
        result = RunResult(
            run_dir=self.dir, state=plan.state, temperature=temperature,
            temperature_target=plan.state.temperature, seed=plan.seed, dt=plan.dt,
            engine=plan.engine, engine_version=self.engine.version,
            equilibration_time=self.n_eq * plan.dt,
            production_time=sched.production_steps * plan.dt, thermostat=plan.thermostat,
            schedule=sched.to_dict(), energy_drift=energy_drift(times, energy),
            energy_drift_per_particle=energy_drift(times, energy, relative=False),
            production_wall_time=production_wall, production_cpu_time=production_cpu,
            crystallized=bool(crystallized), crystal_fraction=float(fraction), wall_time=wall,
            nve_start=plan.nve_start, nve_velocity_scale=float(self.nve_velocity_scale),
            atom_steps_per_second=float(rate),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            supercooled_version=__version__, requested=plan.requested)
        if self.root:
            data = result.to_dict()
            data["settings"] = plan.settings
            data["threads"] = plan.threads
            data["mpi_ranks"] = self.engine.n_ranks
            run_files.write_json_atomic(self.dir / run_files.RUN_JSON, data)
            (self.dir / run_files.CHECKPOINT_JSON).unlink(missing_ok=True)
            run_files.remove_restarts(self.dir)
        return result

    def _last_block_frames(self) -> list[np.ndarray]:
        """The last block-start configurations (from memory, or the GSD file after a resume).

        Other MPI ranks than 0 use what they have in memory (at least the final frame)."""
        if len(self.block_frames) >= CRYSTAL_CHECK_FRAMES or not self.root:
            return self.block_frames
        return trajectory.block_start_positions(self.dir / trajectory.TRAJECTORY_NAME,
                                     self.schedule.block_length_steps, CRYSTAL_CHECK_FRAMES)


def _finished(run_dir: Path, plan: _Plan) -> RunResult | None:
    path = run_dir / run_files.RUN_JSON
    if not path.is_file():
        return None
    if not run_files.same_settings(json.loads(path.read_text()), plan.settings):
        raise SupercooledError(
            f"{run_dir} holds a finished run with other settings; choose another directory "
            "or pass resume=False (--no-resume) to overwrite it")
    return RunResult.from_run_dir(run_dir)


def simulate(state: StatePoint, out_dir, *, equilibration_time: float, production_time: float,
             dt: float | None = None, seed: int = 0, engine: str = "lammps",
             block_time: float | None = None, threads: int = 1, resume: bool = True,
             progress: bool = True, platform: str | None = None,
             on_checkpoint: CheckpointCallback | None = None,
             nve_start: str = NVE_START) -> RunResult:
    """Equilibrate ``state`` with a thermostat, produce in NVE, write ``out_dir``.

    See the module docstring for the protocol, the files and the log-periodic schedule.
    ``dt`` defaults to :func:`default_timestep`; ``block_time`` (LJ time units) is the length
    of one block of the schedule; ``threads > 1`` uses the engine's OpenMP styles; with
    ``resume=True`` a finished directory is returned and a checkpoint continued, with
    ``resume=False`` the directory's run files are overwritten. ``platform`` picks the device
    of engine ``openmm`` (CPU, CUDA, OpenCL; default CPU; recorded in ``engine_version``, not
    part of the settings, since its checkpoints resume on any platform). ``on_checkpoint(run_dir,
    checkpoint)``, if given, is called after every committed checkpoint with the record that
    ``checkpoint.json`` now holds (to follow a long run, or to interrupt it at a known point).
    ``nve_start``: "energy-matched" (default) or "as-thermostatted" (:mod:`supercooled.nve`).
    Returns a :class:`RunResult`. Bad input raises
    :class:`~supercooled.errors.SupercooledError`, and so does an error of the MD code (lost
    atoms, in one line). If the run fails before its first checkpoint, its files and the
    folders this call created are removed again (nothing there could be resumed); a run with
    a checkpoint is left as it is, to be resumed.
    """
    plan = _plan(state, equilibration_time, production_time, dt, seed, engine, block_time,
                 threads, nve_start)
    run_dir = Path(out_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise SupercooledError(f"{run_dir} exists and is not a directory")
    if resume:
        finished = _finished(run_dir, plan)
        if finished is not None:
            return finished
    md_engine = make_engine(plan.engine, plan.state, dt=plan.dt, threads=plan.threads,
                            platform=platform)
    created = run_files.missing_folders(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _Run(md_engine, plan, run_dir, progress, on_checkpoint).run(resume)
    except BaseException as error:
        if md_engine.rank == 0:  # the rank that writes files; others leave the folder alone
            run_files.discard_failed(run_dir, created)
        message = md_engine.describe_error(error)
        if message is None:
            raise
        raise SupercooledError(message) from None
    finally:
        md_engine.close()
