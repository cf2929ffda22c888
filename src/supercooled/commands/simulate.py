"""``supercooled simulate``: run one state point of the Kob–Andersen mixture (see supercooled.md)."""

from __future__ import annotations

import argparse
import os


def register(subparsers) -> None:
    from supercooled.nve import NVE_START, NVE_STARTS

    parser = subparsers.add_parser(
        "simulate",
        help="molecular dynamics of one state point: NVT equilibration, NVE production, GSD output",
        description="Equilibrate a Kob-Andersen mixture at temperature T with a Nose-Hoover "
        "thermostat, then produce in NVE, writing RUN_DIR/trajectory.gsd (log-periodic frames), "
        "RUN_DIR/thermo.csv and RUN_DIR/run.json. Rerunning on a finished directory returns it; "
        "on an interrupted one it continues from the last checkpoint. For MPI, start it as "
        "'mpirun -np N python -m supercooled.cli simulate ...'.",
    )
    parser.add_argument("--interaction", required=True, choices=["LJ", "WCA"],
                        type=str.upper, help="pair potential")
    parser.add_argument("--density", required=True, type=float, metavar="RHO",
                        help="number density N/L^3 (sigma_AA^-3)")
    parser.add_argument("--temperature", required=True, type=float, metavar="T",
                        help="target temperature (eps_AA / k_B)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    parser.add_argument("--particles", type=int, default=None, metavar="N",
                        help="particle number, a multiple of 5 (default round(rho 10^3))")
    parser.add_argument("--equilibration-time", type=float, default=100.0, metavar="TIME",
                        help="NVT equilibration time in tau (default 100)")
    parser.add_argument("--production-time", type=float, default=100.0, metavar="TIME",
                        help="NVE production time in tau (default 100)")
    parser.add_argument("--block-time", type=float, default=None, metavar="TIME",
                        help="length of one block of the log-periodic frame schedule in tau "
                        "(default production/20, at least 100 steps)")
    parser.add_argument("--dt", type=float, default=None,
                        help="time step in tau (default: chosen per state for energy conservation)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--engine", choices=["lammps", "openmm", "hoomd"], default="lammps",
                        type=str.lower, help="MD engine (default lammps; openmm runs on CPU or a "
                        "GPU, see --platform; hoomd needs HOOMD-blue from conda-forge)")
    parser.add_argument("--platform", choices=["CPU", "CUDA", "OpenCL"], default=None,
                        type=_platform_name, help="OpenMM platform of --engine openmm "
                        "(default CPU; CUDA needs pip install 'openmm[cuda12]')")
    parser.add_argument("--threads", type=int, default=1,
                        help="OpenMP threads of the engine, CPU threads of OpenMM's CPU "
                        "platform (default 1)")
    parser.add_argument("--nve-start", choices=NVE_STARTS, default=NVE_START,
                        help="energy-matched (default): velocities scaled once at the switch "
                        "to NVE so that E is the thermostatted run's energy; "
                        "as-thermostatted: NVE continues from the thermostat's last velocities")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="overwrite RUN_DIR instead of returning/continuing the run in it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _platform_name(value: str) -> str:
    """The OpenMM platform's spelling (CPU, CUDA, OpenCL) of a name in any case."""
    return {"cpu": "CPU", "cuda": "CUDA", "opencl": "OpenCL"}.get(value.strip().lower(), value)


def _mpi_rank() -> int:
    """This process's MPI rank from the launcher's environment (MPICH/Hydra or Open MPI)."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        if name in os.environ:
            return int(os.environ[name])
    return 0


def run(args: argparse.Namespace) -> int:
    from supercooled.errors import SupercooledError, check_output_path
    from supercooled.md import simulate
    from supercooled.systems import StatePoint

    if args.platform is not None and args.engine != "openmm":
        raise SupercooledError(f"--platform applies to --engine openmm, not {args.engine}")
    # the state (density, N, box) and the run folder are checked before any MD starts
    state = StatePoint(args.interaction, args.density, args.temperature, args.particles)
    check_output_path(args.out, folder=True)
    result = simulate(state, args.out, equilibration_time=args.equilibration_time,
                      production_time=args.production_time, dt=args.dt, seed=args.seed,
                      engine=args.engine, block_time=args.block_time, threads=args.threads,
                      resume=args.resume, progress=not args.quiet, platform=args.platform,
                      nve_start=args.nve_start)
    if _mpi_rank() != 0:  # under mpirun every rank runs this; one summary line is enough
        return 0
    print(f"{state.label}: N = {state.n_particles}, T_measured = {result.temperature:.4f}, "
          f"energy drift = {result.energy_drift:.2e}, crystallized = {result.crystallized}, "
          f"{result.atom_steps_per_second:.3g} atom-steps/s -> {result.run_dir}")
    return 0
