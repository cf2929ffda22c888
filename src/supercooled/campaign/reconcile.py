"""Making the event log and the scratch folder agree with the library when a campaign starts.

A worker puts a state's file into the library (atomically); only afterwards does the worker
remove the state's scratch folder and the client append the ``done`` record. A campaign killed
(or stopped with Ctrl-C) between those moments leaves a state in the library without its
record, and a scratch folder that nothing will remove. :func:`reconcile`, run under the
library's lock before anything is scheduled, repairs both:

- a state of the campaign whose file is in the library but has no ``done`` record gets one,
  built from the file, marked ``"reconciled": true`` (no wall time: it does not count towards
  the measured throughput);
- a scratch folder of an attempt of a state that is already in the library is removed. Only
  folders named for this campaign's states and seeds are touched (the scratch folder may be
  shared by the campaigns of several libraries), and a folder of a state still to do is kept:
  its checkpoint is what the state resumes from. With ``keep_trajectories`` nothing is removed.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from supercooled.campaign.config import Campaign, StateSpec
from supercooled.campaign.policy import state_seed
from supercooled.campaign.progress import EventLog, default_scratch, read_log, record_filename
from supercooled.library import read_state


def _done_record(path: Path) -> dict:
    """The details of a ``done`` record, read from a library state file."""
    data = read_state(path)
    info = {"reconciled": True, "accepted": True, "crystallized": False,
            "tau_alpha": float(data["tau_alpha"])}
    for key in ("temperature", "energy_drift", "equilibration_time", "production_time"):
        value = float(data.attrs[key])
        info[key] = value if math.isfinite(value) else None
    info["seed"] = int(float(data.attrs["seed"]))
    return info


def _attempt_folders(scratch: Path, spec: StateSpec, settings: dict) -> list[Path]:
    """The scratch folders of this campaign's attempts at ``spec`` (any run lengths)."""
    stem = Path(spec.filename).stem
    seeds = {str(state_seed(spec, settings["seed"], attempt))
             for attempt in range(settings["max_attempts"])}
    folders = []
    for folder in scratch.glob(f"{stem}-seed*"):
        seed = folder.name[len(stem) + len("-seed"):].split("-")[0]
        if folder.is_dir() and seed in seeds:
            folders.append(folder)
    return folders


def reconcile(campaign: Campaign, library, scratch=None) -> dict[str, int]:
    """Log the library's unrecorded states and remove their orphaned scratch folders.

    Returns ``{"recorded": ..., "removed": ...}``: ``done`` records written, scratch folders
    removed. Call it while holding the library's lock (:mod:`supercooled.campaign.lock`).
    """
    library = Path(library)
    scratch = Path(scratch) if scratch is not None else default_scratch(library)
    settings = campaign.settings
    logged = {record_filename(r) for r in read_log(library) if r.get("event") == "done"}
    log = EventLog(library)
    recorded = removed = 0
    for spec in campaign.states:
        path = library / spec.filename
        if not path.is_file():
            continue  # still to do: a checkpoint in scratch is what it resumes from
        if spec.filename not in logged:
            log.write("done", spec, **_done_record(path))
            recorded += 1
        if not settings["keep_trajectories"] and scratch.is_dir():
            for folder in _attempt_folders(scratch, spec, settings):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return {"recorded": recorded, "removed": removed}
