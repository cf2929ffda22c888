"""Throughput of ``supercooled.md.simulate`` production against a bare LAMMPS run.

Both sides run the same system (Kob–Andersen LJ, rho = 1.2, T = 1.0, default box N = 1200,
dt = 0.005) for the same number of NVE steps in the same process, one after the other,
repeated and interleaved so that load from other processes hits both alike:

- supercooled: ``simulate`` production with the default log-periodic schedule (GSD frames,
  thermodynamic log, checkpoint), timed by the production clock of ``RunResult``;
- bare: the same LAMMPS engine set up the same way, then one ``run N`` in NVE with no output
  at all (what ``lmp -in`` with ``thermo 0`` and no dump does).

Both are timed in CPU seconds of this process (all threads) and in wall seconds. On a machine
shared with other jobs the wall-clock rates swing by factors of two between runs, the CPU
rates do not, so the CPU ratio is the verdict. Prints atom-steps per second of both and the
median of the paired ratios (target >= 0.9).

    python benchmarks/md_throughput.py [--steps 20000] [--repeats 3] [--threads 1]
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


def bare_rate(state: StatePoint, steps: int, dt: float, threads: int,
              seed: int) -> tuple[float, float]:
    engine = make_engine("lammps", state, dt=dt, threads=threads)
    rng = np.random.default_rng(seed)
    engine.create(rng.uniform(0, state.box_length, (state.n_particles, 3)), 1 + seed)
    engine.use_thermostat(state.temperature, 100 * dt)
    engine.advance(200)
    engine.use_nve()
    engine.advance(1)  # the run with setup, as the first production stop of simulate
    wall, cpu = time.perf_counter(), time.process_time()
    engine.lmp.command(f"run {steps} pre no post no")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.close()
    return state.n_particles * steps / cpu, state.n_particles * steps / wall


def supercooled_rate(state: StatePoint, steps: int, dt: float, threads: int, seed: int,
                     folder: Path) -> tuple[float, float, int]:
    result = simulate(state, folder / f"run{seed}", equilibration_time=200 * dt,
                      production_time=steps * dt, dt=dt, seed=seed, threads=threads,
                      resume=False, progress=False)
    frames = result.schedule["n_blocks"] * len(result.schedule["frame_offsets_steps"]) + 1
    atom_steps = state.n_particles * steps
    return atom_steps / result.production_cpu_time, result.atom_steps_per_second, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    state, dt = StatePoint("LJ", 1.2, 1.0), 0.005
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            cpu, wall, frames = supercooled_rate(state, args.steps, dt, args.threads, repeat,
                                                 Path(folder))
            ours.append((cpu, wall))
            bare.append(bare_rate(state, args.steps, dt, args.threads, repeat))
            print(f"repeat {repeat}: supercooled {cpu:.3e} (wall {wall:.3e}), bare "
                  f"{bare[-1][0]:.3e} (wall {bare[-1][1]:.3e}) atom-steps per CPU second "
                  f"({frames} GSD frames)", flush=True)
    print(f"N = {state.n_particles}, {args.steps} NVE steps, threads = {args.threads}")
    for label, index in (("CPU", 0), ("wall", 1)):
        ratio = statistics.median(a[index] / b[index] for a, b in zip(ours, bare, strict=True))
        print(f"{label:>4}: supercooled.simulate production "
              f"{statistics.median(a[index] for a in ours):.3e}, bare LAMMPS run "
              f"{statistics.median(b[index] for b in bare):.3e} atom-steps/s, "
              f"ratio {ratio:.3f}" + ("  (target >= 0.9)" if index == 0 else ""))


if __name__ == "__main__":
    main()
