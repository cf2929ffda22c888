"""The energy of an NVE production: how it starts from the thermostatted equilibration
(:func:`velocity_scale`), and how much it drifts over the run (:func:`energy_drift`).

A thermostatted (NVT) run samples the canonical ensemble: its total energy per particle E
fluctuates, with relative standard deviation about (c_V / N)^(1/2) T / |E|. An NVE run that
continues from the thermostat's last velocities keeps the energy of that one instant, so its
mean kinetic temperature misses the target by about (k_B / (N c_V))^(1/2), a few per cent at
N ~ 1000 ("as-thermostatted", :data:`LEGACY_NVE_START`: every run started before
2026-12-03 15:52 UTC, whose settings have no ``nve_start`` key).

The "energy-matched" start (:data:`NVE_START`, the default) scales all velocities once, at the
switch, by f = ((E* - U) / K)^(1/2) (U, K: potential and kinetic energy per particle at the
switch), so that the NVE run has E = E*, the thermostatted run's energy: the least-squares line
through E(step) over the equilibration's second half, at its end (its mean if the run has
equilibrated; the line also follows a run still relaxing).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

NVE_START = "energy-matched"
LEGACY_NVE_START = "as-thermostatted"
NVE_STARTS = (NVE_START, LEGACY_NVE_START)
#: a factor f^2 outside this range is not applied: the equilibration's energy is then no
#: estimate of this state's (far from equilibrium, or too short)
KINETIC_RANGE = (0.5, 2.0)


def velocity_scale(equilibration_rows, n_eq: int, potential: float, kinetic: float,
                   where: str = "run") -> float:
    """The factor f of the energy-matched start, or NaN where it cannot be applied.

    ``equilibration_rows``: (step, E) of the equilibration log, steps counted from the switch
    (-n_eq ... 0); ``potential``, ``kinetic``: U and K per particle at the switch. NaN with
    fewer than 3 rows in the second half (no equilibration to speak of) and, with a warning
    naming ``where``, when f^2 falls outside :data:`KINETIC_RANGE`.
    """
    import numpy as np  # here, not at the top: the CLI imports this module's names at start-up

    rows = np.array([(step, e) for step, e in equilibration_rows if step >= -n_eq / 2],
                    dtype=float).reshape(-1, 2)
    if len(rows) < 3:
        return math.nan
    _, target = np.polyfit(rows[:, 0], rows[:, 1], 1)  # the line's value at step 0
    ratio = (float(target) - potential) / kinetic
    low, high = KINETIC_RANGE
    if not low <= ratio <= high:
        warnings.warn(f"{where}: the energy-matched NVE start would scale the kinetic energy "
                      f"by {ratio:.3g} (outside {low}-{high}): the equilibration is too short "
                      "or far from equilibrium; NVE starts from the thermostat's velocities "
                      "(nve_velocity_scale NaN)", stacklevel=3)
        return math.nan
    return math.sqrt(ratio)


def energy_drift(time_values: np.ndarray, total_energy: np.ndarray, *,
                 relative: bool = True) -> float:
    """|b| (t_end - t_start) / |<E>|, b the least-squares slope of E(t) (per particle).

    A linear fit rather than |E_end - E_start| because E fluctuates at every step (the
    velocity-Verlet error, ~dt^2) by more than it drifts. With ``relative=False`` the drift
    |b| (t_end - t_start) in eps_AA per particle (the relative value is inflated where the
    total energy happens to be close to zero, e.g. LJ near T ~ 2.5 at rho = 1.2).
    """
    import numpy as np

    time_values = np.asarray(time_values, dtype=float)
    total_energy = np.asarray(total_energy, dtype=float)
    if len(time_values) < 2:
        return 0.0
    slope = np.polyfit(time_values, total_energy, 1)[0]
    drift = abs(slope) * (time_values[-1] - time_values[0])
    return float(drift / abs(np.mean(total_energy)) if relative else drift)
