"""``supercooled measure RUN_DIR_OR_GSD``: trajectory -> state file (S_ab, phi_s, MSD, tau_alpha)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "measure",
        help="measure S_ab(k), k_p, phi_s(k_p, t), MSD, tau_alpha and D of a trajectory",
        description="Measure a run directory (trajectory.gsd + run.json) or any GSD trajectory "
        "with particle types A and B and a log-periodic frame schedule, and write one state "
        "file of the library schema (RUN_DIR/state.nc unless --out is given).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN_DIR_OR_GSD", help="run directory or .gsd file")
    parser.add_argument("--out", metavar="STATE.nc", default=None,
                        help="output state file (default: RUN_DIR/state.nc)")
    parser.add_argument("--dt", type=float, default=None,
                        help="MD time step in tau; overrides the GSD log and run.json "
                        "(needed if neither has it)")
    parser.add_argument("--interaction", default=None,
                        help="LJ or WCA; needed if there is no run.json (e.g. a HOOMD-blue "
                        "run), an error if it contradicts run.json")
    parser.add_argument("--temperature", type=float, default=None,
                        help="measured temperature to record; overrides run.json and the "
                        "stored velocities (needed if there are neither)")
    parser.add_argument("--aged", action="store_true",
                        help="mark the state as not equilibrated (an aged glass)")
    parser.add_argument("--structure-frames", type=int, default=50,
                        help="at most this many frames (block starts) are averaged for S(k)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    from supercooled.errors import SupercooledError
    from supercooled.library import read_state
    from supercooled.measure import measure_run

    if args.structure_frames < 1:
        raise SupercooledError("--structure-frames must be at least 1")
    path = measure_run(args.run, args.out, dt=args.dt, progress=not args.quiet,
                       equilibrated=False if args.aged else None,
                       interaction=args.interaction, temperature=args.temperature,
                       max_structure_frames=args.structure_frames)
    ds = read_state(path)
    print(f"wrote {path}: {ds.attrs['interaction']} rho = {ds.attrs['density']:.3f} "
          f"T = {ds.attrs['temperature']:.4f}, k_p = {float(ds['k_p']):.3f}, "
          f"tau_alpha = {float(ds['tau_alpha']):.4g}")
    return 0
