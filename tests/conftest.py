"""Fixtures shared by several test files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import state_label


def make_synthetic_library(temperatures=(0.5, 0.7, 1.0, 1.5, 2.0, 3.0), densities=(1.2, 1.4),
                           interactions=("LJ", "WCA"), short_runs=True) -> xr.Dataset:
    """A small library with the library schema of the conventions page (book/conventions.md)
    and a known structure -> dynamics law.

    S_AA has a Gaussian main peak at k_0 = 7.2 (rho / 1.2)^(1/3) whose height grows as T
    falls; S_AB and S_BB carry weaker peaks. The dynamics are stretched exponentials
    phi_s^a = exp[-(t / tau_a)^0.8] with log tau_A = 2 / T - 1 (+ 0.3 for LJ) and
    tau_B = 0.7 tau_A, i.e. a smooth function of the features. Warm states sample only
    t < 10^2 (NaN beyond), as a short run would. Measured and target temperatures are equal;
    ``label`` is the library's state name.
    """
    k, t = K_GRID, TIME_GRID
    s_list, phi_list, meta = [], [], []
    for inter in interactions:
        for rho in densities:
            for temp in temperatures:
                k0 = 7.2 * (rho / 1.2) ** (1 / 3)
                h = 1.5 + 0.6 / temp
                peak = np.exp(-((k - k0) ** 2) / 0.8)
                s_aa = 0.8 + (h - 1.0) * peak * 0.8 - 0.6 * np.exp(-k / 1.5)
                s_ab = -0.3 * np.exp(-((k - 0.9 * k0) ** 2) / 1.0)
                s_bb = 0.2 + 0.25 * np.exp(-((k - 1.05 * k0) ** 2) / 1.2) / temp ** 0.2
                s_list.append(np.stack([s_aa, s_ab, s_bb]))
                tau_a = np.exp(2.0 / temp - 1.0 + (0.3 if inter == "LJ" else 0.0))
                phi = np.stack([np.exp(-(t / tau_a) ** 0.8), np.exp(-(t / (0.7 * tau_a)) ** 0.8)])
                if short_runs and temp >= 1.5:
                    phi[:, t > 1e2] = np.nan
                phi_list.append(phi)
                meta.append((inter, rho, temp))
    n = len(meta)
    s = np.array(s_list)
    kp = np.array([k[np.argmax(x[0])] for x in s])
    return xr.Dataset(
        {"S": (("state", "pair", "k"), s),
         "phi_s": (("state", "species", "time"), np.array(phi_list)),
         "msd": (("state", "species", "time"), np.full((n, 2, len(t)), np.nan)),
         "k_p": ("state", kp),
         "tau_alpha": ("state", np.full(n, np.nan))},
        coords={"k": k, "time": t, "pair": ["AA", "AB", "BB"], "species": ["A", "B"],
                "interaction": ("state", [m[0] for m in meta]),
                "density": ("state", [m[1] for m in meta]),
                "temperature": ("state", [m[2] for m in meta]),
                "temperature_target": ("state", [m[2] for m in meta]),
                "equilibrated": ("state", np.ones(n, int)),
                "crystallized": ("state", np.zeros(n, int)),
                "label": ("state", [state_label(*m) for m in meta])})


def write_state_files(ds: xr.Dataset, folder: Path) -> Path:
    """The states of a (synthetic) library Dataset as state files in ``folder``, each with the
    attributes a state file needs; returns the folder."""
    from supercooled.library import state_filename, write_state

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(ds.sizes["state"]):
        s = ds.isel(state=i)
        attrs = {"interaction": str(s.interaction.values), "density": float(s.density),
                 "temperature": float(s.temperature), "temperature_target": float(s.temperature),
                 "n_particles": 1200, "seed": i, "dt": 0.005, "engine": "synthetic",
                 "engine_version": "0", "equilibration_time": 1.0, "production_time": 1.0,
                 "energy_drift": 0.0, "crystallized": 0, "equilibrated": 1, "created": "test"}
        state = s.drop_vars([c for c in s.coords if c not in ("k", "time", "pair", "species")])
        state.attrs = attrs
        write_state(state, folder / state_filename(attrs["interaction"], attrs["density"],
                                                   attrs["temperature"]))
    return folder


@pytest.fixture(scope="session")
def state_files():
    """``state_files(ds, folder)``: write a library Dataset as state files (see
    :func:`write_state_files`)."""
    return write_state_files


@pytest.fixture(scope="session")
def synthetic_library():
    """Factory of synthetic libraries: ``synthetic_library(temperatures=..., densities=...,
    interactions=..., short_runs=True)`` (see :func:`make_synthetic_library`)."""
    return make_synthetic_library


# --- the memory equation: a known memory and the library state it produces -----------------

#: sampled times of the synthetic memory problems: 0.005 ... 500 tau
MEMORY_TIMES = TIME_GRID[:51]


@pytest.fixture
def one_exp_theta():
    """N_exp = 1 eq. 6 parameters: a cage-like memory with a plateau, decaying over ~ 1 tau."""
    from supercooled import memory

    return memory.pack(np.array([0.2, 0.05, 0.1]), np.array([[30.0], [4.0], [20.0]]),
                       np.array([[0.3], [0.1], [0.4]]), np.array([[0.8], [0.5], [1.2]]),
                       np.array([[0.8], [1.0], [0.7]]))


@pytest.fixture
def synthetic_state_file(one_exp_theta):
    """Factory: write a library state file (LJ, rho = 1.2) into a folder whose phi_s comes from
    the memory equation with ``one_exp_theta`` and the S(k) of a Percus-Yevick mixture."""
    from supercooled import mct, memory
    from supercooled.library import state_filename, write_state

    def write(folder, temperature=0.5):
        system = mct.binary_hard_sphere_system(0.45, fractions=(0.8, 0.2), size_ratio=0.8)
        i = int(np.argmax(system.S[:, 0, 0]))
        s_kp = [system.S[i, 0, 0], system.S[i, 0, 1], system.S[i, 1, 1]]
        base = memory.MemoryProblem(MEMORY_TIMES, np.ones((MEMORY_TIMES.size, 2)), s_kp,
                                    K_GRID[i], temperature)
        F = memory.solve_for_memory(base, one_exp_theta, 1)[0]
        phi = np.full((2, TIME_GRID.size), np.nan)
        phi[:, :MEMORY_TIMES.size] = (F / np.diag(base.f0)).T
        S = np.stack([system.S[:, 0, 0], system.S[:, 0, 1], system.S[:, 1, 1]])
        attrs = dict(interaction="LJ", density=1.2, temperature=temperature,
                     temperature_target=temperature, n_particles=1200, seed=1, dt=0.005,
                     engine="synthetic", engine_version="0", equilibration_time=1.0,
                     production_time=1.0, energy_drift=0.0, crystallized=0, equilibrated=1,
                     created="test")
        ds = xr.Dataset({"S": (("pair", "k"), S), "phi_s": (("species", "time"), phi),
                         "msd": (("species", "time"), np.zeros((2, TIME_GRID.size))),
                         "k_p": ((), float(K_GRID[i])), "tau_alpha": ((), 1.0)},
                        coords={"k": K_GRID, "time": TIME_GRID, "pair": ["AA", "AB", "BB"],
                                "species": ["A", "B"]}, attrs=attrs)
        return write_state(ds, Path(folder) / state_filename("LJ", 1.2, temperature))

    return write


# --- killing a run just after a production checkpoint (resume tests of every engine) -------

class RunKilled(Exception):
    """Raised by :func:`kill_after_checkpoint` in place of a kill."""


@pytest.fixture
def kill_after_checkpoint(monkeypatch):
    """Checkpoints at every chance, and a "kill" (RunKilled) five frames after the first
    production checkpoint holding a frame past the first. Pass ``.remember`` as the run's
    ``on_checkpoint``; ``.seen["checkpoint"]`` is that checkpoint; ``.stop()`` lets runs
    write frames again (for the resumed run)."""
    from types import SimpleNamespace

    from supercooled import md
    from supercooled.trajectory import gsd_frame

    seen = {"checkpoint": None, "frames": 0}

    def remember(run_dir, checkpoint):
        if checkpoint["phase"] == "production" and checkpoint["n_frames"] > 1:
            seen["checkpoint"] = seen["checkpoint"] or checkpoint

    def frame_then_die(*args):
        if seen["checkpoint"] is not None:
            seen["frames"] += 1
            if seen["frames"] > 5:
                raise RunKilled
        return gsd_frame(*args)

    monkeypatch.setattr(md, "CHECKPOINT_WALL_SECONDS", 0.0)
    monkeypatch.setattr("supercooled.trajectory.gsd_frame", frame_then_die)
    return SimpleNamespace(remember=remember, seen=seen, Killed=RunKilled,
                           stop=lambda: monkeypatch.setattr("supercooled.trajectory.gsd_frame",
                                                            gsd_frame))
