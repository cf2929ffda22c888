"""Throughput of ``supercooled.md.simulate`` production against a bare LAMMPS run.

Both sides run the same system (Kob–Andersen LJ, rho = 1.2, T = 1.0, default box N = 1200,
dt = 0.005) for the same number of NVE steps in the same process, one after the other,
repeated and interleaved so that load from other processes hits both alike:

- supercooled: ``simulate`` production with the default log-periodic schedule (GSD frames,
  thermodynamic log, checkpoint), timed by ``RunResult.atom_steps_per_second``;
- bare: the same LAMMPS engine set up the same way, then one ``run N`` in NVE with no output
  at all (what ``lmp -in`` with ``thermo 0`` and no dump does).

Prints atom-steps per second of both and their ratio (target >= 0.9).

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


def bare_rate(state: StatePoint, steps: int, dt: float, threads: int, seed: int) -> float:
    engine = make_engine("lammps", state, dt=dt, threads=threads)
    rng = np.random.default_rng(seed)
    engine.create(rng.uniform(0, state.box_length, (state.n_particles, 3)), 1 + seed)
    engine.use_thermostat(state.temperature, 100 * dt)
    engine.advance(200)
    engine.use_nve()
    engine.advance(1)  # the run with setup, as the first production stop of simulate
    start = time.perf_counter()
    engine.lmp.command(f"run {steps} pre no post no")
    elapsed = time.perf_counter() - start
    engine.close()
    return state.n_particles * steps / elapsed


def supercooled_rate(state: StatePoint, steps: int, dt: float, threads: int, seed: int,
                     folder: Path) -> tuple[float, int]:
    result = simulate(state, folder / f"run{seed}", equilibration_time=200 * dt,
                      production_time=steps * dt, dt=dt, seed=seed, threads=threads,
                      resume=False, progress=False)
    frames = result.schedule["n_blocks"] * len(result.schedule["frame_offsets_steps"]) + 1
    return result.atom_steps_per_second, frames


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
            rate, frames = supercooled_rate(state, args.steps, dt, args.threads, repeat,
                                            Path(folder))
            ours.append(rate)
            bare.append(bare_rate(state, args.steps, dt, args.threads, repeat))
            print(f"repeat {repeat}: supercooled {ours[-1]:.3e}, bare {bare[-1]:.3e} "
                  f"atom-steps/s ({frames} GSD frames)", flush=True)
    ratio = [a / b for a, b in zip(ours, bare, strict=True)]
    print(f"N = {state.n_particles}, {args.steps} NVE steps, threads = {args.threads}")
    print(f"supercooled.simulate production: {statistics.median(ours):.3e} atom-steps/s")
    print(f"bare LAMMPS run:                 {statistics.median(bare):.3e} atom-steps/s")
    print(f"ratio (median of paired repeats): {statistics.median(ratio):.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
