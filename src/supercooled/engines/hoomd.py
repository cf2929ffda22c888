"""The HOOMD-blue engine (optional; HOOMD-blue >= 4, conda-forge only, CPU or GPU).

HOOMD-blue is not on PyPI, so this engine is imported only when ``engine="hoomd"`` is asked
for, and it was written from HOOMD-blue's documented v4 Python API (``hoomd.Simulation``,
``hoomd.md.Integrator``, ``hoomd.md.methods.ConstantVolume`` with the ``MTTK`` Nose-Hoover
thermostat, ``hoomd.md.pair.LJ`` with ``mode="shift"``, ``hoomd.md.minimize.FIRE``,
``hoomd.md.compute.ThermodynamicQuantities``, ``hoomd.write.GSD.write``); it is exercised by
tests/test_md.py wherever hoomd is installed (those tests are skipped elsewhere).

The protocol is the LAMMPS engine's: soft push-off (DPD conservative force, finite at r = 0)
minimised with FIRE, then the LJ/WCA minimisation, Maxwell–Boltzmann momenta with zero total
momentum, Nose–Hoover NVT, NVE. Checkpoints are a GSD file of the full state plus a JSON file
with the thermostat's degrees of freedom (HOOMD does not store them in the state).
Only serial and single-GPU runs are supported (MPI would need mpi4py to gather positions).
"""

from __future__ import annotations

import json
import os

import numpy as np

from supercooled.engines import Engine
from supercooled.errors import SupercooledError
from supercooled.systems import PAIRS, SPECIES, StatePoint

_PUSH_OFF_A = 50.0
_FIRE_STEPS = 200
_FIRE_MAX_ROUNDS = 100


def import_hoomd():
    """Import hoomd (>= 4) or raise a one-line error that says how to get it."""
    try:
        import hoomd
    except ImportError:
        raise SupercooledError(
            "engine 'hoomd' needs HOOMD-blue >= 4, which is not on PyPI: install it with "
            "'conda install -c conda-forge hoomd' or use engine 'lammps'") from None
    major = int(str(hoomd.version.version).split(".")[0])
    if major < 4:
        raise SupercooledError(f"engine 'hoomd' needs HOOMD-blue >= 4, found {hoomd.version.version}")
    return hoomd


class HoomdEngine(Engine):
    name = "hoomd"

    def __init__(self, state: StatePoint, *, dt: float, threads: int = 1):
        self.hoomd = hoomd = import_hoomd()
        self.state = state
        self.dt = float(dt)
        try:
            device = hoomd.device.CPU(num_cpu_threads=int(threads)) if threads > 1 else \
                hoomd.device.auto_select()
        except TypeError:  # a build without TBB threads
            device = hoomd.device.auto_select()
        self.device = device
        self.rank = int(device.communicator.rank)
        self.n_ranks = int(device.communicator.num_ranks)
        if self.n_ranks > 1:
            raise SupercooledError("engine 'hoomd' runs on one rank (CPU threads or one GPU); "
                                   "use engine 'lammps' with mpirun")
        self.sim = None
        self.thermostat = None
        self.thermo_compute = None
        self._step0 = 0
        #: the thermostat's state read from a checkpoint, for the next use_thermostat
        self._thermostat_dof = None

    @property
    def version(self) -> str:
        return str(self.hoomd.version.version)

    # -- building -----------------------------------------------------------------------
    def _new_simulation(self, seed: int):
        self.sim = self.hoomd.Simulation(device=self.device, seed=int(seed) % 65536)

    def _lj(self):
        hoomd = self.hoomd
        pair = hoomd.md.pair.LJ(nlist=hoomd.md.nlist.Cell(buffer=0.3), mode="shift")
        for name, p in self.state.potentials().items():
            key = (name[0], name[1])
            pair.params[key] = {"epsilon": p.epsilon, "sigma": p.sigma}
            pair.r_cut[key] = p.cutoff
        return pair

    def _push_off(self):
        hoomd = self.hoomd
        pair = hoomd.md.pair.DPDConservative(nlist=hoomd.md.nlist.Cell(buffer=0.3))
        for name in PAIRS:
            key = (name[0], name[1])
            pair.params[key] = {"A": _PUSH_OFF_A}
            pair.r_cut[key] = self.state.potentials()[name].sigma
        return pair

    def _minimise(self, force) -> None:
        hoomd = self.hoomd
        fire = hoomd.md.minimize.FIRE(dt=0.005, force_tol=1e-3, angmom_tol=1.0,
                                      energy_tol=1e-8, forces=[force],
                                      methods=[hoomd.md.methods.ConstantVolume(
                                          filter=hoomd.filter.All())])
        self.sim.operations.integrator = fire
        for _ in range(_FIRE_MAX_ROUNDS):
            self.sim.run(_FIRE_STEPS)
            if fire.converged:
                break
        self.sim.operations.integrator = None

    def create(self, positions: np.ndarray, velocity_seed: int) -> None:
        hoomd, state = self.hoomd, self.state
        self._new_simulation(velocity_seed)
        snapshot = hoomd.Snapshot(self.device.communicator)
        if snapshot.communicator.rank == 0:
            length, half = state.box_length, state.box_length / 2.0
            snapshot.configuration.box = [length, length, length, 0, 0, 0]
            snapshot.particles.N = state.n_particles
            snapshot.particles.types = list(SPECIES)
            snapshot.particles.typeid[:] = np.repeat([0, 1], [state.n_a, state.n_b])
            snapshot.particles.position[:] = (positions + half) % length - half
            snapshot.particles.mass[:] = 1.0
        self.sim.create_state_from_snapshot(snapshot)
        self._minimise(self._push_off())
        self._minimise(self._lj())
        self.sim.state.thermalize_particle_momenta(filter=hoomd.filter.All(),
                                                   kT=state.temperature)
        # HOOMD cannot reset its step counter once the state exists: count from here
        self._step0 = int(self.sim.timestep)

    def restore(self, path: str) -> None:
        with open(f"{path}.json") as handle:
            extra = json.load(handle)
        self._new_simulation(extra["seed"])
        self.sim.create_state_from_gsd(filename=path)
        self._step0 = int(extra["step0"])
        self._thermostat_dof = tuple(extra["thermostat_dof"]) if extra["thermostat_dof"] else None

    def checkpoint(self, path: str) -> None:
        hoomd = self.hoomd
        tmp = f"{path}.tmp"
        hoomd.write.GSD.write(state=self.sim.state, filename=tmp, mode="wb")
        dof = list(self.thermostat.translational_thermostat_dof) if self.thermostat else None
        with open(f"{path}.json.tmp", "w") as handle:
            json.dump({"seed": self.sim.seed, "thermostat_dof": dof, "step0": self._step0},
                      handle)
        os.replace(tmp, path)
        os.replace(f"{path}.json.tmp", f"{path}.json")

    # -- integration --------------------------------------------------------------------
    def _integrate(self, thermostat) -> None:
        hoomd = self.hoomd
        method = hoomd.md.methods.ConstantVolume(filter=hoomd.filter.All(), thermostat=thermostat)
        self.sim.operations.integrator = hoomd.md.Integrator(dt=self.dt, methods=[method],
                                                             forces=[self._lj()])
        if self.thermo_compute is None:
            self.thermo_compute = hoomd.md.compute.ThermodynamicQuantities(filter=hoomd.filter.All())
            self.sim.operations.computes.append(self.thermo_compute)
        self.thermostat = thermostat
        self.sim.run(0)

    def use_thermostat(self, temperature: float, damping_time: float) -> None:
        thermostat = self.hoomd.md.methods.thermostats.MTTK(kT=temperature, tau=damping_time)
        if self._thermostat_dof is not None:
            thermostat.translational_thermostat_dof = self._thermostat_dof
        self._integrate(thermostat)

    def use_nve(self) -> None:
        self._integrate(None)

    def scale_velocities(self, factor: float) -> None:
        # the local snapshot holds this rank's particles (all of them in a serial run)
        with self.sim.state.cpu_local_snapshot as snapshot:
            snapshot.particles.velocity[:] *= float(factor)

    def advance(self, n_steps: int) -> None:
        if n_steps > 0:
            self.sim.run(int(n_steps))

    @property
    def step(self) -> int:
        return int(self.sim.timestep) - self._step0

    def thermo(self) -> dict[str, float]:
        q, n = self.thermo_compute, self.state.n_particles
        kinetic, potential = float(q.kinetic_energy) / n, float(q.potential_energy) / n
        return {"temperature": float(q.kinetic_temperature), "potential_energy": potential,
                "kinetic_energy": kinetic, "total_energy": potential + kinetic,
                "pressure": float(q.pressure)}

    def unwrapped_positions(self) -> np.ndarray:
        snapshot = self.sim.state.get_snapshot()
        length = self.state.box_length
        # HOOMD snapshots are ordered by tag, like our A-first convention
        return snapshot.particles.position.astype(np.float64) + snapshot.particles.image * length

    def close(self) -> None:
        self.sim = None


def make(state: StatePoint, *, dt: float, threads: int = 1) -> HoomdEngine:
    return HoomdEngine(state, dt=dt, threads=threads)
