"""Partial structure factors: supercooled.structure against freud's Direct and Debye methods.

Same configurations (Kob-Andersen LJ liquid frames from a short LAMMPS run), same 100 bins of
width 0.4 up to k = 40, same process and cores. Reported per method: seconds per frame (all
three partials AA, AB, BB), the speed-up over freud's Direct method, and the largest
deviation from Direct's S_ab(k) for k > 2 (absolute, and relative to S_AA):

- ``supercooled (octant)``: our code restricted to freud's wavevectors (n_x, n_y, n_z >= 0);
  the numbers must agree to rounding;
- ``supercooled (all)``: the default, every lattice vector (about 4x the independent vectors
  of freud's set, so it deviates from Direct by Direct's own sampling noise);
- ``freud Debye``: the isotropic Debye sum over pairs with minimum-image distances.

``AA/noise`` divides the S_AA deviation by the sampling noise expected of Direct's
wavevector set (S / sqrt(independent vectors)): values up to ~4 mean the deviation is
statistical.

Usage: ``python benchmarks/structure_factor.py [--particles 1200 1800] [--frames 3]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from supercooled.grids import K_GRID
from supercooled.structure import partial_structure_factors, shell_counts

PAIRS = ((0, 0), (0, 1), (1, 1))


def configurations(n_particles: int, n_frames: int, seed: int = 0):
    """Frames of an LJ liquid at rho = N / 1000 (L = 10), T = 2, from supercooled.md."""
    import gsd.hoomd

    from supercooled.md import simulate
    from supercooled.systems import StatePoint

    state = StatePoint("LJ", n_particles / 1000.0, 2.0, n_particles)
    with tempfile.TemporaryDirectory() as folder:
        result = simulate(state, Path(folder) / "run", equilibration_time=2.0,
                          production_time=2.0, block_time=0.5, seed=seed, progress=False)
        block = result.schedule["block_length_steps"]  # frames at block starts are far apart
        with gsd.hoomd.open(str(result.trajectory), "r") as trajectory:
            starts = [f for f in trajectory if f.configuration.step % block == 0][-n_frames:]
            frames = [f.particles.position.astype(float) for f in starts]
            typeid = starts[0].particles.typeid.astype(int)
    return frames, typeid, state.box_length


def freud_partials(method: str, frames, typeid, length):
    import freud

    box = freud.box.Box.cube(length)
    n = typeid.size
    out = np.zeros((3, K_GRID.size))
    for positions in frames:
        for p, (a, b) in enumerate(PAIRS):
            if method == "direct":
                sf = freud.diffraction.StaticStructureFactorDirect(bins=100, k_max=40.0, k_min=0.0)
            else:
                sf = freud.diffraction.StaticStructureFactorDebye(num_k_values=100, k_max=39.8,
                                                                  k_min=0.2)
            sf.compute((box, positions[typeid == a]), query_points=positions[typeid == b],
                       N_total=n)
            out[p] += np.asarray(sf.S_k, dtype=float)
    return out / len(frames)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def run(n_particles: int, n_frames: int) -> list[dict]:
    frames, typeid, length = configurations(n_particles, n_frames)
    # every method gets one untimed warm-up frame (BLAS and TBB threads, caches)
    partial_structure_factors(frames[0], typeid, length)
    for method in ("direct", "debye"):
        freud_partials(method, frames[:1], typeid, length)
    direct, t_direct = timed(freud_partials, "direct", frames, typeid, length)
    methods = {
        "freud Direct": (direct, t_direct),
        "freud Debye": timed(freud_partials, "debye", frames, typeid, length),
        "supercooled (octant)": timed(partial_structure_factors, frames, typeid, length,
                                      octant=True),
        "supercooled (all)": timed(partial_structure_factors, frames, typeid, length),
    }
    use = K_GRID > 2.0
    # Sampling noise of Direct's S_AA about the all-vector value: |rho(q)|^2/N scatters by
    # ~S per vector; freud's octant holds ~1/4 of the independent vectors (+-q count once).
    counts = shell_counts(length)[use].clip(1)
    noise = np.abs(methods["supercooled (all)"][0][0, use]) * np.sqrt(
        np.clip(4 / counts - 1 / counts, 0, None) / len(frames))
    rows = []
    for name, (values, seconds) in methods.items():
        deviation = np.abs(values - direct)[:, use]
        rows.append({
            "N": n_particles, "method": name, "s/frame": seconds / len(frames),
            "speed-up vs Direct": t_direct / seconds,
            "max |dS| (k>2)": deviation.max(),
            "max |dS_AA|/S_AA (k>2)": (deviation[0] / np.abs(direct[0, use])).max(),
            "max |dS_AA|/noise": (deviation[0] / noise).max(),
        })
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, nargs="+", default=[1200, 1800])
    parser.add_argument("--frames", type=int, default=3)
    args = parser.parse_args(argv)
    header = (f"{'N':>5} {'method':<22} {'s/frame':>9} {'x Direct':>9} {'max|dS|':>9} "
              f"{'rel AA':>9} {'AA/noise':>9}")
    print(header)
    for n in args.particles:
        for row in run(n, args.frames):
            print(f"{row['N']:>5} {row['method']:<22} {row['s/frame']:>9.3f} "
                  f"{row['speed-up vs Direct']:>9.1f} {row['max |dS| (k>2)']:>9.2e} "
                  f"{row['max |dS_AA|/S_AA (k>2)']:>9.2e} {row['max |dS_AA|/noise']:>9.2f}")


if __name__ == "__main__":
    main()
