"""Where a campaign stands: the event log, the states in the library, checkpoints in scratch.

Everything a restarted campaign (and ``--status``) knows comes from three places: the state
files in the library (a state is done when its file is there), the event log
``campaign_log.jsonl`` beside them (crystallised attempts, rejected runs and the longer lengths
they asked for, dropped states), and the checkpoints of interrupted runs in the scratch folder.
This module reads them into a :class:`SeriesProgress` per series and writes the log; the rules
applied to them are those of :mod:`supercooled.campaign.policy`.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from supercooled.campaign.config import Campaign, StateSpec
from supercooled.campaign.policy import cost, rerun_lengths, series_end, state_seed
from supercooled.errors import SupercooledError
from supercooled.library import read_state, state_filename
from supercooled.run_files import CHECKPOINT_JSON

LOG_NAME = "campaign_log.jsonl"


# -- the event log ------------------------------------------------------------------------

class EventLog:
    """Appends one JSON line per event (done, rerun, crystallized, dropped, failed, skipped)
    to ``campaign_log.jsonl`` in the library folder: the time, the event, the state
    (interaction, density, temperature_target, equilibrated) and the event's details."""

    def __init__(self, library: Path):
        self.path = Path(library) / LOG_NAME

    def write(self, event: str, spec: StateSpec, **info) -> None:
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "event": event,
                  "interaction": spec.interaction, "density": spec.density,
                  "temperature_target": spec.temperature, "equilibrated": int(spec.equilibrated)}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record | info) + "\n")


def read_log(library) -> list[dict]:
    """Every event of ``campaign_log.jsonl`` in ``library`` (empty if there is none).

    A line that is not a JSON object (e.g. half written when a campaign was killed) is skipped
    with a warning naming its line number, so one bad line cannot block later runs.
    """
    path = Path(library) / LOG_NAME
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            warnings.warn(f"{path} line {number} is not a JSON object: skipped", stacklevel=2)
    return records


def record_filename(record: dict) -> str:
    """The library file name of the state a log record is about (how records match states)."""
    return state_filename(record["interaction"], record["density"], record["temperature_target"],
                          bool(record["equilibrated"]))


# -- the series ---------------------------------------------------------------------------

@dataclass
class SeriesProgress:
    """One series of a campaign as far as it has run (the runner updates it as states finish)."""

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
        """Unfinished states below the cold end of the series, with the reason
        (:func:`~supercooled.campaign.policy.series_end`; ``passed``: failed or dropped
        states, which the series goes on below)."""
        limit = self.limit or self.settings["tau_alpha_max"]
        return series_end(self.specs, self.tau, self.points(), limit, self.settings, passed)


def finished_tau(library: Path, specs: list[StateSpec]) -> dict[StateSpec, float]:
    """tau_alpha of the states of a series that are already in the library."""
    done = {}
    for spec in specs:
        path = library / spec.filename
        if path.exists():
            done[spec] = float(read_state(path)["tau_alpha"])
    return done


def reference_points(folder: str) -> dict[tuple[str, float], list[tuple[float, float]]]:
    """(T_target, tau_alpha) of the equilibrated states of a reference library, per series."""
    if not folder:
        return {}
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


def series_progress(campaign: Campaign, library) -> dict[tuple[str, float], SeriesProgress]:
    """A :class:`SeriesProgress` per series, from the states already in ``library``."""
    reference = reference_points(campaign.settings["reference_library"])
    return {key: SeriesProgress(specs, finished_tau(Path(library), specs), campaign.settings,
                                campaign.limit(key), reference=reference.get(key, []))
            for key, specs in campaign.series.items()}


# -- the states ---------------------------------------------------------------------------

def closed_states(campaign: Campaign, library, series: dict | None = None) -> dict[StateSpec, str]:
    """States not in the library that the campaign will not run, with the reason.

    ``"skipped: ..."``: below the cold end of its series (:meth:`SeriesProgress.skipped`).
    ``"dropped: ..."``: logged as crystallised in every attempt. Failed states are not closed: a
    restart tries them again.
    """
    library = Path(library)
    names = {record_filename(e) for e in read_log(library) if e.get("event") == "dropped"}
    dropped = {spec: "dropped: crystallised in every attempt" for spec in campaign.states
               if spec.filename in names and not (library / spec.filename).exists()}
    closed = {}
    for progress_ in (series or series_progress(campaign, library)).values():
        closed |= {spec: f"skipped: {why}" for spec, why in progress_.skipped(dropped).items()}
    return closed | dropped


def pending_states(campaign: Campaign, library, series: dict | None = None) -> list[StateSpec]:
    """States of the campaign still to run: not in the library, not skipped and not dropped."""
    library = Path(library)
    closed = closed_states(campaign, library, series)
    return [s for s in campaign.states if not (library / s.filename).exists() and s not in closed]


def logged_attempts(campaign: Campaign, library) -> dict:
    """The attempt counters of the pending states, from the log (so a restart keeps them).

    ``attempts[spec]``: its crystallised runs, which set the seed of the next attempt
    (:func:`~supercooled.campaign.policy.state_seed`) and count towards ``max_attempts``;
    ``attempts[("length", spec)]``: its runs rejected as too short or still ageing (at most
    two longer reruns).
    """
    pending = {spec.filename: spec for spec in campaign.states
               if not (Path(library) / spec.filename).exists()}
    attempts: dict = {}
    for record in read_log(library):
        if record.get("event") not in ("crystallized", "rerun"):
            continue
        spec = pending.get(record_filename(record))
        if spec is not None:
            key = spec if record["event"] == "crystallized" else ("length", spec)
            attempts[key] = attempts.get(key, 0) + 1
    return attempts


def restore_reruns(series: dict, library: Path, settings: dict) -> None:
    """Give pending states the longer run lengths their logged rejected runs asked for.

    A run judged too short for its measured tau_alpha, or still ageing, is redone longer
    (:func:`~supercooled.campaign.policy.rerun_lengths`); that decision lives in the client's
    memory, so without this a campaign restarted after a kill would repeat the rejected run
    from the warmer states' estimate. Records are matched to states by file name, as the
    library identifies them; the last record of a state wins.
    """
    owner = {spec.filename: (progress_, spec) for progress_ in series.values()
             for spec in progress_.specs}
    for record in read_log(library):
        if record.get("event") != "rerun":
            continue
        progress_, spec = owner.get(record_filename(record), (None, None))
        if spec is not None and spec not in progress_.tau:
            progress_.override[spec] = rerun_lengths(spec, record, settings)


# -- checkpoints in scratch ---------------------------------------------------------------

def default_scratch(library) -> Path:
    """The scratch folder of a library's runs: ``.campaign-scratch`` beside the library."""
    return Path(library).absolute().parent / ".campaign-scratch"


def run_directory(scratch, spec: StateSpec, seed: int, lengths: tuple[float, float]) -> Path:
    """The scratch folder of one attempt: named by state, seed and run lengths."""
    return Path(scratch) / f"{Path(spec.filename).stem}-seed{seed}-{lengths[0]:.6g}-{lengths[1]:.6g}"


def checkpointed_fraction(run_dir: Path) -> float:
    """Fraction of a run's MD steps behind its last checkpoint (0 if it has none)."""
    path = Path(run_dir) / CHECKPOINT_JSON
    try:
        checkpoint = json.loads(path.read_text())
        settings = checkpoint["settings"]
        total = settings["equilibration_steps"] + settings["schedule"]["n_blocks"] * \
            settings["schedule"]["block_length_steps"]
        return min(1.0, max(0.0, checkpoint["engine_step"] / total))
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return 0.0


def cost_left(spec: StateSpec, lengths: tuple[float, float], settings: dict, scratch=None,
              attempt: int = 0) -> float:
    """Atom-steps still to run: :func:`~supercooled.campaign.policy.cost`, less what a
    checkpoint in ``scratch`` holds."""
    if scratch is None:
        return cost(spec, lengths)
    run_dir = run_directory(scratch, spec, state_seed(spec, settings["seed"], attempt), lengths)
    return cost(spec, lengths) * (1.0 - checkpointed_fraction(run_dir))
