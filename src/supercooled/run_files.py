"""The files of an MD run directory besides the trajectory, and their bookkeeping.

:func:`supercooled.md.simulate` writes, next to ``trajectory.gsd`` (:mod:`supercooled.trajectory`):

- ``thermo.csv``: the thermodynamic log, columns :data:`THERMO_COLUMNS`;
- ``run.json``: every setting and result, written when the run is done;
- while running: ``checkpoint_<step>.restart`` (engine state) and ``checkpoint.json`` (which
  restart file is current, where the run is and how many frames and log rows belong to that
  state). JSON files are replaced atomically, so replacing ``checkpoint.json`` is the single
  moment a checkpoint is committed; on resume the log and the trajectory are cut back to it.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from supercooled.errors import SupercooledError
from supercooled.nve import LEGACY_NVE_START
from supercooled.trajectory import TRAJECTORY_NAME

THERMO = "thermo.csv"
RUN_JSON = "run.json"
#: the state file ``supercooled measure`` writes into a run directory by default
STATE_NAME = "state.nc"
#: engine state files are named by step; checkpoint.json names the current one, so that
#: rewriting checkpoint.json (atomically) is the single moment a checkpoint is committed
CHECKPOINT_RESTART = "checkpoint_{step}.restart"
CHECKPOINT_JSON = "checkpoint.json"
THERMO_COLUMNS = ("step", "time", "temperature", "potential_energy", "kinetic_energy",
                  "total_energy", "pressure", "phase")


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def same_settings(stored: dict, settings: dict) -> bool:
    """Whether a record read back from JSON holds ``settings`` (compared as JSON, where
    tuples are lists). A record written before runs had an ``nve_start`` setting started NVE
    from the thermostat's last velocities (:data:`~supercooled.nve.LEGACY_NVE_START`)."""
    record = stored.get("settings")
    if isinstance(record, dict):
        record = {"nve_start": LEGACY_NVE_START} | record
    return record == json.loads(json.dumps(settings))


def committed_checkpoint(run_dir: Path) -> dict | None:
    """The record of ``run_dir``'s checkpoint if its restart file is there, else None."""
    path = run_dir / CHECKPOINT_JSON
    if not path.is_file():
        return None
    checkpoint = json.loads(path.read_text())
    return checkpoint if (run_dir / checkpoint.get("restart", "")).is_file() else None


def load_checkpoint(run_dir: Path, settings: dict) -> dict | None:
    """The committed checkpoint of ``run_dir``, or None; one of other settings is an error."""
    checkpoint = committed_checkpoint(run_dir)
    if checkpoint is None:
        return None
    if not same_settings(checkpoint, settings):
        raise SupercooledError(
            f"{run_dir} holds a checkpoint of a run with other settings; "
            "choose another directory or pass resume=False (--no-resume) to overwrite it")
    return checkpoint


def checkpoint_wall_time(run_dir: Path) -> float:
    """Wall seconds the run in ``run_dir`` had spent when its committed checkpoint was
    written (0 when it has none): what a resumed run adds to its own time."""
    return float((committed_checkpoint(run_dir) or {}).get("wall_time", 0.0))


def read_thermo(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def cut_thermo(path: Path, n_rows: int) -> None:
    """Keep the first ``n_rows`` rows of the log (rewrite, then rename)."""
    rows = read_thermo(path)[:n_rows]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, THERMO_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def clear(run_dir: Path) -> None:
    """Remove the run files of ``run_dir`` (a fresh start over an old run), with the state
    file measured from the old run (it would describe a trajectory that is gone)."""
    for name in (TRAJECTORY_NAME, THERMO, RUN_JSON, CHECKPOINT_JSON, STATE_NAME):
        (run_dir / name).unlink(missing_ok=True)
    remove_restarts(run_dir)


def discard_failed(run_dir: Path, created: list[Path]) -> None:
    """After a run failed: if it left nothing to resume from (no committed checkpoint, no
    finished run), remove its files and the folders the run created; else keep everything."""
    if (run_dir / CHECKPOINT_JSON).is_file() or (run_dir / RUN_JSON).is_file():
        return
    if run_dir.is_dir():
        clear(run_dir)
    remove_if_empty(created)


def remove_restarts(run_dir: Path, keep: str | None = None) -> None:
    """Delete the engine state files of checkpoints other than ``keep``."""
    for path in run_dir.glob("checkpoint_*.restart*"):
        if keep is None or not path.name.startswith(keep):
            path.unlink(missing_ok=True)


def missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) that are still empty; keep any holding a file."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty: it holds files worth keeping, and so do its parents
            return
