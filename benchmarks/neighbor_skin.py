"""Cost of LAMMPS NVE production against the neighbour-list skin, relative to skin 0.3 sigma_AA.

The list is rebuilt whenever any particle has moved more than half the skin (``check yes``), so
every skin gives the same forces (tests/test_md.py); the skin trades pair-loop work (a thicker
shell holds more pairs) against rebuilds (a thinner one is rebuilt more often). The project uses
``supercooled.engines.lammps.NEIGHBOR_SKIN``.

Each state is quenched from a random configuration to its temperature and thermostatted for
``--equilibrate`` steps (vibrations set the rebuild rate in a supercooled liquid, so a short
equilibration is representative), checkpointed, and every skin then runs the same ``--steps``
NVE steps from that checkpoint, interleaved over ``--repeats`` so that load from other processes
hits all alike. Rates are atom-steps per CPU second of this process (serial OPT styles);
printed: each skin's median rate and its ratio to skin 0.3.

    python benchmarks/neighbor_skin.py [--steps 20000] [--repeats 2] \\
        [--skins 0.1 0.15 0.2 0.3 0.4 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from supercooled.engines import lammps
from supercooled.engines.lammps import LammpsEngine
from supercooled.md import default_timestep
from supercooled.systems import StatePoint

#: supercooled states of the library's slow series (N from the default box)
STATES = (StatePoint("LJ", 1.2, 0.45), StatePoint("LJ", 1.4, 0.985), StatePoint("LJ", 1.8, 3.15))
REFERENCE_SKIN = 0.3


def prepared_state(state: StatePoint, dt: float, steps: int, path: str) -> None:
    engine = LammpsEngine(state, dt=dt)
    rng = np.random.default_rng(1)
    engine.create(rng.uniform(0.0, state.box_length, (state.n_particles, 3)), 7)
    engine.use_thermostat(state.temperature, 100 * dt)
    engine.advance(steps)
    engine.checkpoint(path)
    engine.close()


def rate(state: StatePoint, dt: float, path: str, skin: float, steps: int) -> float:
    """NVE atom-steps per CPU second from the checkpoint at ``path`` with neighbour skin ``skin``."""
    lammps.NEIGHBOR_SKIN = skin  # read by the engine's settings on restore
    engine = LammpsEngine(state, dt=dt)
    engine.restore(path)
    engine.use_nve()
    engine.advance(100)  # the run with setup
    cpu = time.process_time()
    engine.advance(steps)
    cpu = time.process_time() - cpu
    engine.close()
    return state.n_particles * steps / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--equilibrate", type=int, default=5000)
    parser.add_argument("--skins", type=float, nargs="+", default=[0.1, 0.15, 0.2, 0.3, 0.4, 0.5])
    args = parser.parse_args()
    skins = sorted(set(args.skins) | {REFERENCE_SKIN})
    default = lammps.NEIGHBOR_SKIN
    with tempfile.TemporaryDirectory() as folder:
        for state in STATES:
            dt = default_timestep(state)
            path = os.path.join(folder, "state.restart")
            prepared_state(state, dt, args.equilibrate, path)
            rates = {skin: [] for skin in skins}
            for _ in range(args.repeats):
                for skin in skins:
                    rates[skin].append(rate(state, dt, path, skin, args.steps))
            lammps.NEIGHBOR_SKIN = default
            reference = statistics.median(rates[REFERENCE_SKIN])
            print(f"{state.interaction} rho = {state.density}, T = {state.temperature}, "
                  f"N = {state.n_particles}, dt = {dt:g}")
            for skin in skins:
                median = statistics.median(rates[skin])
                mark = "  (project default)" if skin == default else ""
                print(f"  skin {skin:<5g} {median / 1e6:6.3f} M atom-steps/s (CPU), "
                      f"{median / reference:5.3f} x skin {REFERENCE_SKIN}{mark}")


if __name__ == "__main__":
    main()
