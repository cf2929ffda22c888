"""From a trajectory to a state file: GSD -> S_ab(k), k_p, phi_s(k_p, t), MSD, tau_alpha, D.

The trajectory follows the contract of :mod:`supercooled.trajectory` (written by
:mod:`supercooled.md`; HOOMD-blue users may write the same), which also reads it. The time
step is the caller's (``dt=`` / ``--dt``) when given, else ``frame.log["supercooled/dt"]``,
else ``RUN_DIR/run.json`` ("dt"). The frame schedule is log-periodic (see
:func:`supercooled.dynamics.block_starts`); run.json's ``schedule.block_length_steps`` is used
when present, otherwise it is inferred.

``run.json`` supplies the state's attributes (interaction, density, target and measured
temperature, seed, engine, ...). Without it (a HOOMD user's own run) the density is N / L^3, the
temperature is the mean kinetic temperature of the stored velocities,
T = sum m v^2 / (3 N - 3) (NVE conserves the total momentum), and the interaction must be given
("LJ" or "WCA"). A given interaction must agree with run.json's; a given temperature replaces
the measured one of run.json or of the velocities. The interaction and the given numbers are
checked before the trajectory is read, all metadata before any S(k) or correlation is computed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from supercooled.dynamics import block_starts, diffusion_fit, self_correlations, tau_alpha
from supercooled.dynamics import to_time_grid as _to_time_grid
from supercooled.errors import SupercooledError, check_output_path, positive_number
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import write_state
from supercooled.run_files import RUN_JSON, STATE_NAME
from supercooled.structure import partial_structure_factors, peak_position
from supercooled.systems import PAIRS, SPECIES, normalize_interaction
from supercooled.trajectory import TRAJECTORY_NAME, Trajectory, check_gsd_file, read_trajectory

#: Frames used for S(k): block starts, evenly spaced, at most this many (equilibrium average).
MAX_STRUCTURE_FRAMES = 50
#: Time origins used for phi_s and the MSD, evenly spaced over the run, at most this many.
MAX_ORIGINS = 400


def _read_run_json(run_dir: Path | None) -> dict:
    if run_dir is None or not (run_dir / RUN_JSON).is_file():
        return {}
    path = run_dir / RUN_JSON
    try:
        run = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SupercooledError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(run, dict):
        raise SupercooledError(f"{path} must hold a JSON object, got {type(run).__name__}")
    for key in ("state", "schedule"):
        if run.get(key) is not None and not isinstance(run[key], dict):
            raise SupercooledError(f"{path}: {key!r} must be a JSON object, got "
                                   f"{type(run[key]).__name__}")
    return run


def _resolve_paths(run_dir_or_gsd) -> tuple[Path, Path | None]:
    path = Path(run_dir_or_gsd)
    if path.is_dir():
        gsd_path = path / TRAJECTORY_NAME
        if not gsd_path.is_file():
            raise SupercooledError(f"run directory {path} holds no {TRAJECTORY_NAME}")
        return gsd_path, path
    if path.is_file():
        if path.suffix != ".gsd":
            raise SupercooledError(f"{path} is not a .gsd trajectory or a run directory")
        return path, path.parent
    raise FileNotFoundError(2, "No such run directory or trajectory", str(path))


def _time_step(trajectory: Trajectory, run: dict, dt) -> float:
    for value in (dt, trajectory.dt, run.get("dt")):
        if value is not None:
            return positive_number("time step dt", value)
    raise SupercooledError("the time step is not in the trajectory log nor in run.json: "
                           "pass it with --dt")


def _structure_frames(trajectory: Trajectory, origins: np.ndarray, max_frames: int) -> np.ndarray:
    """Evenly spaced block starts (well-separated configurations) for the S(k) average."""
    candidates = origins if origins.size >= 2 else np.arange(trajectory.steps.size)
    pick = np.unique(np.linspace(0, candidates.size - 1, min(max_frames, candidates.size))
                     .round().astype(int))
    return candidates[pick]


def _interaction(run: dict, interaction) -> str:
    """"LJ" or "WCA": the given interaction, which must agree with run.json's, else run.json's."""
    stored = (run.get("state") or {}).get("interaction")
    if interaction:
        given = normalize_interaction(interaction)
        if stored and normalize_interaction(stored) != given:
            raise SupercooledError(f"interaction {interaction!r} contradicts run.json, which says "
                                   f"{stored!r}: leave out --interaction for a run with run.json")
        return given
    if not stored:
        raise SupercooledError("no run.json with the interaction: pass --interaction LJ or WCA")
    return normalize_interaction(stored)


def _attributes(trajectory, run, dt, equilibrated, interaction, temperature):
    state = run.get("state") or {}
    interaction = _interaction(run, interaction)
    density = state.get("density", trajectory.n_particles / trajectory.box_length**3)
    measured = temperature if temperature is not None else run.get("temperature")
    if measured is None:
        measured = trajectory.kinetic_temperature
    if measured is None:
        raise SupercooledError("no run.json and no velocities in the trajectory: "
                               "pass --temperature")
    target = run.get("temperature_target", state.get("temperature", measured))
    if equilibrated is None:
        equilibrated = run.get("equilibrated", True)
    production = run.get("production_time")
    if production is None:
        production = float(trajectory.steps[-1] - trajectory.steps[0]) * dt

    def number(key, default=float("nan")):
        value = run.get(key)
        try:
            return default if value is None else float(value)
        except (TypeError, ValueError):
            raise SupercooledError(f"run.json: {key} must be a number, got {value!r}") from None

    seed = run.get("seed")
    try:
        seed = -1 if seed is None else int(seed)
    except (TypeError, ValueError):
        raise SupercooledError(f"run.json: seed must be an integer, got {seed!r}") from None

    # how the NVE production started (supercooled.nve); unknown without a run.json
    nve_start = {} if "nve_start" not in run else {
        "nve_start": str(run["nve_start"]),
        "nve_velocity_scale": number("nve_velocity_scale")}
    return nve_start | {
        "interaction": interaction,
        "density": positive_number("density", density),
        "temperature": positive_number("temperature", measured),
        "temperature_target": positive_number("target temperature", target),
        "n_particles": trajectory.n_particles,
        "seed": seed,
        "dt": dt,
        "engine": str(run.get("engine") or "unknown"),
        "engine_version": str(run.get("engine_version") or ""),
        "equilibration_time": number("equilibration_time"),
        "production_time": float(production),
        "energy_drift": number("energy_drift"),
        "crystallized": int(bool(run.get("crystallized", False))),
        "equilibrated": int(bool(equilibrated)),
        "created": str(run.get("created") or datetime.now(UTC).isoformat(timespec="seconds")),
        "box_length": trajectory.box_length,
    }


def measure_trajectory(trajectory: Trajectory, run: dict | None = None, *, dt=None,
                       equilibrated=None, interaction=None, temperature=None,
                       max_structure_frames: int = MAX_STRUCTURE_FRAMES,
                       max_origins: int = MAX_ORIGINS, progress: bool = False) -> xr.Dataset:
    """The state Dataset (library schema) of a trajectory already in memory."""
    run = run or {}
    dt = _time_step(trajectory, run, dt)
    # metadata first: a bad interaction or temperature must fail before the expensive part
    attrs = _attributes(trajectory, run, dt, equilibrated, interaction, temperature)
    block_length = run.get("schedule", {}).get("block_length_steps")
    origins, block_length = block_starts(trajectory.steps, block_length)
    frames = _structure_frames(trajectory, origins, max_structure_frames)
    structure = partial_structure_factors(trajectory.positions[frames], trajectory.typeid,
                                          trajectory.box_length, progress=progress)
    k_p = peak_position(structure[0])
    lags = self_correlations(trajectory.positions, trajectory.steps, trajectory.typeid, k_p,
                             origins=origins, max_origins=max_origins, split_halves=True,
                             progress=progress)
    phi_s, first, second = (_to_time_grid(p.times(dt), p.phi, p.counts, kind="isf") for p in lags)
    msd = _to_time_grid(lags[0].times(dt), lags[0].msd, lags[0].counts, kind="msd")
    both = np.isfinite(first) & np.isfinite(second)
    ageing = float(np.max(np.abs(first - second)[both])) if both.any() else float("nan")
    attrs.update(measured=datetime.now(UTC).isoformat(timespec="seconds"),
                 block_length_steps=int(block_length), n_origins=int(min(origins.size, max_origins)),
                 n_frames=int(trajectory.steps.size), n_structure_frames=int(frames.size))
    ds = xr.Dataset(
        {
            "S": (("pair", "k"), structure),
            "phi_s": (("species", "time"), phi_s),
            "msd": (("species", "time"), msd),
            "k_p": ((), k_p),
            "tau_alpha": ((), tau_alpha(phi_s[0])),
            **diffusion_variables(msd),
            "phi_s_first_half": (("species", "time"), first),
            "phi_s_second_half": (("species", "time"), second),
            "ageing_check": ((), ageing),
        },
        coords={"k": K_GRID, "time": TIME_GRID, "pair": list(PAIRS), "species": list(SPECIES),
                "bound": ["start", "end"]},
        attrs=attrs,
    )
    _describe(ds)
    return ds


def diffusion_variables(msd) -> dict:
    """The library's diffusion variables from the MSD of both species (2, n_time):
    ``D`` (species), its fit window ``D_window`` (species, bound = start, end, in tau), the
    slope ``D_exponent`` of ln MSD against ln t over it (1 when diffusive) and ``D_diffusive``
    (1 if the window lies where MSD >= 1 sigma_AA^2, 0 for an estimate from a run too short
    to reach that; :func:`supercooled.dynamics.diffusion_fit`)."""
    fits = [diffusion_fit(m) for m in msd]
    return {"D": (("species",), [f.D for f in fits]),
            "D_window": (("species", "bound"), [list(f.window) for f in fits]),
            "D_exponent": (("species",), [f.exponent for f in fits]),
            "D_diffusive": (("species",), [int(f.diffusive) for f in fits])}


def refit_diffusion(path) -> Path:
    """Recompute the diffusion variables of a state file from its stored MSD and rewrite it
    (atomically). For the files made before D carried its window: their D was NaN where the
    MSD covered fewer than three grid points beyond 1 sigma_AA^2."""
    from supercooled.library import read_state, write_state

    state = read_state(path)
    msd = state["msd"].transpose("species", "time").values
    updated = state.drop_vars([n for n in ("D", "D_window", "D_exponent", "D_diffusive")
                               if n in state]).assign(diffusion_variables(msd))
    updated = updated.assign_coords(bound=["start", "end"])
    updated["D"].attrs["units"] = "sigma_AA^2 / tau"
    updated["D_window"].attrs["units"] = "tau"
    return write_state(updated, path)


def _describe(ds: xr.Dataset) -> None:
    units = {"k": "sigma_AA^-1", "time": "tau", "msd": "sigma_AA^2", "k_p": "sigma_AA^-1",
             "tau_alpha": "tau", "D": "sigma_AA^2 / tau", "D_window": "tau"}
    for name, unit in units.items():
        ds[name].attrs["units"] = unit
    ds["S"].attrs["long_name"] = "partial structure factor (1/N) <rho_a(k) rho_b(-k)>"
    ds["phi_s"].attrs["long_name"] = "self intermediate scattering function at k_p"
    ds["ageing_check"].attrs["long_name"] = "max |phi_s(first half) - phi_s(second half)|"


def default_output(gsd_path: Path, run_dir: Path | None) -> Path:
    """RUN_DIR/state.nc for a run directory or trajectory.gsd; <stem>.state.nc for another .gsd."""
    if gsd_path.name == TRAJECTORY_NAME and run_dir is not None:
        return run_dir / STATE_NAME
    return gsd_path.with_suffix(".state.nc")


def measure_run(run_dir_or_gsd, out=None, *, dt=None, progress: bool = True, equilibrated=None,
                interaction=None, temperature=None,
                max_structure_frames: int = MAX_STRUCTURE_FRAMES) -> Path:
    """Measure a run (directory or .gsd) and write its state file; return the file's path.

    ``out`` defaults to RUN_DIR/state.nc. ``dt`` and ``temperature`` override or complete what
    the trajectory and run.json say; ``interaction`` ("LJ" or "WCA") is needed without run.json
    and must agree with it otherwise; ``equilibrated=False`` marks an aged glass (default:
    run.json's "equilibrated", else True). Bad metadata, a file that is not GSD, or an output
    that cannot be written or is an input raises :class:`~supercooled.errors.SupercooledError`
    before the trajectory is read; nothing is written then.
    """
    gsd_path, run_dir = _resolve_paths(run_dir_or_gsd)
    check_gsd_file(gsd_path)
    run = _read_run_json(run_dir)
    target = Path(out) if out is not None else default_output(gsd_path, run_dir)
    check_output_path(target, inputs=(gsd_path, run_dir / RUN_JSON if run_dir else None))
    _interaction(run, interaction)
    if temperature is not None:
        positive_number("temperature", temperature)
    if dt is not None:
        positive_number("time step dt", dt)
    trajectory = read_trajectory(gsd_path, progress=progress)
    ds = measure_trajectory(trajectory, run, dt=dt, equilibrated=equilibrated,
                            interaction=interaction, temperature=temperature,
                            max_structure_frames=max_structure_frames, progress=progress)
    return write_state(ds, target)
