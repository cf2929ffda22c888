"""The run-length policy of a campaign: pure functions of the settings and what is measured.

Run lengths follow each state's own relaxation. Within a series the states run from hot to cold;
before a state starts, its alpha-relaxation time is estimated from the warmer states of the same
series already measured (linear extrapolation of ln tau_alpha in 1/T through the two coldest
finished states, :func:`estimate_tau_alpha`) and multiplied by ``tau_estimate_safety`` (default
1.5, because the local Arrhenius extrapolation underestimates the super-Arrhenius growth and a
too-short run has to be redone), and the run equilibrates for ``equilibration_tau_alpha``
(default 20) and produces for ``production_tau_alpha`` (default 20) times that estimate, within
the minimum and maximum times of the configuration (:func:`run_lengths`). After measuring, the
estimate is checked (:func:`acceptable`): if the production was shorter than
``production_tau_alpha`` times the *measured* tau_alpha (or phi_s never decayed to 1/e), or if
the two halves of its production disagree by more than ``max_ageing`` in phi_s (still ageing:
equilibrated too briefly), the state is rerun with lengths from the measurement
(:func:`rerun_lengths`). A series ends once a state relaxes slower than its ``tau_alpha_max``,
or before a state whose extrapolated tau_alpha (a lower bound: the Arrhenius extrapolation
underestimates the super-Arrhenius growth) exceeds ``skip_estimate_factor`` (default 1.5) times
``tau_alpha_max`` (:func:`series_end`); colder temperatures of that series are recorded as
skipped, with the reason.

Aged-glass states are quenched (started from a random configuration at the target
temperature), aged for a fixed ``age_time`` with the thermostat, then measured over a fixed
production. Seeds are reproducible per state and attempt (:func:`state_seed`), and the cost of
a run is counted in atom-steps (:func:`cost`). Nothing here reads or writes a file.
"""

from __future__ import annotations

import math

from supercooled.campaign.config import StateSpec
from supercooled.md import default_timestep


def estimate_tau_alpha(temperature: float, finished: list[tuple[float, float]], guess: float) -> float:
    """Estimate tau_alpha at ``temperature`` from (T, tau_alpha) of warmer finished states.

    Two or more points: ln tau is extrapolated linearly in 1/T through the two coldest
    (an Arrhenius law fitted locally, which underestimates a super-Arrhenius growth only
    mildly over one temperature step; the check after the run corrects it). One point:
    that tau times (T_1 / T)^2. None: ``guess``.
    """
    points = sorted((t, tau) for t, tau in finished if tau and math.isfinite(tau) and tau > 0)
    if not points:
        return guess
    if len(points) == 1:
        t1, tau1 = points[0]
        return tau1 * (t1 / temperature) ** 2
    (t1, tau1), (t2, tau2) = points[0], points[1]
    slope = (math.log(tau2) - math.log(tau1)) / (1.0 / t2 - 1.0 / t1)
    slope = max(slope, 0.0)  # colder is never faster
    return tau1 * math.exp(slope * (1.0 / temperature - 1.0 / t1))


def run_lengths(spec: StateSpec, tau_estimate: float, settings: dict) -> tuple[float, float]:
    """(equilibration_time, production_time) in tau for one state."""
    if not spec.equilibrated:
        return spec.age_time, spec.aged_production_time
    cap = settings["max_time"]
    equilibration = min(cap, max(settings["min_equilibration_time"],
                                 settings["equilibration_tau_alpha"] * tau_estimate))
    production = min(cap, max(settings["min_production_time"],
                              settings["production_tau_alpha"] * tau_estimate))
    return equilibration, production


def state_seed(spec: StateSpec, base_seed: int, attempt: int) -> int:
    """A reproducible seed per state and attempt (independent of scheduling order).

    The digest is a position-weighted character sum, so a few states of one campaign share a
    seed (in paper.toml e.g. LJ rho=1.2 T=0.7 and the aged LJ rho=1.2 T=0.35). That is harmless
    for the physics: the seed drives a random insertion that is then minimised and
    equilibrated (or aged) at each state's own temperature. It is kept because
    the seeds of the committed library and the names of in-flight checkpoints depend on it.
    """
    key = f"{spec.interaction}|{spec.density:.4f}|{spec.temperature:.4f}|{int(spec.equilibrated)}"
    digest = sum((i + 1) * ord(c) for i, c in enumerate(key))
    return int(base_seed) * 1_000_003 + digest * 101 + 7919 * attempt


def cost(spec: StateSpec, lengths: tuple[float, float]) -> float:
    """Estimated atom-steps of a run (what sets its wall time)."""
    state = spec.state
    dt = spec.dt or default_timestep(state)
    return state.n_particles * sum(lengths) / dt


def acceptable(spec: StateSpec, summary: dict, settings: dict) -> bool:
    """Whether a measured, uncrystallised run may go into the library.

    Aged glasses always (their ageing is the point). An equilibrated state needs a production
    of at least ``production_tau_alpha`` times its measured tau_alpha (5 % slack) unless the
    production already hit ``max_time``, and an ageing check (largest difference of phi_s
    between the two halves of the production) of at most ``max_ageing``.
    """
    if not spec.equilibrated:
        return True
    tau, production = summary["tau_alpha"], summary["production_time"]
    long_enough = (math.isfinite(tau) and production >= 0.95 * settings["production_tau_alpha"] * tau) \
        or production >= settings["max_time"]
    return long_enough and not is_ageing(summary, settings)


def is_ageing(summary: dict, settings: dict) -> bool:
    """Whether the two production halves of an equilibrated run disagree beyond ``max_ageing``."""
    return summary.get("ageing_check", 0.0) > settings["max_ageing"]


def rerun_lengths(spec: StateSpec, summary: dict, settings: dict) -> tuple[float, float]:
    """Run lengths for redoing a rejected run, from its summary (or its logged record).

    Planned for 1.2 x the measured tau_alpha; if phi_s never reached 1/e, tau_alpha is taken as
    4 x production / ``production_tau_alpha`` (so the production grows 4.8-fold). A run that
    was still ageing also gets at least twice its equilibration.
    """
    tau = summary.get("tau_alpha", math.nan)
    if not math.isfinite(tau):
        tau = 4.0 * summary["production_time"] / settings["production_tau_alpha"]
    equilibration, production = run_lengths(spec, 1.2 * tau, settings)
    if is_ageing(summary, settings):
        equilibration = min(max(equilibration, 2.0 * summary["equilibration_time"]),
                            settings["max_time"])
    return equilibration, production


def beyond_reach(tau_estimate: float, n_warmer: int, limit: float, settings: dict) -> bool:
    """Whether a state extrapolated (from ``n_warmer`` >= 2 warmer states) to ``tau_estimate``
    is certainly slower than ``limit``: beyond ``skip_estimate_factor`` x ``limit``."""
    factor = settings["skip_estimate_factor"]
    return factor > 0 and n_warmer >= 2 and tau_estimate > factor * limit


def series_end(specs: list[StateSpec], tau: dict[StateSpec, float],
               points: list[tuple[float, float]], limit: float, settings: dict,
               passed=frozenset()) -> dict[StateSpec, str]:
    """Unfinished states below the cold end of a series, with the reason.

    ``specs``: the series, hot to cold; ``tau``: measured tau_alpha of its finished states;
    ``points``: every (T, tau_alpha) known for it (its finished states and a reference
    library's); ``limit``: its ``tau_alpha_max``. The series ends (a) below a finished state
    slower than ``limit`` (or whose phi_s never fell to 1/e: tau_alpha NaN), or (b) at the
    warmest unfinished state not ``passed`` over (failed or dropped: the series goes on below
    those) if its tau_alpha, extrapolated from two or more warmer states, is
    :func:`beyond_reach`. The extrapolation (Arrhenius through the two coldest) underestimates
    the super-Arrhenius growth of these liquids, so such a state is certainly slower than
    ``limit``; (b) spares the series its most expensive run, on a state outside the
    library's range.
    """
    slow = [s.temperature for s, t in tau.items() if not (math.isfinite(t) and t <= limit)]
    stop, why = (max(slow), f"a warmer state has tau_alpha above tau_alpha_max = {limit:g}") \
        if slow else (None, "")
    first = next((s for s in specs if s not in tau and s not in passed), None)
    if stop is None and first is not None:
        warmer = [(t, x) for t, x in points if t > first.temperature]
        estimate = estimate_tau_alpha(first.temperature, warmer, settings["first_tau_alpha_guess"])
        if beyond_reach(estimate, len(warmer), limit, settings):
            factor = settings["skip_estimate_factor"]
            stop = first.temperature * (1 + 1e-9)
            why = (f"tau_alpha extrapolated at T={first.temperature:g} ({estimate:.3g}) exceeds "
                   f"{factor:g} x tau_alpha_max = {factor * limit:g}")
    if stop is None:
        return {}
    return {s: why for s in specs if s not in tau and s.temperature < stop}
