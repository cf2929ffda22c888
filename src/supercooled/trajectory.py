"""A run's trajectory: the log-periodic frame schedule, GSD frames, wrapping and unwrapping.

Written by :mod:`supercooled.md`, read by :mod:`supercooled.measure` and
:mod:`supercooled.crystal`; the conventions page (book/conventions.md) states the units.

Log-periodic frame schedule (what makes phi_s(k, t) cheap from t = dt to t = t_prod):
production is cut into ``n_blocks`` blocks of B steps. Inside each block frames are written
at block_start + s for s in {0} U unique(round(logspace(0, log10 B, 8 per decade))), s < B,
and one last frame at the end of production (itself a block start). Every block start is
a time origin: lags s*dt inside a block are averaged over the n_blocks origins, and lags
that are multiples of B over all pairs of block starts. The frame count is
n_blocks * len(offsets) + 1 instead of t_prod / dt. A run's ``run.json`` stores
{"block_length_steps": B, "frame_offsets_steps": [...], "n_blocks": n}. By default
B = max(production / 20, 100 steps) (>= ~20 origins). Either way the production is rounded
up to a whole number of blocks, never shortened.

Trajectory contract (HOOMD-blue users may write the same): ``RUN_DIR/trajectory.gsd`` with
configuration.step (MD step from the start of production), a cubic box [L, L, L, 0, 0, 0],
particles.types containing "A" and "B", typeid, positions wrapped into [-L/2, L/2) as float32,
particles.image in *every* frame (unwrapped = position + image * L) and a constant particle
order (gsd.hoomd leaves out a frame's image chunk when it equals frame 0's; such frames are
checked for stale flags, see :func:`_check_unwrapped`), and optionally the time step in
``frame.log["supercooled/dt"]``. Any log-periodic schedule can be read (see
:func:`supercooled.dynamics.block_starts`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.systems import MASS, SPECIES, StatePoint

TRAJECTORY_NAME = "trajectory.gsd"
DT_LOG_KEY = "supercooled/dt"
#: the first 8 bytes of every GSD file (the format's magic number, little-endian)
GSD_MAGIC = bytes.fromhex("df65df65df65df65")

FRAMES_PER_DECADE = 8
DEFAULT_N_BLOCKS = 20
MIN_BLOCK_STEPS = 100
#: evenly spaced thermodynamic log rows per block in production (on top of one row at every
#: frame). Many rows because the drift fit must average out the O(1e-4) relative
#: fluctuations of E that velocity Verlet causes
THERMO_ROWS_PER_BLOCK = 20


# -- the schedule -------------------------------------------------------------------------

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


# -- wrapping -----------------------------------------------------------------------------

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


def unwrapped_positions(frame) -> np.ndarray:
    """Unwrapped positions (float64) of a GSD frame: position + image * L."""
    box = np.asarray(frame.configuration.box[:3], dtype=np.float64)
    return frame.particles.position.astype(np.float64) + frame.particles.image * box


# -- writing ------------------------------------------------------------------------------

def make_frame(step: int, unwrapped: np.ndarray, typeid, box_length: float, *,
               dt: float | None = None, velocity=None):
    """One ``gsd.hoomd.Frame`` following the contract: step, box [L, L, L, 0, 0, 0], types
    ["A", "B"], typeid, wrapped float32 positions with int32 image flags, the velocities if
    given, and ``log["supercooled/dt"] = [dt]`` if ``dt`` is given."""
    import gsd.hoomd

    frame = gsd.hoomd.Frame()
    frame.configuration.step = int(step)
    frame.configuration.box = [box_length, box_length, box_length, 0.0, 0.0, 0.0]
    frame.particles.N = len(unwrapped)
    frame.particles.types = list(SPECIES)
    frame.particles.typeid = np.asarray(typeid, dtype=np.uint32)
    frame.particles.position, frame.particles.image = wrap_positions(unwrapped, box_length)
    if velocity is not None:
        frame.particles.velocity = np.asarray(velocity, dtype=np.float32)
    if dt is not None:
        frame.log[DT_LOG_KEY] = np.array([dt], dtype=np.float64)
    return frame


def gsd_frame(state: StatePoint, step: int, unwrapped: np.ndarray, dt: float):
    """The frame of a run of ``state`` (A particles first) at ``step`` from the start of
    production, with the time step in its log (see :func:`make_frame`)."""
    typeid = np.repeat(np.arange(2, dtype=np.uint32), [state.n_a, state.n_b])
    return make_frame(step, unwrapped, typeid, state.box_length, dt=dt)


def write_trajectory(path, steps, positions, typeid, box_length: float, *, dt: float | None = None,
                     velocities=None) -> Path:
    """Write unwrapped positions as a GSD trajectory following the contract (wrapped + image).

    Used by the tests and by anyone who wants to feed positions from another code into
    ``supercooled measure``. ``positions``: (n_frames, N, 3); ``typeid`` 0 = A, 1 = B.
    """
    import gsd.hoomd

    positions = np.asarray(positions, dtype=float)
    path = Path(path)
    with gsd.hoomd.open(str(path), "w") as trajectory:
        for i, step in enumerate(steps):
            velocity = None if velocities is None else velocities[i]
            trajectory.append(make_frame(step, positions[i], typeid, box_length, dt=dt,
                                         velocity=velocity))
    return path


def cut_trajectory(path: Path, n_frames: int) -> None:
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


# -- reading ------------------------------------------------------------------------------

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


def block_start_positions(path, block_steps: int, count: int) -> list[np.ndarray]:
    """Unwrapped positions of the last ``count`` frames at block starts (step % B == 0)."""
    import gsd.hoomd

    with gsd.hoomd.open(path, "r") as trajectory:
        picked = [f for f in trajectory if f.configuration.step % block_steps == 0]
        return [unwrapped_positions(f) for f in picked[-count:]]


def check_gsd_file(path) -> None:
    """Raise a one-line error unless ``path`` is a file that starts like a GSD file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such trajectory", str(path))
    with open(path, "rb") as handle:
        if handle.read(len(GSD_MAGIC)) != GSD_MAGIC:
            raise SupercooledError(f"{path} is not a GSD file")


def read_trajectory(path, *, progress: bool = False) -> Trajectory:
    """Read a GSD trajectory following the contract above into memory (unwrapped positions).

    A file that is not GSD, too few frames, a non-cubic box, other particle types, non-finite
    positions or steps that do not increase are one-line errors.
    """
    import gsd.hoomd

    path = Path(path)
    check_gsd_file(path)
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
    if not np.all(np.diff(steps) > 0):
        raise SupercooledError(f"{path}: frame steps do not increase strictly")
    kinetic = float(np.mean(temperatures)) if temperatures else None
    return Trajectory(steps, positions, typeid, box_length, dt, kinetic)


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
        from tqdm import tqdm  # text bar: tqdm.auto warns in notebooks without ipywidgets

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
    finite = np.isfinite(positions).all(axis=(1, 2))
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise SupercooledError(f"frame {first} (step {steps[first]}) has non-finite positions "
                               f"(NaN or infinity) in {int(np.sum(~finite))} frame(s): the "
                               "trajectory cannot be measured")
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
