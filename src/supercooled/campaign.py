"""Resumable simulation campaigns that fill the state-point library.

A campaign is a TOML file listing series of state points: one series is one (interaction,
density) with temperatures from hot to cold, plus optional aged-glass states below them. Every
state is simulated (:func:`supercooled.md.simulate`), measured
(:func:`supercooled.measure.measure_run`) and its state file is put into the library the moment
it is done, atomically, so a campaign can be killed at any moment and restarted: states already
in the library are skipped, a killed run loses only the states in flight, and no partial file is
ever left in the library.

Run lengths follow each state's own relaxation. Within a series the states run from hot to cold;
before a state starts, its alpha-relaxation time is estimated from the warmer states of the same
series already measured (linear extrapolation of ln tau_alpha in 1/T through the two coldest
finished states) and multiplied by ``tau_estimate_safety`` (default 1.5, because the local
Arrhenius extrapolation underestimates the super-Arrhenius growth and a too-short run has to
be redone), and the run equilibrates for ``equilibration_tau_alpha`` (default 20) and
produces for ``production_tau_alpha`` (default 20) times that estimate, within the minimum and
maximum times of the configuration. After measuring, the estimate is checked: if the production
was shorter than ``production_tau_alpha`` times the *measured* tau_alpha (or phi_s never decayed to
1/e), or if the two halves of its production disagree by more than ``max_ageing`` in phi_s
(still ageing: equilibrated too briefly), the state is rerun with lengths from the
measurement. A series ends once a state relaxes
slower than ``tau_alpha_max``, or before a state whose extrapolated tau_alpha (a lower bound:
the Arrhenius extrapolation underestimates the super-Arrhenius growth) exceeds
``skip_estimate_factor`` (default 1.5) times ``tau_alpha_max``; colder temperatures of that
series are recorded as skipped, with the reason.

Aged-glass states are quenched (started from a random configuration at the target temperature),
aged for a fixed ``age_time`` with the thermostat, then measured over a fixed production; they
are stored with ``equilibrated = 0``. A crystallised run is rerun with another seed, up to
``max_attempts``; if every attempt crystallises the state is dropped. Every event (done,
rerun, crystallised, dropped, failed with its error, skipped) is appended to
``campaign_log.jsonl`` in the library folder.

States are scheduled on dask.distributed: a LocalCluster with one single-threaded worker per core
by default, or an existing scheduler (``--scheduler tcp://host:8786``, e.g. one started by
dask-jobqueue on a SLURM cluster). Among the states whose warmer neighbours are done, the one
with the smallest estimated cost (atom-steps) runs first, so the library fills breadth-first
across series.

Example configuration::

    [campaign]
    name = "example"
    seed = 1
    tau_alpha_max = 300.0

    [[series]]
    interaction = "LJ"
    density = 1.2
    temperatures = [2.0, 1.0, 0.8]
    aged_temperatures = [0.4]
    age_time = 200.0
    aged_production_time = 200.0

or, instead of explicit series, a ``[grid]`` with ``interactions``, ``densities``,
``reference_temperatures.<interaction>`` at ``rho_ref`` placed at each density by density
scaling T = T_ref (rho / rho_ref)^gamma (see :func:`supercooled.systems.density_scaled_temperature`).
An ``[[extend_series]]`` entry (``interaction``, ``density``, ``temperatures``) adds temperatures
to a series defined above: colder ones where density scaling placed a grid series too warm, or
one between two states whose tau_alpha differ much more than their neighbours'.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import tomllib
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from supercooled.errors import SupercooledError
from supercooled.systems import StatePoint, density_scaled_temperature, normalize_interaction
from supercooled.timestep import timestep_rule

LOG_NAME = "campaign_log.jsonl"

SETTINGS_DEFAULTS = {
    "name": "campaign",
    "seed": 0,
    "equilibration_tau_alpha": 20.0,
    "production_tau_alpha": 20.0,
    "min_equilibration_time": 20.0,
    "min_production_time": 20.0,
    "max_time": 12000.0,
    "tau_alpha_max": 300.0,
    "max_attempts": 3,
    "first_tau_alpha_guess": 1.0,
    "tau_estimate_safety": 1.5,
    "keep_trajectories": False,
    #: a state whose tau_alpha extrapolated from warmer finished states exceeds this factor
    #: times tau_alpha_max is not run (the series ends above it); 0 turns the rule off
    "skip_estimate_factor": 1.5,
    #: largest max_t |phi_s(first half) - phi_s(second half)| of an accepted equilibrated state;
    #: the equilibrated states of the paper's library scatter between 0.006 and 0.10
    "max_ageing": 0.15,
    #: a library folder whose equilibrated states of the same (interaction, density) join a
    #: series' own finished states when its tau_alpha is extrapolated (not when it ends):
    #: a new set of states (other N, other seeds) then plans its runs from what is known.
    #: A path relative to the working directory; "" for none
    "reference_library": "",
}


@dataclass(frozen=True)
class StateSpec:
    """One state point of a campaign, with what is needed to simulate it."""

    interaction: str
    density: float
    temperature: float
    equilibrated: bool = True
    n_particles: int | None = None
    dt: float | None = None
    age_time: float | None = None
    aged_production_time: float | None = None

    @property
    def state(self) -> StatePoint:
        return StatePoint(self.interaction, self.density, self.temperature, self.n_particles)

    @property
    def series(self) -> tuple[str, float]:
        return (self.interaction, round(self.density, 6))

    @property
    def filename(self) -> str:
        from supercooled.library import state_filename

        return state_filename(self.interaction, self.density, self.temperature, self.equilibrated)


@dataclass
class Campaign:
    """A parsed campaign: settings and the ordered series of states (hot to cold)."""

    settings: dict
    series: dict[tuple[str, float], list[StateSpec]] = field(default_factory=dict)
    aged: list[StateSpec] = field(default_factory=list)
    #: per-series tau_alpha_max where a [[series]] or [[extend_series]] entry sets one
    limits: dict[tuple[str, float], float] = field(default_factory=dict)

    def limit(self, key: tuple[str, float]) -> float:
        """The tau_alpha at which series ``key`` ends."""
        return self.limits.get(key, self.settings["tau_alpha_max"])

    @property
    def states(self) -> list[StateSpec]:
        return [s for specs in self.series.values() for s in specs] + list(self.aged)


# --------------------------------------------------------------------------- configuration


def load_campaign(path) -> Campaign:
    """Read and validate a campaign TOML file (see the module docstring for its layout)."""
    path = Path(path)
    if not path.is_file():
        raise SupercooledError(f"campaign file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SupercooledError(f"{path}: not valid TOML ({error})") from None
    return parse_campaign(raw, source=str(path))


#: the keys each table of a campaign file may have (a typo is an error, not silently ignored)
_TABLE_KEYS = {
    "series": {"interaction", "density", "temperatures", "aged_temperatures", "n_particles", "dt",
               "age_time", "aged_production_time", "tau_alpha_max"},
    "grid": {"interactions", "densities", "reference_temperatures", "aged_reference_temperatures",
             "rho_ref", "gamma", "n_particles", "dt", "age_time", "aged_production_time"},
    "extend_series": {"interaction", "density", "temperatures", "tau_alpha_max"},
}


def parse_campaign(raw: dict, source: str = "<campaign>") -> Campaign:
    """A :class:`Campaign` from the parsed TOML; any error is one :class:`SupercooledError` line."""
    unknown = set(raw) - {"campaign", *_TABLE_KEYS}
    if unknown:
        raise SupercooledError(f"{source}: unknown tables: {', '.join(sorted(unknown))} (known: "
                               f"[campaign], [[series]], [grid], [[extend_series]])")
    settings = _settings(_table(raw, "campaign", source), source)
    series, extensions = _tables(raw, "series", source), _tables(raw, "extend_series", source)
    grid = _table(raw, "grid", source)
    for name, entries in (("series", series), ("grid", [grid] if grid else []),
                          ("extend_series", extensions)):
        for entry in entries:
            unknown = set(entry) - _TABLE_KEYS[name]
            if unknown:
                raise SupercooledError(f"{source}: unknown [{name}] keys: {', '.join(sorted(unknown))}")
    try:
        entries = series + _grid_series(grid, source)
        if not entries:
            raise SupercooledError(f"{source}: no [[series]] and no [grid]: nothing to simulate")
        campaign = Campaign(settings=settings)
        for entry in entries:
            _add_series(campaign, entry, source)
        for entry in extensions:
            _extend_series(campaign, entry, source)
    except (TypeError, ValueError) as error:
        if isinstance(error, SupercooledError):
            raise
        # e.g. density = "abc" or temperatures = 1.0 instead of a list
        raise SupercooledError(f"{source}: a value has the wrong type ({error})") from None
    names = [s.filename for s in campaign.states]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SupercooledError(f"{source}: states that share a file name (same temperature to 4 "
                               f"decimals): {', '.join(repeated)}")
    return campaign


def _table(raw: dict, name: str, source: str) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise SupercooledError(f"{source}: [{name}] must be a table, got {type(value).__name__}")
    return value


def _tables(raw: dict, name: str, source: str) -> list[dict]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SupercooledError(f"{source}: {name} must be an array of tables ([[{name}]])")
    return value


def _settings(given: dict, source: str) -> dict:
    """The [campaign] settings over their defaults, each checked for type and range."""
    unknown = set(given) - set(SETTINGS_DEFAULTS)
    if unknown:
        raise SupercooledError(f"{source}: unknown [campaign] keys: {', '.join(sorted(unknown))}")
    settings = SETTINGS_DEFAULTS | given
    for key, value in settings.items():
        default = SETTINGS_DEFAULTS[key]
        if isinstance(default, bool) or isinstance(default, str):
            ok = isinstance(value, type(default))
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            raise SupercooledError(f"{source}: [campaign] {key} = {value!r} must be a "
                                   f"{type(default).__name__}")
        lowest = {"seed": None, "skip_estimate_factor": 0.0, "max_attempts": 1}.get(key, "positive")
        if lowest == "positive" and isinstance(value, int | float) and not isinstance(value, bool) \
                and not value > 0:
            raise SupercooledError(f"{source}: [campaign] {key} must be positive, got {value!r}")
        if isinstance(lowest, int | float) and value < lowest:
            raise SupercooledError(f"{source}: [campaign] {key} must be at least {lowest}, got {value!r}")
    return settings


def _grid_series(grid: dict | None, source: str) -> list[dict]:
    if not grid:
        return []
    rho_ref, gamma = grid.get("rho_ref", 1.2), grid.get("gamma", 5.0)
    missing = [k for k in ("interactions", "densities") if k not in grid]
    if missing:
        raise SupercooledError(f"{source}: [grid] lacks {', '.join(missing)}")
    entries = []
    for interaction in grid["interactions"]:
        reference = grid.get("reference_temperatures", {}).get(interaction)
        if not reference:
            raise SupercooledError(f"{source}: [grid.reference_temperatures] lacks {interaction}")
        aged_reference = grid.get("aged_reference_temperatures", {}).get(interaction, [])
        for rho in grid["densities"]:
            def scale(temps, rho=rho):
                return [round(density_scaled_temperature(t, rho, rho_ref=rho_ref, gamma=gamma), 4)
                        for t in temps]
            entry = {k: grid[k] for k in ("n_particles", "dt", "age_time", "aged_production_time")
                     if k in grid}
            entries.append(entry | {"interaction": interaction, "density": rho,
                                    "temperatures": scale(reference),
                                    "aged_temperatures": scale(aged_reference)})
    return entries


def _add_series(campaign: Campaign, entry: dict, source: str) -> None:
    try:
        interaction = normalize_interaction(entry["interaction"])
        density = float(entry["density"])
        temperatures = [float(t) for t in entry["temperatures"]]
    except KeyError as missing:
        raise SupercooledError(f"{source}: a series lacks {missing}") from None
    if temperatures != sorted(temperatures, reverse=True) or len(set(temperatures)) != len(temperatures):
        raise SupercooledError(f"{source}: temperatures of {interaction} rho={density} must "
                               "decrease strictly (hot to cold)")
    common = {"interaction": interaction, "density": density,
              "n_particles": entry.get("n_particles"), "dt": entry.get("dt")}
    specs = [StateSpec(temperature=t, **common) for t in temperatures]
    for spec in specs:
        spec.state  # noqa: B018 -- validates density, temperature and composition now
    key = specs[0].series
    if key in campaign.series:
        raise SupercooledError(f"{source}: series {interaction} rho={density} appears twice")
    campaign.series[key] = specs
    _series_limit(campaign, key, entry, source)
    for t in entry.get("aged_temperatures", []):
        if "age_time" not in entry or "aged_production_time" not in entry:
            raise SupercooledError(f"{source}: aged states of {interaction} rho={density} need "
                                   "age_time and aged_production_time")
        aged = StateSpec(temperature=float(t), equilibrated=False, age_time=float(entry["age_time"]),
                         aged_production_time=float(entry["aged_production_time"]), **common)
        aged.state  # noqa: B018
        campaign.aged.append(aged)


def _extend_series(campaign: Campaign, entry: dict, source: str) -> None:
    """Add temperatures to an existing series (e.g. one of the grid's); it stays hot to cold.

    Density scaling with a single gamma places some grid series too warm to reach
    ``tau_alpha_max``, and leaves uneven steps in tau_alpha where the liquid is more fragile
    than the reference; an ``[[extend_series]]`` entry continues such a series to colder
    states or fills a gap, without redefining it. A temperature already in the series is an
    error (it would be the same state file).
    """
    try:
        interaction = normalize_interaction(entry["interaction"])
        key = (interaction, round(float(entry["density"]), 6))
        temperatures = [float(t) for t in entry["temperatures"]]
    except KeyError as missing:
        raise SupercooledError(f"{source}: an [[extend_series]] entry lacks {missing}") from None
    if key not in campaign.series:
        raise SupercooledError(f"{source}: [[extend_series]] {interaction} rho={key[1]} extends "
                               "no series of the file")
    specs = campaign.series[key]
    template = specs[0]
    added = [StateSpec(interaction=interaction, density=template.density, temperature=t,
                       n_particles=template.n_particles, dt=template.dt) for t in temperatures]
    for spec in added:
        spec.state  # noqa: B018 -- validates the temperature now
    names = [s.filename for s in specs + added]
    if len(set(names)) != len(names):
        raise SupercooledError(f"{source}: [[extend_series]] repeats a temperature of "
                               f"{interaction} rho={key[1]}")
    specs[:] = sorted(specs + added, key=lambda s: -s.temperature)
    _series_limit(campaign, key, entry, source)


def _series_limit(campaign: Campaign, key: tuple[str, float], entry: dict, source: str) -> None:
    """Record an entry's own ``tau_alpha_max`` (a deeper or shallower end of its series)."""
    if "tau_alpha_max" not in entry:
        return
    value = entry["tau_alpha_max"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 \
            or not math.isfinite(value):
        raise SupercooledError(f"{source}: tau_alpha_max of {key[0]} rho={key[1]} must be a "
                               f"positive number, got {value!r}")
    campaign.limits[key] = float(value)


# --------------------------------------------------------------------------- planning


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
    from supercooled.md import default_timestep

    state = spec.state
    dt = spec.dt or default_timestep(state)
    return state.n_particles * sum(lengths) / dt


# --------------------------------------------------------------------------- one state (runs on a worker)


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
    return long_enough and not _ageing(summary, settings)


def run_directory(scratch, spec: StateSpec, seed: int, lengths: tuple[float, float]) -> Path:
    """The scratch folder of one attempt: named by state, seed and run lengths."""
    return Path(scratch) / f"{Path(spec.filename).stem}-seed{seed}-{lengths[0]:.6g}-{lengths[1]:.6g}"


def cost_left(spec: StateSpec, lengths: tuple[float, float], settings: dict, scratch=None,
              attempt: int = 0) -> float:
    """Atom-steps still to run: :func:`cost`, less what a checkpoint in ``scratch`` holds."""
    if scratch is None:
        return cost(spec, lengths)
    run_dir = run_directory(scratch, spec, state_seed(spec, settings["seed"], attempt), lengths)
    return cost(spec, lengths) * (1.0 - checkpointed_fraction(run_dir))


def checkpointed_fraction(run_dir: Path) -> float:
    """Fraction of a run's MD steps behind its last checkpoint (0 if it has none)."""
    path = Path(run_dir) / "checkpoint.json"
    try:
        checkpoint = json.loads(path.read_text())
        settings = checkpoint["settings"]
        total = settings["equilibration_steps"] + settings["schedule"]["n_blocks"] * \
            settings["schedule"]["block_length_steps"]
        return min(1.0, max(0.0, checkpoint["engine_step"] / total))
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return 0.0


def run_state(spec: StateSpec, lengths: tuple[float, float], seed: int, scratch: str,
              library: str, settings: dict, keep_trajectory: bool = False) -> dict:
    """Simulate and measure one state; put its file into the library if :func:`acceptable`.

    Runs on a dask worker. Returns a summary dict with ``accepted``; raises on failure (the
    client logs it).
    """
    from supercooled.library import read_state, write_state
    from supercooled.md import simulate
    from supercooled.measure import measure_run

    start = time.time()
    # The run folder is named by state, seed and lengths: a run killed mid-way (campaign
    # stopped) resumes from its LAMMPS checkpoint; a rerun with another seed or other lengths
    # starts fresh, and folders of superseded attempts are removed.
    stem = Path(spec.filename).stem
    run_dir = run_directory(scratch, spec, seed, lengths)
    for stale in Path(scratch).glob(f"{stem}-seed*"):
        if stale != run_dir:
            shutil.rmtree(stale, ignore_errors=True)
    result = simulate(spec.state, run_dir, equilibration_time=lengths[0],
                      production_time=lengths[1], dt=spec.dt, seed=seed, progress=False,
                      resume=True)
    summary = {"crystallized": bool(result.crystallized), "accepted": False, "seed": seed,
               "equilibration_time": lengths[0], "production_time": lengths[1],
               "atom_steps": cost(spec, lengths)}
    if not summary["crystallized"]:
        measured = measure_run(run_dir, run_dir / "state.nc", progress=False,
                               equilibrated=spec.equilibrated)
        data = read_state(measured)
        tau = float(data["tau_alpha"])
        summary |= {"tau_alpha": tau, "temperature": float(data.attrs["temperature"]),
                    "energy_drift": float(data.attrs["energy_drift"])}
        if "ageing_check" in data:
            summary["ageing_check"] = float(data["ageing_check"])
        summary["accepted"] = acceptable(spec, summary, settings)
        if summary["accepted"]:
            write_state(data, Path(library) / spec.filename)  # atomic: temp file, then rename
    if not keep_trajectory:
        shutil.rmtree(run_dir, ignore_errors=True)
    return summary | {"wall_time": time.time() - start}


# --------------------------------------------------------------------------- the client loop


class _Log:
    def __init__(self, library: Path):
        self.path = library / LOG_NAME

    def write(self, event: str, spec: StateSpec, **info) -> None:
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "event": event,
                  "interaction": spec.interaction, "density": spec.density,
                  "temperature_target": spec.temperature, "equilibrated": int(spec.equilibrated)}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record | info) + "\n")


def _finished_tau(library: Path, specs: list[StateSpec]) -> dict[StateSpec, float]:
    """tau_alpha of the states of a series that are already in the library."""
    from supercooled.library import read_state

    done = {}
    for spec in specs:
        path = library / spec.filename
        if path.exists():
            done[spec] = float(read_state(path)["tau_alpha"])
    return done


@dataclass
class _SeriesProgress:
    specs: list[StateSpec]
    tau: dict  # spec -> measured tau_alpha of finished states
    settings: dict
    limit: float | None = None  # tau_alpha_max of this series (None: the campaign's)
    override: dict = field(default_factory=dict)  # spec -> run lengths after a too-short run
    #: (T_target, tau_alpha) of the reference library's states of this series
    reference: list = field(default_factory=list)

    def next_pending(self, in_flight: set, failed: set) -> StateSpec | None:
        """The warmest unfinished state, if every warmer state is finished (or failed)."""
        skipped = self.skipped(failed)
        for spec in self.specs:
            if spec in self.tau or spec in failed:
                continue
            if spec in skipped:
                return None
            return None if spec in in_flight else spec
        return None

    def points(self) -> list[tuple[float, float]]:
        """(T, tau_alpha) known for this series: its finished states and the reference's."""
        return [(s.temperature, t) for s, t in self.tau.items()] + list(self.reference)

    def warmer_points(self, spec: StateSpec) -> list[tuple[float, float]]:
        return [(t, tau) for t, tau in self.points() if t > spec.temperature]

    def skipped(self, passed=frozenset()) -> dict[StateSpec, str]:
        """Unfinished states below the cold end of the series, with the reason.

        The series ends (a) below a finished state slower than ``tau_alpha_max`` (or whose
        phi_s never fell to 1/e: tau_alpha NaN), or (b) at the warmest unfinished state not
        ``passed`` over (failed or dropped: the series goes on below those) if its tau_alpha,
        extrapolated from two or more finished warmer states, exceeds ``skip_estimate_factor``
        x ``tau_alpha_max``. The extrapolation (Arrhenius through the two coldest)
        underestimates the super-Arrhenius growth of these liquids, so such a state is
        certainly slower than ``tau_alpha_max``; (b) spares the series its most expensive run,
        on a state outside the library's range.
        """
        settings, limit = self.settings, self.limit or self.settings["tau_alpha_max"]
        slow = [s.temperature for s, t in self.tau.items() if not (math.isfinite(t) and t <= limit)]
        stop, why = (max(slow), f"a warmer state has tau_alpha above tau_alpha_max = {limit:g}") \
            if slow else (None, "")
        first = next((s for s in self.specs if s not in self.tau and s not in passed), None)
        factor = settings["skip_estimate_factor"]
        if stop is None and first is not None and factor > 0:
            points = self.warmer_points(first)
            tau = estimate_tau_alpha(first.temperature, points, settings["first_tau_alpha_guess"])
            if len(points) >= 2 and tau > factor * limit:
                stop = first.temperature * (1 + 1e-9)
                why = (f"tau_alpha extrapolated at T={first.temperature:g} ({tau:.3g}) exceeds "
                       f"{factor:g} x tau_alpha_max = {factor * limit:g}")
        if stop is None:
            return {}
        return {s: why for s in self.specs if s not in self.tau and s.temperature < stop}


def _series_progress(campaign: Campaign, library) -> dict:
    """A :class:`_SeriesProgress` per series, from the states already in ``library``."""
    reference = _reference_points(campaign.settings["reference_library"])
    return {key: _SeriesProgress(specs, _finished_tau(Path(library), specs), campaign.settings,
                                 campaign.limit(key), reference=reference.get(key, []))
            for key, specs in campaign.series.items()}


def _reference_points(folder: str) -> dict[tuple[str, float], list[tuple[float, float]]]:
    """(T_target, tau_alpha) of the equilibrated states of a reference library, per series."""
    if not folder:
        return {}
    from supercooled.library import read_state

    path = Path(folder)
    if not path.is_dir():
        raise SupercooledError(f"reference_library {folder!r} is not a folder")
    points: dict = {}
    for file in sorted(path.glob("*.nc")):
        data = read_state(file)
        tau = float(data["tau_alpha"])
        if int(data.attrs["equilibrated"]) and math.isfinite(tau):
            key = (str(data.attrs["interaction"]), round(float(data.attrs["density"]), 6))
            points.setdefault(key, []).append((float(data.attrs["temperature_target"]), tau))
    return points


def closed_states(campaign: Campaign, library, series: dict | None = None) -> dict[StateSpec, str]:
    """States not in the library that the campaign will not run, with the reason.

    ``"skipped: ..."``: below the cold end of its series (:meth:`_SeriesProgress.skipped`).
    ``"dropped: ..."``: logged as crystallised in every attempt. Failed states are not closed: a
    restart tries them again.
    """
    from supercooled.library import state_filename

    library = Path(library)
    names = {state_filename(e["interaction"], e["density"], e["temperature_target"],
                            bool(e["equilibrated"]))
             for e in read_log(library) if e.get("event") == "dropped"}
    dropped = {spec: "dropped: crystallised in every attempt" for spec in campaign.states
               if spec.filename in names and not (library / spec.filename).exists()}
    closed = {}
    for progress_ in (series or _series_progress(campaign, library)).values():
        closed |= {spec: f"skipped: {why}" for spec, why in progress_.skipped(dropped).items()}
    return closed | dropped


def pending_states(campaign: Campaign, library, series: dict | None = None) -> list[StateSpec]:
    """States of the campaign still to run: not in the library, not skipped and not dropped."""
    library = Path(library)
    closed = closed_states(campaign, library, series)
    return [s for s in campaign.states if not (library / s.filename).exists() and s not in closed]


def plan_remaining(campaign: Campaign, library, scratch=None) -> list[dict]:
    """The pending states with the campaign's own estimate of their tau_alpha and cost.

    Each series is walked from hot to cold: a pending state's tau_alpha is extrapolated
    (:func:`estimate_tau_alpha`) from the finished states and the estimates of the pending
    states warmer than it, and its run lengths follow as the campaign would plan them
    (including ``tau_estimate_safety`` and the longer lengths of a logged rerun). A state
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

    series = _series_progress(campaign, library)
    pending = set(pending_states(campaign, library, series))
    _restore_reruns(series, library, settings)
    rows = []
    for progress_ in series.values():
        points = progress_.points()
        limit = progress_.limit or settings["tau_alpha_max"]
        beyond = False
        for spec in progress_.specs:
            if spec not in pending:
                continue
            warmer = [(t, tau) for t, tau in points if t > spec.temperature]
            tau = estimate_tau_alpha(spec.temperature, warmer, settings["first_tau_alpha_guess"])
            lengths = progress_.override.get(spec) or run_lengths(
                spec, settings["tau_estimate_safety"] * tau, settings)
            beyond = beyond or (settings["skip_estimate_factor"] > 0 and len(warmer) >= 2
                                and tau > settings["skip_estimate_factor"] * limit)
            rows.append({"spec": spec, "tau_estimate": tau, "lengths": lengths,
                         "atom_steps": left(spec, lengths), "likely_skipped": beyond,
                         "rerun": spec in progress_.override,
                         "ready": not rows or rows[-1]["spec"].series != spec.series})
            points.append((spec.temperature, tau))
            beyond = beyond or tau > limit
    for spec in campaign.aged:
        if spec in pending:
            lengths = run_lengths(spec, 0.0, settings)
            rows.append({"spec": spec, "tau_estimate": math.nan, "lengths": lengths,
                         "atom_steps": left(spec, lengths), "likely_skipped": False, "rerun": False,
                         "ready": True})
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
    neighbours of the LJ cutoff 2.5. A run resumed from a checkpoint logs only the wall time
    after the resume; the median keeps those few from biasing the rate.
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


def run_campaign(campaign: Campaign, library, *, workers: int = 2, scheduler: str | None = None,
                 scratch=None, progress: bool = True) -> dict:
    """Run every state of ``campaign`` not yet in ``library``; return counts of what happened."""
    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    library = Path(library)
    library.mkdir(parents=True, exist_ok=True)
    scratch = Path(scratch or library.parent / ".campaign-scratch")
    scratch.mkdir(parents=True, exist_ok=True)
    log, settings = _Log(library), campaign.settings
    series = _series_progress(campaign, library)
    _restore_reruns(series, library, settings)
    closed_before = closed_states(campaign, library, series)
    todo = pending_states(campaign, library, series)
    aged = [s for s in todo if not s.equilibrated]
    counts = {"done": 0, "rerun": 0, "dropped": 0, "failed": 0, "skipped": 0}
    if not todo:
        return counts | {"pending": 0}

    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1,
                                                  processes=True, dashboard_address=":0")
    client = Client(scheduler or cluster)
    if scheduler:  # a dask-jobqueue cluster's jobs may still be queued: wait for the first
        client.wait_for_workers(1)

    def slots() -> int:
        """States to run at once: one per worker thread, counted anew as a cluster scales."""
        return workers if not scheduler else max(1, sum(client.nthreads().values()))

    bar = tqdm(total=len(todo), desc="states", unit="state", disable=not progress)
    # dropped states are passed over like failed ones, so their series go on below them;
    # crystallised attempts and rejected lengths logged before a restart still count
    in_flight, failed, futures = set(), set(closed_before), as_completed()
    attempts = logged_attempts(campaign, library)
    rates = complete_rates(measured_throughput(library), campaign)
    try:
        while True:
            while len(in_flight) < slots():
                choice = _choose_next(series, aged, in_flight, failed, settings,
                                      scratch=scratch, attempts=attempts, rates=rates)
                if choice is None:
                    break
                spec, lengths = choice
                attempt = attempts.get(spec, 0)
                seed = state_seed(spec, settings["seed"], attempt)
                future = client.submit(run_state, spec, lengths, seed, str(scratch), str(library),
                                       settings, settings["keep_trajectories"], pure=False)
                future.spec = spec
                futures.add(future)
                in_flight.add(spec)
                if spec in aged:
                    aged.remove(spec)
            if not in_flight:
                break
            future = next(futures)
            spec = future.spec
            in_flight.discard(spec)
            outcome = _handle(future, spec, series, aged, attempts, failed, log, settings)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome in ("done", "dropped", "failed"):
                bar.update(1)
            # the runs just logged refine the estimate
            rates = complete_rates(measured_throughput(library), campaign)
            _, wall = time_left(plan_remaining(campaign, library, scratch), rates, slots())
            left = f"; about {wall:.1f} h left" if math.isfinite(wall) else ""
            bar.set_postfix_str(f"{spec.interaction} rho={spec.density} T={spec.temperature} "
                                f"{outcome}{left}")
        for progress_ in series.values():
            for spec, reason in progress_.skipped(failed).items():
                if spec not in closed_before:
                    log.write("skipped", spec, reason=reason)
                    counts["skipped"] += 1
                    bar.update(1)
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    return counts | {"pending": len(pending_states(campaign, library))}


def logged_attempts(campaign: Campaign, library) -> dict:
    """The attempt counters of the pending states, from the log (so a restart keeps them).

    ``attempts[spec]``: its crystallised runs, which set the seed of the next attempt
    (:func:`state_seed`) and count towards ``max_attempts``; ``attempts[("length", spec)]``:
    its runs rejected as too short or still ageing (at most two longer reruns).
    """
    from supercooled.library import state_filename

    pending = {spec.filename: spec for spec in campaign.states
               if not (Path(library) / spec.filename).exists()}
    attempts: dict = {}
    for record in read_log(library):
        if record.get("event") not in ("crystallized", "rerun"):
            continue
        spec = pending.get(state_filename(record["interaction"], record["density"],
                                          record["temperature_target"], bool(record["equilibrated"])))
        if spec is not None:
            key = spec if record["event"] == "crystallized" else ("length", spec)
            attempts[key] = attempts.get(key, 0) + 1
    return attempts


def _restore_reruns(series, library: Path, settings) -> None:
    """Give pending states the longer run lengths their logged rejected runs asked for.

    A run judged too short for its measured tau_alpha, or still ageing, is redone longer
    (:func:`_rerun_lengths`); that decision lives in the client's memory, so without this a
    campaign restarted after a kill would repeat the rejected run from the warmer states'
    estimate. Records are matched to states by file name, as the library identifies them;
    the last record of a state wins.
    """
    from supercooled.library import state_filename

    owner = {spec.filename: (progress_, spec) for progress_ in series.values()
             for spec in progress_.specs}
    for record in read_log(library):
        if record.get("event") != "rerun":
            continue
        name = state_filename(record["interaction"], record["density"],
                              record["temperature_target"], bool(record["equilibrated"]))
        progress_, spec = owner.get(name, (None, None))
        if spec is not None and spec not in progress_.tau:
            progress_.override[spec] = _rerun_lengths(spec, record, settings)


def _ageing(summary: dict, settings) -> bool:
    """Whether the two production halves of an equilibrated run disagree beyond ``max_ageing``."""
    return summary.get("ageing_check", 0.0) > settings["max_ageing"]


def _rerun_lengths(spec: StateSpec, summary: dict, settings) -> tuple[float, float]:
    """Run lengths for redoing a rejected run, from its summary (or its logged record).

    Planned for 1.2 x the measured tau_alpha; if phi_s never reached 1/e, tau_alpha is taken as
    4 x production / ``production_tau_alpha`` (so the production grows 4.8-fold). A run that
    was still ageing also gets at least twice its equilibration.
    """
    tau = summary.get("tau_alpha", math.nan)
    if not math.isfinite(tau):
        tau = 4.0 * summary["production_time"] / settings["production_tau_alpha"]
    equilibration, production = run_lengths(spec, 1.2 * tau, settings)
    if _ageing(summary, settings):
        equilibration = min(max(equilibration, 2.0 * summary["equilibration_time"]),
                            settings["max_time"])
    return equilibration, production


def _choose_next(series, aged, in_flight, failed, settings, scratch=None, attempts=None,
                 rates=None):
    """The ready state with the smallest estimated cost still to run, with its run lengths.

    The cost is in atom-steps, or in seconds where ``rates`` (atom-steps per second, per
    interaction: :func:`measured_throughput`) knows the interaction. A state whose run was
    checkpointed before the campaign stopped costs only what is left of it, so interrupted
    runs are resumed before fresh ones of similar size start.
    """
    def left(spec, lengths):
        steps = cost_left(spec, lengths, settings, scratch, (attempts or {}).get(spec, 0))
        return steps / (rates or {}).get(spec.interaction, 1.0)

    candidates = []
    for progress_ in series.values():
        spec = progress_.next_pending(in_flight, failed)
        if spec is not None:
            tau = settings["tau_estimate_safety"] * estimate_tau_alpha(
                spec.temperature, progress_.warmer_points(spec), settings["first_tau_alpha_guess"])
            lengths = progress_.override.get(spec) or run_lengths(spec, tau, settings)
            candidates.append((left(spec, lengths), spec, lengths))
    for spec in aged:
        if spec not in in_flight:
            lengths = run_lengths(spec, 0.0, settings)
            candidates.append((left(spec, lengths), spec, lengths))
    if not candidates:
        return None
    _, spec, lengths = min(candidates, key=lambda c: c[0])
    return spec, lengths


def _handle(future, spec, series, aged, attempts, failed, log, settings) -> str:
    """Record the outcome of one finished future; queue reruns. Returns the outcome's name."""
    progress_ = series.get(spec.series) if spec.equilibrated else None
    if future.status == "error":
        error = future.exception()
        log.write("failed", spec, error=f"{type(error).__name__}: {error}",
                  traceback="".join(traceback.format_tb(future.traceback()))[-2000:])
        failed.add(spec)
        return "failed"
    summary = future.result()
    if summary["crystallized"]:
        attempts[spec] = attempts.get(spec, 0) + 1
        if attempts[spec] >= settings["max_attempts"]:
            log.write("dropped", spec, reason="crystallised in every attempt", **summary)
            failed.add(spec)
            return "dropped"
        log.write("crystallized", spec, **summary)
        if not spec.equilibrated:
            aged.append(spec)
        return "rerun"
    if not summary["accepted"]:
        attempts[("length", spec)] = attempts.get(("length", spec), 0) + 1
        if attempts[("length", spec)] > 2:
            log.write("failed", spec, error="still too short or ageing after two longer reruns", **summary)
            failed.add(spec)
            return "failed"
        progress_.override[spec] = _rerun_lengths(spec, summary, settings)
        reason = ("phi_s of the two production halves differ (still ageing)" if _ageing(summary, settings)
                  else "production shorter than the measured tau_alpha requires")
        log.write("rerun", spec, reason=reason, **summary)
        return "rerun"
    if spec.equilibrated:
        progress_.tau[spec] = summary["tau_alpha"]
    log.write("done", spec, **summary)
    return "done"


# --------------------------------------------------------------------------- provenance


def read_log(library) -> list[dict]:
    """Every event of ``campaign_log.jsonl`` in ``library`` (empty if there is none)."""
    path = Path(library) / LOG_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def library_table(library):
    """One row per state file: interaction, density, temperatures, tau_alpha, run lengths, checks."""
    import pandas as pd

    from supercooled.library import read_state

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
            "dt_rule": timestep_rule(float(attrs["dt"]), StatePoint(
                attrs["interaction"], float(attrs["density"]),
                float(attrs["temperature_target"]), int(attrs["n_particles"]))),
        })
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values(["interaction", "density", "equilibrated", "T_target"],
                                  ascending=[True, True, False, False], ignore_index=True)
    return table


def _quality_lines(table) -> list[str]:
    """README bullets on the checks: relative NVE energy drift and the two-halves ageing check.

    ``energy_drift`` is |dE/dt| t_prod / |<E>| over the whole production (see
    :func:`supercooled.md.energy_drift`), so at a constant rate it grows with the run length;
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
        "used before 2026-12-02; reduced dt = min(0.003 rho^(-1/3) T^(-1/2), 0.005), chosen from "
        "the drift study of chapter 2).")
    if len(ageing):
        lines.append(f"- Ageing check of the equilibrated states (largest |phi_s| difference "
                     f"between the two production halves): median {ageing.median():.3g}, "
                     f"largest {ageing.max():.3g}.")
    return lines


def write_library_readme(library, *, command: str, config: str, machine: str) -> Path:
    """Write ``library/README.md``: how the library was made, events, and a table of states."""
    library = Path(library)
    table, log = library_table(library), read_log(library)
    events = {}
    for event in log:
        events[event["event"]] = events.get(event["event"], 0) + 1
    core_seconds = sum(e.get("wall_time", 0.0) for e in log)
    in_library = set(table["file"]) if len(table) else set()

    def still_missing(event):  # a failure later redone successfully is not listed
        from supercooled.library import state_filename

        name = state_filename(event["interaction"], event["density"],
                              event["temperature_target"], bool(event["equilibrated"]))
        return name not in in_library

    failed = [e for e in log if e["event"] == "failed" and still_missing(e)]
    campaign = load_campaign(config) if Path(config).is_file() else None
    closed = closed_states(campaign, library) if campaign else {}
    n_tau = (campaign.settings if campaign else SETTINGS_DEFAULTS)["production_tau_alpha"]
    lines = [
        "# The state-point library",
        "",
        "One netCDF file per state point (schema in `design.md` and `supercooled.library`),",
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
        f"{core_seconds / 3600:.2f} core-hours. A lower bound: a run resumed from a checkpoint "
        "logs only its time after the resume, and a run cut off by the end of a session and "
        "redone from the start logs nothing for the lost part.",
        "- Events: " + ", ".join(f"{k} {v}" for k, v in sorted(events.items())) + ". "
        "A 'rerun' is a state redone longer because its production turned out shorter than "
        f"{n_tau:g} measured tau_alpha or its two production halves disagreed (still ageing); "
        "failures that a later attempt redid are not listed below.",
        *_quality_lines(table),
        "",
    ]
    if closed:
        lines += [f"## States of `{config}` not run (the end of their series, or dropped)", ""]
        lines += [f"- {s.interaction} rho={s.density} T={s.temperature}"
                  f"{'' if s.equilibrated else ' (aged)'}: {why}" for s, why in closed.items()]
        lines.append("")
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
    path = library / "README.md"
    path.write_text("\n".join(lines))
    return path
