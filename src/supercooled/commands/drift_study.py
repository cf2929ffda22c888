"""``supercooled drift-study``: NVE energy drift against the reduced time step (see supercooled.drift)."""

from __future__ import annotations

import argparse

from supercooled.errors import SupercooledError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "drift-study",
        help="NVE energy drift per 1000 tau against the reduced time step, added to a CSV table",
        description="For each state, reduced step dt~ and seed: thermostatted equilibration, "
        "then NVE at dt = dt~ rho^(-1/3) (m/T)^(1/2), and the relative drift of the total "
        "energy per 1000 tau (least-squares slope). Runs already in OUT are skipped and OUT is "
        "rewritten after every run, so the study can be stopped and resumed.",
    )
    parser.add_argument("--state", action="append", required=True, type=_state,
                        metavar="INTERACTION:RHO:T",
                        help="a state point, e.g. LJ:1.8:3.2 (repeat for several)")
    parser.add_argument("--dt-reduced", required=True, type=_positive_list, metavar="LIST",
                        help="comma-separated reduced steps, e.g. 0.002,0.003,0.0045")
    parser.add_argument("--seeds", type=_seed_list, default=[1], metavar="LIST",
                        help="comma-separated seeds, one run each (default 1)")
    parser.add_argument("--equilibration-time", type=float, default=20.0, metavar="TIME",
                        help="thermostatted equilibration in tau (default 20)")
    parser.add_argument("--production-time", type=float, default=600.0, metavar="TIME",
                        help="NVE production in tau (default 600)")
    parser.add_argument("--out", required=True, metavar="CSV",
                        help="the study's table (created, or extended)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _state(text: str):
    from supercooled.systems import StatePoint

    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected INTERACTION:RHO:T, got {text!r}")
    try:
        return StatePoint(parts[0], float(parts[1]), float(parts[2]))
    except (ValueError, SupercooledError) as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None


def _numbers(text: str, kind):
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") \
            from None


def _positive_list(text: str) -> list[float]:
    values = _numbers(text, float)
    if not values or not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _seed_list(text: str) -> list[int]:
    values = _numbers(text, int)
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds, got {text!r}")
    return values


def run(args) -> int:
    from supercooled.drift import extend_study

    if not (args.equilibration_time >= 0 and args.production_time > 0):
        raise SupercooledError("equilibration time must be >= 0 and production time > 0")
    rows = extend_study(args.out, args.state, args.dt_reduced, seeds=args.seeds,
                        equilibration_time=args.equilibration_time,
                        production_time=args.production_time, progress=not args.quiet)
    print(f"{args.out}: {len(rows)} runs")
    return 0
