"""The memory equation at k_p with a given memory function, and its parametrisations.

The equation (Ciarella et al. 2023, eq. 5) is a first-order 2x2 matrix equation in species
space for F(t) = F(k_p, t), the species-resolved intermediate scattering function at the main
peak k_p of S_AA(k):

    dF/dt + Omega^2 F(t) + int_0^t M(t - u) dF/du du = 0,      F(0) = F0.

Normalisation (the conventions page, book/conventions.md; the paper's eq. 1): the diagonal of F is the *target* that the
simulations provide, F_aa(t) = phi_s^a(k_p, t) S_aa(k_p), so F0 = diag(S_AA(k_p), S_BB(k_p)).
Only the diagonal is ever compared with data; the off-diagonal element is a by-product.

Species coupling (read this before using the AB memory). The self functions of A and B
particles are not coupled physically: a tagged A particle's phi_s^A obeys its own scalar
equation. The paper nevertheless writes eq. 5 as a matrix equation with the collective,
multi-component frequency matrix and fits a memory for each of the three pairs AA, AB, BB
(3 (1 + 4 N_exp) parameters). Two treatments are offered by :func:`omega_squared`:

* ``coupling="paper"`` (default, the paper's model): Omega^2 = k_p^2 T x S^-1(k_p), the
  Brownian multi-component form with x = diag(x_A, x_B) and unit friction (D0 = T in LJ
  units), and a symmetric memory matrix with an AB element. The AB memory and the
  off-diagonal Omega^2 then act as an *effective* coupling between the two self functions:
  it has no microscopic meaning, but it lets the fit borrow the collective cage structure,
  which is how the paper uses the self functions as stand-ins for the collective dynamics.
* ``coupling="self"``: the physically exact tagged-particle form, Omega^2 = k_p^2 T I and a
  diagonal memory (the AB memory is ignored, set to zero, when the equation is solved); the
  two species decouple. Use it to check how much of a fit relies on the effective coupling.

Dynamics. ``dynamics="brownian"`` (default) is eq. 5 as the paper writes it, first order.
It starts every correlator with a finite slope dF/dt(0) = -Omega^2 F(0), whereas Newtonian
MD gives F_s(t) ~ F_s(0) (1 - k_p^2 T t^2 / 2): on MD data its loss levels off far above the
noise (chapter 07 measures it). ``dynamics="newtonian"`` solves d^2F/dt^2 + Omega^2 F +
int M F' = 0 with F'(0) = 0, which with ``coupling="self"`` is the exact Mori-Zwanzig
equation of the self functions (Omega_s^2 = k_p^2 T / m).

The memory function (eq. 6), for each pair ab,

    M_ab(t) = c_ab + sum_{i=1..N_exp} w_i,ab [ (1 - a_i,ab) exp(-(t / tau_i,ab)^b_i,ab) + a_i,ab ],

has 3 (1 + 4 N_exp) parameters. They live in physical ranges (:class:`Bounds`), enforced by
smooth maps from an unconstrained vector z (what CMA-ES and the local polish move): tau log-
uniformly between a tenth of the first and 100 x the last sampled time; c, w of AA and BB
log-uniformly up to 100 x the mean diagonal Omega^2 (positive); c, w of AB signed, the same
bound times tanh(z) (the off-diagonal element of a matrix memory may be negative, as MCT's
collective M_AB is); a = 1 / (1 + exp(-z)) in (0, 1); b = 0.2 + 2.8 / (1 + exp(-z)) in
(0.2, 3.0) (stretched, simple and compressed exponentials). Parameter order per pair: c,
then (w, a, tau, b) for each exponential; pairs in the order AA, AB, BB.

Valid by construction. With ``coupling="self"``, ``dynamics="brownian"`` and every exponent
b <= 1 (``MemoryProblem(exponent_max=COMPLETELY_MONOTONE_EXPONENT)``), each species obeys
phi' + Omega^2 phi + int M phi' = 0 with M completely monotone (c, w >= 0 and
exp(-(t/tau)^b) is completely monotone for 0 < b <= 1). Its Laplace transform is
phi(s) = 1 / (s + Omega^2 / (1 + M(s))): M(s) is a Stieltjes function, so Omega^2 / (1 + M(s))
is a complete Bernstein function, so is s plus it, and its reciprocal is again Stieltjes, the
transform of a completely monotone phi. Every memory of this family therefore gives
phi(0) = 1, 0 <= phi <= 1 and phi non-increasing, exactly (the solver to its discretisation
error): the family the memory predictor (:mod:`supercooled.ml.memory_predictor`) works in.

The schematic model (eq. 8) is :mod:`supercooled.schematic`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.mct.statics import frequency_matrix

PAIRS = ("AA", "AB", "BB")
SPECIES = ("A", "B")
#: (row, column) of each pair in the symmetric 2x2 species matrix.
PAIR_INDEX = {"AA": (0, 0), "AB": (0, 1), "BB": (1, 1)}
EXPONENT_RANGE = (0.2, 3.0)
#: Largest exponent of a completely monotone memory (see ``MemoryProblem.exponent_max``).
COMPLETELY_MONOTONE_EXPONENT = 1.0
COUPLINGS = ("paper", "self")
#: brownian: eq. 5 as in the paper (first order); newtonian: second order, F'(0) = 0.
DYNAMICS = ("brownian", "newtonian")
#: Per-exponential parameter names, in the order they are stored.
EXP_FIELDS = ("w", "a", "tau", "b")


def check_n_exp(n_exp) -> int:
    """Validate the number of stretched exponentials (a positive integer)."""
    if int(n_exp) != n_exp or n_exp < 1:
        raise SupercooledError(f"n_exp must be a positive integer, got {n_exp!r}")
    return int(n_exp)


def n_parameters(n_exp: int) -> int:
    """3 (1 + 4 N_exp): one constant and four numbers per exponential, for each of 3 pairs."""
    return 3 * (1 + 4 * check_n_exp(n_exp))


def parameter_names(n_exp: int) -> list[str]:
    """Column names of a flat parameter vector, e.g. ``AA_c, AA_w1, AA_a1, AA_tau1, AA_b1``."""
    n_exp = check_n_exp(n_exp)
    names = []
    for pair in PAIRS:
        names.append(f"{pair}_c")
        for i in range(1, n_exp + 1):
            names += [f"{pair}_{name}{i}" for name in EXP_FIELDS]
    return names


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def _logit(p):
    p = np.clip(p, 1e-12, 1.0 - 1e-12)
    return np.log(p / (1.0 - p))


def _per_pair(flat, n_exp):
    """Reshape (..., P) to (..., 3, 1 + 4 N_exp), checking the length."""
    flat = np.asarray(flat, dtype=float)
    if flat.shape[-1] != n_parameters(n_exp):
        raise SupercooledError(
            f"expected {n_parameters(n_exp)} memory parameters for n_exp = {n_exp}, "
            f"got {flat.shape[-1]}"
        )
    return flat.reshape(*flat.shape[:-1], 3, 1 + 4 * n_exp)


def unpack(theta, n_exp: int) -> dict[str, np.ndarray]:
    """Split physical parameters (..., P) into c (..., 3) and w, a, tau, b (..., 3, N_exp)."""
    per_pair = _per_pair(theta, n_exp).copy()  # copies: editing a part never edits theta
    terms = per_pair[..., 1:].reshape(*per_pair.shape[:-1], n_exp, 4)
    out = {"c": per_pair[..., 0]}
    for j, name in enumerate(EXP_FIELDS):
        out[name] = terms[..., j]
    return out


def pack(c, w, a, tau, b) -> np.ndarray:
    """Inverse of :func:`unpack`: flat physical parameters (..., 3 (1 + 4 N_exp))."""
    terms = np.stack(np.broadcast_arrays(w, a, tau, b), axis=-1)  # (..., 3, N, 4)
    c = np.asarray(c, dtype=float)
    flat_terms = terms.reshape(*terms.shape[:-2], -1)
    return np.concatenate([c[..., None], flat_terms], axis=-1).reshape(*c.shape[:-1], -1)


#: largest |c|, |w| of a memory in units of the mean diagonal Omega^2 (a Brownian plateau
#: f = M / (Omega^2 + M) of 0.99 needs M = 99 Omega^2)
AMPLITUDE_FACTOR = 100.0
#: smallest c, w of AA and BB as a fraction of the largest
AMPLITUDE_FLOOR = 1e-12


@dataclass(frozen=True)
class Bounds:
    """Physical ranges of the eq. 6 parameters, so that no optimum can be degenerate.

    ``amplitude``: the largest |c| and |w| of any pair (units of M); AA and BB amplitudes lie
    in [AMPLITUDE_FLOOR, 1] x ``amplitude`` (positive: a tagged particle's friction), AB in
    (-1, 1) x ``amplitude``. ``tau``: (tau_min, tau_max) of every exponential. a in (0, 1);
    b in ``exponents`` (default EXPONENT_RANGE). Without them a fit can trade a huge weight against a tiny time
    (w ~ 6e5 at tau ~ 1e-7: a delta-function friction the data cannot see).
    """

    amplitude: float
    tau: tuple[float, float]
    exponents: tuple[float, float] = EXPONENT_RANGE

    def __post_init__(self):
        if not (self.amplitude > 0 and np.isfinite(self.amplitude)):
            raise SupercooledError(f"amplitude bound must be positive, got {self.amplitude}")
        if not 0 < self.tau[0] < self.tau[1] < np.inf:
            raise SupercooledError(f"tau bounds must be 0 < tau_min < tau_max, got {self.tau}")
        if not 0 < self.exponents[0] < self.exponents[1] < np.inf:
            raise SupercooledError(f"exponent bounds must be 0 < b_min < b_max, got {self.exponents}")

    @classmethod
    def for_data(cls, times, scale: float, exponent_max: float = EXPONENT_RANGE[1]) -> Bounds:
        """tau from a tenth of the first to 100 x the last sampled time; amplitudes up to
        AMPLITUDE_FACTOR x ``scale`` (the mean diagonal Omega^2, or a memory's largest value);
        b from EXPONENT_RANGE[0] to ``exponent_max``."""
        times = np.asarray(times, dtype=float)
        return cls(AMPLITUDE_FACTOR * float(scale), (float(times[0]) / 10, 100 * float(times[-1])),
                   (EXPONENT_RANGE[0], float(exponent_max)))


def _log_bounded(z, low, high):
    return np.exp(np.log(low) + (np.log(high) - np.log(low)) * _sigmoid(z))


def _log_bounded_inverse(v, low, high):
    return _logit((np.log(np.clip(v, low, high)) - np.log(low)) / (np.log(high) - np.log(low)))


def _amplitude_maps(bounds: Bounds):
    """(forward, inverse) per pair for c and w: log-bounded for AA, BB; amplitude x tanh for AB
    (the AB element of a matrix memory has no fixed sign: MCT's collective M_AB(k_p) is
    negative for KA-like mixtures; tanh(0) = 0 lets an AB term switch off exactly)."""
    high = bounds.amplitude
    low = AMPLITUDE_FLOOR * high
    diagonal = (lambda z: _log_bounded(z, low, high), lambda v: _log_bounded_inverse(v, low, high))
    signed = (lambda z: high * np.tanh(z),
              lambda v: np.arctanh(np.clip(np.asarray(v) / high, -1 + 1e-12, 1 - 1e-12)))
    return [diagonal, signed, diagonal]


def to_physical(z, n_exp: int, bounds: Bounds) -> np.ndarray:
    """Map unconstrained z (..., P) to physical parameters inside ``bounds`` (see Bounds)."""
    parts = unpack(z, n_exp)
    lo, hi = bounds.exponents
    c, w = np.empty_like(parts["c"]), np.empty_like(parts["w"])
    for j, (forward, _) in enumerate(_amplitude_maps(bounds)):
        c[..., j], w[..., j, :] = forward(parts["c"][..., j]), forward(parts["w"][..., j, :])
    return pack(c, w, _sigmoid(parts["a"]), _log_bounded(parts["tau"], *bounds.tau),
                lo + (hi - lo) * _sigmoid(parts["b"]))


def to_unconstrained(theta, n_exp: int, bounds: Bounds) -> np.ndarray:
    """Inverse of :func:`to_physical`; values on or beyond a bound are pulled just inside it."""
    parts = unpack(theta, n_exp)
    lo, hi = bounds.exponents
    c, w = np.empty_like(parts["c"]), np.empty_like(parts["w"])
    for j, (_, inverse) in enumerate(_amplitude_maps(bounds)):
        c[..., j], w[..., j, :] = inverse(parts["c"][..., j]), inverse(parts["w"][..., j, :])
    return pack(c, w, _logit(parts["a"]), _log_bounded_inverse(parts["tau"], *bounds.tau),
                _logit((parts["b"] - lo) / (hi - lo)))


def add_exponential(theta, n_exp: int) -> np.ndarray:
    """The same memory written with N_exp + 1 terms: the slowest term of every pair split into
    two equal halves (same a, tau, b, half the weight each).

    M(t) is unchanged to rounding, so a fit of N_exp + 1 started here begins exactly at the
    N_exp optimum and, keeping the best point it visits, ends at most at that loss: nested
    models never fit worse (:func:`supercooled.evolution.fit_nested`). The search then moves
    the two halves apart (a split term is the zero-weight term of the extended model shifted
    onto an existing one, which unlike a weight at the lower bound is exactly neutral).
    """
    parts = unpack(canonical_order(theta, n_exp), n_exp)
    extended = {}
    for name in EXP_FIELDS:
        slowest = parts[name][..., -1:]
        if name == "w":
            extended[name] = np.concatenate([parts[name][..., :-1], slowest / 2, slowest / 2],
                                            axis=-1)
        else:
            extended[name] = np.concatenate([parts[name], slowest], axis=-1)
    return pack(parts["c"], **extended)


def canonical_order(theta, n_exp: int) -> np.ndarray:
    """Sort the exponentials of every pair by tau (fastest first); the memory is unchanged.

    The sum in eq. 6 is symmetric under relabelling its terms, so "the second exponential"
    only means something after this ordering: it is the slow one.
    """
    parts = unpack(theta, n_exp)
    order = np.argsort(parts["tau"], axis=-1)
    sorted_parts = {k: np.take_along_axis(parts[k], order, axis=-1) for k in EXP_FIELDS}
    return pack(parts["c"], **sorted_parts)


def pair_memories(t, theta, n_exp: int) -> np.ndarray:
    """Eq. 6 for each pair: array (..., 3, n_t) for times t (n_t,) and parameters (..., P)."""
    t = np.asarray(t, dtype=float)
    parts = unpack(theta, n_exp)
    # (..., 3, N, 1) against t (n_t,): broadcast over the time axis last.
    w, a, tau, b = (parts[k][..., None] for k in EXP_FIELDS)
    decay = np.exp(-((t / tau) ** b))
    return parts["c"][..., None] + np.sum(w * ((1.0 - a) * decay + a), axis=-2)


def symmetric_matrix(pairs) -> np.ndarray:
    """(..., 3, n_t) values of AA, AB, BB -> (..., n_t, 2, 2) symmetric matrices."""
    pairs = np.moveaxis(np.asarray(pairs, dtype=float), -2, -1)  # (..., n_t, 3)
    out = np.empty(pairs.shape[:-1] + (2, 2))
    out[..., 0, 0] = pairs[..., 0]
    out[..., 0, 1] = out[..., 1, 0] = pairs[..., 1]
    out[..., 1, 1] = pairs[..., 2]
    return out


def memory_matrix(t, theta, n_exp: int, *, coupling: str = "paper") -> np.ndarray:
    """M(t) of eq. 6 as symmetric species matrices (..., n_t, 2, 2).

    With ``coupling="self"`` the AB element is zero (decoupled tagged particles).
    """
    matrix = symmetric_matrix(pair_memories(t, theta, n_exp))
    if check_coupling(coupling) == "self":
        matrix[..., 0, 1] = matrix[..., 1, 0] = 0.0
    return matrix


def check_dynamics(dynamics: str) -> str:
    if dynamics not in DYNAMICS:
        raise SupercooledError(f"unknown dynamics {dynamics!r}: choose one of {', '.join(DYNAMICS)}")
    return dynamics


def check_coupling(coupling: str) -> str:
    if coupling not in COUPLINGS:
        raise SupercooledError(f"unknown coupling {coupling!r}: choose one of {', '.join(COUPLINGS)}")
    return coupling


def _check_structure(s_kp, k_p, temperature):
    s_kp = np.asarray(s_kp, dtype=float)
    if s_kp.shape != (3,) or not np.all(np.isfinite(s_kp)):
        raise SupercooledError(f"S(k_p) must be 3 finite numbers (AA, AB, BB), got {s_kp!r}")
    if s_kp[0] <= 0 or s_kp[2] <= 0:
        raise SupercooledError(f"S_AA(k_p) and S_BB(k_p) must be positive, got {s_kp}")
    for name, value in (("k_p", k_p), ("temperature", temperature)):
        if not np.isfinite(value) or value <= 0:
            raise SupercooledError(f"{name} must be positive and finite, got {value}")
    return s_kp


def omega_squared(s_kp, k_p: float, temperature: float, *, fraction_a: float = 0.8,
                  coupling: str = "paper") -> np.ndarray:
    """The frequency matrix Omega^2 of eq. 5 at k_p (LJ units, unit friction, D0 = T).

    ``paper``: Omega^2 = k_p^2 T x S^-1(k_p), x = diag(x_A, x_B), S the 2x2 matrix of partial
    structure factors normalised by the total N (the conventions page). For an ideal mixture S = x and
    Omega^2 = k_p^2 T I, the free-diffusion rate of both species.
    ``self``: Omega^2 = k_p^2 T I, the tagged-particle form (species decoupled).
    """
    s_kp = _check_structure(s_kp, k_p, temperature)
    if check_coupling(coupling) == "self":
        return k_p**2 * temperature * np.eye(2)
    s_matrix = np.array([[s_kp[0], s_kp[1]], [s_kp[1], s_kp[2]]])
    if np.linalg.det(s_matrix) <= 0:
        raise SupercooledError(f"S(k_p) = {s_kp} is not positive definite")
    return frequency_matrix(k_p, s_matrix, [fraction_a, 1.0 - fraction_a], temperature)


def initial_value(s_kp) -> np.ndarray:
    """F0 = diag(S_AA(k_p), S_BB(k_p)): the self functions at t = 0 in the eq. 1 normalisation."""
    s_kp = np.asarray(s_kp, dtype=float)
    return np.diag([s_kp[0], s_kp[2]])


@dataclass
class MemoryProblem:
    """One state point's data for the memory equation at k_p.

    ``times`` (n_t,) where the simulation sampled; ``target`` (n_t, 2) the simulated
    F_aa(k_p, t) = phi_s^a S_aa(k_p) for a = A, B; ``s_kp`` = S_AA, S_AB, S_BB at k_p.
    """

    times: np.ndarray
    target: np.ndarray
    s_kp: np.ndarray
    k_p: float
    temperature: float
    coupling: str = "paper"
    dynamics: str = "brownian"
    label: str = ""
    meta: dict = field(default_factory=dict)
    #: largest eq. 6 exponent b; COMPLETELY_MONOTONE_EXPONENT (1) makes the memory, and with
    #: coupling="self" and Brownian dynamics the solution, completely monotone (module docstring)
    exponent_max: float = EXPONENT_RANGE[1]

    def __post_init__(self):
        if not EXPONENT_RANGE[0] < self.exponent_max <= EXPONENT_RANGE[1]:
            raise SupercooledError(f"exponent_max must lie in ({EXPONENT_RANGE[0]}, "
                                   f"{EXPONENT_RANGE[1]}], got {self.exponent_max}")
        self.times = np.asarray(self.times, dtype=float)
        self.target = np.asarray(self.target, dtype=float)
        self.s_kp = _check_structure(self.s_kp, self.k_p, self.temperature)
        check_coupling(self.coupling)
        check_dynamics(self.dynamics)
        if self.target.shape != (self.times.size, 2):
            raise SupercooledError(
                f"target must have shape (n_times, 2) = ({self.times.size}, 2), got {self.target.shape}"
            )
        keep = np.all(np.isfinite(self.target), axis=1) & np.isfinite(self.times)
        if keep.sum() < 5:
            raise SupercooledError(f"state {self.label or '?'} has fewer than 5 sampled times")
        if np.any(self.times[keep] <= 0) or np.any(np.diff(self.times[keep]) <= 0):
            raise SupercooledError("times must be positive and increasing")
        self.times, self.target = self.times[keep], self.target[keep]

    @property
    def omega2(self) -> np.ndarray:
        return omega_squared(self.s_kp, self.k_p, self.temperature, coupling=self.coupling)

    @property
    def f0(self) -> np.ndarray:
        return initial_value(self.s_kp)

    @property
    def bounds(self) -> Bounds:
        """The parameter ranges of this state (:meth:`Bounds.for_data` with the mean diagonal
        Omega^2 as the scale, exponents up to ``exponent_max``)."""
        return Bounds.for_data(self.times, float(np.mean(np.diag(self.omega2))),
                               self.exponent_max)

    @property
    def valid_by_construction(self) -> bool:
        """Whether every memory of these bounds gives a completely monotone phi (the theorem
        in the module docstring): self coupling, Brownian dynamics, b <= 1."""
        return (self.coupling == "self" and self.dynamics == "brownian"
                and self.exponent_max <= COMPLETELY_MONOTONE_EXPONENT)


# --- solving the memory equation for given memories ---------------------------------------

#: Points per time-doubling block and first step used for the fits (see solver_settings).
N_PER_BLOCK = 64
T_INITIAL = 1e-5


def solver_settings(t_max: float, *, n_per_block: int = N_PER_BLOCK, t_initial: float = T_INITIAL):
    """Time-doubling settings for a given memory, up to ``t_max``.

    A given memory does not depend on F, so the solver's fixed-point iteration is exact after
    its second pass (the same K(t) twice): ``max_iterations = 2`` costs nothing and makes a
    diverging candidate (NaN) fail fast instead of iterating. t_initial = 1e-5 tau resolves
    memories up to M(0) ~ 1e4: against an independent ODE solution, the largest error of F
    with the default n_per_block = 64 is below 1e-3 of F_AA(0) for such a memory, for both
    dynamics, and falls about 2.5-fold per doubling of n_per_block
    (``test_solver_accuracy_against_n_per_block`` in tests/test_memory.py). A Newtonian
    solution that keeps oscillating after the memory has decayed (a weakly damped memory) is
    not resolved once the step, which doubles every block, nears the period.
    """
    from supercooled.solver import SolverSettings

    return SolverSettings(n_per_block=n_per_block, t_initial=t_initial, t_max=float(t_max),
                          tolerance=1e-12, max_iterations=2)


class GivenMemory:
    """kernel(F, t) for the solver: eq. 6 memories of a batch of parameter vectors.

    Returns M(t) (B, 2, 2) and ignores F. The value at the last t is cached because the
    solver asks twice per time point.
    """

    def __init__(self, theta, n_exp: int, coupling: str = "paper"):
        self.theta = np.atleast_2d(np.asarray(theta, dtype=float))
        self.n_exp, self.coupling = n_exp, check_coupling(coupling)
        parts = unpack(self.theta, n_exp)
        self._c = parts["c"]
        self._w, self._a, self._tau, self._b = (parts[k] for k in EXP_FIELDS)
        self._inv_tau = 1.0 / self._tau
        self._last = (None, None)

    def pairs(self, t: float) -> np.ndarray:
        """(B, 3) values of M_AA, M_AB, M_BB at one time t."""
        decay = np.exp(-((t * self._inv_tau) ** self._b))
        return self._c + np.sum(self._w * ((1.0 - self._a) * decay + self._a), axis=-1)

    def at_times(self, t) -> np.ndarray:
        """M at the times t (n,): (n, B, 2, 2). Its presence tells the solver that the memory
        does not depend on F, so a whole block is solved at once."""
        t = np.asarray(t, dtype=float)[:, None, None, None]
        decay = np.exp(-((t * self._inv_tau) ** self._b))
        p = self._c + np.sum(self._w * ((1.0 - self._a) * decay + self._a), axis=-1)
        m = np.empty(p.shape[:2] + (2, 2))
        m[..., 0, 0], m[..., 1, 1] = p[..., 0], p[..., 2]
        m[..., 0, 1] = m[..., 1, 0] = 0.0 if self.coupling == "self" else p[..., 1]
        return m

    def __call__(self, F, t):
        if self._last[0] != t:
            p = self.pairs(t)
            m = np.empty((p.shape[0], 2, 2))
            m[:, 0, 0], m[:, 1, 1] = p[:, 0], p[:, 2]
            m[:, 0, 1] = m[:, 1, 0] = 0.0 if self.coupling == "self" else p[:, 1]
            self._last = (t, m)
        return self._last[1]


def solve_with_kernel(omega2, f0, kernel, batch: int, times, *, settings=None,
                      dynamics: str = "brownian"):
    """Solve eq. 5, dF/dt + Omega^2 F + int M(t-u) F'(u) du = 0, F(0) = f0, for a batch.

    ``dynamics="newtonian"`` solves instead d^2F/dt^2 + Omega^2 F + int M F' = 0 with
    F'(0) = 0 (the same Omega^2; M then has the units of the Newtonian memory).
    ``kernel(F, t)`` -> (batch, 2, 2). Returns the full matrices F (batch, n_t, 2, 2) on
    ``times`` (interpolated linearly in log t from the solver's grid).
    """
    from supercooled.solver import solve_memory_equation

    times = np.asarray(times, dtype=float)
    settings = settings or solver_settings(times[-1])
    f0 = np.broadcast_to(np.asarray(f0, dtype=float), (batch, 2, 2))
    newtonian = check_dynamics(dynamics) == "newtonian"
    alpha, beta = (np.eye(2), 0.0) if newtonian else (0.0, np.eye(2))
    solution = solve_memory_equation(alpha, beta, omega2, f0, kernel, settings=settings)
    return np.moveaxis(solution.on_grid(times), 0, 1)


def solve_for_memory(problem: MemoryProblem, theta, n_exp: int, *, settings=None) -> np.ndarray:
    """F_aa(t) (B, n_t, 2) on ``problem.times`` for eq. 6 memories theta (B, P) or (P,).

    One batched solver call for the whole batch (a CMA-ES generation). Candidates whose
    integration overflows come back non-finite; the caller scores them.
    """
    import warnings

    kernel = GivenMemory(theta, n_exp, problem.coupling)
    with warnings.catch_warnings():
        # a wild candidate may overflow; it is scored as failed, not reported
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(all="ignore"):
            F = solve_with_kernel(problem.omega2, problem.f0, kernel, kernel.theta.shape[0],
                                  problem.times, settings=settings, dynamics=problem.dynamics)
    return np.stack([F[..., 0, 0], F[..., 1, 1]], axis=-1)
