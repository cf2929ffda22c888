"""Memory-function fits of library states, and their results table.

The glue between the library (storage) and the memory equation (theory): it turns one library
state into a :class:`~supercooled.memory.MemoryProblem` (the eq. 1 targets F_aa = phi_s^a
S_aa(k_p) at the sampled times, S(k_p), T), chooses the start of the search (MCT's memory at
k_p fitted with eq. 6, as the paper does, or a data heuristic), runs the CMA-ES of
:mod:`supercooled.evolution`, and writes one row per fit to ``data/results/memory_fits.csv``
(``supercooled fit-memory --all``), resumable after an interruption.
"""

from __future__ import annotations

import numpy as np

from supercooled import memory
from supercooled.errors import SupercooledError
from supercooled.evolution import (
    FitResult,
    FitSettings,
    fit_memory,
    fit_nested,
    fit_parametrisation,
    heuristic_start,
)
from supercooled.library import state_labels, structure_at_peak, structure_matrix, target_curves
from supercooled.paths import results_path

RESULTS_FILE = "memory_fits.csv"


def problem_for_state(state, *, coupling: str = "paper", dynamics: str = "brownian",
                      exponent_max: float = memory.EXPONENT_RANGE[1]) -> memory.MemoryProblem:
    """The memory-equation problem of one library state (``ds.isel(state=i)``).

    ``exponent_max`` bounds the eq. 6 exponents (1: the completely monotone family of the
    memory predictor, see :mod:`supercooled.memory`). Its targets are the eq. 1 self functions F_aa(k_p, t) = phi_s^a(k_p, t) S_aa(k_p) at the
    sampled times, with S(k_p) and the measured temperature of the state; its label is the
    library's (file stem).
    """
    s_kp = structure_at_peak(state)
    target = target_curves(state.expand_dims("state"))[0]
    attrs = dict(state.attrs)
    # library.load_library turns the per-file attributes into coordinates along `state`
    for name in ("interaction", "density", "temperature", "temperature_target",
                 "equilibrated", "label"):
        if name in state.coords and state.coords[name].size == 1:
            attrs[name] = state.coords[name].item()
    label = state_labels(state)[0] if "label" in state.coords else str(attrs.get("label", ""))
    return memory.MemoryProblem(np.asarray(state["time"], dtype=float), target,
                                s_kp, float(state["k_p"]), float(attrs["temperature"]),
                                coupling=coupling, dynamics=dynamics, label=label, meta=attrs,
                                exponent_max=exponent_max)


#: Columns of data/results/memory_fits.csv before the parameter columns.
RESULT_COLUMNS = ("state", "interaction", "density", "temperature", "equilibrated", "n_exp",
                  "coupling", "dynamics", "start", "loss", "misfit", "r2", "r2_A", "r2_B",
                  "converged", "valid", "wall_time", "cpu_time", "generations", "evaluations",
                  "stop_reason", "seed", "sigma0", "lasso", "exponent_max")
#: What makes two rows fits of the same model to the same state.
KEY_COLUMNS = ["state", "n_exp", "coupling", "dynamics", "exponent_max"]
MAX_N_EXP = 3


def mct_memory(state, times, *, coupling: str = "paper", dynamics: str = "brownian",
               settings=None) -> np.ndarray:
    """MCT's memory matrix at k_p of one library state on ``times``: (n_t, 2, 2).

    Brownian MCT with unit friction is exactly eq. 5 (see :func:`supercooled.mct.mct_at_peak`):
    for ``coupling="paper"`` its collective M_ab(k_p, t) (same Omega^2 = k_p^2 T x S^-1),
    for ``coupling="self"`` the tagged diag(M_s,A, M_s,B) (Omega^2 = k_p^2 T I).
    """
    from supercooled import mct

    S = structure_matrix(state)
    kind = "collective" if memory.check_coupling(coupling) == "paper" else "tagged"
    _, m = mct.mct_memory_at_kp(S, float(state["density"]), float(state["temperature"]),
                                float(state["k_p"]), kind=kind, times=np.asarray(times, float),
                                dynamics=dynamics, settings=settings)
    return m


def mct_settings(t_max: float, n_per_block: int = 64):
    """Solver settings for the MCT start: 64 points per block from 1e-5 tau up to t_max
    (a start needs ~1 % accuracy, and this is ~4x cheaper than mct.solve_mct's default)."""
    from supercooled.solver import SolverSettings

    return SolverSettings(n_per_block=n_per_block, t_initial=memory.T_INITIAL,
                          t_max=float(t_max), tolerance=1e-10)


def start_parameters(state, problem, n_exp: int, start: str = "mct"):
    """Initial eq. 6 parameters and a label saying where they came from.

    ``mct``: MCT's memory at k_p fitted with eq. 6 (the paper's start); falls back to the
    data heuristic, saying why, when MCT cannot be evaluated. ``heuristic``: from the data.
    """
    if start == "mct":
        t = np.geomspace(problem.times[0], problem.times[-1], 60)
        try:
            m = mct_memory(state, t, coupling=problem.coupling, dynamics=problem.dynamics,
                           settings=mct_settings(problem.times[-1]))
        except (ImportError, SupercooledError) as error:
            return heuristic_start(problem, n_exp), f"heuristic (MCT failed: {error})"
        if not np.all(np.isfinite(m)):
            return heuristic_start(problem, n_exp), "heuristic (MCT memory not finite)"
        try:
            return fit_parametrisation(t, m, n_exp, problem.bounds), "mct"
        except (np.linalg.LinAlgError, ValueError) as error:
            # seen for WCA rho = 1.8 at T = 6.45: the least-squares fit of eq. 6 to MCT's
            # memory stops on a singular Jacobian (SVD did not converge)
            return heuristic_start(problem, n_exp), f"heuristic (eq. 6 fit to MCT failed: {error})"
    if start == "heuristic":
        return heuristic_start(problem, n_exp), "heuristic"
    raise SupercooledError(f"unknown start {start!r}: choose mct or heuristic")


def fit_state(state, settings: FitSettings | None = None, *, start: str = "mct",
              coupling: str = "paper", dynamics: str = "brownian",
              exponent_max: float = memory.EXPONENT_RANGE[1],
              solver_settings=None) -> FitResult:
    """Fit one library state: build its problem, choose the start, fit (CMA-ES + polish)."""
    settings = settings or FitSettings()
    problem = problem_for_state(state, coupling=coupling, dynamics=dynamics,
                                exponent_max=exponent_max)
    theta0, origin = start_parameters(state, problem, settings.n_exp, start)
    return fit_memory(problem, settings, start=theta0, start_label=origin,
                      solver_settings=solver_settings)


def fit_state_nested(state, n_exps, settings: FitSettings | None = None, *,
                     start: str = "mct", coupling: str = "paper", dynamics: str = "brownian",
                     exponent_max: float = memory.EXPONENT_RANGE[1],
                     solver_settings=None) -> dict[int, FitResult]:
    """Fits of one state with every N_exp of ``n_exps``, each the better of the fit from its
    own start (``start``) and the one warm-started from the next smaller N_exp
    (:func:`supercooled.evolution.fit_nested`): the loss never grows with N_exp."""
    settings = settings or FitSettings()
    problem = problem_for_state(state, coupling=coupling, dynamics=dynamics,
                                exponent_max=exponent_max)
    starts = {n: start_parameters(state, problem, n, start) for n in n_exps}
    return fit_nested(problem, n_exps, settings, starts=starts, solver_settings=solver_settings)


def result_row(result: FitResult) -> dict:
    """One row of the results table: state, N_exp, loss, R^2, wall time, all parameters.

    Parameter columns are those of N_exp = 3 (``AA_c, AA_w1, ...``); unused ones are NaN,
    so fits with different N_exp share one table.
    """
    meta = result.problem.meta
    row = {
        "state": result.problem.label,
        "interaction": meta.get("interaction", ""),
        "density": float(meta.get("density", np.nan)),
        "temperature": result.problem.temperature,
        "equilibrated": int(meta.get("equilibrated", 1)),
        "n_exp": result.n_exp,
        "coupling": result.problem.coupling,
        "dynamics": result.problem.dynamics,
        "start": result.start,
        "loss": result.loss, "misfit": result.misfit, "r2": result.r2,
        "r2_A": result.r2_A, "r2_B": result.r2_B, "converged": int(result.converged),
        "valid": int(result.valid),
        "wall_time": result.wall_time, "cpu_time": result.cpu_time,
        "generations": result.generations,
        "evaluations": result.evaluations, "stop_reason": result.stop_reason,
        "seed": result.settings.seed, "sigma0": result.settings.sigma0,
        "lasso": result.settings.lasso,
        "exponent_max": result.problem.exponent_max,
    }
    row.update(dict.fromkeys(memory.parameter_names(MAX_N_EXP), np.nan))
    row.update(result.parameters())
    return row


def theta_from_row(row, n_exp: int | None = None) -> np.ndarray:
    """Physical parameters of a results-table row (inverse of the parameter part of result_row)."""
    n_exp = int(row["n_exp"]) if n_exp is None else n_exp
    return np.array([float(row[name]) for name in memory.parameter_names(n_exp)])


def fit_plan(library, *, n_exps=(1, 2, 3), all_n_exp: int = 2,
             series_density: float | None = None) -> list[tuple[int, int]]:
    """(state index, N_exp) pairs: every state of one series per interaction with each of
    ``n_exps``, then every other equilibrated state with ``all_n_exp``. The series is the
    ``series_density`` one where it has states, else the density with most equilibrated
    states. Series come first so that an interrupted run already has the N_exp comparison."""
    inter = np.asarray(library["interaction"]).astype(str)
    dens = np.asarray(library["density"], dtype=float)
    temps = np.asarray(library["temperature"], dtype=float)
    equil = np.asarray(library["equilibrated"], dtype=bool) if "equilibrated" in library.coords \
        else np.ones(inter.size, bool)
    plan = []
    for interaction in np.unique(inter):
        mask = (inter == interaction) & equil
        if not mask.any():
            continue
        values, counts = np.unique(dens[mask], return_counts=True)
        chosen = values[np.argmax(counts)]
        if series_density is not None and np.any(np.isclose(values, series_density)):
            chosen = values[np.isclose(values, series_density)][0]
        series = np.flatnonzero(mask & (dens == chosen))
        series = series[np.argsort(temps[series])]
        plan += [(int(i), n) for i in series for n in sorted(set(n_exps) | {all_n_exp})]
    in_plan = {i for i, _ in plan}
    plan += [(int(i), all_n_exp) for i in np.flatnonzero(equil) if int(i) not in in_plan]
    return plan


def fit_library(library, out_csv, settings: FitSettings | None = None, *, n_exps=(1, 2, 3),
                series_density: float | None = 1.2, start: str = "mct",
                coupling: str = "paper", dynamics: str = "brownian",
                exponent_max: float = memory.EXPONENT_RANGE[1],
                resume: bool = True, progress: bool = True):
    """Fit the states of :func:`fit_plan` and write the table ``out_csv`` after every state.

    A state with several N_exp (the series) is fitted as a nested chain
    (:func:`fit_state_nested`), one with a single N_exp on its own (:func:`fit_state`). With
    ``resume`` rows already in ``out_csv`` (same state, N_exp, coupling and dynamics) are kept
    and their states skipped (a chain is refitted whole if any of its rows is missing), so an
    interrupted run continues where it stopped and fits of another model are added to the same
    table. Returns the table (pandas DataFrame).
    """
    import dataclasses
    from pathlib import Path

    import pandas as pd
    from tqdm import tqdm  # text bar: tqdm.auto warns in notebooks without ipywidgets

    settings = settings or FitSettings()
    out_csv = Path(out_csv)
    table = load_fits(out_csv) if resume and out_csv.exists() else pd.DataFrame()
    key_columns = KEY_COLUMNS
    done = set(map(tuple, table[key_columns].astype(str).values)) if len(table) else set()
    groups: dict[int, list[int]] = {}
    for index, n_exp in fit_plan(library, n_exps=n_exps, all_n_exp=settings.n_exp,
                                 series_density=series_density):
        groups.setdefault(index, []).append(n_exp)
    run_settings = dataclasses.replace(settings, progress=False)
    for index, wanted in tqdm(groups.items(), desc="memory fits", disable=not progress):
        state = library.isel(state=index)
        label = problem_for_state(state).label
        keys = [(label, str(n), coupling, dynamics, str(float(exponent_max))) for n in wanted]
        if all(key in done for key in keys):
            continue
        if len(wanted) > 1:
            results = fit_state_nested(state, wanted, run_settings, start=start,
                                       coupling=coupling, dynamics=dynamics,
                                       exponent_max=exponent_max).values()
        else:
            results = [fit_state(state, dataclasses.replace(run_settings, n_exp=wanted[0]),
                                 start=start, coupling=coupling, dynamics=dynamics,
                                 exponent_max=exponent_max)]
        if len(table):
            stale = table[key_columns].astype(str).apply(tuple, axis=1).isin(keys)
            table = table[~stale]
        table = pd.concat([table, pd.DataFrame([result_row(r) for r in results])],
                          ignore_index=True)
        done.update(keys)
        _write_atomically(table, out_csv)
    return table


def _write_atomically(table, out_csv) -> None:
    """Write the table to a temporary file and rename it: a reader never sees half a table."""
    from supercooled.atomic import replacing

    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out_csv) as tmp:  # hidden, the user's umask, errors name out_csv
        table.to_csv(tmp, index=False)


def load_fits(path=None):
    """The results table as a DataFrame (empty, with the columns, if the file is missing)."""
    from pathlib import Path

    import pandas as pd

    path = Path(path) if path is not None else results_path(RESULTS_FILE)
    if not path.is_file():
        return pd.DataFrame(columns=list(RESULT_COLUMNS) + memory.parameter_names(MAX_N_EXP))
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise SupercooledError(f"memory-fit table {path} cannot be read: {error}") from None
    missing = [c for c in ("state", "n_exp", "coupling", "dynamics", "converged", "valid")
               if c not in table]
    if missing:
        raise SupercooledError(f"{path} is not a memory-fit table (no column "
                               f"{', '.join(missing)})")
    # rows written before exponent_max was a column were fitted with the full range
    if "exponent_max" not in table:
        table["exponent_max"] = memory.EXPONENT_RANGE[1]
    table["exponent_max"] = table["exponent_max"].fillna(memory.EXPONENT_RANGE[1]).astype(float)
    return table


def model_of_row(row) -> dict:
    """The memory-equation model of a results row: coupling, dynamics and exponent_max."""
    return {"coupling": str(row.get("coupling", "paper")),
            "dynamics": str(row.get("dynamics", "brownian")),
            "exponent_max": float(row.get("exponent_max", memory.EXPONENT_RANGE[1]))}


def curves_from_row(row, state, times=None) -> dict:
    """Re-solve the memory equation for one results row on its library state.

    Returns ``times`` (the sampled ones), ``simulation`` and ``fit`` (n_t, 2) F_aa(k_p, t),
    ``memory`` (n_t, 2, 2) the fitted M(t) and ``problem``. ``times`` other than the sampled
    ones may be given for the memory only.
    """
    problem = problem_for_state(state, **model_of_row(row))
    n_exp = int(row["n_exp"])
    theta = theta_from_row(row, n_exp)
    fit = memory.solve_for_memory(problem, theta, n_exp)[0]
    t = problem.times if times is None else np.asarray(times, dtype=float)
    return {"times": problem.times, "simulation": problem.target, "fit": fit,
            "memory_times": t, "memory": memory.memory_matrix(t, theta, n_exp,
                                                            coupling=problem.coupling),
            "problem": problem}


def slow_weight(row, pair: str = "AA") -> float:
    """Weight of the slowest exponential, w_N / sum_i w_i, of one pair in a results row.

    Rows store exponentials ordered by tau (fastest first), so for N_exp = 2 this is the
    share of the second, slow, stretched exponential in M(0) - c. NaN for N_exp = 1.
    """
    n_exp = int(row["n_exp"])
    if n_exp < 2:
        return float("nan")
    w = np.array([float(row[f"{pair}_w{i}"]) for i in range(1, n_exp + 1)])
    return float(w[-1] / w.sum()) if w.sum() != 0 else float("nan")


def usable(table):
    """The fits that count for a conclusion: converged and with a valid fitted correlator."""
    return table[(table["converged"] == 1) & (table["valid"] == 1)]


def compare_with_mct(row, state, *, n_per_block: int = 32) -> dict:
    """The fitted memory of a results row against MCT's for the same equation, per species.

    For a = A, B, in units of the state's Omega^2_aa: ``integral_a`` = int_0^t_last M_aa dt
    of the fit and ``mct_integral_a`` of MCT (the friction each memory adds over the sampled
    window, t_last the last sampled time), and the long-time limits, ``limit_a`` =
    c + sum_i w_i a_i of the fit (the plateau it predicts) and ``mct_limit_a`` = MCT's M_aa at
    t_last (zero in a liquid that MCT lets relax). The integrals use the trapezoidal rule in
    ln t on 200 points from 1e-4 tau (the fast part of M is resolved there).
    """
    problem = problem_for_state(state, **model_of_row(row))
    n_exp = int(row["n_exp"])
    theta = theta_from_row(row, n_exp)
    t = np.geomspace(1e-4, problem.times[-1], 200)
    fitted = memory.memory_matrix(t, theta, n_exp, coupling=problem.coupling)
    mct = mct_memory(state, t, coupling=problem.coupling, dynamics=problem.dynamics,
                     settings=mct_settings(t[-1], n_per_block=n_per_block))
    parts = memory.unpack(theta, n_exp)
    out = {"state": row["state"]}
    for j, (species, pair) in enumerate((("A", 0), ("B", 2))):
        omega2 = problem.omega2[j, j]
        out[f"integral_{species}"] = float(np.trapezoid(fitted[:, j, j] * t, np.log(t)) / omega2)
        out[f"mct_integral_{species}"] = float(np.trapezoid(mct[:, j, j] * t, np.log(t)) / omega2)
        limit = parts["c"][pair] + np.sum(parts["w"][pair] * parts["a"][pair])
        out[f"limit_{species}"] = float(limit / omega2)
        out[f"mct_limit_{species}"] = float(mct[-1, j, j] / omega2)
    return out
