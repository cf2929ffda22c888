"""The memory predictor: structure -> memory parameters -> memory equation -> phi_s(k_p, t).

The MLP (:mod:`supercooled.ml.ensemble`) learns the whole correlator. This predictor learns
only the few parameters of a state's memory function, from the same structural features, and
lets the exact memory equation (:mod:`supercooled.memory`, the project's solver) turn them
into phi_s^A, phi_s^B at any time.

Family. Each species obeys the tagged-particle (``coupling="self"``), first-order
(``dynamics="brownian"``) memory equation

    phi_a' + Omega_a^2 phi_a + int_0^t M_a(t - u) phi_a'(u) du = 0,   phi_a(0) = 1,

with Omega_a^2 = k_p^2 T (unit friction) and the eq. 6 memory with N_EXP = 2 stretched
exponentials whose exponents are bounded to 0.2 <= b <= 1. Such a memory is completely
monotone, and then so is phi (the Stieltjes argument in :mod:`supercooled.memory`): every
parameter vector this model can return gives phi(0) = 1, 0 <= phi <= 1 and phi non-increasing,
by construction, for every ensemble member and at every time, extrapolated ones included.
The training targets are the converged, valid fits of this family
(``supercooled fit-memory --all --n-exps 2 --coupling self --dynamics brownian
--exponent-max 1``, rows of ``data/results/memory_fits.csv`` with ``exponent_max`` = 1).

Targets, 9 per species (18), in reduced units so that the regression learns what the
structure adds to kinematics: ln(c / Omega^2), and for each exponential i (fastest first)
ln(w_i / Omega^2), logit(a_i), ln(tau_i / t_0), logit((b_i - 0.2) / 0.8), with
t_0 = rho^(-1/3) T^(-1/2) the reduced (isomorph) time unit (m = 1). The amplitudes and times
the targets map to keep the fits' physical ranges smoothly, whatever a regressor returns:
c, w <= AMPLITUDE_CAP Omega^2 and tau >= TAU_FLOOR t_0 through softplus caps
(v = u - softplus(u - y)), so that the solver resolves every memory the model can produce.
Fitted values are floored at ln 1e-8 and logits clipped to +-12, beyond which a term changes
M by less than 1e-5 of Omega^2 (the fits park unused terms at their bounds; unclipped, those
values would dominate a least-squares regression without changing any memory).

Inputs (:class:`InputMap`): the standardised S_AA, S_AB, S_BB on the k grid projected on
their N_COMPONENTS leading principal components (training states only), then ln T, ln rho and
the interaction label, each standardised.

Regressors: ``ridge`` (penalty by exact leave-one-out error, as the ridge baseline) or ``gp``
(a Gaussian process with an anisotropic squared-exponential kernel plus white noise, its
hyperparameters by maximum marginal likelihood, scikit-learn). Uncertainty: an ensemble of
N_MEMBERS regressors, each fitted on a bootstrap resample of the training states; the members'
phi give mean and sigma, calibrated by split-conformal scales
(:func:`supercooled.ml.calibration.fit_calibration`) from cross-fitted predictions: the
training states in N_FOLDS folds, each predicted by an ensemble trained without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from supercooled import memory
from supercooled.errors import SupercooledError
from supercooled.library import state_labels
from supercooled.ml import calibration
from supercooled.ml.features import MIN_STD, phi_curves, state_features
from supercooled.structure import peak_position

N_EXP = 2
#: The memory-equation model of the predictor (the valid-by-construction family).
MODEL = {"coupling": "self", "dynamics": "brownian",
         "exponent_max": memory.COMPLETELY_MONOTONE_EXPONENT}
DIAGONAL = ("AA", "BB")
TARGET_NAMES = tuple(f"{pair}_{name}" for pair in DIAGONAL
                     for name in ["ln_c"] + [f"{q}{i}" for i in range(1, N_EXP + 1)
                                             for q in ("ln_w", "logit_a", "ln_tau", "logit_b")])
LOG_FLOOR = float(np.log(1e-8))
LOGIT_CLIP = 12.0
#: largest c, w in units of Omega^2 (memory.AMPLITUDE_FACTOR, the bound of the fits)
AMPLITUDE_CAP = memory.AMPLITUDE_FACTOR
#: shortest memory time in units of t_0 (the fits' bound is a tenth of the first sampled
#: time, 5e-4 in LJ units, i.e. 5e-4 to 1e-3 t_0 in the library)
TAU_FLOOR = 1e-4
N_COMPONENTS = 6
N_MEMBERS = 16
N_FOLDS = 5
REGRESSORS = ("ridge", "gp")
FORMAT = "supercooled-memory-predictor/1"


# --- parameters <-> regression targets ---------------------------------------------------

def omega2(k_p, temperature):
    """Omega_a^2 = k_p^2 T, the tagged-particle frequency (unit friction, D0 = T)."""
    return np.asarray(k_p, float) ** 2 * np.asarray(temperature, float)


def time_unit(density, temperature):
    """t_0 = rho^(-1/3) T^(-1/2): the reduced time unit (m = 1)."""
    return np.asarray(density, float) ** (-1.0 / 3.0) * np.asarray(temperature, float) ** -0.5


def _logit(p):
    p = np.clip(np.asarray(p, float), 1e-300, None)
    return np.clip(np.log(p) - np.log1p(-np.minimum(p, 1 - 1e-16)), -LOGIT_CLIP, LOGIT_CLIP)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, float)))


def _cap(y, upper):
    """Smooth upper bound: upper - softplus(upper - y) (~ y far below, -> upper above)."""
    return upper - np.logaddexp(0.0, upper - np.asarray(y, float))


def _uncap(v, upper):
    """Inverse of :func:`_cap` for v < upper (values at the bound map LOGIT_CLIP above it)."""
    gap = np.maximum(upper - np.asarray(v, float), np.exp(-LOGIT_CLIP))
    return upper - np.log(np.expm1(gap))


def _floor(y, lower):
    return -_cap(-np.asarray(y, float), -lower)


def _unfloor(v, lower):
    return -_uncap(-np.asarray(v, float), -lower)


def to_targets(theta, k_p, temperature, density) -> np.ndarray:
    """The 18 regression targets (module docstring) of eq. 6 parameters theta (P,)."""
    parts = memory.unpack(memory.canonical_order(theta, N_EXP), N_EXP)
    o2, t0 = float(omega2(k_p, temperature)), float(time_unit(density, temperature))
    lo, hi = memory.EXPONENT_RANGE[0], MODEL["exponent_max"]
    cap = np.log(AMPLITUDE_CAP)

    def amplitude(v):
        return float(_uncap(max(np.log(max(v, 1e-300) / o2), LOG_FLOOR), cap))

    out = []
    for j in (0, 2):  # AA, BB (AB is not part of the self-coupled model)
        out.append(amplitude(parts["c"][j]))
        for i in range(N_EXP):
            out += [amplitude(parts["w"][j, i]),
                    float(_logit(parts["a"][j, i])),
                    float(_unfloor(np.log(parts["tau"][j, i] / t0), np.log(TAU_FLOOR))),
                    float(_logit((min(parts["b"][j, i], hi) - lo) / (hi - lo)))]
    return np.array(out)


def from_targets(y, k_p, temperature, density) -> np.ndarray:
    """Eq. 6 parameters (..., P) of targets y (..., 18); the AB pair is zero (unused)."""
    y = np.asarray(y, float)
    o2, t0 = omega2(k_p, temperature), time_unit(density, temperature)
    lo, hi = memory.EXPONENT_RANGE[0], MODEL["exponent_max"]
    per = 1 + 4 * N_EXP
    shape = y.shape[:-1]
    c = np.zeros(shape + (3,))
    w, a, tau, b = (np.zeros(shape + (3, N_EXP)) for _ in range(4))
    a[...], tau[...], b[...] = 0.5, 1.0, 1.0  # AB placeholders: M_AB is never used
    cap = np.log(AMPLITUDE_CAP)
    for n, j in enumerate((0, 2)):
        block = y[..., n * per:(n + 1) * per]
        c[..., j] = o2 * np.exp(_cap(block[..., 0], cap))
        terms = block[..., 1:].reshape(shape + (N_EXP, 4))
        w[..., j, :] = o2 * np.exp(_cap(terms[..., 0], cap))
        a[..., j, :] = _sigmoid(terms[..., 1])
        tau[..., j, :] = t0 * np.exp(_floor(terms[..., 2], np.log(TAU_FLOOR)))
        b[..., j, :] = lo + (hi - lo) * _sigmoid(terms[..., 3])
    return memory.pack(c, w, a, tau, b)


def solve_phi(theta, k_p, temperature, times) -> np.ndarray:
    """phi_s^A, phi_s^B (B, n_t, 2) of the self-coupled Brownian equation for memories theta
    (B, P), with phi(0) = 1 (the equation is linear in phi, so F = phi S_aa(k_p)).

    The first step is T_INITIAL or 1e-4 / Omega^2 if smaller: with M(0) <= 3 AMPLITUDE_CAP
    Omega^2 it keeps M(0) dt below 0.03, inside the range the solver resolves
    (:func:`supercooled.memory.solver_settings`)."""
    theta = np.atleast_2d(theta)
    kernel = memory.GivenMemory(theta, N_EXP, MODEL["coupling"])
    times = np.asarray(times, float)
    o2 = float(omega2(k_p, temperature))
    settings = memory.solver_settings(times[-1], t_initial=min(memory.T_INITIAL, 1e-4 / o2))
    F = memory.solve_with_kernel(o2 * np.eye(2), np.eye(2), kernel, theta.shape[0], times,
                                 settings=settings, dynamics=MODEL["dynamics"])
    return np.stack([F[..., 0, 0], F[..., 1, 1]], axis=-1)


# --- inputs ------------------------------------------------------------------------------

@dataclass
class InputMap:
    """Standardised S(k) -> leading principal components, plus ln T, ln rho, interaction."""

    s_mean: np.ndarray
    s_std: np.ndarray
    components: np.ndarray
    z_mean: np.ndarray
    z_std: np.ndarray

    @classmethod
    def fit(cls, feats) -> InputMap:
        s = feats[:, :300]
        mean, std = s.mean(axis=0), np.maximum(s.std(axis=0), MIN_STD)
        z = (s - mean) / std
        _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        components = vt[:max(1, min(N_COMPONENTS, len(feats) - 1))]
        raw = cls(mean, std, components, np.zeros(0), np.zeros(0))._raw(feats)
        return cls(mean, std, components, raw.mean(axis=0), np.maximum(raw.std(axis=0), 1e-6))

    def _raw(self, feats):
        z = (feats[:, :300] - self.s_mean) / self.s_std
        extra = np.column_stack([np.log(feats[:, 300]), np.log(feats[:, 301]), feats[:, 302]])
        return np.column_stack([z @ self.components.T, extra])

    def transform(self, feats) -> np.ndarray:
        return (self._raw(np.atleast_2d(feats)) - self.z_mean) / self.z_std


# --- regressors ----------------------------------------------------------------------------

class RidgeRegressor:
    """Multi-output ridge with intercept; one penalty for all targets by exact LOO error."""

    def fit(self, x, y):
        from supercooled.ml.baselines import ALPHAS, loo_errors, ridge

        errors = sum(loo_errors(x, y[:, j]) for j in range(y.shape[1]))
        self.alpha = float(ALPHAS[int(np.argmin(errors))])
        fits = [ridge(x, y[:, j], self.alpha) for j in range(y.shape[1])]
        self.coef = np.array([f[0] for f in fits])
        self.intercept = np.array([f[1] for f in fits])
        return self

    def predict(self, x):
        return np.atleast_2d(x) @ self.coef.T + self.intercept


class GaussianProcessRegressor:
    """One GP for all targets (a shared kernel: constant x anisotropic RBF + white noise),
    each target standardised (scikit-learn's normalize_y)."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, x, y):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor as GPR
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = (ConstantKernel(1.0, (1e-2, 1e2))
                  * RBF(np.ones(x.shape[1]), (1e-1, 1e3)) + WhiteKernel(0.1, (1e-4, 1.0)))
        self.gp = GPR(kernel, normalize_y=True, n_restarts_optimizer=0,
                      random_state=self.seed)
        with warnings.catch_warnings():
            # a length scale at its upper bound means "this input does not matter": expected
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp.fit(x, y)
        return self

    def predict(self, x):
        return np.atleast_2d(self.gp.predict(np.atleast_2d(x)))


def make_regressor(name: str, seed: int = 0):
    if name == "ridge":
        return RidgeRegressor()
    if name == "gp":
        return GaussianProcessRegressor(seed)
    raise SupercooledError(f"unknown regressor {name!r}: choose one of {', '.join(REGRESSORS)}")


# --- the predictor -------------------------------------------------------------------------

@dataclass
class TrainingSet:
    """Features (n, 303), k_p (n,) and targets (n, 18) of the training states, with labels."""

    feats: np.ndarray
    k_p: np.ndarray
    targets: np.ndarray
    labels: list

    def subset(self, idx) -> TrainingSet:
        idx = np.asarray(idx, int)
        return TrainingSet(self.feats[idx], self.k_p[idx], self.targets[idx],
                           [self.labels[i] for i in idx])


def training_set(ds, fits, states=None) -> TrainingSet:
    """The states of ``ds`` (indices ``states``, default all) that have a usable fit of the
    predictor's family in the fit table ``fits``; states without one are left out."""
    from supercooled.memory_fits import theta_from_row, usable

    rows = usable(fits)
    rows = rows[(rows["n_exp"] == N_EXP) & (rows["coupling"] == MODEL["coupling"])
                & (rows["dynamics"] == MODEL["dynamics"])
                & np.isclose(rows["exponent_max"].astype(float), MODEL["exponent_max"])]
    by_label = {r["state"]: r for _, r in rows.iterrows()}
    states = np.arange(ds.sizes["state"]) if states is None else np.asarray(states, int)
    labels = state_labels(ds, states)
    keep = [n for n, lab in enumerate(labels) if lab in by_label]
    if len(keep) < 3:
        raise SupercooledError(f"only {len(keep)} of {len(states)} training states have a usable "
                               "fit of the memory predictor's family: run supercooled fit-memory "
                               "--all --n-exps 2 --coupling self --dynamics brownian "
                               "--exponent-max 1")
    sub = ds.isel(state=states[keep])
    feats = state_features(sub)
    k_p = np.asarray(sub["k_p"].values, float)
    targets = np.array([to_targets(theta_from_row(by_label[labels[n]], N_EXP), k_p[j],
                                   feats[j, 300], feats[j, 301]) for j, n in enumerate(keep)])
    return TrainingSet(feats, k_p, targets, [labels[n] for n in keep])


@dataclass
class MemoryPredictor:
    """An ensemble of bootstrap regressors from state features to the 18 memory targets.

    ``metadata`` holds, as an MLP ensemble's does, what :func:`supercooled.ml.predict.predict`
    reads: ``calibration``, ``ood_reference``, ``training_ranges`` and ``time_grid``."""

    regressor: str
    data: TrainingSet
    n_members: int = N_MEMBERS
    seed: int = 0
    metadata: dict = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return f"memory-{self.regressor}"

    def __post_init__(self):
        self.inputs = InputMap.fit(self.data.feats)
        x = self.inputs.transform(self.data.feats)
        rng = np.random.default_rng(self.seed)
        n = len(x)
        self.members = []
        for m in range(self.n_members):
            idx = rng.integers(0, n, n) if self.n_members > 1 else np.arange(n)
            self.members.append(make_regressor(self.regressor, self.seed + m)
                                .fit(x[idx], self.data.targets[idx]))

    def predict_targets(self, feats) -> np.ndarray:
        """(n_members, n_state, 18) predicted targets."""
        x = self.inputs.transform(feats)
        return np.stack([m.predict(x) for m in self.members])

    def predict_phi(self, feats, times, k_p=None) -> np.ndarray:
        """phi_s members (n_members, n_state, n_t, 2) for states given by 303 features."""
        feats = np.atleast_2d(np.asarray(feats, float))
        if k_p is None:
            k_p = [peak_position(f[:100]) for f in feats]
        y = self.predict_targets(feats)
        out = np.empty((len(self.members), len(feats), len(times), 2))
        for j, f in enumerate(feats):
            theta = from_targets(y[:, j], k_p[j], f[300], f[301])
            out[:, j] = solve_phi(theta, k_p[j], f[300], times)
        return out

    # -- calibration and persistence --

    def cross_fits(self, n_folds: int = N_FOLDS, n_members: int | None = None):
        """(held-out indices, predictor fitted without them) for each of ``n_folds`` random
        folds of the training states (seeded by the model's seed)."""
        folds = np.random.default_rng(self.seed).permutation(len(self.data.labels)) % n_folds
        for k in range(n_folds):
            held = np.flatnonzero(folds == k)
            yield held, MemoryPredictor(self.regressor,
                                        self.data.subset(np.flatnonzero(folds != k)),
                                        n_members or self.n_members, self.seed)

    def cross_fitted_targets(self, n_folds: int = N_FOLDS, n_members: int | None = None):
        """(n_train, 18) ensemble-mean targets of each training state, predicted by a model
        that did not see it: how well the structure determines each memory parameter."""
        out = np.empty_like(self.data.targets)
        for held, sub in self.cross_fits(n_folds, n_members):
            out[held] = sub.predict_targets(self.data.feats[held]).mean(axis=0)
        return out

    def calibrate(self, ds, times) -> MemoryPredictor:
        """Conformal scales from cross-fitted predictions of the training states (N_FOLDS
        folds, each predicted by an ensemble fitted without it) and the OOD reference."""
        labels = state_labels(ds)
        idx = np.array([labels.index(lab) for lab in self.data.labels])
        truth = phi_curves(ds.isel(state=idx))
        mean, sigma = np.empty_like(truth), np.empty_like(truth)
        for held, sub in self.cross_fits():
            members = sub.predict_phi(self.data.feats[held], times, self.data.k_p[held])
            mean[held], sigma[held] = members.mean(axis=0), members.std(axis=0)
        self.metadata["calibration"] = calibration.fit_calibration(truth, mean, sigma, times)
        self.metadata["ood_reference"] = calibration.fit_reference(self.data.feats,
                                                                   self.data.labels)
        return self

    def save(self, path) -> None:
        from supercooled.atomic import replacing

        doc = {"format": FORMAT, "regressor": self.regressor, "n_members": self.n_members,
               "seed": self.seed, "model": MODEL, "n_exp": N_EXP,
               "target_names": list(TARGET_NAMES),
               "training": {"labels": self.data.labels, "features": self.data.feats.tolist(),
                            "k_p": self.data.k_p.tolist(),
                            "targets": self.data.targets.tolist()},
               "metadata": self.metadata}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp:
            Path(tmp).write_text(json.dumps(doc))

    @classmethod
    def load(cls, path) -> MemoryPredictor:
        """Read a saved predictor; its members are refitted from the stored training set
        (deterministic for the stored seed), so the file holds data, not pickled objects."""
        path = Path(path)
        if path.is_dir():
            raise SupercooledError(f"memory predictor {path} is a folder (an MLP model?): the "
                                   "memory predictor is one JSON file")
        if not path.is_file():
            raise SupercooledError(f"memory predictor {path} does not exist")
        try:
            doc = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise SupercooledError(f"memory predictor {path} is not valid JSON: {error}") from None
        if doc.get("format") != FORMAT:
            raise SupercooledError(f"{path} is not a memory predictor ({FORMAT})")
        t = doc["training"]
        data = TrainingSet(np.asarray(t["features"], float), np.asarray(t["k_p"], float),
                           np.asarray(t["targets"], float), list(t["labels"]))
        for name, arr in (("features", data.feats), ("targets", data.targets)):
            if not np.all(np.isfinite(arr)):
                raise SupercooledError(f"memory predictor {path} has non-finite {name}")
        return cls(doc["regressor"], data, int(doc["n_members"]), int(doc["seed"]),
                   doc.get("metadata", {}))


def train(ds, fits, states=None, *, regressor: str = "gp", n_members: int = N_MEMBERS,
          seed: int = 0, calibrate: bool = True) -> MemoryPredictor:
    """Fit a predictor on the states ``states`` of ``ds`` that have usable fits in ``fits``."""
    from supercooled.ml.features import training_ranges

    data = training_set(ds, fits, states)
    model = MemoryPredictor(regressor, data, n_members, seed)
    times = np.asarray(ds["time"].values, float)
    if calibrate:
        model.calibrate(ds, times)
    model.metadata.update({"train_states": data.labels, "n_train": len(data.labels),
                           "time_grid": times.tolist(),
                           "training_ranges": training_ranges(ds, data.labels)})
    return model


def evaluate(model: MemoryPredictor, ds, states) -> list[dict]:
    """One row per state of ``ds`` (indices ``states``) with the scores of
    :func:`supercooled.ml.evaluation.state_scores` under the prefix ``memory`` (R^2 per
    species and pooled, tau_alpha and its error factor per species), the ensemble spread, the
    OOD score and the coverage of the calibrated 68 % and 90 % intervals (cov68_A, ...), as the
    MLP's rows of :func:`supercooled.ml.evaluation.evaluate`."""
    from supercooled.dynamics import tau_alpha
    from supercooled.library import structure_at_peak
    from supercooled.ml.evaluation import SPECIES, interval_columns, state_scores
    from supercooled.systems import normalize_interaction

    states = np.asarray(states, int)
    sub = ds.isel(state=states)
    times = np.asarray(ds["time"].values, float)
    feats = state_features(sub)
    truth = phi_curves(sub)
    peaks = np.array([structure_at_peak(sub.isel(state=j))[[0, 2]] for j in range(len(states))])
    members = model.predict_phi(feats, times, np.asarray(sub["k_p"].values, float))
    mean, std = members.mean(axis=0), members.std(axis=0)
    rows = []
    for j, label in enumerate(state_labels(sub)):
        ok = np.isfinite(truth[j])
        row = {"state": label, "interaction": normalize_interaction(str(sub["interaction"].values[j])),
               "density": float(feats[j, 301]), "T": float(feats[j, 300]),
               "architecture": model.architecture,
               **{f"tau_sim_{s}": tau_alpha(truth[j][:, a], times) for a, s in enumerate(SPECIES)},
               **state_scores("memory", truth[j], mean[j], peaks[j], times),
               "spread": float(std[j][ok].mean()),
               "abs_error": float(np.abs(mean[j] - truth[j])[ok].mean())}
        row.update(interval_columns(model.metadata, feats[j], mean[j], std[j], truth[j], times))
        rows.append(row)
    return rows
