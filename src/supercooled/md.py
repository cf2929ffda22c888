"""Molecular dynamics of the Kob–Andersen mixture: one state point in, one run directory out.

:func:`simulate` runs the paper's protocol for a :class:`~supercooled.systems.StatePoint`:

1. exactly N_A = 0.8 N particles of type A (tags 1 ... N_A) and N_B of type B are inserted at
   uniformly random positions (seeded), overlaps are removed by minimising a harmonic
   repulsion and then the LJ/WCA energy (conjugate gradients);
2. velocities are drawn from the Maxwell–Boltzmann distribution at T with zero total momentum;
3. equilibration for ``equilibration_time`` with a Nose–Hoover thermostat (NVT, damping time
   100 dt);
4. production for ``production_time`` in NVE (velocity Verlet). The measured temperature of
   the state is the mean kinetic temperature of the NVE run (3N - 3 degrees of freedom).

Run directory ``out_dir/``:

- ``trajectory.gsd``: production frames in HOOMD-blue's GSD schema (see :func:`gsd_frame`);
- ``thermo.csv``: columns step, time, temperature, potential_energy, kinetic_energy,
  total_energy, pressure, phase; energies per particle; ``step``/``time`` count from the
  start of production (negative during equilibration), ``phase`` is ``equilibration`` or
  ``production``; 100 rows over the equilibration, and in production one row at every frame
  plus 20 evenly spaced rows per block;
- ``run.json``: every setting and result (:class:`RunResult`), written when the run is done;
- while running: ``checkpoint_<step>.restart`` (engine state) and ``checkpoint.json`` (which
  restart file is current, where the run is and how many frames and log rows belong to that
  state; replacing it atomically commits a checkpoint, so a run killed at any moment resumes).

Log-periodic frame schedule (what makes phi_s(k, t) cheap from t = dt to t = t_prod):
production is cut into ``n_blocks`` blocks of B steps. Inside each block frames are written
at block_start + s for s in {0} U unique(round(logspace(0, log10 B, 8 per decade))), s < B,
and one last frame at the end of production (itself a block start). Every block start is
a time origin: lags s*dt inside a block are averaged over the n_blocks origins, and lags
that are multiples of B over all pairs of block starts. The frame count is
n_blocks * len(offsets) + 1 instead of t_prod / dt. ``run.json`` stores
{"block_length_steps": B, "frame_offsets_steps": [...], "n_blocks": n}. With
``block_time=None``, B = max(production / 20, 100 steps) (>= ~20 origins). Either way the
production is rounded up to a whole number of blocks, never shortened.

Checkpoints: the engine state is written at the end of equilibration chunks and at block
starts in production, at most every :data:`CHECKPOINT_WALL_SECONDS` of wall time (serial
runs; at every such point with MPI, whose ranks must agree without a shared clock). With ``resume=True``, a
directory holding a finished ``run.json`` with the same settings is returned as is, and one
holding a checkpoint continues from it (the GSD file and the log are cut back to the
checkpoint first).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from supercooled import __version__
from supercooled.engines import ENGINES, Engine, make_engine
from supercooled.errors import SupercooledError
from supercooled.systems import SPECIES, StatePoint
from supercooled.timestep import reduced_timestep

TRAJECTORY = "trajectory.gsd"
THERMO = "thermo.csv"
RUN_JSON = "run.json"
#: engine state files are named by step; checkpoint.json names the current one, so that
#: rewriting checkpoint.json (atomically) is the single moment a checkpoint is committed
CHECKPOINT_RESTART = "checkpoint_{step}.restart"
CHECKPOINT_JSON = "checkpoint.json"
THERMO_COLUMNS = ("step", "time", "temperature", "potential_energy", "kinetic_energy",
                  "total_energy", "pressure", "phase")

FRAMES_PER_DECADE = 8
DEFAULT_N_BLOCKS = 20
MIN_BLOCK_STEPS = 100
#: evenly spaced thermodynamic log rows per block in production (on top of one row at every
#: frame), and rows in the whole equilibration. Many production rows because the drift fit
#: must average out the O(1e-4) relative fluctuations of E that velocity Verlet causes
THERMO_ROWS_PER_BLOCK = 20
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


def block_offsets(block_steps: int, frames_per_decade: int = FRAMES_PER_DECADE) -> np.ndarray:
    """Frame offsets inside one block: {0} U unique(round(logspace(0, log10 B, 8/decade))) < B."""
    block_steps = int(block_steps)
    decades = math.log10(block_steps)
    points = max(1, int(math.ceil(decades * frames_per_decade)) + 1)
    s = np.unique(np.round(np.logspace(0.0, decades, points)).astype(np.int64))
    return np.concatenate([[0], s[(s > 0) & (s < block_steps)]]).astype(np.int64)


@dataclass(frozen=True)
class Schedule:
    """The log-periodic production schedule (see the module docstring)."""

    block_length_steps: int
    n_blocks: int
    frame_offsets_steps: tuple[int, ...]

    @property
    def production_steps(self) -> int:
        return self.block_length_steps * self.n_blocks

    @property
    def thermo_interval(self) -> int:
        return max(1, self.block_length_steps // THERMO_ROWS_PER_BLOCK)

    def frame_steps(self) -> np.ndarray:
        """Steps (from the start of production) of every frame, ascending."""
        starts = np.arange(self.n_blocks, dtype=np.int64) * self.block_length_steps
        steps = (starts[:, None] + np.asarray(self.frame_offsets_steps)[None, :]).ravel()
        return np.append(steps, self.production_steps)

    def thermo_steps(self) -> np.ndarray:
        """Steps of the production log: every frame (the engine stops there anyway, and an
        energy at each stored configuration is useful) plus every ``thermo_interval``."""
        steps = np.arange(0, self.production_steps + 1, self.thermo_interval, dtype=np.int64)
        return np.union1d(steps, self.frame_steps())

    def to_dict(self) -> dict:
        return {"block_length_steps": self.block_length_steps,
                "frame_offsets_steps": [int(s) for s in self.frame_offsets_steps],
                "n_blocks": self.n_blocks}


def make_schedule(production_steps: int, block_steps: int | None = None) -> Schedule:
    """Blocks of B steps covering ``production_steps`` (rounded up to whole blocks).

    B defaults to max(ceil(production / 20), 100), or the whole production if shorter. With a
    given B the production is likewise rounded up (never shortened): ceil(production / B) blocks.
    """
    if block_steps is None:
        block = max(MIN_BLOCK_STEPS, math.ceil(production_steps / DEFAULT_N_BLOCKS))
        block = min(block, production_steps)
        n_blocks = math.ceil(production_steps / block)
    else:
        block = int(block_steps)
        if block < 1:
            raise SupercooledError(f"block length must be at least one step, got {block_steps!r}")
        n_blocks = max(1, -(-int(production_steps) // block))  # ceil, in exact integers
    return Schedule(block, n_blocks, tuple(int(s) for s in block_offsets(block)))


@dataclass
class RunResult:
    """What :func:`simulate` did: the settings, the measured results and the file paths.

    ``temperature`` is the mean kinetic temperature of the NVE production run;
    ``energy_drift`` = |b| t_prod / |<E>| with b the slope of a least-squares line through the
    total energy per particle E(t) of the production log (``energy_drift_per_particle`` =
    |b| t_prod in eps_AA); ``crystallized`` is the result of
    :func:`supercooled.crystal.is_crystallized` on the last block-start frames;
    ``atom_steps_per_second`` = N * production steps / production wall time
    (``production_wall_time``; ``production_cpu_time`` is the CPU time of this process).
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

    @property
    def trajectory(self) -> Path:
        return self.run_dir / TRAJECTORY

    @property
    def thermo(self) -> Path:
        return self.run_dir / THERMO

    @property
    def run_json(self) -> Path:
        return self.run_dir / RUN_JSON

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("run_dir")
        data["state"] = self.state.to_dict()
        return data

    @classmethod
    def from_run_dir(cls, run_dir) -> RunResult:
        """Load the ``run.json`` of a finished run directory."""
        path = Path(run_dir) / RUN_JSON
        if not path.is_file():
            raise SupercooledError(f"{run_dir} holds no finished run ({RUN_JSON} is missing)")
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
    schedule: Schedule
    threads: int
    requested: dict

    @property
    def damping_time(self) -> float:
        return THERMOSTAT_DAMPING_STEPS * self.dt

    @property
    def thermostat(self) -> dict:
        # LAMMPS fix nvt: a chain of 3 thermostats; HOOMD-blue MTTK: a single one
        return {"kind": "Nose-Hoover", "ensemble": "NVT", "damping_time": self.damping_time,
                "chain_length": 3 if self.engine == "lammps" else 1}

    @property
    def settings(self) -> dict:
        return {"state": self.state.to_dict(), "dt": self.dt, "seed": self.seed,
                "engine": self.engine, "equilibration_steps": self.equilibration_steps,
                "schedule": self.schedule.to_dict(), "thermostat": self.thermostat}


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
          threads) -> _Plan:
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
    return _Plan(state, float(dt), int(seed), engine, round(t_eq / dt),
                 make_schedule(n_prod, block_steps), int(threads), requested)


def wrap_positions(unwrapped: np.ndarray, box_length: float) -> tuple[np.ndarray, np.ndarray]:
    """(position, image) with position in [-L/2, L/2) as float32 and unwrapped = position + image L.

    The wrap is done after rounding to float32, so a coordinate that rounds onto +L/2 is
    moved to -L/2 with its image flag incremented.
    """
    image = np.floor(unwrapped / box_length + 0.5)
    position = (unwrapped - image * box_length).astype(np.float32)
    half = np.float32(box_length / 2.0)
    over = position >= half
    position[over] -= np.float32(box_length)
    image[over] += 1
    under = position < -half
    position[under] += np.float32(box_length)
    image[under] -= 1
    return position, image.astype(np.int32)


def gsd_frame(state: StatePoint, step: int, unwrapped: np.ndarray, dt: float):
    """One ``gsd.hoomd.Frame``: step from the start of production, box [L, L, L, 0, 0, 0],
    types ["A", "B"], typeid (A first), wrapped float32 positions, int32 image flags, and
    ``log["supercooled/dt"] = [dt]``."""
    import gsd.hoomd

    frame = gsd.hoomd.Frame()
    frame.configuration.step = int(step)
    length = state.box_length
    frame.configuration.box = [length, length, length, 0.0, 0.0, 0.0]
    frame.particles.N = state.n_particles
    frame.particles.types = list(SPECIES)
    frame.particles.typeid = np.repeat(np.arange(2, dtype=np.uint32), [state.n_a, state.n_b])
    frame.particles.position, frame.particles.image = wrap_positions(unwrapped, length)
    frame.log["supercooled/dt"] = np.array([dt], dtype=np.float64)
    return frame


def unwrapped_positions(frame) -> np.ndarray:
    """Unwrapped positions (float64) of a GSD frame: position + image * L."""
    box = np.asarray(frame.configuration.box[:3], dtype=np.float64)
    return frame.particles.position.astype(np.float64) + frame.particles.image * box


# -- files ------------------------------------------------------------------------------

def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _cut_trajectory(path: Path, n_frames: int) -> None:
    """Keep the first ``n_frames`` frames of a GSD file (rewrite, then rename)."""
    import gsd.hoomd

    if not path.exists():
        return
    with gsd.hoomd.open(path, "r") as old:
        if len(old) == n_frames:
            return
        frames = [old[i] for i in range(min(n_frames, len(old)))]
    tmp = path.with_suffix(".gsd.tmp")
    with gsd.hoomd.open(tmp, "w") as new:
        for frame in frames:
            new.append(frame)
    os.replace(tmp, path)


def _read_thermo(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _cut_thermo(path: Path, n_rows: int) -> None:
    rows = _read_thermo(path)[:n_rows]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, THERMO_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _clear(run_dir: Path) -> None:
    for name in (TRAJECTORY, THERMO, RUN_JSON, CHECKPOINT_JSON):
        (run_dir / name).unlink(missing_ok=True)
    _remove_restarts(run_dir)


def _remove_restarts(run_dir: Path, keep: str | None = None) -> None:
    """Delete the engine state files of checkpoints other than ``keep``."""
    for path in run_dir.glob("checkpoint_*.restart*"):
        if keep is None or not path.name.startswith(keep):
            path.unlink(missing_ok=True)


def _checkpoint_hook(run_dir: Path, checkpoint: dict) -> None:
    """Called after every checkpoint (a seam for tests that interrupt a run)."""


def energy_drift(time_values: np.ndarray, total_energy: np.ndarray, *,
                 relative: bool = True) -> float:
    """|b| (t_end - t_start) / |<E>|, b the least-squares slope of E(t) (per particle).

    A linear fit rather than |E_end - E_start| because E fluctuates at every step (the
    velocity-Verlet error, ~dt^2) by more than it drifts. With ``relative=False`` the drift
    |b| (t_end - t_start) in eps_AA per particle (the relative value is inflated where the
    total energy happens to be close to zero, e.g. LJ near T ~ 2.5 at rho = 1.2).
    """
    time_values = np.asarray(time_values, dtype=float)
    total_energy = np.asarray(total_energy, dtype=float)
    if len(time_values) < 2:
        return 0.0
    slope = np.polyfit(time_values, total_energy, 1)[0]
    drift = abs(slope) * (time_values[-1] - time_values[0])
    return float(drift / abs(np.mean(total_energy)) if relative else drift)


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


class _Run:
    """Drives one engine through the protocol and writes the run directory."""

    def __init__(self, engine: Engine, plan: _Plan, run_dir: Path, progress: bool):
        self.engine = engine
        self.plan = plan
        self.dir = run_dir
        self.progress = progress and engine.rank == 0
        self.root = engine.rank == 0
        self.n_eq = plan.equilibration_steps
        self.schedule = plan.schedule
        self.n_frames = 0
        self.n_rows = 0
        self.elapsed = 0.0  # wall time of earlier segments (resumed runs)
        self.production_clock = _Clock()
        self.last_checkpoint = time.monotonic()
        self.thermo_file = None
        self.trajectory = None
        self.block_frames: list[np.ndarray] = []
        # (time, temperature, total energy) of the production log, kept in memory so that
        # every MPI rank computes the same results without reading files rank 0 writes
        self.production_rows: list[tuple[float, float, float]] = []

    # -- starting ----------------------------------------------------------------------
    def start(self, resume: bool) -> None:
        checkpoint = self._load_checkpoint() if resume else None
        if checkpoint is None:
            if self.root:
                _clear(self.dir)
            state = self.plan.state
            rng = np.random.default_rng(self.plan.seed)
            positions = rng.uniform(0.0, state.box_length, size=(state.n_particles, 3))
            self.engine.create(positions, int(rng.integers(1, 2**30)))
            if self.root:
                with open(self.dir / THERMO, "w", newline="") as handle:
                    csv.writer(handle).writerow(THERMO_COLUMNS)
        else:
            self.engine.restore(os.fspath(self.dir / checkpoint["restart"]))
            self.n_frames = checkpoint["n_frames"]
            self.n_rows = checkpoint["n_thermo_rows"]
            self.elapsed = checkpoint["wall_time"]
            self.production_clock = _Clock(checkpoint["production_wall_time"],
                                           checkpoint.get("production_cpu_time", 0.0))
            rows = _read_thermo(self.dir / THERMO)[:self.n_rows]
            self.production_rows = [(float(r["time"]), float(r["temperature"]),
                                     float(r["total_energy"]))
                                    for r in rows if r["phase"] == "production"]
            if self.root:
                _cut_thermo(self.dir / THERMO, self.n_rows)
                _cut_trajectory(self.dir / TRAJECTORY, self.n_frames)
        if self.root:
            self.thermo_file = open(self.dir / THERMO, "a", newline="")  # noqa: SIM115
            self.thermo_writer = csv.writer(self.thermo_file)

    def _load_checkpoint(self) -> dict | None:
        path = self.dir / CHECKPOINT_JSON
        if not path.is_file():
            return None
        checkpoint = json.loads(path.read_text())
        if not (self.dir / checkpoint.get("restart", "")).is_file():
            return None
        if checkpoint.get("settings") != json.loads(json.dumps(self.plan.settings)):
            raise SupercooledError(
                f"{self.dir} holds a checkpoint of a run with other settings; "
                "choose another directory or pass resume=False (--no-resume) to overwrite it")
        return checkpoint

    # -- recording ---------------------------------------------------------------------
    def _row(self, step: int, phase: str) -> None:
        values = self.engine.thermo()
        self.n_rows += 1
        if phase == "production":
            self.production_rows.append((step * self.plan.dt, values["temperature"],
                                         values["total_energy"]))
        if self.root:
            self.thermo_writer.writerow(
                [step, repr(step * self.plan.dt)]
                + [f"{values[c]:.12g}" for c in THERMO_COLUMNS[2:7]] + [phase])

    def _frame(self, step: int) -> None:
        unwrapped = self.engine.unwrapped_positions()
        if step % self.schedule.block_length_steps == 0:
            self.block_frames = [*self.block_frames[-(CRYSTAL_CHECK_FRAMES - 1):], unwrapped]
        self.n_frames += 1
        if self.root:
            self.trajectory.append(gsd_frame(self.plan.state, step, unwrapped, self.plan.dt))

    def _checkpoint(self, phase: str, *, force: bool = False) -> None:
        due = time.monotonic() - self.last_checkpoint >= CHECKPOINT_WALL_SECONDS
        if not (force or due or self.engine.n_ranks > 1):
            return
        if self.root:
            self.thermo_file.flush()
            if self.trajectory is not None:
                self.trajectory.flush()
        restart = CHECKPOINT_RESTART.format(step=self.engine.step)
        self.engine.checkpoint(os.fspath(self.dir / restart))
        now = time.monotonic()
        production_wall, production_cpu = self.production_clock.read()
        checkpoint = {"phase": phase, "engine_step": self.engine.step, "restart": restart,
                      "n_frames": self.n_frames, "n_thermo_rows": self.n_rows,
                      "wall_time": self.elapsed + now - self.t0,
                      "production_wall_time": production_wall,
                      "production_cpu_time": production_cpu, "settings": self.plan.settings}
        if self.root:
            _write_json_atomic(self.dir / CHECKPOINT_JSON, checkpoint)
            _remove_restarts(self.dir, keep=restart)
        self.last_checkpoint = now
        _checkpoint_hook(self.dir, checkpoint)

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
            path = self.dir / TRAJECTORY
            self.trajectory = gsd.hoomd.open(path, "a" if path.exists() else "w")
        frames, rows = sched.frame_steps(), sched.thermo_steps()
        self.production_clock.start()
        if engine.step == n_eq and self.n_frames == 0:
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

    def run(self, resume: bool) -> RunResult:
        self.t0 = time.monotonic()
        self.start(resume)
        try:
            self.equilibrate()
            self.produce()
        finally:
            if self.thermo_file is not None:
                self.thermo_file.close()
            if self.trajectory is not None:
                self.trajectory.close()
        return self.finish()

    def finish(self) -> RunResult:
        from supercooled.crystal import is_crystallized, solid_fraction

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
            atom_steps_per_second=float(rate),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            supercooled_version=__version__, requested=plan.requested)
        if self.root:
            data = result.to_dict()
            data["settings"] = plan.settings
            data["threads"] = plan.threads
            data["mpi_ranks"] = self.engine.n_ranks
            _write_json_atomic(self.dir / RUN_JSON, data)
            (self.dir / CHECKPOINT_JSON).unlink(missing_ok=True)
            _remove_restarts(self.dir)
        return result

    def _last_block_frames(self) -> list[np.ndarray]:
        """The last block-start configurations (from memory, or the GSD file after a resume).

        Other MPI ranks than 0 use what they have in memory (at least the final frame)."""
        if len(self.block_frames) >= CRYSTAL_CHECK_FRAMES or not self.root:
            return self.block_frames
        import gsd.hoomd

        block = self.schedule.block_length_steps
        with gsd.hoomd.open(self.dir / TRAJECTORY, "r") as trajectory:
            picked = [f for f in trajectory if f.configuration.step % block == 0]
            return [unwrapped_positions(f) for f in picked[-CRYSTAL_CHECK_FRAMES:]]


def _finished(run_dir: Path, plan: _Plan) -> RunResult | None:
    path = run_dir / RUN_JSON
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("settings") != json.loads(json.dumps(plan.settings)):
        raise SupercooledError(
            f"{run_dir} holds a finished run with other settings; choose another directory "
            "or pass resume=False (--no-resume) to overwrite it")
    return RunResult.from_run_dir(run_dir)


def simulate(state: StatePoint, out_dir, *, equilibration_time: float, production_time: float,
             dt: float | None = None, seed: int = 0, engine: str = "lammps",
             block_time: float | None = None, threads: int = 1, resume: bool = True,
             progress: bool = True) -> RunResult:
    """Equilibrate ``state`` with a thermostat, produce in NVE, write ``out_dir``.

    See the module docstring for the protocol, the files and the log-periodic schedule.
    ``dt`` defaults to :func:`default_timestep`; ``block_time`` (LJ time units) is the length
    of one block of the schedule; ``threads > 1`` uses the engine's OpenMP styles; with
    ``resume=True`` a finished directory is returned and a checkpoint continued, with
    ``resume=False`` the directory's run files are overwritten. Returns a :class:`RunResult`.
    Bad input raises :class:`~supercooled.errors.SupercooledError`. If the run fails before
    writing anything (e.g. the set-up's energy minimisation), the folders this call created
    are removed again; an existing directory, or one holding files, is left as it is.
    """
    plan = _plan(state, equilibration_time, production_time, dt, seed, engine, block_time,
                 threads)
    run_dir = Path(out_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise SupercooledError(f"{run_dir} exists and is not a directory")
    if resume:
        finished = _finished(run_dir, plan)
        if finished is not None:
            return finished
    md_engine = make_engine(plan.engine, plan.state, dt=plan.dt, threads=plan.threads)
    created = _missing_folders(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _Run(md_engine, plan, run_dir, progress).run(resume)
    except BaseException:
        if md_engine.rank == 0:  # the rank that writes files; others leave the folder alone
            _remove_if_empty(created)
        raise
    finally:
        md_engine.close()


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) that are still empty; keep any holding a file."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty: it holds files worth keeping, and so do its parents
            return
