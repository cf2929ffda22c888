"""`supercooled campaign`: fill the state-point library from a TOML campaign file."""

from __future__ import annotations

import os


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "campaign",
        help="simulate and measure every state of a campaign file into the library (resumable)",
        description="Simulate and measure every state point of CONFIG.toml that is not yet in the "
        "library, on a dask LocalCluster (one worker per core) or an existing dask scheduler. "
        "Killing it loses only the states in flight; rerun the same command to resume. "
        "On SLURM, start workers with dask-jobqueue (SLURMCluster(...).scale(n)) and pass the "
        "scheduler address.",
    )
    parser.add_argument("config", help="campaign TOML file, e.g. campaigns/paper.toml")
    parser.add_argument("--library", default=None,
                        help="library folder (default: data/library of this repository)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="local workers, one per core (default: all cores)")
    parser.add_argument("--scheduler", default=None,
                        help="address of an existing dask scheduler, e.g. tcp://10.0.0.1:8786")
    parser.add_argument("--status", action="store_true",
                        help="only report what is done and what is left, run nothing")
    parser.set_defaults(func=run)


def run(args) -> int:
    from supercooled.campaign import load_campaign, pending_states, run_campaign
    from supercooled.errors import SupercooledError
    from supercooled.library import default_library_path

    if args.workers < 1:
        raise SupercooledError(f"--workers must be at least 1, got {args.workers}")
    campaign = load_campaign(args.config)
    library = args.library or default_library_path()
    pending = pending_states(campaign, library)
    total = len(campaign.states)
    print(f"{campaign.settings['name']}: {total - len(pending)} of {total} states in {library}")
    if args.status or not pending:
        if not pending:
            print("nothing left to do")
        return 0
    counts = run_campaign(campaign, library, workers=args.workers, scheduler=args.scheduler)
    print(", ".join(f"{key}: {value}" for key, value in counts.items()))
    return 0
