"""tau_alpha and energy drift of the OpenMM engine against the LAMMPS engine, several seeds.

Both engines run :func:`supercooled.md.simulate` with the same protocol (Kob–Andersen LJ,
rho = 1.2, T = 2.0, default box N = 1200, the default time step, ``equilibration_time`` of
Nose–Hoover NVT then ``production_time`` of NVE) for each seed; each run is measured like a
library state (:func:`supercooled.measure.measure_run`: tau_alpha = the 1/e time of
phi_s^A(k_p, t), k_p the peak of that run's S_AA(k); the conventions page,
book/conventions.md), and tau_alpha is also computed at one fixed k = 7.25 for all runs, which
removes the scatter of k_p. Prints one line per run and the seed means with their standard
errors; the issue's criterion is |mean_openmm / mean_lammps - 1| < 3 %.

    python benchmarks/openmm_validation.py [--seeds 3] [--particles 1200] \\
        [--equilibration-time 20] [--production-time 20] [--platform CPU]

Not a test: at the defaults it takes ~10 minutes on one core of this project's machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import xarray as xr

from supercooled.dynamics import self_isf, tau_alpha
from supercooled.md import simulate
from supercooled.measure import measure_run
from supercooled.systems import StatePoint
from supercooled.trajectory import read_trajectory

FIXED_K = 7.25


def measure(result) -> dict:
    state_file = measure_run(result.run_dir, progress=False)
    with xr.open_dataset(state_file) as ds:
        k_p, tau = float(ds["k_p"]), float(ds["tau_alpha"])
    trajectory = read_trajectory(result.trajectory)
    phi = self_isf(trajectory.positions, trajectory.steps, trajectory.typeid, FIXED_K, result.dt,
                   block_length=result.schedule["block_length_steps"])
    return {"tau_alpha": tau, "k_p": k_p, "tau_fixed_k": tau_alpha(phi[0]),
            "temperature": result.temperature, "drift": result.energy_drift,
            "cpu": result.production_cpu_time}


def mean_and_error(values) -> tuple[float, float]:
    mean = statistics.fmean(values)
    error = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return mean, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--particles", type=int, default=1200)
    parser.add_argument("--equilibration-time", type=float, default=20.0)
    parser.add_argument("--production-time", type=float, default=20.0)
    parser.add_argument("--platform", default="CPU")
    args = parser.parse_args()
    state = StatePoint("LJ", 1.2, 2.0, args.particles)
    rows = {"lammps": [], "openmm": []}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(1, args.seeds + 1):
            for engine in rows:
                platform = args.platform if engine == "openmm" else None
                result = simulate(state, Path(folder) / f"{engine}{seed}",
                                  equilibration_time=args.equilibration_time,
                                  production_time=args.production_time, seed=seed,
                                  engine=engine, platform=platform, progress=False)
                row = measure(result)
                rows[engine].append(row)
                print(f"{engine:>6} seed {seed}: tau_alpha {row['tau_alpha']:.4f} (k_p "
                      f"{row['k_p']:.3f}), at k = {FIXED_K} {row['tau_fixed_k']:.4f}, T "
                      f"{row['temperature']:.4f}, drift {row['drift']:.2e}, production "
                      f"{row['cpu']:.0f} CPU s", flush=True)
    print(f"LJ rho = 1.2, T = 2.0, N = {state.n_particles}, dt = {result.dt}, "
          f"{args.equilibration_time} tau NVT + {args.production_time} tau NVE, "
          f"{args.seeds} seeds, OpenMM platform {args.platform}")
    for key in ("tau_alpha", "tau_fixed_k", "temperature", "drift"):
        (a, da), (b, db) = (mean_and_error([r[key] for r in rows[e]]) for e in rows)
        print(f"{key:>12}: lammps {a:.4g} +- {da:.2g}, openmm {b:.4g} +- {db:.2g}, "
              f"openmm / lammps - 1 = {b / a - 1:+.2%}")


if __name__ == "__main__":
    main()
