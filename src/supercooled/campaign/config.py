"""A campaign file: the series of state points to simulate, its settings, and their checks.

A campaign is a TOML file listing series of state points: one series is one (interaction,
density) with temperatures from hot to cold, plus optional aged-glass states below them.
The ``[campaign]`` table overrides :data:`SETTINGS_DEFAULTS` (what the run-length keys do is
described in :mod:`supercooled.campaign.policy`). Example::

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
one between two states whose tau_alpha differ much more than their neighbours'. A
``[[series]]`` or ``[[extend_series]]`` entry may set its series' own ``tau_alpha_max``.
Unknown tables or keys, wrong types and repeated states are errors
(:class:`~supercooled.errors.SupercooledError`, one line), never silently ignored.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from supercooled.errors import SupercooledError
from supercooled.library import state_filename
from supercooled.systems import StatePoint, density_scaled_temperature, normalize_interaction

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
        lowest = {"seed": 0, "skip_estimate_factor": 0.0, "max_attempts": 1,
                  "name": None, "reference_library": None,
                  "keep_trajectories": None}.get(key, "positive")
        if lowest == "positive" and isinstance(value, int | float) and not isinstance(value, bool) \
                and not value > 0:
            raise SupercooledError(f"{source}: [campaign] {key} must be positive, got {value!r}")
        if isinstance(lowest, int | float) and not isinstance(lowest, bool) and value < lowest:
            raise SupercooledError(f"{source}: [campaign] {key} must be at least {lowest}, got {value!r}")
    return settings


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


#: optional keys of a [[series]] or [grid] entry: (lowest value, whether it may equal it)
_ENTRY_NUMBERS = {"dt": (0.0, False), "age_time": (0.0, True),
                  "aged_production_time": (0.0, False), "rho_ref": (0.0, False),
                  "gamma": (None, True)}


def _check_entry(entry: dict, source: str, where: str) -> None:
    """Types and ranges of the settings of one [[series]], [grid] or [[extend_series]] entry,
    checked when the file is read, so that no state fails on a worker for its settings."""
    for key, (lowest, inclusive) in _ENTRY_NUMBERS.items():
        if key not in entry:
            continue
        value = entry[key]
        if not _is_number(value):
            raise SupercooledError(f"{source}: {where} {key} = {value!r} must be a number")
        if lowest is not None and (value < lowest or (value == lowest and not inclusive)):
            bound = "at least" if inclusive else "above"
            raise SupercooledError(f"{source}: {where} {key} must be {bound} {lowest:g}, "
                                   f"got {value!r}")
    n = entry.get("n_particles")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise SupercooledError(f"{source}: {where} n_particles = {n!r} must be an integer")
    for key in ("temperatures", "aged_temperatures", "densities"):
        if key in entry:
            # an [[extend_series]] entry without temperatures only sets its series' limit
            empty_ok = key == "aged_temperatures" or where == "[[extend_series]]"
            _number_list(entry[key], f"{where} {key}", source, empty_ok=empty_ok)
    if "interactions" in entry and (not isinstance(entry["interactions"], list)
                                    or not entry["interactions"]):
        raise SupercooledError(f"{source}: {where} interactions must be a non-empty list, "
                               f"got {entry['interactions']!r}")


def _number_list(values, what: str, source: str, empty_ok: bool = False) -> list[float]:
    """A list of finite numbers (not empty unless ``empty_ok``), or a one-line error."""
    if not isinstance(values, list):
        raise SupercooledError(f"{source}: {what} must be a list of numbers, got {values!r}")
    if not values and not empty_ok:
        raise SupercooledError(f"{source}: {what} is empty: give at least one value")
    bad = [v for v in values if not _is_number(v)]
    if bad:
        raise SupercooledError(f"{source}: {what} must hold numbers, got {bad[0]!r}")
    return [float(v) for v in values]


def _grid_series(grid: dict | None, source: str) -> list[dict]:
    if not grid:
        return []
    _check_entry(grid, source, "[grid]")
    rho_ref, gamma = grid.get("rho_ref", 1.2), grid.get("gamma", 5.0)
    missing = [k for k in ("interactions", "densities") if k not in grid]
    if missing:
        raise SupercooledError(f"{source}: [grid] lacks {', '.join(missing)}")
    entries = []
    for interaction in grid["interactions"]:
        reference = grid.get("reference_temperatures", {}).get(interaction)
        if not reference:
            raise SupercooledError(f"{source}: [grid.reference_temperatures] lacks {interaction}")
        reference = _number_list(reference, f"[grid.reference_temperatures] {interaction}",
                                 source)
        aged_reference = _number_list(
            grid.get("aged_reference_temperatures", {}).get(interaction, []),
            f"[grid.aged_reference_temperatures] {interaction}", source, empty_ok=True)
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
    _check_entry(entry, source, "[[series]]")
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
        _check_state(spec, source)
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
        _check_state(aged, source)
        campaign.aged.append(aged)


def _check_state(spec: StateSpec, source: str) -> None:
    """Density, temperature, N and box of a state, checked now (one line naming its series)."""
    try:
        spec.state  # noqa: B018 -- StatePoint validates on construction
    except SupercooledError as error:
        raise SupercooledError(f"{source}: {spec.interaction} rho={spec.density:g} "
                               f"T={spec.temperature:g}: {error}") from None


def _extend_series(campaign: Campaign, entry: dict, source: str) -> None:
    """Add temperatures to an existing series (e.g. one of the grid's); it stays hot to cold.

    Density scaling with a single gamma places some grid series too warm to reach
    ``tau_alpha_max``, and leaves uneven steps in tau_alpha where the liquid is more fragile
    than the reference; an ``[[extend_series]]`` entry continues such a series to colder
    states or fills a gap, without redefining it. A temperature already in the series is an
    error (it would be the same state file).
    """
    _check_entry(entry, source, "[[extend_series]]")
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
        _check_state(spec, source)
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


