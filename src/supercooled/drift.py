"""NVE energy drift of a run, and the time-step study that chose the reduced time step.

:func:`drift_run` runs NVE at one state, reduced step dt~ and seed (dt = dt~ rho^(-1/3)
(m/T)^(1/2), :func:`supercooled.timestep.reduced_timestep`) and measures its drift with
:func:`drift_rates`; :func:`extend_study` (the ``supercooled drift-study`` command) adds the
runs a study table lacks, one at a time. Chapter 2 shows the result
(``data/results/drift_study.csv``) and :data:`supercooled.timestep.DT_REDUCED` is chosen
from it.
"""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

import numpy as np

from supercooled.atomic import replacing
from supercooled.errors import SupercooledError
from supercooled.md import simulate
from supercooled.systems import StatePoint
from supercooled.timestep import reduced_timestep

#: columns of a drift-study table (``data/results/drift_study.csv``), in order
COLUMNS = ("interaction", "density", "temperature", "dt_reduced", "dt", "seed",
           "drift_per_1000tau", "signed_drift_per_1000tau", "thermal_drift_per_1000tau",
           "production_time")
#: the columns that name one run of a study (a row with the same values is not run again)
RUN_KEY = ("interaction", "density", "temperature", "dt_reduced", "seed", "production_time")


def drift_rates(thermo_csv) -> dict:
    """NVE drift of a run's ``thermo.csv`` (production rows) per 1000 tau, three ways.

    With b the least-squares slope of the total energy per particle E(t) (a slope, not an
    end-to-end difference, because E fluctuates at every step by more than it drifts over a
    short run): ``relative`` = |b| 1000 / |<E>| (the library's measure, inflated where |E| is
    small, e.g. WCA, whose energy has no attractive part), ``signed`` = b 1000 / |<E>| (its
    sign says whether E grew or fell: a steady integration error has one sign at every seed, a
    random walk either) and ``thermal`` = |b| 1000 / <T>, the drift in units of k_B T per
    particle, which is what changes the temperature of the run.
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
    slope = float(np.polyfit(times, energies, 1)[0])
    signed = slope * 1000.0 / abs(np.mean(energies))
    return {"relative": abs(signed), "signed": signed,
            "thermal": abs(slope) * 1000.0 / float(np.mean(temperatures))}


def drift_run(state: StatePoint, dt_reduced: float, seed: int, *,
              equilibration_time: float = 20.0, production_time: float = 300.0,
              progress: bool = True) -> dict:
    """One run of the study: ``equilibration_time`` with the thermostat, then
    ``production_time`` of NVE at dt = dt_reduced rho^(-1/3) (m/T)^(1/2) (no cap: the study
    is what sets it), in a temporary folder. Returns its row (:data:`COLUMNS`)."""
    dt = reduced_timestep(state, dt_reduced, dt_max=math.inf)
    with tempfile.TemporaryDirectory(prefix="drift-") as scratch:
        result = simulate(state, Path(scratch) / "run", dt=dt, seed=seed,
                          equilibration_time=equilibration_time,
                          production_time=production_time, progress=progress)
        drift = drift_rates(result.thermo)
    return {"interaction": state.interaction, "density": state.density,
            "temperature": state.temperature, "dt_reduced": dt_reduced, "dt": dt,
            "seed": seed, "drift_per_1000tau": drift["relative"],
            "signed_drift_per_1000tau": drift["signed"],
            "thermal_drift_per_1000tau": drift["thermal"],
            "production_time": production_time}


def read_study(path) -> list[dict]:
    """The rows of a drift-study CSV (numbers as floats, seed as int; an empty
    ``signed_drift_per_1000tau`` of an old row, made before the sign was kept, is NaN)."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            missing = set(COLUMNS) - set(row)
            if missing:
                raise SupercooledError(f"{path}: not a drift study (no {sorted(missing)})")
            parsed = {name: float(row[name]) if row[name] != "" else math.nan
                      for name in COLUMNS if name != "interaction"}
            parsed["seed"] = int(parsed["seed"])
            rows.append({"interaction": row["interaction"], **parsed})
    return rows


def _key(row: dict) -> tuple:
    return tuple(row[name] if name == "interaction" else round(float(row[name]), 9)
                 for name in RUN_KEY)


def _write_study(path: Path, rows: list[dict]) -> None:
    """Write the table atomically: a killed study leaves the previous complete table."""
    with replacing(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({name: ("" if isinstance(row[name], float) and math.isnan(row[name])
                                 else row[name]) for name in COLUMNS} for row in rows)


def extend_study(path, states: list[StatePoint], dt_reduced_values: list[float], *,
                 seeds=(1,), equilibration_time: float = 20.0, production_time: float = 300.0,
                 progress: bool = True) -> list[dict]:
    """Add the runs of ``states`` x ``dt_reduced_values`` x ``seeds`` that ``path`` lacks.

    Resumable: a run whose :data:`RUN_KEY` is in the table already is skipped, and the table
    is rewritten (atomically) after every run, so a killed study loses only its current run.
    Returns the whole table.
    """
    path = Path(path)
    if not path.parent.is_dir():  # found now, not after the first run
        raise SupercooledError(f"{path}: folder {path.parent} does not exist")
    rows = read_study(path) if path.is_file() else []
    done = {_key(row) for row in rows}
    for state in states:
        for dt_reduced in dt_reduced_values:
            for seed in seeds:
                key = _key({"interaction": state.interaction, "density": state.density,
                            "temperature": state.temperature, "dt_reduced": dt_reduced,
                            "seed": seed, "production_time": production_time})
                if key in done:
                    continue
                rows.append(drift_run(state, dt_reduced, seed,
                                      equilibration_time=equilibration_time,
                                      production_time=production_time, progress=progress))
                _write_study(path, rows)
                done.add(key)
    return rows
