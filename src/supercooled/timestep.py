"""The MD time step in reduced (isomorph) units, and the drift study that chose it.

At density rho and temperature T the natural time unit of the mixture is
t_0 = rho^(-1/3) (m / T)^(1/2): the time a particle at thermal speed (T/m)^(1/2) needs to
cross the mean spacing rho^(-1/3). The time step is a fixed fraction of it,

    dt = min(dt_reduced * rho^(-1/3) (m / T)^(1/2), dt_max),

so every state of an interaction is integrated with the same number of steps per collision
(the conventions page, book/conventions.md, section "Protocol and time step"). The cap keeps cold, low-density
states (where t_0 grows) from steps at which the r^-12 wall is crossed in a few steps.

Velocity Verlet's energy error per unit time grows steeply with dt (halving dt cut the drift
rate of LJ rho = 1.6, T = 1.9 by about 8), so the reduced step is chosen from the drift study
of :mod:`supercooled.drift`: NVE runs near the coldest states of the library, the relative
drift per 1000 tau of each against dt_reduced.
"""

from __future__ import annotations

import math

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
