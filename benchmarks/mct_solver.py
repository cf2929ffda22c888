"""Wall time of supercooled's MCT solver against PyPI ``mctpy`` on the same problem.

Same grid (k = 0.2 ... 39.8, dk = 0.4, N_k = 100), same Brownian dynamics (D0 = 1), same time
window (first step 1e-9 to t = 1e5), same points per block (256) and iteration accuracy:

1. one-component Percus–Yevick hard spheres at eta = 0.51 and 0.52 (liquid and glass);
2. a binary Percus–Yevick hard-sphere mixture (50:50, size ratio 1.2), N_k = 100.

mctpy (and its numba) may conflict with the project's pins, so it runs in its own virtual
environment: ``python -m venv /tmp/mctpy-venv && /tmp/mctpy-venv/bin/pip install
mctpy==0.0.2.post1``. This script re-invokes itself there (``--peer``) for the mctpy half
and prints one table with the ratios and the largest difference between the two solutions
of phi(k, t) on grids.TIME_GRID (both codes solve the same discretised equations up to the
details of the moments, so they must agree). Numba compilation is excluded on both sides
(one warm-up solve first). Run: ``python benchmarks/mct_solver.py [--peer-python PATH]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

K = (np.arange(100) + 0.5) * 0.4
T_INITIAL, T_MAX, BLOCK, ACCURACY = 1e-9, 1e5, 256, 1e-9
TIME_GRID = 0.005 * 10.0 ** (np.arange(81) / 10)
MIXTURE = {"fractions": [0.5, 0.5], "diameters": [1.0, 1.2], "eta": 0.5}


def _interp(t, values, times):
    logt = np.log(t[1:])
    out = np.full((times.size,) + values.shape[1:], np.nan)
    ok = times <= t[-1]
    flat = values[1:].reshape(t.size - 1, -1)
    cols = [np.interp(np.log(times[ok]), logt, flat[:, c]) for c in range(flat.shape[1])]
    out[ok] = np.stack(cols, -1).reshape((ok.sum(),) + values.shape[1:])
    return out


def peer(case: str) -> dict:
    """Run in the mctpy venv: time one solve, return times and phi on TIME_GRID."""
    import mctpy
    from mctpy.structurefactors import hssPY
    from mctpy.structurefactors.mixtures import hsmPY

    def build():
        if case.startswith("hs"):
            model = mctpy.simple_liquid_model(hssPY(float(case[2:])), K, D0=1.0)
        else:
            x, d = np.array(MIXTURE["fractions"]), np.array(MIXTURE["diameters"])
            n = 6 * MIXTURE["eta"] / (np.pi * np.sum(x * d**3))
            model = mctpy.mixture_model(hsmPY(n * x, d), K, D0=1.0)
        return mctpy.correlator(blocksize=BLOCK, h=T_INITIAL, Tend=T_MAX, accuracy=ACCURACY,
                                maxiter=10000, store=True, model=model, motion_type="brownian")

    try:
        build().solve_all()   # warm-up: numba compilation
    except Exception as error:   # the mixture solver may not compile with today's numba
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
    corr = build()
    start = time.perf_counter()
    corr.solve_all()
    wall = time.perf_counter() - start
    phi = np.asarray(corr.phi)
    if phi.ndim == 2:   # scalar model: phi normalised to 1 at t = 0
        phi = phi[:, :, None, None]
    on_grid = _interp(np.asarray(corr.t), phi, TIME_GRID)
    return {"wall": wall, "n_t": int(len(corr.t)), "phi": on_grid.tolist()}


def ours(case: str) -> dict:
    from supercooled import mct
    from supercooled.mct.statics import percus_yevick_mixture
    from supercooled.solver import SolverSettings, interpolate_log_time

    settings = SolverSettings(n_per_block=BLOCK, t_initial=T_INITIAL, t_max=T_MAX,
                              tolerance=ACCURACY)
    if case.startswith("hs"):
        system = mct.hard_sphere_system(float(case[2:]), K)
    else:
        x, d = np.array(MIXTURE["fractions"]), np.array(MIXTURE["diameters"])
        n = 6 * MIXTURE["eta"] / (np.pi * np.sum(x * d**3))
        system = mct.MCTSystem(K, percus_yevick_mixture(K, d, x, n), x, n)
    warm = SolverSettings(n_per_block=16, t_initial=T_INITIAL, t_max=1e-6)
    mct.solve_mct(system, dynamics="brownian", tagged=False, settings=warm)   # compile
    start = time.perf_counter()
    sol = mct.solve_mct(system, dynamics="brownian", friction=1.0, tagged=False,
                        settings=settings)
    wall = time.perf_counter() - start
    # mctpy's scalar model is normalised (phi = F / S); its mixture model is not
    F = sol.F / system.S[None] if case.startswith("hs") else sol.F
    return {"wall": wall, "n_t": int(sol.t.size), "phi": interpolate_log_time(sol.t, F, TIME_GRID)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--peer-python", default="/tmp/mctpy-venv/bin/python")
    parser.add_argument("--cases", nargs="+", default=["hs0.51", "hs0.52", "mixture"])
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(peer(args.peer)))
        return
    print(f"{'case':10s} {'ours [s]':>9s} {'mctpy [s]':>10s} {'mctpy/ours':>10s} "
          f"{'n_t ours/mctpy':>15s} {'max |dphi|':>11s}")
    for case in args.cases:
        mine = ours(case)
        result = subprocess.run([args.peer_python, str(Path(__file__).resolve()), "--peer", case],
                                capture_output=True, text=True)
        try:
            other = json.loads(result.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            other = {"error": (result.stderr.strip().splitlines() or ["no output"])[-1][:200]}
        if "error" in other:
            print(f"{case:10s} {mine['wall']:9.2f} {'failed':>10s}   mctpy: {other['error']}")
            continue
        diff = np.nanmax(np.abs(np.asarray(other["phi"]) - mine["phi"]))
        print(f"{case:10s} {mine['wall']:9.2f} {other['wall']:10.2f} "
              f"{other['wall'] / mine['wall']:10.2f} {mine['n_t']:>7d}/{other['n_t']:<7d} "
              f"{diff:11.2e}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
