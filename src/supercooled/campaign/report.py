"""What a campaign has made and what is left: the library table, its README, the --status plan.

:func:`library_table` and :func:`write_library_readme` describe a library from its state files
and the event log (provenance, compute spent, checks, states not run);
:func:`refresh_library_readme` rewrites an existing README from them, keeping its provenance.
:func:`plan_remaining` walks the pending states as the campaign would plan them, and
:func:`time_left` adds them up with the throughput measured from the logged runs
(:func:`measured_throughput`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from supercooled.atomic import write_text
from supercooled.campaign.config import SETTINGS_DEFAULTS, Campaign, StateSpec, load_campaign
from supercooled.campaign.policy import beyond_reach, cost, estimate_tau_alpha, run_lengths
from supercooled.campaign.progress import (
    LOG_NAME,
    SeriesProgress,
    closed_states,
    cost_left,
    logged_attempts,
    pending_states,
    read_log,
    record_filename,
    restore_reruns,
    series_progress,
)
from supercooled.errors import SupercooledError
from supercooled.library import read_state
from supercooled.nve import LEGACY_NVE_START
from supercooled.systems import StatePoint
from supercooled.timestep import timestep_rule

#: runs shorter than this (wall seconds) are dominated by start-up and measurement, not MD
_MIN_RATE_WALL_TIME = 120.0


# -- the --status plan --------------------------------------------------------------------

def plan_remaining(campaign: Campaign, library, scratch=None) -> list[dict]:
    """The pending states with the campaign's own estimate of their tau_alpha and cost.

    Each series is walked from hot to cold: a pending state's tau_alpha is extrapolated
    (:func:`~supercooled.campaign.policy.estimate_tau_alpha`) from the finished states and the
    estimates of the pending states warmer than it, and its run lengths follow as the campaign
    would plan them (including ``tau_estimate_safety`` and the longer lengths of a logged
    rerun). A state
    estimated slower than ``skip_estimate_factor`` x ``tau_alpha_max``, or below one estimated
    slower than ``tau_alpha_max``, is marked ``likely_skipped``: the series will probably end
    before it. Rows: ``spec``, ``tau_estimate``, ``lengths``, ``atom_steps`` (what is left of
    them after a checkpoint in ``scratch``, by default the campaign's ``.campaign-scratch``
    next to the library), ``ready`` (its warmer neighbours are done), ``likely_skipped``,
    ``rerun`` (its lengths come from a logged rejected run).
    """
    library, settings = Path(library), campaign.settings
    scratch = Path(scratch or library.parent / ".campaign-scratch")
    attempts = logged_attempts(campaign, library)

    def left(spec, lengths):
        return cost_left(spec, lengths, settings, scratch, attempts.get(spec, 0))

    series = series_progress(campaign, library)
    pending = set(pending_states(campaign, library, series))
    restore_reruns(series, library, settings)
    rows = []
    for progress_ in series.values():
        rows += _plan_series(progress_, pending, settings, left)
    for spec in campaign.aged:
        if spec in pending:
            lengths = run_lengths(spec, 0.0, settings)
            rows.append({"spec": spec, "tau_estimate": math.nan, "lengths": lengths,
                         "atom_steps": left(spec, lengths), "likely_skipped": False, "rerun": False,
                         "ready": True})
    return rows


def _plan_series(progress_: SeriesProgress, pending: set, settings: dict, left) -> list[dict]:
    """The rows of :func:`plan_remaining` for one series, hot to cold, each state's estimate
    extrapolated through those of the pending states warmer than it."""
    points = progress_.points()
    limit = progress_.limit or settings["tau_alpha_max"]
    beyond = False
    rows = []
    for spec in progress_.specs:
        if spec not in pending:
            continue
        warmer = [(t, tau) for t, tau in points if t > spec.temperature]
        tau = estimate_tau_alpha(spec.temperature, warmer, settings["first_tau_alpha_guess"])
        lengths = progress_.override.get(spec) or run_lengths(
            spec, settings["tau_estimate_safety"] * tau, settings)
        beyond = beyond or beyond_reach(tau, len(warmer), limit, settings)
        rows.append({"spec": spec, "tau_estimate": tau, "lengths": lengths,
                     "atom_steps": left(spec, lengths), "likely_skipped": beyond,
                     "rerun": spec in progress_.override, "ready": not rows})
        points.append((spec.temperature, tau))
        beyond = beyond or tau > limit
    return rows


def time_left(rows: list[dict], rates: dict[str, float], workers: int) -> tuple[float, float]:
    """(worker-hours, wall hours) the rows of :func:`plan_remaining` add up to.

    States marked ``likely_skipped`` are left out. The wall time is a lower bound with
    ``workers`` workers: the larger of the worker-hours shared evenly and the longest series
    (its states run one after another).
    """
    per_series: dict = {}
    for row in rows:
        if row["likely_skipped"]:
            continue
        spec = row["spec"]
        hours = row["atom_steps"] / rates.get(spec.interaction, math.nan) / 3600.0
        key = (spec.series, spec.equilibrated)
        per_series[key] = per_series.get(key, 0.0) + hours
    total = sum(per_series.values())
    return total, max(total / max(workers, 1), max(per_series.values(), default=0.0))


#: runs shorter than this (wall seconds) are dominated by start-up and measurement, not MD
_MIN_RATE_WALL_TIME = 120.0


def complete_rates(rates: dict[str, float], campaign: Campaign) -> dict[str, float]:
    """A rate for every interaction of ``campaign``: one not yet measured takes the slowest
    measured rate (so costs stay in one unit, seconds, and estimates err long); with no
    measured rate at all, ``{}`` (costs are then compared in atom-steps and no time is
    estimated)."""
    if not rates:
        return {}
    slowest = min(rates.values())
    return {s.interaction: rates.get(s.interaction, slowest) for s in campaign.states} | rates


def measured_throughput(library, recent: int = 8) -> dict[str, float]:
    """Atom-steps per second of one worker, per interaction, from the logged runs.

    The median over the latest ``recent`` finished or rejected runs of at least two minutes
    (shorter ones measure start-up and analysis more than MD; if an interaction has none, all
    of its runs count); the latest, because they ran with the current engine and machine load.
    The interactions differ several-fold: the WCA cutoff 2^(1/6) holds about an eighth of the
    neighbours of the LJ cutoff 2.5. Records written before 2026-12-03 15:00 UTC of runs
    resumed from a checkpoint hold only the wall time after the resume; the median keeps those
    few from biasing the rate.
    """
    rates: dict[str, list[tuple[float, float]]] = {}
    for event in read_log(library):
        if event.get("event") in ("done", "rerun") and event.get("wall_time", 0) > 0:
            spec = StateSpec(event["interaction"], event["density"], event["temperature_target"],
                             bool(event["equilibrated"]))
            # the logged atom-steps (runs since 2026-12-02) know the state's N and dt
            steps = event.get("atom_steps") or cost(spec, (event["equilibration_time"],
                                                           event["production_time"]))
            rates.setdefault(spec.interaction, []).append((event["wall_time"], steps / event["wall_time"]))
    result = {}
    for interaction, runs in rates.items():
        long = ([r for wall, r in runs if wall >= _MIN_RATE_WALL_TIME] or [r for _, r in runs])[-recent:]
        result[interaction] = float(sorted(long)[len(long) // 2])
    return result


# -- the library README -------------------------------------------------------------------

def library_table(library):
    """One row per state file: interaction, density, temperatures, tau_alpha, run lengths, checks."""
    import pandas as pd

    rows = []
    for path in sorted(Path(library).glob("*.nc")):
        data = read_state(path)
        attrs = data.attrs
        rows.append({
            "file": path.name, "interaction": attrs["interaction"],
            "density": float(attrs["density"]), "T_target": float(attrs["temperature_target"]),
            "T": float(attrs["temperature"]), "equilibrated": int(attrs["equilibrated"]),
            "tau_alpha": float(data["tau_alpha"]), "k_p": float(data["k_p"]),
            "equilibration_time": float(attrs["equilibration_time"]),
            "production_time": float(attrs["production_time"]),
            "energy_drift": float(attrs["energy_drift"]),
            "ageing_check": float(data["ageing_check"]) if "ageing_check" in data else float("nan"),
            "dt": float(attrs["dt"]),
            # files made before runs recorded it started NVE from the thermostat's velocities
            "nve_start": str(attrs.get("nve_start", LEGACY_NVE_START)),
            "dt_rule": timestep_rule(float(attrs["dt"]), StatePoint(
                attrs["interaction"], float(attrs["density"]),
                float(attrs["temperature_target"]), int(attrs["n_particles"]))),
        })
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values(["interaction", "density", "equilibrated", "T_target"],
                                  ascending=[True, True, False, False], ignore_index=True)
    return table


def quality_lines(table) -> list[str]:
    """README bullets on the checks: relative NVE energy drift and the two-halves ageing check.

    ``energy_drift`` is |dE/dt| t_prod / |<E>| over the whole production (see
    :func:`supercooled.nve.energy_drift`), so at a constant rate it grows with the run length;
    the rate per 1000 tau is also given to compare runs of different lengths.
    """
    if not len(table):
        return []
    drift = table["energy_drift"].abs()
    rate = drift / table["production_time"] * 1000.0
    worst = table.loc[drift.idxmax()]
    equil = table[table["equilibrated"] == 1]
    ageing = equil["ageing_check"].dropna()
    lines = [
        f"- NVE energy drift over the production (relative): median {drift.median():.2g}, "
        f"above 1e-4 for {int((drift > 1e-4).sum())} of {len(table)} states, largest "
        f"{drift.max():.2g} ({worst['interaction']} rho={worst['density']:g} "
        f"T={worst['T_target']:g}, {worst['production_time']:.0f} tau of production); "
        f"per 1000 tau of production: median {rate.median():.2g}, largest {rate.max():.2g}.",
    ]
    rules = table["dt_rule"].value_counts()
    lines.append("- Time step (column dt_rule): " + ", ".join(
        f"{count} by the {name} rule" for name, count in rules.items())
        + " (supercooled.timestep: legacy dt = 0.005 min(1, (2/T)^(1/2)) min(1, (1.2/rho)^(1/3)), "
        "used before 2026-12-02; reduced dt = min(dt~ rho^(-1/3) T^(-1/2), 0.005) with dt~ = 0.003 "
        "for LJ and 0.0015 for WCA, chosen from the drift study of chapter 2).")
    starts = table["nve_start"].value_counts()
    lines.append("- NVE start (column nve_start): " + ", ".join(
        f"{count} {name}" for name, count in starts.items())
        + " (supercooled.nve: as-thermostatted = NVE from the thermostat's last velocities, "
        "in runs started before 2026-12-03 15:52 UTC; energy-matched = velocities scaled once "
        "so that the total energy is the thermostatted run's mean (a line through E of the "
        "equilibration's second half, at its end), which puts the NVE temperature closer to "
        "the target).")
    if len(ageing):
        lines.append(f"- Ageing check of the equilibrated states (largest |phi_s| difference "
                     f"between the two production halves): median {ageing.median():.3g}, "
                     f"largest {ageing.max():.3g}.")
    return lines


def write_library_readme(library, *, command: str, config: str, machine: str,
                         title: str = "The state-point library", purpose: str = "") -> Path:
    """Write ``library/README.md``: how the library was made, events, and a table of states.

    ``title`` heads it; ``purpose``, a paragraph after the title, says what the states are
    for (e.g. an independent test set that no model may train on)."""
    library = Path(library)
    table, log = library_table(library), read_log(library)
    campaign = load_campaign(config) if Path(config).is_file() else None
    lines = _summary_lines(table, log, campaign, command=command, config=config, machine=machine,
                           title=title, purpose=purpose)
    closed = closed_states(campaign, library) if campaign else {}
    if closed:
        lines += [f"## States of `{config}` not run (the end of their series, or dropped)", ""]
        lines += [f"- {s.interaction} rho={s.density} T={s.temperature}"
                  f"{'' if s.equilibrated else ' (aged)'}: {why}" for s, why in closed.items()]
        lines.append("")
    # a failure later redone successfully is not listed
    in_library = set(table["file"]) if len(table) else set()
    failed = [e for e in log if e["event"] == "failed" and record_filename(e) not in in_library]
    if failed:
        lines += ["## Failures not yet redone", ""]
        for e in failed:
            why = e.get("error", "").splitlines()[0]
            lines.append(f"- {e['interaction']} rho={e['density']} T={e['temperature_target']} "
                         f"(equilibrated={e['equilibrated']}): {why}")
        lines.append("")
    pending = pending_states(campaign, library) if campaign else []
    if pending:
        lines += [f"## Not yet simulated ({len(pending)} states of `{config}`)", "",
                  "The campaign stopped with the session; rerunning its command continues it "
                  f"(`supercooled campaign {config} --status` estimates the time left).", ""]
        lines += [", ".join(f"{s.interaction} rho={s.density} T={s.temperature}"
                            + ("" if s.equilibrated else " (aged)") for s in pending), ""]
    if len(table):
        lines += ["## States", "", table.drop(columns="file").to_markdown(index=False, floatfmt=".4g"), ""]
    return write_text(library / "README.md", "\n".join(lines))  # atomically


def refresh_library_readme(library, *, last_day: str | None = None) -> Path:
    """Rewrite ``library/README.md`` after the library or its log changed, keeping what the
    files cannot say: its title, purpose paragraph, campaign command, config and machine line.

    ``last_day`` (YYYY-MM-DD) replaces the end of the machine line's ``(A to B)`` date range,
    for a campaign continued on a later day."""
    library = Path(library)
    lines = (library / "README.md").read_text().splitlines()
    text = "\n".join(lines)
    made_by = re.search(r"made by `(.+?)` from `(.+?)` with", text)
    machine = next((line for line in lines if line.startswith("- Machine: ")), None)
    body = next((i for i, line in enumerate(lines) if line.startswith("One netCDF file")), None)
    if made_by is None or machine is None or body is None or not lines[0].startswith("# "):
        raise SupercooledError(f"{library / 'README.md'} was not written by "
                               "write_library_readme: nothing to refresh")
    machine = machine.removeprefix("- Machine: ").removesuffix(".")
    if last_day is not None:
        machine = re.sub(r"(\(\d{4}-\d{2}-\d{2} to )\d{4}-\d{2}-\d{2}\)", rf"\g<1>{last_day})",
                         machine)
    return write_library_readme(library, command=made_by.group(1), config=made_by.group(2),
                                machine=machine, title=lines[0].removeprefix("# "),
                                purpose="\n".join(lines[2:body]).strip())

def _summary_lines(table, log: list[dict], campaign: Campaign | None, *, command: str,
                   config: str, machine: str, title: str, purpose: str) -> list[str]:
    """The README's title, provenance and bullet list (counts, compute, events, checks)."""
    events: dict = {}
    for event in log:
        events[event["event"]] = events.get(event["event"], 0) + 1
    core_seconds = sum(e.get("wall_time", 0.0) for e in log)
    n_resumed = sum(e.get("resumed_after", 0.0) > 0 for e in log)
    n_tau = (campaign.settings if campaign else SETTINGS_DEFAULTS)["production_tau_alpha"]
    return [
        f"# {title}",
        "",
        *([purpose, ""] if purpose else []),
        "One netCDF file per state point (schema in `book/conventions.md` and `supercooled.library`),",
        f"made by `{command}` from `{config}` with `supercooled` (LAMMPS engine).",
        "Each file carries its own provenance in its attributes (seed, dt, engine and version,",
        "run lengths, energy drift, crystallisation flag, creation time). The campaign's event log",
        f"is `{LOG_NAME}`; this README is regenerated from the files and the log by",
        "`supercooled.campaign.write_library_readme`.",
        "",
        f"- Machine: {machine}.",
        f"- States in the library: {len(table)} "
        f"({int(table['equilibrated'].sum()) if len(table) else 0} equilibrated, "
        f"{int((table['equilibrated'] == 0).sum()) if len(table) else 0} aged glasses).",
        f"- Compute spent (sum of the logged per-state wall times, reruns included): "
        f"{core_seconds / 3600:.2f} core-hours. A lower bound: a run cut off by the end of a "
        "session logs nothing for its work after its last checkpoint (nor, if redone from the "
        "start, for any of it), and the records without a `resumed_after` field (written "
        "before 2026-12-03 15:00 UTC) count only the time after a resume; the later ones add "
        f"the time spent before it (records so far: {n_resumed}).",
        "- Events: " + ", ".join(f"{k} {v}" for k, v in sorted(events.items())) + ". "
        "A 'rerun' is a state redone longer because its production turned out shorter than "
        f"{n_tau:g} measured tau_alpha or its two production halves disagreed (still ageing); "
        "failures that a later attempt redid are not listed below.",
        *quality_lines(table),
        "",
    ]
