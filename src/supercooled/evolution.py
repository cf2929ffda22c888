"""Fitting the eq. 6 memory function to simulated F_s(k_p, t): CMA-ES, then a local polish.

For a candidate parameter vector theta the memory equation (:mod:`supercooled.memory`) is
solved and scored with a loss that puts each species on its own scale,

    L(theta) = sum_{t, a} [(F_aa^sim(t) - F_aa^ES(t; theta)) / F_aa(0)]^2
               + lambda * sum_{ab} (|c_ab| + sum_i |w_i,ab|) / omega_ref,

i.e. the squared error of phi_s^a = F_aa / S_aa(k_p) over the sampled times, summed over A
and B, plus VALIDITY_WEIGHT^2 x the squares of how far the fitted phi leaves [0, 1] or rises
between two sampled times (zero for a valid correlator: the search is steered away from memories
whose F undershoots or oscillates). (The paper's loss sums the squared errors of F itself, which weighs B by
(S_BB / S_AA)^2 ~ 1/100 and lets the fit ignore it.) The lasso (L1) term on the amplitudes c
and w, divided by omega_ref = mean(diag Omega^2) to make lambda dimensionless, switches off
exponentials the data do not need.

The search moves the unconstrained vector z of :func:`supercooled.memory.to_physical`, so
every candidate is a memory inside the physical ranges of :class:`supercooled.memory.Bounds`.
Two stages:

1. CMA-ES (pycma, Hansen's covariance matrix adaptation), each generation's population solved
   in ONE batched call of the time-doubling solver, from the MCT memory fitted with eq. 6
   (:func:`fit_parametrisation`) or :func:`heuristic_start`. It stops when the best loss has
   improved by less than ``tolerance`` (relative) over ``stall_generations`` generations, or at
   its generation budget; with ``restarts`` it is restarted from the best point with a doubled
   population (IPOP) while that still improves the loss.
2. A local least-squares polish (scipy's trust-region reflective method) of the residuals
   from the CMA-ES optimum, with the Jacobian by forward differences, all P + 1 candidates in
   one batched solve. The fit has *converged* when the polish stops on a convergence test
   (scipy's, or the loss falling by less than 1 % over 50 iterations), not when its budget
   of evaluations runs out. The lasso
   term, 1e-8 of the loss scale, is left out of the polish.

The best point ever evaluated is returned, so a fit never ends worse than its start; that makes
nested models (:func:`fit_nested`: N_exp + 1 started from the N_exp optimum, rewritten with
one more term) fit at least as well as the smaller one.

Step size and population. The paper used sigma0 = 5e-4 (PAPER_SIGMA0). In these coordinates
(bounded logs of amplitudes and times, logits of a and b) that moves every parameter by
0.05 %, far less than the distance from the start to the fit, so CMA-ES first spends
generations growing sigma; the default is sigma0 = 0.1 with a population of 40 (pycma's
default is 13): a larger population is cheap because the solver's cost per generation is
dominated by its loop over time points, not by the batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from supercooled import memory
from supercooled.errors import SupercooledError
from supercooled.metrics import r2_score

PAPER_SIGMA0 = 5e-4
DEFAULT_SIGMA0 = 0.1
#: Population size: the solver's cost per generation is dominated by its Python loop over
#: time points, not by the batch, so a larger population is cheap.
DEFAULT_POPSIZE = 40
DEFAULT_LASSO = 1e-8
#: Loss given to candidates whose equation cannot be integrated (overflow, NaN).
FAILED_LOSS = 1e30
#: the polish has converged when the relative change of the loss, of the step or the scaled
#: gradient falls below this (scipy least_squares' ftol, xtol, gtol)
POLISH_TOLERANCE = 1e-10
#: the loss has stopped changing in the polish when it falls by less than POLISH_PLATEAU
#: (relative) over POLISH_WINDOW iterations (see _polish). Measured on LJ rho = 1.8,
#: T = 19.0 (N_exp = 2): the polish takes the loss from 8.4 to 0.026 in 100 iterations, then
#: creeps along a flat valley, 0.026 -> 0.021 over the next 1400 (about 0.6 % per 50) while
#: R^2_A and R^2_B change in the fourth decimal; a rate below 1 % per 50 iterations is such a
#: creep, not a fit still on its way.
POLISH_WINDOW = 50
POLISH_PLATEAU = 1e-2
#: forward-difference step of the polish's Jacobian, in the unconstrained coordinates
JACOBIAN_STEP = 1e-6
#: weight of the validity residuals (phi outside [0, 1], phi rising): a violation of 0.01
#: costs as much as a misfit of 0.1 of F(0) at one time
VALIDITY_WEIGHT = 10.0
#: tolerances of a valid fitted correlator phi = F / F(0): solver noise (about 1e-3 of F(0)
#: at the default resolution) must not count as a rise or as leaving [0, 1]
VALID_TOLERANCE = 2e-3


@dataclass
class FitSettings:
    """Options of :func:`fit_memory` (see the module docstring)."""

    n_exp: int = 2
    sigma0: float = DEFAULT_SIGMA0
    popsize: int | None = DEFAULT_POPSIZE  # None: pycma's default 4 + 3 ln(P)
    seed: int = 0
    target_loss: float = 1e-12
    max_generations: int = 400
    stall_generations: int = 40
    tolerance: float = 1e-4
    restarts: int = 1
    polish: bool = True
    max_polish_evaluations: int = 1500
    max_seconds: float | None = None
    lasso: float = DEFAULT_LASSO
    progress: bool = True

    def __post_init__(self):
        self.n_exp = memory.check_n_exp(self.n_exp)
        for name in ("sigma0", "target_loss", "tolerance"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise SupercooledError(f"{name} must be positive, got {value}")
        if self.lasso < 0:
            raise SupercooledError(f"lasso must be >= 0, got {self.lasso}")
        for name in ("max_generations", "stall_generations", "max_polish_evaluations"):
            if int(getattr(self, name)) < 1:
                raise SupercooledError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.restarts) < 0:
            raise SupercooledError(f"restarts must be >= 0, got {self.restarts}")
        if self.popsize is not None and int(self.popsize) < 2:
            raise SupercooledError(f"popsize must be >= 2, got {self.popsize}")


@dataclass
class FitResult:
    """The best memory found and how it was found.

    ``theta``: physical parameters (flat, exponentials of each pair ordered by tau);
    ``loss`` = ``misfit`` + lasso term (the species-normalised loss of the module docstring);
    ``r2`` over all sampled times and both species of F (the paper's pooled score), ``r2_A``,
    ``r2_B`` each species on its own; ``fitted`` (n_t, 2) the F_aa of the best memory on
    ``problem.times``; ``converged``: the polish stopped on its convergence tests; ``valid``:
    the fitted phi = F / F(0) of both species lies in [0, 1] and never rises (to
    VALID_TOLERANCE); ``history`` the best loss after each CMA-ES generation.
    """

    problem: memory.MemoryProblem
    n_exp: int
    theta: np.ndarray
    loss: float
    misfit: float
    r2: float
    r2_A: float
    r2_B: float
    fitted: np.ndarray
    generations: int
    evaluations: int
    wall_time: float
    stop_reason: str
    converged: bool
    valid: bool
    settings: FitSettings
    history: list = field(default_factory=list)
    cpu_time: float = float("nan")  # CPU seconds of this process: the one-core cost
    start: str = "given"  # where the initial parameters came from (mct, heuristic, given, ...)

    def memory(self, t) -> np.ndarray:
        """The fitted memory matrix M(t) (n_t, 2, 2)."""
        return memory.memory_matrix(t, self.theta, self.n_exp, coupling=self.problem.coupling)

    def parameters(self) -> dict[str, float]:
        return dict(zip(memory.parameter_names(self.n_exp), map(float, self.theta), strict=True))


class Objective:
    """The loss of a whole population, evaluated with one batched solver call."""

    def __init__(self, problem: memory.MemoryProblem, n_exp: int, lasso: float = DEFAULT_LASSO,
                 solver_settings=None):
        self.problem, self.n_exp, self.lasso = problem, memory.check_n_exp(n_exp), float(lasso)
        self.solver_settings = solver_settings
        self.bounds = problem.bounds
        self.omega_ref = float(np.mean(np.diag(problem.omega2)))
        self.scale = np.diag(problem.f0)  # F_aa(0): each species on its own scale
        self.evaluations = 0

    def simulate(self, theta) -> np.ndarray:
        """F_aa(t) (B, n_t, 2) of physical parameters theta (B, P); non-finite where it failed."""
        return memory.solve_for_memory(self.problem, theta, self.n_exp,
                                       settings=self.solver_settings)

    def residuals(self, z, *, validity: bool = True) -> np.ndarray:
        """Residuals of unconstrained z (B, P): (F^ES - F^sim) / F(0) at every sampled time and
        species, then (``validity``) VALIDITY_WEIGHT x how far phi = F^ES / F(0) leaves
        [0, 1] or rises between two times (zero for a valid correlator). Where the equation
        could not be integrated every entry is large (FAILED_LOSS in total)."""
        theta = memory.to_physical(np.atleast_2d(z), self.n_exp, self.bounds)
        self.evaluations += theta.shape[0]
        with np.errstate(all="ignore"):
            phi = self.simulate(theta) / self.scale
            parts = [(phi - self.problem.target / self.scale).reshape(len(theta), -1)]
            if validity:
                violations = (np.maximum(-phi, 0.0), np.maximum(phi - 1.0, 0.0),
                              np.maximum(np.diff(phi, axis=1), 0.0))
                parts += [VALIDITY_WEIGHT * v.reshape(len(theta), -1) for v in violations]
            r = np.concatenate(parts, axis=1)
        failed = ~np.all(np.isfinite(r), axis=1)
        r[failed] = np.sqrt(FAILED_LOSS / r.shape[1])
        return r

    def terms(self, theta):
        """(misfit, penalty) arrays (B,) for physical parameters theta (B, P): the squared
        data residuals, and the validity and lasso terms."""
        theta = np.atleast_2d(theta)
        z = memory.to_unconstrained(theta, self.n_exp, self.bounds)
        r = self.residuals(z)
        n_data = 2 * self.problem.times.size
        with np.errstate(over="ignore"):  # a failed candidate's residuals square to inf
            misfit = np.minimum(np.sum(r[:, :n_data] ** 2, axis=-1), FAILED_LOSS)
            validity = np.minimum(np.sum(r[:, n_data:] ** 2, axis=-1), FAILED_LOSS)
        parts = memory.unpack(theta, self.n_exp)
        amplitude = np.abs(parts["c"]).sum(axis=-1) + np.abs(parts["w"]).sum(axis=(-2, -1))
        return misfit, validity + self.lasso * amplitude / self.omega_ref

    def __call__(self, z) -> np.ndarray:
        """Total loss (B,) of unconstrained vectors z (B, P)."""
        misfit, penalty = self.terms(memory.to_physical(np.atleast_2d(z), self.n_exp, self.bounds))
        return np.minimum(misfit + penalty, FAILED_LOSS)


def fit_parametrisation(t, target_memory, n_exp: int, bounds: memory.Bounds, *,
                        seed: int = 0) -> np.ndarray:
    """Least-squares fit of eq. 6 to a given memory (the MCT one): physical theta (P,).

    ``target_memory`` is (n_t, 3) for the pairs AA, AB, BB or (n_t, 2, 2). Each pair's
    residual is divided by its largest |M| so that the three pairs weigh alike. The parameters
    stay inside ``bounds`` (those of the problem the start is for). Starts from exponentials
    log-spread between the first time and the time the memory has decayed most of the way;
    a few seeded restarts guard against poor local minima.
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
        pairs = memory.pair_memories(t, memory.to_physical(z, n_exp, bounds), n_exp)  # (3, n_t)
        return ((pairs.T - target) / scale).ravel()

    rng = np.random.default_rng(seed)
    best = None
    for attempt in range(4):
        theta0 = _spread_start(t, target, n_exp, jitter=rng.normal(0, 0.5) if attempt else 0.0)
        sol = least_squares(residual, memory.to_unconstrained(theta0, n_exp, bounds),
                            method="trf", max_nfev=2000, x_scale=1.0)
        if best is None or sol.cost < best.cost:
            best = sol
    return memory.canonical_order(memory.to_physical(best.x, n_exp, bounds), n_exp)


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


def _cma_stage(objective, settings, best, deadline, bar):
    """CMA-ES runs (the first, then IPOP restarts from the best point with a doubled
    population while a run still improves the loss). ``best`` = [z, loss] is updated in place;
    returns (generations, history, stop reason)."""
    import cma

    popsize = settings.popsize
    generations, history, reason = 0, [], "budget (generations)"
    for run in range(int(settings.restarts) + 1):
        options = {
            # pycma treats seed 0 as "seed from the clock"; shift so every seed is reproducible
            "seed": int(settings.seed) + 1 + 1000 * run, "verbose": -9,
            "maxiter": int(settings.max_generations),
            # the stall test below decides convergence; pycma's own tests stay as a backstop
            "tolfun": 0.0, "tolfunhist": 0.0, "tolflatfitness": 10**9, "tolx": 1e-14,
        }
        if popsize:
            options["popsize"] = int(popsize) * 2**run
        es = cma.CMAEvolutionStrategy(best[0], settings.sigma0, options)
        start_loss, run_history = best[1], []
        while True:
            if best[1] < settings.target_loss:
                return generations, history, "target loss reached"
            if es.stop():
                reason = "budget (generations)" if "maxiter" in es.stop() else \
                    "CMA-ES stopped: " + ", ".join(es.stop())
                break
            population = np.asarray(es.ask())
            losses = objective(population)
            es.tell(list(population), losses.tolist())
            i = int(np.argmin(losses))
            if losses[i] < best[1]:
                best[:] = [population[i].copy(), float(losses[i])]
            generations += 1
            run_history.append(best[1])
            bar.update(1)
            bar.set_postfix(loss=f"{best[1]:.3g}", sigma=f"{es.sigma:.2g}", refresh=False)
            window = settings.stall_generations
            if len(run_history) > window and \
                    run_history[-window - 1] - best[1] <= settings.tolerance * best[1]:
                reason = f"CMA-ES stalled (< {settings.tolerance:g} in {window} generations)"
                break
            if deadline is not None and time.perf_counter() > deadline:
                history += run_history
                return generations, history, "budget (time)"
        history += run_history
        if best[1] >= start_loss * (1 - settings.tolerance):  # the restart gained nothing
            break
    return generations, history, reason


def _polish(objective, best, settings) -> bool:
    """Local least-squares polish of ``best`` = [z, loss] (updated in place if it improves).

    One trust-region run of at most ``max_polish_evaluations`` evaluations. It has converged
    when scipy's own tests hold (relative change of the loss, step or gradient below
    POLISH_TOLERANCE) or when the loss has fallen by less than POLISH_PLATEAU (relative) over
    the last POLISH_WINDOW iterations: the poorly determined directions of eq. 6 (a term
    nearly switched off, the stretching exponent of a small term) let the method creep along a
    flat valley long after the memory has stopped changing. Returns whether it converged
    (False: the evaluation budget ran out first).
    """
    from scipy.optimize import least_squares

    step = JACOBIAN_STEP * np.maximum(1.0, np.abs(best[0]))
    costs = []

    def jacobian(z):
        points = np.vstack([z, z + np.diag(step)])
        r = objective.residuals(points)  # one batched solve of P + 1 candidates
        return ((r[1:] - r[0]) / step[:, None]).T

    def residual(z):
        return objective.residuals(z[None])[0]

    def plateau(intermediate_result):
        costs.append(float(intermediate_result.cost))
        if len(costs) > POLISH_WINDOW and \
                costs[-POLISH_WINDOW - 1] - costs[-1] < POLISH_PLATEAU * costs[-1]:
            raise StopIteration

    solution = least_squares(residual, best[0], jac=jacobian, method="trf", x_scale="jac",
                             ftol=POLISH_TOLERANCE, xtol=POLISH_TOLERANCE, gtol=POLISH_TOLERANCE,
                             max_nfev=int(settings.max_polish_evaluations), callback=plateau)
    loss = float(objective(solution.x[None])[0])
    if loss < best[1]:
        best[:] = [solution.x, loss]
    return solution.status != 0


def is_valid_correlator(fitted, f0) -> bool:
    """Whether phi = F / F(0) of both species lies in [0, 1] and never rises, to
    VALID_TOLERANCE (the solver's discretisation noise)."""
    phi = np.asarray(fitted, float) / np.diag(np.asarray(f0, float))
    if not np.all(np.isfinite(phi)):
        return False
    inside = np.all(phi >= -VALID_TOLERANCE) and np.all(phi <= 1 + VALID_TOLERANCE)
    return bool(inside and np.all(np.diff(phi, axis=0) <= VALID_TOLERANCE))


def fit_memory(problem: memory.MemoryProblem, settings: FitSettings | None = None, *,
               start=None, start_label: str | None = None, solver_settings=None) -> FitResult:
    """Fit eq. 6 to ``problem.target``: CMA-ES, then the local polish (module docstring).

    ``start``: physical theta to start from, by default :func:`heuristic_start`; pass the
    eq. 6 fit of the MCT memory (:func:`fit_parametrisation`) to start as the paper does, and
    ``start_label`` to record where it came from (``FitResult.start``).
    """
    from tqdm import tqdm  # text bar: tqdm.auto warns in notebooks without ipywidgets

    settings = settings or FitSettings()
    n_exp = settings.n_exp
    theta0 = heuristic_start(problem, n_exp) if start is None else np.asarray(start, float)
    objective = Objective(problem, n_exp, settings.lasso, solver_settings)
    z0 = memory.to_unconstrained(theta0, n_exp, objective.bounds)
    best = [z0, float(objective(z0[None])[0])]
    start_time, start_cpu = time.perf_counter(), time.process_time()
    deadline = start_time + settings.max_seconds if settings.max_seconds else None
    bar = tqdm(total=int(settings.max_generations) * (int(settings.restarts) + 1),
               disable=not settings.progress, desc=f"CMA-ES {problem.label}", leave=False)
    try:
        generations, history, reason = _cma_stage(objective, settings, best, deadline, bar)
    finally:
        bar.close()
    converged = _polish(objective, best, settings) if settings.polish else False
    wall, cpu = time.perf_counter() - start_time, time.process_time() - start_cpu
    theta = memory.canonical_order(memory.to_physical(best[0], n_exp, objective.bounds), n_exp)
    misfit, penalty = objective.terms(theta[None])
    fitted = objective.simulate(theta[None])[0]
    scores = _scores(problem.target, fitted)
    return FitResult(problem, n_exp, theta, float(misfit[0] + penalty[0]), float(misfit[0]),
                     *scores, fitted, generations, objective.evaluations, wall, reason,
                     converged, is_valid_correlator(fitted, problem.f0), settings,
                     [float(objective(z0[None])[0]), *history], cpu,
                     start_label or ("heuristic" if start is None else "given"))


def _scores(target, fitted) -> tuple[float, float, float]:
    """(pooled R^2 of F, R^2 of A, R^2 of B); NaN for a memory whose equation blew up (no R^2
    over what is left of it)."""
    if not np.all(np.isfinite(fitted)):
        return float("nan"), float("nan"), float("nan")
    return (r2_score(target, fitted), r2_score(target[:, 0], fitted[:, 0]),
            r2_score(target[:, 1], fitted[:, 1]))


def fit_nested(problem: memory.MemoryProblem, n_exps, settings: FitSettings | None = None, *,
               starts: dict | None = None, solver_settings=None) -> dict[int, FitResult]:
    """Fits with N_exp = 1, 2, ... (``n_exps``, increasing), each warm-started from the last.

    N_exp + 1 starts from the N_exp optimum with its slowest term split in two
    (:func:`supercooled.memory.add_exponential`: the same memory, exactly); where ``starts`` gives another start for an
    N_exp (e.g. the MCT memory fitted with eq. 6), that one is fitted too and the better of the
    two kept. Each fit keeps the best point it evaluates, so the loss never grows with N_exp.
    Returns {N_exp: FitResult}.
    """
    settings = settings or FitSettings()
    results: dict[int, FitResult] = {}
    previous = None
    for n_exp in sorted(set(int(n) for n in n_exps)):
        run = replace(settings, n_exp=n_exp)
        candidates = []
        if previous is not None:
            theta = previous.theta
            for k in range(previous.n_exp, n_exp):
                theta = memory.add_exponential(theta, k)
            candidates.append(fit_memory(problem, run, start=theta,
                                         start_label=f"warm from N_exp = {previous.n_exp}",
                                         solver_settings=solver_settings))
        if (starts or {}).get(n_exp) is not None or previous is None:
            theta0, label = (starts or {}).get(n_exp) or (None, None)
            candidates.append(fit_memory(problem, run, start=theta0, start_label=label,
                                         solver_settings=solver_settings))
        results[n_exp] = previous = min(candidates, key=lambda r: r.loss)
    return results
