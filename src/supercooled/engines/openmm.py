"""The OpenMM engine (PyPI ``openmm``; CPU here, CUDA and OpenCL where a GPU is present).

Units: OpenMM's nm, kJ/mol, amu and ps stand for sigma_AA, eps_AA, m and tau of the
conventions page (book/conventions.md): one OpenMM unit of each is one LJ unit, so
1 kJ/mol = 1 amu nm^2 / ps^2 makes tau = 1 ps, and k_B T is given directly in kJ/mol (no
Kelvin appears anywhere; the integrators below take kT, not a temperature in K).

The pair potential (the conventions page, "The mixture") is one ``CustomNonbondedForce``
(force group 0) with a per-pair table, not Lorentz–Berthelot mixing:

    V_ab(r) = step(r_c,ab - r) [4 eps_ab ((sigma_ab/r)^12 - (sigma_ab/r)^6) - V_ab(r_c,ab)],

r_c,ab = 2.5 sigma_ab (LJ) or 2^(1/6) sigma_ab (WCA), truncated and shifted to zero at the
cutoff (not shifted-force); the force's global cutoff is the largest r_c,ab and no long-range
correction or switching is applied, as in LAMMPS' ``pair_style lj/cut`` with ``pair_modify shift
yes``. Each particle carries its type t (0 = A, 1 = B); the pair's entry is looked up from
s = t_1 + t_2 (0 = AA, 1 = AB, 2 = BB) with nested ``select`` in the expression, a 3-entry
table (measured 2.6x faster on the CPU platform than a ``Discrete2DFunction`` of the same
values, 0.58 vs 0.22 M atom-steps/s at N = 1200, LJ rho = 1.2).

Pressure: P = (2 K + W) / (3 V) with K the total kinetic energy and W = sum over pairs of
r F_ab(r) = 24 eps_ab [2 (sigma_ab/r)^12 - (sigma_ab/r)^6] (r < r_c,ab), the virial that
LAMMPS reports; W is a second CustomNonbondedForce (group 1) that no integrator uses and that
is evaluated only when :meth:`OpenMMEngine.thermo` is called.

Protocol (:mod:`supercooled.md`), the LAMMPS engine's:

- set-up: the harmonic push-off V = k (sigma_ab - r)^2 (r < sigma_ab, k = 50) minimised, then
  V_ab minimised (``LocalEnergyMinimizer``, L-BFGS), then Maxwell–Boltzmann velocities
  rescaled to exactly T with 3N - 3 degrees of freedom and zero total momentum;
- NVT: a ``CustomIntegrator`` that repeats LAMMPS' ``fix nvt`` step for step: a Nose–Hoover
  chain of 3 thermostats (Martyna–Klein–Tuckerman), masses Q_1 = N_f kT / omega^2 and
  Q_i = kT / omega^2, omega = 1 / damping time, N_f = 3N - 3, the chain propagated for dt/2
  before and after a velocity-Verlet step (one loop, no Yoshida–Suzuki factorisation, as
  LAMMPS' defaults ``tchain 3 tloop 1``). OpenMM's own ``NoseHooverIntegrator`` is a
  leapfrog ("LF-middle") scheme with the chain in the middle of the drift and
  Yoshida–Suzuki sub-steps; it samples the same ensemble but is another algorithm, so the
  LAMMPS one is rebuilt here: from the same positions and velocities both engines then follow
  the same NVT trajectory to round-off (tests/test_openmm.py).
- NVE: velocity Verlet as a ``CustomIntegrator`` (v += dt f / 2m; x += dt v; v += dt f / 2m),
  LAMMPS' ``fix nve``; OpenMM's ``VerletIntegrator`` is leapfrog and keeps velocities half a
  step off the positions. Velocities are on-step, so K and T are those of the positions.

Positions in OpenMM are never wrapped, so the unwrapped positions are the context's.
Checkpoints are an ``.npz`` (positions, velocities, step, the three chain velocities) that
any platform can read, so a run begun on CUDA can be resumed on CPU. The step counter is the
context's step count, carried across the integrator changes (each needs a new Context).

Platforms: ``CPU`` (``threads`` worker threads, with deterministic force summation when
more than one; forces in single precision, positions and integration in double), ``CUDA`` and ``OpenCL``
(``Precision`` mixed: single-precision forces, double-precision integration), and
``Reference`` (double precision throughout, slow; the exact comparison with LAMMPS in the
tests). CUDA comes from ``pip install "openmm[cuda12]"``; OpenCL needs an OpenCL driver
(``libOpenCL.so.1``). Serial only (one process; no MPI).
"""

from __future__ import annotations

import os

import numpy as np

from supercooled.engines import Engine
from supercooled.errors import SupercooledError
from supercooled.systems import MASS, PAIRS, StatePoint

#: the platforms the command line offers; ``Reference`` is accepted too (tests, validation)
PLATFORMS = ("CPU", "CUDA", "OpenCL")
_ALL_PLATFORMS = (*PLATFORMS, "Reference")
DEFAULT_PLATFORM = "CPU"
#: stiffness k of the harmonic push-off V = k (sigma_ab - r)^2, as in the LAMMPS engine
_PUSH_OFF_STIFFNESS = 50.0
#: minimised U/N above which an overlap must have survived (see the LAMMPS engine)
_MAX_MINIMISED_ENERGY = 1.0e3
#: RMS force (eps_AA / sigma_AA) and iteration limits of the two minimisations
_PUSH_OFF_MINIMISATION = (1.0e-3, 1000)
_PAIR_MINIMISATION = (1.0e-3, 2000)
CHAIN_LENGTH = 3
_CHECKPOINT_FORMAT = 1


def import_openmm():
    """Import openmm or raise a one-line error that says how to get it."""
    try:
        import openmm
    except ImportError:
        raise SupercooledError("engine 'openmm' needs the 'openmm' package: "
                               "pip install openmm==8.6.1") from None
    return openmm


def _pair_table(state: StatePoint, value) -> str:
    """``select`` expression of the per-pair ``value(potential)`` indexed by s = t_1 + t_2."""
    potentials = state.potentials()
    aa, ab, bb = (repr(float(value(potentials[p]))) for p in PAIRS)
    return f"select(s, select(s - 1, {bb}, {ab}), {aa})"


def _table_definitions(state: StatePoint) -> str:
    return (f"eps = {_pair_table(state, lambda p: p.epsilon)}; "
            f"sig = {_pair_table(state, lambda p: p.sigma)}; "
            f"rc = {_pair_table(state, lambda p: p.cutoff)}; "
            f"shift = {_pair_table(state, lambda p: p.shift)}; s = type1 + type2")


def pair_energy_expression(state: StatePoint) -> str:
    """OpenMM expression of V_ab(r), truncated and shifted at r_c,ab (see the module docstring)."""
    return ("step(rc - r) * (4 * eps * (s6 * s6 - s6) - shift); s6 = (sig / r)^6; "
            + _table_definitions(state))


def pair_virial_expression(state: StatePoint) -> str:
    """OpenMM expression of r F_ab(r) = -r dV_ab/dr (the pair's virial), 0 beyond r_c,ab."""
    return ("step(rc - r) * 24 * eps * (2 * s6 * s6 - s6); s6 = (sig / r)^6; "
            + _table_definitions(state))


def _push_off_expression(state: StatePoint) -> str:
    return (f"step(sig - r) * {_PUSH_OFF_STIFFNESS!r} * (sig - r)^2; "
            f"sig = {_pair_table(state, lambda p: p.sigma)}; s = type1 + type2")


def velocity_verlet_integrator(openmm, dt: float):
    """NVE velocity Verlet on force group 0 (LAMMPS' ``fix nve``)."""
    integrator = openmm.CustomIntegrator(float(dt))
    _add_verlet_step(integrator)
    return integrator


def _add_verlet_step(integrator) -> None:
    integrator.addComputePerDof("v", "v + 0.5 * dt * f0 / m")
    integrator.addComputePerDof("x", "x + dt * v")
    integrator.addComputePerDof("v", "v + 0.5 * dt * f0 / m")


def _add_chain_half_step(integrator) -> None:
    """LAMMPS' FixNH::nhc_temp_integrate for a chain of 3, tloop = 1: advance the chain
    velocities ed_i by dt/2 and scale the particle velocities by exp(-ed_0 dt / 2).

    With 2K = sum m v^2 and G_0 = (2K - N_f kT) / Q_1, G_i = (Q_i ed_{i-1}^2 - kT) / Q_{i+1}:
    down the chain ed_i <- e_i (e_i ed_i + G_i dt/4), e_i = exp(-ed_{i+1} dt / 8), then the
    scaling, then up the chain with the G_i recomputed from the updated velocities.
    """
    add, glob = integrator.addComputeGlobal, "(kT / omega2)"
    integrator.addComputeSum("ke2", "m * v * v")
    add("edd0", "(ke2 - ndof * kT) / Q0")
    add("edd1", f"(Q0 * ed0 * ed0 - kT) / {glob}")
    add("edd2", "(ed1 * ed1 - omega2)")  # (Q ed1^2 - kT) / Q with Q = kT / omega^2
    add("ed2", "ed2 + edd2 * dt / 4")
    add("ed1", "exp(-dt * ed2 / 8) * (exp(-dt * ed2 / 8) * ed1 + edd1 * dt / 4)")
    add("ed0", "exp(-dt * ed1 / 8) * (exp(-dt * ed1 / 8) * ed0 + edd0 * dt / 4)")
    add("scale", "exp(-dt * ed0 / 2)")
    integrator.addComputePerDof("v", "v * scale")
    add("ke2", "ke2 * scale * scale")
    add("edd0", "(ke2 - ndof * kT) / Q0")
    add("ed0", "exp(-dt * ed1 / 8) * (exp(-dt * ed1 / 8) * ed0 + edd0 * dt / 4)")
    add("edd1", f"(Q0 * ed0 * ed0 - kT) / {glob}")
    add("ed1", "exp(-dt * ed2 / 8) * (exp(-dt * ed2 / 8) * ed1 + edd1 * dt / 4)")
    add("edd2", "(ed1 * ed1 - omega2)")
    add("ed2", "ed2 + edd2 * dt / 4")


def nose_hoover_integrator(openmm, dt: float, temperature: float, damping_time: float,
                           n_dof: int, chain=(0.0, 0.0, 0.0)):
    """NVT: LAMMPS' ``fix nvt temp T T damping_time`` (see the module docstring).

    ``chain`` holds the chain velocities ed_0, ed_1, ed_2 (1/tau) to continue from.
    """
    integrator = openmm.CustomIntegrator(float(dt))
    omega = 1.0 / float(damping_time)
    kT = float(temperature)  # k_B = 1 and energies in eps_AA (kJ/mol here)
    for name, value in (("kT", kT), ("ndof", float(n_dof)), ("omega2", omega * omega),
                        ("Q0", n_dof * kT / omega**2), ("ke2", 0.0), ("scale", 1.0),
                        ("edd0", 0.0), ("edd1", 0.0), ("edd2", 0.0)):
        integrator.addGlobalVariable(name, value)
    for i in range(CHAIN_LENGTH):
        integrator.addGlobalVariable(f"ed{i}", float(chain[i]))
    _add_chain_half_step(integrator)
    _add_verlet_step(integrator)
    _add_chain_half_step(integrator)
    return integrator


def _platform(openmm, name: str):
    key = {p.lower(): p for p in _ALL_PLATFORMS}.get(str(name).strip().lower())
    if key is None:
        raise SupercooledError(f"unknown OpenMM platform {name!r}: choose one of "
                               f"{', '.join(PLATFORMS)}")
    try:
        return openmm.Platform.getPlatformByName(key)
    except Exception:
        available = [openmm.Platform.getPlatform(i).getName()
                     for i in range(openmm.Platform.getNumPlatforms())]
        hint = {"CUDA": "pip install 'openmm[cuda12]==8.6.1' on a machine with an NVIDIA GPU",
                "OpenCL": "it needs an OpenCL driver (libOpenCL.so.1)"}.get(key, "")
        raise SupercooledError(f"OpenMM platform {key} is not available here (available: "
                               f"{', '.join(available)}){'; ' + hint if hint else ''}") from None


class OpenMMEngine(Engine):
    """Kob–Andersen mixture in OpenMM (cubic periodic box of side L, particle i = tag i + 1)."""

    name = "openmm"

    def __init__(self, state: StatePoint, *, dt: float, threads: int = 1,
                 platform: str | None = None):
        self.openmm = openmm = import_openmm()
        self.state = state
        self.dt = float(dt)
        self.platform = _platform(openmm, platform or DEFAULT_PLATFORM)
        self.platform_name = self.platform.getName()
        if self.platform_name == "CPU":
            # one thread sums forces in a fixed order; several need DeterministicForces
            # (7 % slower) for a seed to give one trajectory
            self.properties = {"Threads": str(int(threads))}
            if threads > 1:
                self.properties["DeterministicForces"] = "true"
        elif self.platform_name in ("CUDA", "OpenCL"):
            self.properties = {"Precision": "mixed"}
        else:
            self.properties = {}
        cutoff = max(p.cutoff for p in state.potentials().values())
        if 2.0 * cutoff > state.box_length:
            raise SupercooledError(
                f"engine 'openmm' needs a box side of at least 2 r_c = {2 * cutoff:.3g} sigma_AA "
                f"({state.interaction}); L = {state.box_length:.3g} at N = {state.n_particles}: "
                "use more particles or engine 'lammps'")
        self.n_dof = 3 * state.n_particles - 3
        self.system = self._system(
            [(pair_energy_expression(state), cutoff), (pair_virial_expression(state), cutoff)])
        self.context = None
        self.integrator = None
        self.kind = None
        self._positions = None
        self._velocities = None
        self._step = 0
        #: chain velocities read from a checkpoint, for the next use_thermostat
        self._chain = None

    @property
    def version(self) -> str:
        """OpenMM's version and the platform, e.g. ``8.6.1 CPU`` or ``8.6.1 CUDA mixed``."""
        precision = self.properties.get("Precision")
        return " ".join(filter(None, (self.openmm.__version__, self.platform_name, precision)))

    # -- building -----------------------------------------------------------------------
    def _system(self, forces):
        """A System of the N particles (mass m, A first) with one CustomNonbondedForce per
        (expression, cutoff), the i-th in force group i."""
        openmm, state = self.openmm, self.state
        system = openmm.System()
        length = state.box_length
        system.setDefaultPeriodicBoxVectors(openmm.Vec3(length, 0, 0), openmm.Vec3(0, length, 0),
                                            openmm.Vec3(0, 0, length))
        for _ in range(state.n_particles):
            system.addParticle(MASS)
        for group, (expression, cutoff) in enumerate(forces):
            force = openmm.CustomNonbondedForce(expression)
            force.addPerParticleParameter("type")
            force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
            force.setCutoffDistance(float(cutoff))
            force.setUseLongRangeCorrection(False)
            force.setUseSwitchingFunction(False)
            force.setForceGroup(group)
            for i in range(state.n_particles):
                force.addParticle([0.0 if i < state.n_a else 1.0])
            system.addForce(force)
        return system

    def _new_context(self, system, integrator):
        return self.openmm.Context(system, integrator, self.platform, self.properties)

    def _minimise(self, positions, expression, cutoff, limits) -> tuple[np.ndarray, float]:
        """Minimise one pair expression from ``positions``: (positions, U/N)."""
        system = self._system([(expression, cutoff)])
        context = self._new_context(system, self.openmm.VerletIntegrator(self.dt))
        context.setPositions(positions)
        self.openmm.LocalEnergyMinimizer.minimize(context, *limits)
        state = context.getState(positions=True, energy=True)
        energy = state.getPotentialEnergy().value_in_unit(self.openmm.unit.kilojoule_per_mole)
        x = state.getPositions(asNumpy=True).value_in_unit(self.openmm.unit.nanometer)
        del context
        return np.array(x, dtype=np.float64), energy / self.state.n_particles

    def create(self, positions: np.ndarray, velocity_seed: int) -> None:
        state = self.state
        length = state.box_length
        x = np.asarray(positions, dtype=np.float64) % length
        sigma_max = max(p.sigma for p in state.potentials().values())
        x, _ = self._minimise(x, _push_off_expression(state), sigma_max, _PUSH_OFF_MINIMISATION)
        cutoff = max(p.cutoff for p in state.potentials().values())
        x, energy = self._minimise(x, pair_energy_expression(state), cutoff, _PAIR_MINIMISATION)
        if not np.isfinite(energy) or energy > _MAX_MINIMISED_ENERGY:
            raise SupercooledError(f"energy minimisation left overlapping particles "
                                   f"(U/N = {energy:.3g} eps_AA); try another seed")
        rng = np.random.default_rng(int(velocity_seed))
        v = rng.normal(size=(state.n_particles, 3))
        v -= v.mean(axis=0)
        v *= np.sqrt(self.n_dof * state.temperature / (MASS * np.sum(v * v)))
        self._install(x, v, 0, None)

    def _install(self, positions, velocities, step, chain) -> None:
        """Hold a configuration and start from it with the NVE integrator."""
        self._positions, self._velocities, self._step = positions, velocities, int(step)
        self._chain = chain
        self._use(velocity_verlet_integrator(self.openmm, self.dt), "nve")

    def set_configuration(self, positions: np.ndarray, velocities: np.ndarray | None = None,
                          step: int = 0) -> None:
        """Take exact positions (unwrapped, N x 3) and velocities (default zero), no
        minimisation; the integrator in use (NVE if none) continues from them."""
        velocities = np.zeros_like(positions) if velocities is None else velocities
        self._positions = np.asarray(positions, dtype=np.float64)
        self._velocities = np.asarray(velocities, dtype=np.float64)
        self._step = int(step)
        if self.context is None:
            self._use(velocity_verlet_integrator(self.openmm, self.dt), "nve")
        else:
            self._load_into_context()

    def _sync(self) -> None:
        """Copy the context's positions, velocities and step into this object."""
        if self.context is None:
            return
        state = self.context.getState(positions=True, velocities=True)
        unit = self.openmm.unit
        self._positions = np.array(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
        self._velocities = np.array(
            state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond))
        self._step = int(self.context.getStepCount())

    def _load_into_context(self) -> None:
        self.context.setPositions(self._positions)
        self.context.setVelocities(self._velocities)
        self.context.setStepCount(self._step)

    def _use(self, integrator, kind: str) -> None:
        """Continue from the held configuration with ``integrator`` (a new Context)."""
        integrator.setIntegrationForceGroups({0})
        old = self.context
        self.context, self.integrator, self.kind = self._new_context(self.system, integrator), \
            integrator, kind
        del old
        self._load_into_context()

    def restore(self, path: str) -> None:
        with np.load(path) as data:
            if int(data["n_particles"]) != self.state.n_particles:
                raise SupercooledError(f"checkpoint {path} holds {int(data['n_particles'])} "
                                       f"particles, the run has {self.state.n_particles}")
            chain = tuple(float(c) for c in data["chain"]) if data["chain"].size else None
            self._install(np.array(data["positions"]), np.array(data["velocities"]),
                          int(data["step"]), chain)

    def checkpoint(self, path: str) -> None:
        self._sync()
        chain = self._chain_velocities() if self.kind == "nvt" else ()
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as handle:
            np.savez(handle, format=_CHECKPOINT_FORMAT, n_particles=self.state.n_particles,
                     dt=self.dt, step=self._step, positions=self._positions,
                     velocities=self._velocities, chain=np.asarray(chain, dtype=np.float64))
        os.replace(tmp, path)

    def _chain_velocities(self) -> tuple[float, ...]:
        return tuple(self.integrator.getGlobalVariableByName(f"ed{i}")
                     for i in range(CHAIN_LENGTH))

    # -- integration --------------------------------------------------------------------
    def use_thermostat(self, temperature: float, damping_time: float) -> None:
        # the chain continues from a checkpoint taken during NVT, as LAMMPS' fix nvt does
        chain = self._chain if self._chain is not None else (0.0,) * CHAIN_LENGTH
        self._chain = None
        self._sync()
        self._use(nose_hoover_integrator(self.openmm, self.dt, temperature, damping_time,
                                         self.n_dof, chain), "nvt")

    def use_nve(self) -> None:
        self._chain = None
        self._sync()
        self._use(velocity_verlet_integrator(self.openmm, self.dt), "nve")

    def scale_velocities(self, factor: float) -> None:
        self._sync()
        self._velocities = self._velocities * float(factor)
        self.context.setVelocities(self._velocities)

    def advance(self, n_steps: int) -> None:
        if n_steps > 0:
            self.integrator.step(int(n_steps))

    @property
    def step(self) -> int:
        return int(self.context.getStepCount()) if self.context is not None else self._step

    def thermo(self) -> dict[str, float]:
        unit = self.openmm.unit
        n = self.state.n_particles
        # the virial (group 1) first, then U with forces of group 0: the integrator's forces
        # are then current again and the next step does not recompute them
        virial = self.context.getState(energy=True, groups={1}).getPotentialEnergy()
        state = self.context.getState(energy=True, forces=True, velocities=True, groups={0})
        potential = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        v = state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
        kinetic2 = float(MASS * np.sum(np.square(v)))  # 2 K
        w = virial.value_in_unit(unit.kilojoule_per_mole)
        return {"temperature": kinetic2 / self.n_dof, "potential_energy": potential / n,
                "kinetic_energy": 0.5 * kinetic2 / n,
                "total_energy": (potential + 0.5 * kinetic2) / n,
                "pressure": (kinetic2 + w) / (3.0 * self.state.box_length**3)}

    def forces(self) -> np.ndarray:
        """Forces F_i = -grad_i U (N x 3, eps_AA / sigma_AA) of the current configuration."""
        unit = self.openmm.unit
        state = self.context.getState(forces=True, groups={0})
        return np.array(state.getForces(asNumpy=True).value_in_unit(
            unit.kilojoule_per_mole / unit.nanometer), dtype=np.float64)

    def unwrapped_positions(self) -> np.ndarray:
        state = self.context.getState(positions=True)
        return np.array(state.getPositions(asNumpy=True).value_in_unit(self.openmm.unit.nanometer),
                        dtype=np.float64)

    def close(self) -> None:
        self.context = None
        self.integrator = None


def make(state: StatePoint, *, dt: float, threads: int = 1,
         platform: str | None = None) -> OpenMMEngine:
    return OpenMMEngine(state, dt=dt, threads=threads, platform=platform)
