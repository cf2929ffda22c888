"""The MD time step in reduced (isomorph) units, and the drift study that chose it.

At density rho and temperature T the natural time unit of the mixture is
t_0 = rho^(-1/3) (m / T)^(1/2): the time a particle at thermal speed (T/m)^(1/2) needs to
cross the mean spacing rho^(-1/3). The time step is a fixed fraction of it,

    dt = min(dt_reduced * rho^(-1/3) (m / T)^(1/2), dt_max),

so every state of an interaction is integrated with the same number of steps per collision
(the conventions page, book/conventions.md, section "Protocol and time step"). The cap keeps cold, low-density
states (where t_0 grows) from steps at which the r^-12 wall is crossed in a few steps.

Velocity Verlet's energy error per unit time grows about as dt^3 (halving dt cut the drift
rate of LJ rho = 1.6, T = 1.9 by about 8), so the reduced step is chosen from
:func:`drift_study`: NVE runs of the LJ mixture at three densities near the coldest states of
the library, the relative drift per 1000 tau of each against dt_reduced.
"""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.systems import MASS, StatePoint

#: reduced step dt rho^(1/3) (T/m)^(1/2) of the runs made after 2026-12-02 (rule "reduced"),
#: per interaction, chosen from the drift study committed in data/results/drift_study.csv
#: (relative drift per 1000 tau at LJ rho = 1.2, T = 0.5: 8e-6, 8e-5, 2e-4 at dt~ = 0.002,
#: 0.003, 0.0045; WCA rho = 1.2, T = 0.35: 1.7e-4, 1.1e-3, 4.6e-3: WCA, whose energy has no
#: attractive part and so a small |E|, needs about half the LJ step for the same relative drift)
DT_REDUCED = {"LJ": 0.0030, "WCA": 0.0015}
#: cap on dt (tau): at T -> 0 the reduced rule would let dt grow without bound
DT_MAX = 0.005


def reduced_timestep(state: StatePoint, dt_reduced: float | None = None,
                     dt_max: float = DT_MAX) -> float:
    """dt = min(dt_reduced rho^(-1/3) (m/T)^(1/2), dt_max), rounded to 3 significant digits;
    ``dt_reduced`` defaults to the interaction's :data:`DT_REDUCED`."""
    if dt_reduced is None:
        dt_reduced = DT_REDUCED[state.interaction]
    if not (dt_reduced > 0 and math.isfinite(dt_reduced)):
        raise SupercooledError(f"dt_reduced must be a positive number, got {dt_reduced!r}")
    unit = state.density ** (-1.0 / 3.0) * math.sqrt(MASS / state.temperature)
    return float(f"{min(dt_reduced * unit, dt_max):.3g}")


def legacy_timestep(state: StatePoint) -> float:
    """The rule that made the library's states run before 2026-12-02 (rule "legacy"):

        dt = 0.005 tau * min(1, sqrt(2 / T)) * min(1, (1.2 / rho)^(1/3)),

    rounded to 3 digits. It scales with T only above T = 2, so cold dense states ran at a
    reduced step (:func:`reduced_step`) of up to 0.0075 against 0.0032-0.0037 at rho = 1.2.
    Kept to say which rule made each library file (:func:`timestep_rule`).
    """
    scale = min(1.0, math.sqrt(2.0 / state.temperature)) * min(1.0, (1.2 / state.density) ** (1 / 3))
    return float(f"{0.005 * scale:.3g}")


def timestep_rule(dt: float, state: StatePoint) -> str:
    """Which rule gives ``dt`` at ``state`` (its target temperature): "reduced", "legacy",
    "legacy = reduced" where both give the same step (cold states at the 0.005 cap), or
    "given" if neither does (a time step set by hand)."""
    names = [name for name, rule in (("legacy", legacy_timestep), ("reduced", reduced_timestep))
             if math.isclose(dt, rule(state), rel_tol=1e-6)]
    return " = ".join(names) or "given"


def reduced_step(dt: float, density: float, temperature: float) -> float:
    """The reduced step dt rho^(1/3) (T/m)^(1/2) of a run made with time step ``dt``."""
    return dt * density ** (1.0 / 3.0) * math.sqrt(temperature / MASS)


def drift_rates(thermo_csv) -> dict:
    """NVE drift of a run's ``thermo.csv`` (production rows) per 1000 tau, two ways.

    With b the least-squares slope of the total energy per particle E(t) (a slope, not an
    end-to-end difference, because E fluctuates at every step by more than it drifts over a
    short run): ``relative`` = |b| 1000 / |<E>| (the library's measure, inflated where |E| is
    small, e.g. WCA, whose energy has no attractive part) and ``thermal`` = |b| 1000 / <T>, the
    drift in units of k_B T per particle, which is what changes the temperature of the run.
    """
    times, energies, temperatures = [], [], []
    with open(thermo_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["phase"] == "production":
                times.append(float(row["time"]))
                energies.append(float(row["total_energy"]))
                temperatures.append(float(row["temperature"]))
    if len(times) < 3:
        raise SupercooledError(f"{thermo_csv}: fewer than 3 production rows")
    slope = abs(np.polyfit(times, energies, 1)[0])
    return {"relative": float(slope * 1000.0 / abs(np.mean(energies))),
            "thermal": float(slope * 1000.0 / np.mean(temperatures))}


def drift_study(states: list[StatePoint], dt_reduced_values: list[float], *,
                equilibration_time: float = 20.0, production_time: float = 300.0,
                seed: int = 1, progress: bool = True) -> list[dict]:
    """NVE drift per 1000 tau of each state at each reduced step (one run each, same seed).

    Every run equilibrates with the thermostat for ``equilibration_time`` and then produces
    for ``production_time`` in NVE at dt = dt_reduced rho^(-1/3) (m/T)^(1/2) (no cap: the
    study is what sets it). Returns one row per run: interaction, density, temperature
    (target), dt_reduced, dt, drift_per_1000tau (relative), thermal_drift_per_1000tau (in k_B T
    per particle, see :func:`drift_rates`), production_time.
    """
    from supercooled.md import simulate  # MD is heavy to import; the rule above is not

    rows = []
    for state in states:
        for dt_reduced in dt_reduced_values:
            dt = reduced_timestep(state, dt_reduced, dt_max=math.inf)
            with tempfile.TemporaryDirectory(prefix="drift-") as scratch:
                result = simulate(state, Path(scratch) / "run", dt=dt, seed=seed,
                                  equilibration_time=equilibration_time,
                                  production_time=production_time, progress=progress)
                drift = drift_rates(result.thermo)
            rows.append({"interaction": state.interaction, "density": state.density,
                         "temperature": state.temperature, "dt_reduced": dt_reduced,
                         "dt": dt, "drift_per_1000tau": drift["relative"],
                         "thermal_drift_per_1000tau": drift["thermal"],
                         "production_time": production_time})
    return rows
