"""Throughput of ``supercooled.md.simulate`` production: LAMMPS and OpenMM side by side, and
each against a bare run of the same engine.

All runs use the same system (Kob–Andersen LJ, rho = 1.2, T = 1.0, N particles, default
N = 1200 in the default box, dt = 0.005) and the same number of NVE steps, in the same process,
one after the other, repeated and interleaved so that load from other processes hits all alike:

- supercooled: ``simulate`` production with the default log-periodic schedule (GSD frames,
  thermodynamic log, checkpoint), timed by the production clock of ``RunResult``;
- bare: the same engine set up the same way, then one uninterrupted NVE run with no output at
  all (LAMMPS: ``run N pre no post no``, what ``lmp -in`` with ``thermo 0`` and no dump does;
  OpenMM: ``integrator.step(N)``).

Rates are atom-steps per second, in CPU seconds of this process (all threads) and in wall
seconds. On a machine shared with other jobs the wall-clock rates swing by factors of two
between runs, the CPU rates do not, so for CPU engines the CPU ratio is the verdict; for
OpenMM on a GPU (``--openmm-platform CUDA``) the wall rate is (the CPU only waits). Prints
each repeat and the medians: supercooled / bare per engine (target >= 0.9) and
OpenMM / LAMMPS (supercooled production of both).

    python benchmarks/md_throughput.py [--steps 20000] [--repeats 3] [--threads 1] \\
        [--particles 1200 ...] [--engines lammps openmm] [--openmm-platform CPU]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from supercooled.engines import make_engine
from supercooled.md import simulate
from supercooled.systems import StatePoint


def _platform(engine: str, platform: str) -> str | None:
    return platform if engine == "openmm" else None


def bare_rate(engine_name: str, state: StatePoint, steps: int, dt: float, threads: int,
              seed: int, platform: str) -> tuple[float, float]:
    engine = make_engine(engine_name, state, dt=dt, threads=threads,
                         platform=_platform(engine_name, platform))
    rng = np.random.default_rng(seed)
    engine.create(rng.uniform(0, state.box_length, (state.n_particles, 3)), 1 + seed)
    engine.use_thermostat(state.temperature, 100 * dt)
    engine.advance(200)
    engine.use_nve()
    engine.advance(1)  # the run with setup, as the first production stop of simulate
    wall, cpu = time.perf_counter(), time.process_time()
    if engine_name == "lammps":
        engine.lmp.command(f"run {steps} pre no post no")
    else:
        engine.integrator.step(steps)
        engine.context.getState(positions=True)  # wait for a GPU to finish
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.close()
    return state.n_particles * steps / cpu, state.n_particles * steps / wall


def supercooled_rate(engine: str, state: StatePoint, steps: int, dt: float, threads: int,
                     seed: int, platform: str, folder: Path) -> tuple[float, float, int]:
    result = simulate(state, folder / f"{engine}{seed}", equilibration_time=200 * dt,
                      production_time=steps * dt, dt=dt, seed=seed, threads=threads,
                      engine=engine, platform=_platform(engine, platform), resume=False,
                      progress=False)
    frames = result.schedule["n_blocks"] * len(result.schedule["frame_offsets_steps"]) + 1
    atom_steps = state.n_particles * steps
    return atom_steps / result.production_cpu_time, result.atom_steps_per_second, frames


def median_ratio(a, b, index) -> float:
    return statistics.median(x[index] / y[index] for x, y in zip(a, b, strict=True))


def benchmark(n_particles: int, args) -> None:
    state, dt = StatePoint("LJ", 1.2, 1.0, n_particles), 0.005
    ours = {e: [] for e in args.engines}
    bare = {e: [] for e in args.engines}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for engine in args.engines:
                cpu, wall, frames = supercooled_rate(engine, state, args.steps, dt, args.threads,
                                                     repeat, args.openmm_platform, Path(folder))
                ours[engine].append((cpu, wall))
                bare[engine].append(bare_rate(engine, state, args.steps, dt, args.threads,
                                              repeat, args.openmm_platform))
                print(f"N = {n_particles} repeat {repeat} {engine}: supercooled {cpu:.3e} "
                      f"(wall {wall:.3e}), bare {bare[engine][-1][0]:.3e} (wall "
                      f"{bare[engine][-1][1]:.3e}) atom-steps per CPU second ({frames} GSD "
                      "frames)", flush=True)
    platform = f", OpenMM platform {args.openmm_platform}" if "openmm" in args.engines else ""
    print(f"N = {state.n_particles}, {args.steps} NVE steps, threads = {args.threads}{platform}")
    for label, index in (("CPU", 0), ("wall", 1)):
        for engine in args.engines:
            print(f"{label:>4}: {engine} supercooled.simulate production "
                  f"{statistics.median(a[index] for a in ours[engine]):.3e}, bare run "
                  f"{statistics.median(b[index] for b in bare[engine]):.3e} atom-steps/s, "
                  f"ratio {median_ratio(ours[engine], bare[engine], index):.3f}"
                  + ("  (target >= 0.9)" if index == 0 else ""))
        if {"lammps", "openmm"} <= set(args.engines):
            print(f"{label:>4}: OpenMM / LAMMPS (simulate production) "
                  f"{median_ratio(ours['openmm'], ours['lammps'], index):.3f}, bare "
                  f"{median_ratio(bare['openmm'], bare['lammps'], index):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--particles", type=int, nargs="+", default=[1200])
    parser.add_argument("--engines", nargs="+", default=["lammps", "openmm"],
                        choices=["lammps", "openmm"])
    parser.add_argument("--openmm-platform", default="CPU", choices=["CPU", "CUDA", "OpenCL"])
    args = parser.parse_args()
    for n_particles in args.particles:
        benchmark(n_particles, args)


if __name__ == "__main__":
    main()
