"""CMA-ES fit of the eq. 6 memory function to simulated F_s(k_p, t) (the paper's section 4.4).

For a candidate parameter vector theta the memory equation (:mod:`supercooled.memory`) is
solved and scored with the paper's loss

    L(theta) = sum_{t, a} (F_aa^sim(t) - F_aa^ES(t; theta))^2
               + lambda * sum_{ab} (|c_ab| + sum_i |w_i,ab|) / omega_ref,

a squared error over the sampled times and both species (A, B) plus a lasso (L1) term on the
memory amplitudes c and w (|.| matters only for AB, the one signed pair). Dividing by
omega_ref = mean(diag Omega^2) makes lambda dimensionless. The lasso switches off
exponentials the data do not need.

CMA-ES (pycma, Hansen's covariance matrix adaptation) moves the unconstrained vector z of
:func:`supercooled.memory.to_physical`, so every candidate is a valid memory. Each
generation's whole population is solved in ONE batched call of the time-doubling solver.
The search starts from the MCT memory fitted with eq. 6 (:func:`fit_parametrisation`), or
from :func:`heuristic_start` when no MCT memory is given. It stops when the loss falls below
``target_loss``, or at the generation / wall-time budget.

Step size and population. The paper used sigma0 = 5e-4 (PAPER_SIGMA0). In our coordinates
(logs of amplitudes and times, logits of a and b) that moves every parameter by 0.05 %, far
less than the distance from the start to the fit, so CMA-ES first spends generations growing
sigma. The defaults, DEFAULT_SIGMA0 = 0.1 (10 % relative steps) with a population of 40
instead of pycma's 13, come from ``benchmarks/memory_fit.py``: on its synthetic state
(start 30 % off the true memory, 2 seeds) they reached loss < 1e-6 in 288 and 316
generations, 20.5 and 22.9 CPU seconds, against 818 and 773 generations, 35.5 and 33.8 CPU
seconds with the paper's step and population (ratio 1.6). A larger population is cheap
because the solver's cost per generation is dominated by its loop over time points, not by
the batch (71 against 43 ms per generation for 40 against 13 candidates); single-seed runs
with sigma0 = 0.03 and 0.3 (population 13) were no better.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from supercooled import memory
from supercooled.errors import SupercooledError

PAPER_SIGMA0 = 5e-4
DEFAULT_SIGMA0 = 0.1
#: Population size: the solver's cost per generation is dominated by its Python loop over
#: time points, not by the batch, so a larger population is cheap (see the benchmark).
DEFAULT_POPSIZE = 40
DEFAULT_LASSO = 1e-8
#: Loss given to candidates whose equation cannot be integrated (overflow, NaN).
FAILED_LOSS = 1e30


@dataclass
class FitSettings:
    """Options of :func:`fit_memory` (see the module docstring)."""

    n_exp: int = 2
    sigma0: float = DEFAULT_SIGMA0
    popsize: int | None = DEFAULT_POPSIZE  # None: pycma's default 4 + 3 ln(P)
    seed: int = 0
    target_loss: float = 1e-6
    max_generations: int = 5000
    max_seconds: float | None = None
    lasso: float = DEFAULT_LASSO
    progress: bool = True

    def __post_init__(self):
        self.n_exp = memory.check_n_exp(self.n_exp)
        for name in ("sigma0", "target_loss"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise SupercooledError(f"{name} must be positive, got {value}")
        if self.lasso < 0:
            raise SupercooledError(f"lasso must be >= 0, got {self.lasso}")
        if int(self.max_generations) < 1:
            raise SupercooledError(f"max_generations must be >= 1, got {self.max_generations}")
        if self.popsize is not None and int(self.popsize) < 2:
            raise SupercooledError(f"popsize must be >= 2, got {self.popsize}")


@dataclass
class FitResult:
    """The best memory found and how it was found.

    ``theta``: physical parameters (flat, exponentials of each pair ordered by tau);
    ``loss`` = ``misfit`` + lasso term; ``r2`` over all sampled times and both species
    (SS_tot around the mean of the simulated values); ``fitted`` (n_t, 2) the F_aa of the
    best memory on ``problem.times``; ``history`` the best loss of each generation.
    """

    problem: memory.MemoryProblem
    n_exp: int
    theta: np.ndarray
    loss: float
    misfit: float
    r2: float
    fitted: np.ndarray
    generations: int
    evaluations: int
    wall_time: float
    stop_reason: str
    settings: FitSettings
    history: list = field(default_factory=list)
    cpu_time: float = float("nan")  # CPU seconds of this process: the one-core cost

    def memory(self, t) -> np.ndarray:
        """The fitted memory matrix M(t) (n_t, 2, 2)."""
        return memory.memory_matrix(t, self.theta, self.n_exp, coupling=self.problem.coupling)

    def parameters(self) -> dict[str, float]:
        return dict(zip(memory.parameter_names(self.n_exp), map(float, self.theta), strict=True))


def r_squared(truth, prediction) -> float:
    """R^2 = 1 - SS_res / SS_tot with SS_tot around the mean of the truth (usual definition)."""
    truth, prediction = np.asarray(truth, float), np.asarray(prediction, float)
    ss_res = np.sum((truth - prediction) ** 2)
    ss_tot = np.sum((truth - truth.mean()) ** 2)
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


class Objective:
    """The loss of a whole population, evaluated with one batched solver call."""

    def __init__(self, problem: memory.MemoryProblem, n_exp: int, lasso: float = DEFAULT_LASSO,
                 solver_settings=None):
        self.problem, self.n_exp, self.lasso = problem, memory.check_n_exp(n_exp), float(lasso)
        self.solver_settings = solver_settings
        self.omega_ref = float(np.mean(np.diag(problem.omega2)))
        self.evaluations = 0

    def simulate(self, theta) -> np.ndarray:
        """F_aa(t) (B, n_t, 2) of physical parameters theta (B, P); non-finite where it failed."""
        return memory.solve_for_memory(self.problem, theta, self.n_exp,
                                       settings=self.solver_settings)

    def terms(self, theta):
        """(misfit, lasso term) arrays (B,) for physical parameters theta (B, P)."""
        theta = np.atleast_2d(theta)
        with np.errstate(all="ignore"):
            fitted = self.simulate(theta)
            misfit = np.sum((fitted - self.problem.target) ** 2, axis=(-2, -1))
        parts = memory.unpack(theta, self.n_exp)
        amplitude = np.abs(parts["c"]).sum(axis=-1) + np.abs(parts["w"]).sum(axis=(-2, -1))
        self.evaluations += theta.shape[0]
        misfit = np.where(np.isfinite(misfit), misfit, FAILED_LOSS)
        return misfit, self.lasso * amplitude / self.omega_ref

    def __call__(self, z) -> np.ndarray:
        """Total loss (B,) of unconstrained vectors z (B, P)."""
        misfit, penalty = self.terms(memory.to_physical(np.atleast_2d(z), self.n_exp))
        return np.minimum(misfit + penalty, FAILED_LOSS)


def fit_parametrisation(t, target_memory, n_exp: int, *, seed: int = 0) -> np.ndarray:
    """Least-squares fit of eq. 6 to a given memory (the MCT one): physical theta (P,).

    ``target_memory`` is (n_t, 3) for the pairs AA, AB, BB or (n_t, 2, 2). Each pair's
    residual is divided by its largest |M| so that the three pairs weigh alike. Starts from
    exponentials log-spread between the first time and the time the memory has decayed
    most of the way; a few seeded restarts guard against poor local minima.
    """
    from scipy.optimize import least_squares

    n_exp = memory.check_n_exp(n_exp)
    t = np.asarray(t, dtype=float)
    target = np.asarray(target_memory, dtype=float)
    if target.shape == (t.size, 2, 2):
        target = np.stack([target[:, i, j] for i, j in memory.PAIR_INDEX.values()], axis=-1)
    if target.shape != (t.size, 3) or not np.all(np.isfinite(target)):
        raise SupercooledError(f"memory to fit must be finite with shape ({t.size}, 3)")
    scale = np.maximum(np.max(np.abs(target), axis=0), 1e-12)

    def residual(z):
        pairs = memory.pair_memories(t, memory.to_physical(z, n_exp), n_exp)  # (3, n_t)
        return ((pairs.T - target) / scale).ravel()

    rng = np.random.default_rng(seed)
    best = None
    for attempt in range(4):
        theta0 = _spread_start(t, target, n_exp, jitter=rng.normal(0, 0.5) if attempt else 0.0)
        sol = least_squares(residual, memory.to_unconstrained(theta0, n_exp), method="trf",
                            max_nfev=2000, x_scale=1.0)
        if best is None or sol.cost < best.cost:
            best = sol
    return memory.canonical_order(memory.to_physical(best.x, n_exp), n_exp)


def _spread_start(t, target, n_exp, jitter=0.0):
    """Eq. 6 parameters that roughly match a memory (n_t, 3): plateau, amplitude, times."""
    c, w, a, tau, b = [], [], [], [], []
    for j in range(3):
        # work with |M| and restore the sign (only AB may be negative)
        sign = np.sign(target[np.argmax(np.abs(target[:, j])), j]) or 1.0
        m = np.maximum(sign * target[:, j], 0.0)
        plateau = max(m[-1], 1e-6 * m.max())
        drop = max(m.max() - plateau, 1e-6 * m.max())
        # the time by which the memory has fallen to ~ plateau + drop / e
        idx = np.argmax(m <= plateau + drop / np.e) if np.any(m <= plateau + drop / np.e) else -1
        t_decay = t[idx]
        taus = t_decay * np.exp(jitter) * 10.0 ** np.arange(n_exp)
        c.append(sign * plateau)
        w.append(np.full(n_exp, sign * drop / n_exp))
        a.append(np.full(n_exp, 0.05))
        tau.append(taus)
        b.append(np.full(n_exp, 1.0))
    return memory.pack(np.array(c), np.array(w), np.array(a), np.array(tau), np.array(b))


def heuristic_start(problem: memory.MemoryProblem, n_exp: int) -> np.ndarray:
    """A start when no MCT memory is available: physical theta (P,) from the data alone.

    Glassy states have a plateau f = F(t)/F(0) and a relaxation time tau_alpha; in the
    first-order equation a constant memory M gives a plateau f = M / (Omega^2 + M), so each
    diagonal memory gets M ~ Omega^2_aa f / (1 - f), split over a fast exponential (at
    1 / Omega^2) and a slow one at tau_alpha. The AB element starts small.
    """
    n_exp = memory.check_n_exp(n_exp)
    omega = np.diag(problem.omega2)
    t, phi = problem.times, problem.target / np.diag(problem.f0)
    c, w, a, tau, b = [], [], [], [], []
    for pair in memory.PAIRS:
        s = {"AA": [0], "BB": [1], "AB": [0, 1]}[pair]
        f = float(np.clip(np.interp(np.log(10.0 / omega[s].mean()), np.log(t),
                                    phi[:, s].mean(axis=1)), 0.05, 0.95))
        below = phi[:, s].mean(axis=1) < f / np.e
        tau_alpha = t[np.argmax(below)] if below.any() else t[-1]
        amplitude = omega[s].mean() * f / (1 - f) * (0.1 if pair == "AB" else 1.0)
        taus = np.geomspace(1.0 / omega[s].mean(), max(tau_alpha, 2.0 / omega[s].mean()), n_exp)
        c.append(1e-3 * amplitude)
        w.append(np.full(n_exp, amplitude / n_exp))
        a.append(np.full(n_exp, 0.01))
        tau.append(taus)
        b.append(np.full(n_exp, 1.0))
    return memory.pack(np.array(c), np.array(w), np.array(a), np.array(tau), np.array(b))


def fit_memory(problem: memory.MemoryProblem, settings: FitSettings | None = None, *,
               start=None, solver_settings=None) -> FitResult:
    """Fit eq. 6 to ``problem.target`` with CMA-ES, starting from physical theta ``start``.

    ``start`` defaults to :func:`heuristic_start`; pass the eq. 6 fit of the MCT memory
    (:func:`fit_parametrisation`) to start as the paper does.
    """
    import cma
    from tqdm.auto import tqdm

    settings = settings or FitSettings()
    n_exp = settings.n_exp
    theta0 = heuristic_start(problem, n_exp) if start is None else np.asarray(start, float)
    z0 = memory.to_unconstrained(theta0, n_exp)
    objective = Objective(problem, n_exp, settings.lasso, solver_settings)
    options = {
        # pycma treats seed 0 as "seed from the clock"; shift so every seed is reproducible
        "seed": int(settings.seed) + 1,
        "verbose": -9,
        "maxiter": int(settings.max_generations),
        "tolfun": 0.0, "tolfunhist": 0.0, "tolflatfitness": 10**9,
        "tolx": 1e-14,
    }
    if settings.popsize:
        options["popsize"] = int(settings.popsize)
    es = cma.CMAEvolutionStrategy(z0, settings.sigma0, options)
    best_z, best_loss = z0, float(objective(z0[None])[0])
    history, stop_reason = [best_loss], "budget (generations)"
    start_time, start_cpu = time.perf_counter(), time.process_time()
    bar = tqdm(total=int(settings.max_generations), disable=not settings.progress,
               desc=f"CMA-ES {problem.label}", leave=False)
    while best_loss >= settings.target_loss:
        if es.stop():
            reasons = [r for r in es.stop() if r != "maxiter"]
            stop_reason = ("CMA-ES stopped: " + ", ".join(reasons)) if reasons \
                else "budget (generations)"
            break
        population = np.asarray(es.ask())
        losses = objective(population)
        es.tell(list(population), losses.tolist())
        i = int(np.argmin(losses))
        if losses[i] < best_loss:
            best_z, best_loss = population[i].copy(), float(losses[i])
        history.append(best_loss)
        bar.update(1)
        bar.set_postfix(loss=f"{best_loss:.3g}", sigma=f"{es.sigma:.2g}", refresh=False)
        if settings.max_seconds and time.perf_counter() - start_time > settings.max_seconds:
            stop_reason = "budget (time)"
            break
    else:
        stop_reason = "target loss reached"
    bar.close()
    wall, cpu = time.perf_counter() - start_time, time.process_time() - start_cpu
    theta = memory.canonical_order(memory.to_physical(best_z, n_exp), n_exp)
    misfit, penalty = objective.terms(theta[None])
    fitted = objective.simulate(theta[None])[0]
    return FitResult(problem, n_exp, theta, float(misfit[0] + penalty[0]), float(misfit[0]),
                     r_squared(problem.target, fitted), fitted, len(history) - 1,
                     objective.evaluations, wall, stop_reason, settings, history, cpu)


# --- library states, the results table -------------------------------------------------

#: Columns of data/results/memory_fits.csv before the parameter columns.
RESULT_COLUMNS = ("state", "interaction", "density", "temperature", "equilibrated", "n_exp",
                  "coupling", "dynamics", "start", "loss", "misfit", "r2", "wall_time",
                  "cpu_time", "generations", "evaluations", "stop_reason", "seed", "sigma0",
                  "lasso")
MAX_N_EXP = 3
#: In :func:`select_state`, states whose differences from the requested T agree to within
#: this fraction of T are at "the same" temperature (as are states with the same target T).
SAME_TEMPERATURE_RTOL = 1e-3


def open_library(path):
    """Load a state-point library folder (:func:`supercooled.library.load_library`)."""
    from pathlib import Path

    from supercooled.library import load_library

    if not Path(path).exists():
        raise FileNotFoundError(2, "No such library folder", str(path))
    return load_library(path)


def select_state(library, interaction: str, density: float, temperature: float, *,
                 rtol: float = 0.02):
    """The library state of this interaction and density whose temperature is nearest T.

    T is compared with both the campaign's target temperature and the measured one (the
    smaller difference counts). The nearest state within ``rtol`` (relative) of T wins; an
    equilibrated state wins over an aged one only at the same temperature: the same target
    temperature as the nearest state, or a difference from T within
    :data:`SAME_TEMPERATURE_RTOL` of T of the nearest one. An aged glass nearer to T than
    every equilibrated state is chosen. Raises a one-line error when none lies within
    ``rtol``, listing what exists.
    """
    from supercooled.systems import normalize_interaction

    interaction = normalize_interaction(interaction)
    if library.sizes.get("state", 0) == 0:
        raise SupercooledError("the library is empty: run a campaign first")
    inter = np.char.upper(np.asarray(library["interaction"]).astype(str))
    dens = np.asarray(library["density"], dtype=float)
    temps = np.asarray(library["temperature"], dtype=float)
    target = np.asarray(library["temperature_target"], dtype=float) \
        if "temperature_target" in library.coords else temps
    equil = np.asarray(library["equilibrated"], dtype=float) if "equilibrated" in library.coords \
        else np.ones(temps.size)
    same = (inter == interaction) & np.isclose(dens, density, rtol=1e-3)
    if not same.any():
        raise SupercooledError(f"the library has no {interaction} state at density {density}")
    # distance in T of every state of this series (infinite for the other series)
    distance = np.where(same, np.minimum(np.abs(temps - temperature),
                                         np.abs(target - temperature)), np.inf)
    close = np.flatnonzero(distance <= rtol * temperature)
    if close.size == 0:
        have = ", ".join(f"{t:.4g}" for t in np.sort(target[same]))
        raise SupercooledError(f"no {interaction} state at rho = {density} near T = {temperature} "
                               f"(temperatures there: {have})")
    nearest = close[np.argmin(distance[close])]
    tied = close[(distance[close] <= distance[nearest] + SAME_TEMPERATURE_RTOL * temperature)
                 | np.isclose(target[close], target[nearest], rtol=1e-9, atol=0.0)]
    # among the states at the nearest temperature: equilibrated first, then the nearer
    order = np.lexsort((distance[tied], -equil[tied]))
    return library.isel(state=int(tied[order[0]]))


def mct_memory(state, times, *, coupling: str = "paper", dynamics: str = "brownian",
               settings=None) -> np.ndarray:
    """MCT's memory matrix at k_p of one library state on ``times``: (n_t, 2, 2).

    Brownian MCT with unit friction is exactly eq. 5 (see :func:`supercooled.mct.mct_at_peak`):
    for ``coupling="paper"`` its collective M_ab(k_p, t) (same Omega^2 = k_p^2 T x S^-1),
    for ``coupling="self"`` the tagged diag(M_s,A, M_s,B) (Omega^2 = k_p^2 T I).
    """
    from supercooled import mct

    S = np.asarray(state["S"].sel(pair=list(memory.PAIRS)), dtype=float)  # (3, N_k)
    S = np.stack([np.stack([S[0], S[1]], -1), np.stack([S[1], S[2]], -1)], -2)
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
        return fit_parametrisation(t, m, n_exp), "mct"
    if start == "heuristic":
        return heuristic_start(problem, n_exp), "heuristic"
    raise SupercooledError(f"unknown start {start!r}: choose mct or heuristic")


def fit_state(state, settings: FitSettings | None = None, *, start: str = "mct",
              coupling: str = "paper", dynamics: str = "brownian",
              solver_settings=None) -> FitResult:
    """Fit one library state: build its problem, choose the start, run CMA-ES."""
    settings = settings or FitSettings()
    problem = memory.MemoryProblem.from_state(state, coupling=coupling, dynamics=dynamics)
    theta0, origin = start_parameters(state, problem, settings.n_exp, start)
    result = fit_memory(problem, settings, start=theta0, solver_settings=solver_settings)
    result.start = origin
    return result


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
        "start": getattr(result, "start", "given"),
        "loss": result.loss, "misfit": result.misfit, "r2": result.r2,
        "wall_time": result.wall_time, "cpu_time": result.cpu_time,
        "generations": result.generations,
        "evaluations": result.evaluations, "stop_reason": result.stop_reason,
        "seed": result.settings.seed, "sigma0": result.settings.sigma0,
        "lasso": result.settings.lasso,
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
                resume: bool = True, progress: bool = True):
    """Fit the states of :func:`fit_plan` and write the table ``out_csv`` after every fit.

    With ``resume`` rows already in ``out_csv`` (same state, N_exp, coupling and dynamics)
    are kept and skipped, so an interrupted run continues where it stopped, and fits of
    another model are added to the same table. Returns the table (pandas DataFrame).
    """
    import dataclasses
    from pathlib import Path

    import pandas as pd
    from tqdm.auto import tqdm

    settings = settings or FitSettings()
    out_csv = Path(out_csv)
    table = pd.read_csv(out_csv) if resume and out_csv.exists() else pd.DataFrame()
    key_columns = ["state", "n_exp", "coupling", "dynamics"]
    done = set(map(tuple, table[key_columns].astype(str).values)) if len(table) else set()
    plan = fit_plan(library, n_exps=n_exps, all_n_exp=settings.n_exp,
                    series_density=series_density)
    for index, n_exp in tqdm(plan, desc="memory fits", disable=not progress):
        state = library.isel(state=index)
        label = memory.MemoryProblem.from_state(state).label
        key = (label, str(n_exp), coupling, dynamics)
        if key in done:
            continue
        run_settings = dataclasses.replace(settings, n_exp=n_exp, progress=False)
        result = fit_state(state, run_settings, start=start, coupling=coupling, dynamics=dynamics)
        table = pd.concat([table, pd.DataFrame([result_row(result)])], ignore_index=True)
        done.add(key)
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_csv.with_suffix(".tmp")
        table.to_csv(tmp, index=False)
        tmp.replace(out_csv)  # atomic: a reader never sees half a table
    return table


def main(argv=None):
    """``python -m supercooled.evolution``: fit the library into the results table.

    Used to (re)generate data/results/memory_fits.csv in the background, e.g.
    ``nice -n 10 python -m supercooled.evolution --max-generations 300``.
    """
    import argparse

    from supercooled.library import default_library_path

    parser = argparse.ArgumentParser(description="fit every library state (see fit_library)")
    parser.add_argument("--library", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--max-generations", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--coupling", default="paper", choices=memory.COUPLINGS)
    parser.add_argument("--dynamics", default="brownian", choices=memory.DYNAMICS)
    parser.add_argument("--n-exps", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)
    from supercooled.library import load_library

    library = load_library(args.library or default_library_path(), skip_bad=True)
    settings = FitSettings(max_generations=args.max_generations, max_seconds=args.max_seconds,
                           seed=args.seed)
    table = fit_library(library, args.out or default_results_path(), settings,
                        n_exps=args.n_exps, coupling=args.coupling, dynamics=args.dynamics)
    print(f"{len(table)} rows")


# --- reading the results table back (the chapter's figures) ------------------------------


def default_results_path():
    """data/results/memory_fits.csv of the repository (beside data/library)."""
    from supercooled.library import default_library_path

    return default_library_path().parent / "results" / "memory_fits.csv"


def load_fits(path=None):
    """The results table as a DataFrame (empty, with the columns, if the file is missing)."""
    from pathlib import Path

    import pandas as pd

    path = Path(path) if path is not None else default_results_path()
    if not path.is_file():
        return pd.DataFrame(columns=list(RESULT_COLUMNS) + memory.parameter_names(MAX_N_EXP))
    return pd.read_csv(path)


def curves_from_row(row, state, times=None) -> dict:
    """Re-solve the memory equation for one results row on its library state.

    Returns ``times`` (the sampled ones), ``simulation`` and ``fit`` (n_t, 2) F_aa(k_p, t),
    ``memory`` (n_t, 2, 2) the fitted M(t) and ``problem``. ``times`` other than the sampled
    ones may be given for the memory only.
    """
    problem = memory.MemoryProblem.from_state(state, coupling=str(row.get("coupling", "paper")),
                                              dynamics=str(row.get("dynamics", "brownian")))
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


if __name__ == "__main__":
    main()
