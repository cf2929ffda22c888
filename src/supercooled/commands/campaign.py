"""`supercooled campaign`: fill the state-point library from a TOML campaign file."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "campaign",
        help="simulate and measure every state of a campaign file into the library (resumable)",
        description="Simulate and measure every state point of CONFIG.toml that is not yet in the "
        "library, on a dask LocalCluster (one worker per core) or an existing dask scheduler. "
        "Killing it loses at most the work since the last checkpoint of the states in flight "
        "(LAMMPS restart files, every 5 minutes); rerun the same command to resume. "
        "On SLURM, start workers with dask-jobqueue (SLURMCluster(...).scale(n)) and pass the "
        "scheduler address; the workers must see the library and its .campaign-scratch folder "
        "on a shared file system. One state runs per worker thread, counted as the cluster scales.",
    )
    parser.add_argument("config", help="campaign TOML file, e.g. campaigns/paper.toml")
    parser.add_argument("--library", default=None,
                        help="library folder (default: $SUPERCOOLED_LIBRARY, else data/library of "
                        "this repository)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="local workers, one per core (default: all cores)")
    parser.add_argument("--scheduler", default=None,
                        help="address of an existing dask scheduler, e.g. tcp://10.0.0.1:8786")
    parser.add_argument("--status", action="store_true",
                        help="only report what is done and what is left, run nothing")
    parser.set_defaults(func=run)


def run(args) -> int:
    from supercooled.campaign import load_campaign, run_campaign
    from supercooled.campaign.lock import LibraryLock
    from supercooled.campaign.reconcile import reconcile
    from supercooled.errors import SupercooledError
    from supercooled.paths import library_path

    if args.workers < 1:
        raise SupercooledError(f"--workers must be at least 1, got {args.workers}")
    if args.scheduler is not None:
        check_scheduler_address(args.scheduler)
    campaign = load_campaign(args.config)  # every setting checked before anything runs
    library = Path(args.library) if args.library else library_path()
    if library.exists() and not library.is_dir():
        raise SupercooledError(f"library {library} is a file, not a folder")
    if args.status:  # read only: no lock needed, nothing changed
        if _summary(campaign, library):
            print_plan(campaign, library, args.workers)
        return 0
    with LibraryLock(library):
        fixed = reconcile(campaign, library)
        if any(fixed.values()):
            print(f"reconciled the log with the library: {fixed['recorded']} states in the "
                  f"library got their done record, {fixed['removed']} orphaned scratch "
                  "folders removed")
        if not _summary(campaign, library):
            return 0
        counts = run_campaign(campaign, library, workers=args.workers, scheduler=args.scheduler)
    print(", ".join(f"{key}: {value}" for key, value in counts.items()))
    if counts.get("failed", 0):
        # a campaign whose states failed has not done its job: say so in the exit status
        print(f"supercooled: error: {counts['failed']} states failed; their errors are in "
              f"{library}/campaign_log.jsonl", file=sys.stderr)
        return 1
    return 0


def _summary(campaign, library) -> int:
    """Print what is done and what is left; return the number of states to do."""
    from supercooled.campaign.progress import closed_states, pending_states

    pending = pending_states(campaign, library)
    closed = closed_states(campaign, library)
    total = len(campaign.states)
    print(f"{campaign.settings['name']}: {total - len(pending) - len(closed)} of {total} states "
          f"in {library}, {len(closed)} skipped or dropped, {len(pending)} to do")
    if not pending:
        print("nothing left to do")
    return len(pending)


def check_scheduler_address(address: str) -> None:
    """A one-line error unless ``address`` looks like a dask scheduler's: [protocol://]host:port
    (checked before anything runs; an unreachable scheduler fails when connecting)."""
    from urllib.parse import urlsplit

    from supercooled.errors import SupercooledError

    text = address.strip()
    parsed = urlsplit(text if "://" in text else f"tcp://{text}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None or port == 0:
        raise SupercooledError(f"--scheduler {address!r} is not a scheduler address: give "
                               "host and port, e.g. tcp://10.0.0.1:8786")


def print_plan(campaign, library, workers: int) -> None:
    """The pending states with estimated tau_alpha and cost, and the time left they add up to."""
    from supercooled.campaign.report import (
        complete_rates,
        measured_throughput,
        plan_remaining,
        time_left,
    )

    rates = complete_rates(measured_throughput(library), campaign)
    rows = plan_remaining(campaign, library)
    print(f"{'state':<34} {'tau_alpha est.':>14} {'run (tau)':>18} {'core-h left':>14}  note")
    for row in rows:
        spec = row["spec"]
        hours = row["atom_steps"] / rates.get(spec.interaction, float("nan")) / 3600
        name = f"{spec.interaction} rho={spec.density} T={spec.temperature}" + \
            ("" if spec.equilibrated else " (aged)")
        note = "likely skipped" if row["likely_skipped"] else ("ready" if row["ready"] else "after warmer")
        note += ", rerun longer" if row["rerun"] else ""
        lengths = "{:.0f} + {:.0f}".format(*row["lengths"])
        print(f"{name:<34} {row['tau_estimate']:>14.3g} {lengths:>18} {hours:>14.2f}  {note}")
    if not rates:
        print("time left unknown until a run of at least two minutes is logged")
        return
    total, wall = time_left(rows, rates, workers)
    speeds = ", ".join(f"{k} {v / 1e6:.2f}" for k, v in sorted(rates.items()))
    print(f"estimated time left: {total:.1f} core-hours (one serial worker per core) at "
          f"{speeds} M atom-steps/s per worker "
          f"(median of the logged runs); with {workers} workers at least {wall:.1f} h (a series "
          "runs its states one after another); tau_alpha extrapolated from warmer states, so the "
          "cold end is a lower bound")
