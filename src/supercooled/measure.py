"""From a trajectory to a state file: GSD -> S_ab(k), k_p, phi_s(k_p, t), MSD, tau_alpha, D.

Trajectory contract (written by supercooled.md; HOOMD-blue users may write the same):
``RUN_DIR/trajectory.gsd`` with configuration.step (MD step from the start of production),
a cubic box [L, L, L, 0, 0, 0], particles.types containing "A" and "B", typeid, positions
wrapped into the box, particles.image in *every* frame (unwrapped = position + image * L) and a
constant particle order (gsd.hoomd leaves out a frame's image chunk when it equals frame 0's;
such frames are checked for stale flags, see :func:`_check_unwrapped`). The time step is the
caller's (``dt=`` / ``--dt``) when given, else ``frame.log["supercooled/dt"]``, else
``RUN_DIR/run.json`` ("dt"). The frame schedule is log-periodic (see :func:`supercooled.dynamics.block_starts`); run.json's
``schedule.block_length_steps`` is used when present, otherwise it is inferred.

``run.json`` supplies the state's attributes (interaction, density, target and measured
temperature, seed, engine, ...). Without it (a HOOMD user's own run) the density is N / L^3, the
temperature is the mean kinetic temperature of the stored velocities,
T = sum m v^2 / (3 N - 3) (NVE conserves the total momentum), and the interaction must be given
("LJ" or "WCA"). A given interaction must agree with run.json's; a given temperature replaces
the measured one of run.json or of the velocities. The interaction and the given numbers are
checked before the trajectory is read, all metadata before any S(k) or correlation is computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from supercooled.dynamics import block_starts, diffusion_coefficient, self_correlations, tau_alpha
from supercooled.dynamics import to_time_grid as _to_time_grid
from supercooled.errors import SupercooledError, positive_number
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import write_state
from supercooled.md import wrap_positions
from supercooled.structure import partial_structure_factors, peak_position
from supercooled.systems import MASS, PAIRS, SPECIES, normalize_interaction

TRAJECTORY_NAME = "trajectory.gsd"
RUN_FILE = "run.json"
STATE_NAME = "state.nc"
DT_LOG_KEY = "supercooled/dt"
#: Frames used for S(k): block starts, evenly spaced, at most this many (equilibrium average).
MAX_STRUCTURE_FRAMES = 50
#: Time origins used for phi_s and the MSD, evenly spaced over the run, at most this many.
MAX_ORIGINS = 400


@dataclass
class Trajectory:
    """A trajectory in memory: ``positions`` unwrapped, shape (n_frames, N, 3)."""

    steps: np.ndarray
    positions: np.ndarray
    typeid: np.ndarray
    box_length: float
    dt: float | None
    kinetic_temperature: float | None

    @property
    def n_particles(self) -> int:
        return int(self.typeid.size)


def _species_index(types, typeid) -> np.ndarray:
    types = [str(t) for t in types]
    missing = [s for s in SPECIES if s not in types]
    if missing:
        raise SupercooledError(f"trajectory particle types {types} lack {', '.join(missing)}: "
                               "measure needs types 'A' and 'B'")
    mapping = np.array([SPECIES.index(t) if t in SPECIES else -1 for t in types])
    typeid = np.asarray(typeid)
    if typeid.size and (typeid.min() < 0 or typeid.max() >= len(types)):
        raise SupercooledError(f"trajectory typeid values {int(typeid.min())} ... "
                               f"{int(typeid.max())} lie outside the {len(types)} particle "
                               f"types {types}")
    species = mapping[typeid]
    if np.any(species < 0):
        raise SupercooledError(f"trajectory has particles of types other than A and B: {types}")
    return species


def _cubic_box_length(box) -> float:
    box = np.asarray(box, dtype=float)
    if box.shape != (6,) or not np.allclose(box[:3], box[0], rtol=1e-6) or np.any(box[3:] != 0):
        raise SupercooledError(f"measure needs a cubic box without tilt, got box {box.tolist()}")
    return float(box[0])


def read_trajectory(path, *, progress: bool = False) -> Trajectory:
    """Read a GSD trajectory following the contract above into memory (unwrapped positions)."""
    import gsd.hoomd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such trajectory", str(path))
    try:
        handle = gsd.hoomd.open(str(path), "r")
    except Exception as error:
        raise SupercooledError(f"cannot read GSD file {path}: {error}") from None
    with handle as trajectory:
        n_frames = len(trajectory)
        if n_frames < 2:
            raise SupercooledError(f"{path} has {n_frames} frame(s); measuring needs at least 2")
        first = trajectory[0]
        typeid = _species_index(first.particles.types, first.particles.typeid)
        box_length = _cubic_box_length(first.configuration.box)
        dt = first.log.get(DT_LOG_KEY)
        dt = float(np.ravel(dt)[0]) if dt is not None else None
        steps, positions, temperatures = _read_frames(trajectory, box_length, typeid.size,
                                                      progress)
    order_ok = np.all(np.diff(steps) > 0)
    if not order_ok:
        raise SupercooledError(f"{path}: frame steps do not increase strictly")
    kinetic = float(np.mean(temperatures)) if temperatures else None
    return Trajectory(steps, positions, typeid, box_length, dt, kinetic)


def _read_frames(trajectory, box_length, n_particles, progress):
    """Steps, unwrapped positions and per-frame kinetic temperatures (gsd.hoomd semantics:
    a chunk missing from a frame takes frame 0's value)."""
    n_frames = len(trajectory)
    has_velocity = trajectory.file.chunk_exists(frame=0, name="particles/velocity")
    steps = np.zeros(n_frames, dtype=np.int64)
    positions = np.empty((n_frames, n_particles, 3))
    temperatures = []
    frames = range(n_frames)
    if progress:
        from tqdm.auto import tqdm

        frames = tqdm(frames, desc="reading frames", unit="frame", leave=False)
    for i in frames:
        frame = trajectory[i]
        if frame.particles.N != n_particles:
            raise SupercooledError(f"frame {i} has {frame.particles.N} particles, frame 0 has "
                                   f"{n_particles}: the particle number must be constant")
        steps[i] = int(frame.configuration.step)
        image = np.asarray(frame.particles.image, dtype=float)
        positions[i] = np.asarray(frame.particles.position, dtype=float) + image * box_length
        if has_velocity:
            velocity = np.asarray(frame.particles.velocity, dtype=float)
            temperatures.append(MASS * np.sum(velocity**2) / (3 * n_particles - 3))
    # A frame without its own particles.image chunk took frame 0's flags: right if the writer
    # left the chunk out because it equalled frame 0's (gsd.hoomd does), stale if the writer
    # never stores it per frame. Tell the two apart by the jumps next to every such frame.
    file = trajectory.file
    lacking = np.array([i > 0 and not file.chunk_exists(frame=i, name="particles/image")
                        for i in range(n_frames)])
    suspect = np.flatnonzero(lacking[1:] | lacking[:-1]) + 1
    if suspect.size:
        _check_unwrapped(positions, box_length, suspect)
    return steps, positions, temperatures


def _check_unwrapped(positions: np.ndarray, box_length: float, frames=None) -> None:
    """Refuse trajectories whose image flags are missing or stale.

    Checks the jump from frame i - 1 to frame i for every i in ``frames`` (default: all),
    which :func:`_read_frames` chooses as the pairs that involve a frame without its own
    particles.image chunk. Where unwrapping first goes wrong, a frame with stale flags
    follows one with correct flags (or with other stale flags), so checking those pairs finds
    every stale frame. A particle that crosses the boundary without its image flag changing
    jumps by about L between consecutive frames. Real motion between stored frames is far
    below L / 2 in a dense liquid, so such a jump means positions cannot be unwrapped
    (HOOMD-blue writes particles.image only in frame 0 unless the GSD writer has
    dynamic=['property', 'momentum']).
    """
    for i in range(1, positions.shape[0]) if frames is None else frames:
        if np.max(np.abs(positions[i] - positions[i - 1])) > 0.5 * box_length:
            raise SupercooledError(
                f"particles jump by more than L/2 between frames {i - 1} and {i}: particles.image "
                "is missing or stale, so positions cannot be unwrapped (HOOMD-blue: write the GSD "
                "with dynamic=['property', 'momentum'])")


def _read_run_json(run_dir: Path | None) -> dict:
    if run_dir is None or not (run_dir / RUN_FILE).is_file():
        return {}
    try:
        return json.loads((run_dir / RUN_FILE).read_text())
    except json.JSONDecodeError as error:
        raise SupercooledError(f"{run_dir / RUN_FILE} is not valid JSON: {error}") from None


def _resolve_paths(run_dir_or_gsd) -> tuple[Path, Path | None]:
    path = Path(run_dir_or_gsd)
    if path.is_dir():
        gsd_path = path / TRAJECTORY_NAME
        if not gsd_path.is_file():
            raise SupercooledError(f"run directory {path} holds no {TRAJECTORY_NAME}")
        return gsd_path, path
    if path.is_file():
        if path.suffix != ".gsd":
            raise SupercooledError(f"{path} is not a .gsd trajectory or a run directory")
        return path, path.parent
    raise FileNotFoundError(2, "No such run directory or trajectory", str(path))




def _time_step(trajectory: Trajectory, run: dict, dt) -> float:
    for value in (dt, trajectory.dt, run.get("dt")):
        if value is not None:
            return positive_number("time step dt", value)
    raise SupercooledError("the time step is not in the trajectory log nor in run.json: "
                           "pass it with --dt")


def _structure_frames(trajectory: Trajectory, origins: np.ndarray, max_frames: int) -> np.ndarray:
    """Evenly spaced block starts (well-separated configurations) for the S(k) average."""
    candidates = origins if origins.size >= 2 else np.arange(trajectory.steps.size)
    pick = np.unique(np.linspace(0, candidates.size - 1, min(max_frames, candidates.size))
                     .round().astype(int))
    return candidates[pick]


def _interaction(run: dict, interaction) -> str:
    """"LJ" or "WCA": the given interaction, which must agree with run.json's, else run.json's."""
    stored = (run.get("state") or {}).get("interaction")
    if interaction:
        given = normalize_interaction(interaction)
        if stored and normalize_interaction(stored) != given:
            raise SupercooledError(f"interaction {interaction!r} contradicts run.json, which says "
                                   f"{stored!r}: leave out --interaction for a run with run.json")
        return given
    if not stored:
        raise SupercooledError("no run.json with the interaction: pass --interaction LJ or WCA")
    return normalize_interaction(stored)


def _attributes(trajectory, run, dt, equilibrated, interaction, temperature):
    state = run.get("state") or {}
    interaction = _interaction(run, interaction)
    density = state.get("density", trajectory.n_particles / trajectory.box_length**3)
    measured = temperature if temperature is not None else run.get("temperature")
    if measured is None:
        measured = trajectory.kinetic_temperature
    if measured is None:
        raise SupercooledError("no run.json and no velocities in the trajectory: "
                               "pass --temperature")
    target = run.get("temperature_target", state.get("temperature", measured))
    if equilibrated is None:
        equilibrated = run.get("equilibrated", True)
    production = run.get("production_time")
    if production is None:
        production = float(trajectory.steps[-1] - trajectory.steps[0]) * dt

    def number(key, default=float("nan")):
        value = run.get(key)
        try:
            return default if value is None else float(value)
        except (TypeError, ValueError):
            raise SupercooledError(f"run.json: {key} must be a number, got {value!r}") from None

    seed = run.get("seed")
    try:
        seed = -1 if seed is None else int(seed)
    except (TypeError, ValueError):
        raise SupercooledError(f"run.json: seed must be an integer, got {seed!r}") from None

    return {
        "interaction": interaction,
        "density": positive_number("density", density),
        "temperature": positive_number("temperature", measured),
        "temperature_target": positive_number("target temperature", target),
        "n_particles": trajectory.n_particles,
        "seed": seed,
        "dt": dt,
        "engine": str(run.get("engine") or "unknown"),
        "engine_version": str(run.get("engine_version") or ""),
        "equilibration_time": number("equilibration_time"),
        "production_time": float(production),
        "energy_drift": number("energy_drift"),
        "crystallized": int(bool(run.get("crystallized", False))),
        "equilibrated": int(bool(equilibrated)),
        "created": str(run.get("created") or datetime.now(UTC).isoformat(timespec="seconds")),
        "box_length": trajectory.box_length,
    }


def measure_trajectory(trajectory: Trajectory, run: dict | None = None, *, dt=None,
                       equilibrated=None, interaction=None, temperature=None,
                       max_structure_frames: int = MAX_STRUCTURE_FRAMES,
                       max_origins: int = MAX_ORIGINS, progress: bool = False) -> xr.Dataset:
    """The state Dataset (library schema) of a trajectory already in memory."""
    run = run or {}
    dt = _time_step(trajectory, run, dt)
    # metadata first: a bad interaction or temperature must fail before the expensive part
    attrs = _attributes(trajectory, run, dt, equilibrated, interaction, temperature)
    block_length = run.get("schedule", {}).get("block_length_steps")
    origins, block_length = block_starts(trajectory.steps, block_length)
    frames = _structure_frames(trajectory, origins, max_structure_frames)
    structure = partial_structure_factors(trajectory.positions[frames], trajectory.typeid,
                                          trajectory.box_length, progress=progress)
    k_p = peak_position(structure[0])
    lags = self_correlations(trajectory.positions, trajectory.steps, trajectory.typeid, k_p,
                             origins=origins, max_origins=max_origins, split_halves=True,
                             progress=progress)
    phi_s, first, second = (_to_time_grid(p.times(dt), p.phi, p.counts, kind="isf") for p in lags)
    msd = _to_time_grid(lags[0].times(dt), lags[0].msd, lags[0].counts, kind="msd")
    both = np.isfinite(first) & np.isfinite(second)
    ageing = float(np.max(np.abs(first - second)[both])) if both.any() else float("nan")
    attrs.update(measured=datetime.now(UTC).isoformat(timespec="seconds"),
                 block_length_steps=int(block_length), n_origins=int(min(origins.size, max_origins)),
                 n_frames=int(trajectory.steps.size), n_structure_frames=int(frames.size))
    ds = xr.Dataset(
        {
            "S": (("pair", "k"), structure),
            "phi_s": (("species", "time"), phi_s),
            "msd": (("species", "time"), msd),
            "k_p": ((), k_p),
            "tau_alpha": ((), tau_alpha(phi_s[0])),
            "D": (("species",), [diffusion_coefficient(m) for m in msd]),
            "phi_s_first_half": (("species", "time"), first),
            "phi_s_second_half": (("species", "time"), second),
            "ageing_check": ((), ageing),
        },
        coords={"k": K_GRID, "time": TIME_GRID, "pair": list(PAIRS), "species": list(SPECIES)},
        attrs=attrs,
    )
    _describe(ds)
    return ds


def _describe(ds: xr.Dataset) -> None:
    units = {"k": "sigma_AA^-1", "time": "tau", "msd": "sigma_AA^2", "k_p": "sigma_AA^-1",
             "tau_alpha": "tau", "D": "sigma_AA^2 / tau"}
    for name, unit in units.items():
        ds[name].attrs["units"] = unit
    ds["S"].attrs["long_name"] = "partial structure factor (1/N) <rho_a(k) rho_b(-k)>"
    ds["phi_s"].attrs["long_name"] = "self intermediate scattering function at k_p"
    ds["ageing_check"].attrs["long_name"] = "max |phi_s(first half) - phi_s(second half)|"


def default_output(gsd_path: Path, run_dir: Path | None) -> Path:
    """RUN_DIR/state.nc for a run directory or trajectory.gsd; <stem>.state.nc for another .gsd."""
    if gsd_path.name == TRAJECTORY_NAME and run_dir is not None:
        return run_dir / STATE_NAME
    return gsd_path.with_suffix(".state.nc")


def measure_run(run_dir_or_gsd, out=None, *, dt=None, progress: bool = True, equilibrated=None,
                interaction=None, temperature=None,
                max_structure_frames: int = MAX_STRUCTURE_FRAMES) -> Path:
    """Measure a run (directory or .gsd) and write its state file; return the file's path.

    ``out`` defaults to RUN_DIR/state.nc. ``dt`` and ``temperature`` override or complete what
    the trajectory and run.json say; ``interaction`` ("LJ" or "WCA") is needed without run.json
    and must agree with it otherwise; ``equilibrated=False`` marks an aged glass (default:
    run.json's "equilibrated", else True). Bad metadata raises
    :class:`~supercooled.errors.SupercooledError` before the trajectory is read; nothing is
    written then.
    """
    gsd_path, run_dir = _resolve_paths(run_dir_or_gsd)
    run = _read_run_json(run_dir)
    _interaction(run, interaction)
    if temperature is not None:
        positive_number("temperature", temperature)
    if dt is not None:
        positive_number("time step dt", dt)
    trajectory = read_trajectory(gsd_path, progress=progress)
    ds = measure_trajectory(trajectory, run, dt=dt, equilibrated=equilibrated,
                            interaction=interaction, temperature=temperature,
                            max_structure_frames=max_structure_frames, progress=progress)
    target = Path(out) if out is not None else default_output(gsd_path, run_dir)
    return write_state(ds, target)


def write_trajectory(path, steps, positions, typeid, box_length: float, *, dt: float | None = None,
                     velocities=None) -> Path:
    """Write unwrapped positions as a GSD trajectory following the contract (wrapped + image).

    Used by the tests and by anyone who wants to feed positions from another code into
    ``supercooled measure``. ``positions``: (n_frames, N, 3); ``typeid`` 0 = A, 1 = B.
    """
    import gsd.hoomd

    positions = np.asarray(positions, dtype=float)
    # float32 positions in [-L/2, L/2) (a coordinate that rounds onto +L/2 moves to -L/2)
    wrapped, image = wrap_positions(positions, box_length)
    path = Path(path)
    with gsd.hoomd.open(str(path), "w") as trajectory:
        for i, step in enumerate(steps):
            frame = gsd.hoomd.Frame()
            frame.configuration.step = int(step)
            frame.configuration.box = [box_length, box_length, box_length, 0, 0, 0]
            frame.particles.N = positions.shape[1]
            frame.particles.types = list(SPECIES)
            frame.particles.typeid = np.asarray(typeid, dtype=np.uint32)
            frame.particles.position = wrapped[i]
            frame.particles.image = image[i]
            if velocities is not None:
                frame.particles.velocity = np.asarray(velocities[i], dtype=np.float32)
            if dt is not None:
                frame.log[DT_LOG_KEY] = np.array([dt], dtype=float)
            trajectory.append(frame)
    return path
