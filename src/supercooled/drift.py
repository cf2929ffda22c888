"""NVE energy drift of a run, and the time-step study that chose the reduced time step.

:func:`drift_study` runs NVE at each state for each reduced step dt~ (dt = dt~ rho^(-1/3)
(m/T)^(1/2), :func:`supercooled.timestep.reduced_timestep`) and measures the drift of each
run with :func:`drift_rates`; chapter 2 shows the result (``data/results/drift_study.csv``)
and :data:`supercooled.timestep.DT_REDUCED` is chosen from it.
"""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.md import simulate
from supercooled.systems import StatePoint
from supercooled.timestep import reduced_timestep


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
