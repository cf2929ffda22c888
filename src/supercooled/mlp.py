"""A multilayer perceptron that predicts F_s(k_p, t) from static structure (Ciarella et al. 2023).

Features (304 per row, exactly as the paper): the three partial structure factors S_AA, S_AB,
S_BB on the 100-point grid :data:`supercooled.grids.K_GRID` (300 values), the temperature T,
the density rho, an interaction label (LJ = 0, WCA = 1) and log10 t. One row per state and time
point; varying t reconstructs the curve. Every feature is standardised,
z = (x - mean) / max(std, MIN_STD), with the mean and standard deviation of the *training* rows
only; the floor :data:`MIN_STD` = 0.02 keeps nearly constant features (S(k) at large k, a
single interaction) from turning noise into large z (see :class:`Scaler`). The statistics are
stored with the model so that a prediction sees the same transformation.

Targets (the paper's eq. 1, design.md): F_s^AA(k_p, t) = phi_s^A(k_p, t) S_AA(k_p) and
F_s^BB(k_p, t) = phi_s^B(k_p, t) S_BB(k_p), with S_aa(k_p) linearly interpolated on the grid at
the state's k_p. Times a run did not sample are NaN in the library; they are masked out of the
loss (never zero-filled).

Network: 304 -> 500 -> 400 -> 400 -> 300 -> 200 -> 2, ReLU between layers, trained with the
mean absolute error (L1 loss) over the unmasked targets plus an L1 (lasso) penalty
lambda * sum |W| on the weight matrices, Adam (with a cosine learning-rate decay by default),
mini-batches, and early stopping on a
validation subset of the *training states* (the best validation epoch is kept). Splits are
always by state, never by time point. Training is seeded and, on the CPU, deterministic
(``torch.use_deterministic_algorithms``, fixed thread count).

A deep ensemble (Lakshminarayanan et al. 2017) of M members that differ in initialisation,
batch order and validation states gives a mean prediction and a spread (standard deviation
over members). :func:`train_network` is the one training loop of the package; the ensemble,
the cross-validation, the command line and the transferability studies all call it.

R^2 of one state is 1 - SS_res / SS_tot over all its sampled times and both species, with
SS_tot around the mean of the *simulated* curve (the usual definition; the paper writes it
around the mean prediction).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from supercooled import __version__
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.systems import FRACTION_A, INTERACTIONS, normalize_interaction

#: Hidden layer widths of the paper's network.
PAPER_HIDDEN = (500, 400, 400, 300, 200)
N_FEATURES = 3 * len(K_GRID) + 4
FEATURE_NAMES = (
    [f"S_AA[{k:.1f}]" for k in K_GRID]
    + [f"S_AB[{k:.1f}]" for k in K_GRID]
    + [f"S_BB[{k:.1f}]" for k in K_GRID]
    + ["T", "rho", "interaction", "log10_t"]
)
TARGET_NAMES = ("F_AA", "F_BB")
INTERACTION_LABEL = {name: float(i) for i, name in enumerate(INTERACTIONS)}
#: Smallest k the user's S(k) must reach for :func:`predict` (the MLP needs the main peak and
#: the first oscillations; beyond it S relaxes to its large-k limit).
MIN_K_MAX = 20.0
METADATA_FILE = "metadata.json"


def data_path(*parts) -> Path:
    """A path under the repository's ``data/`` (found by walking up to ``_toc.yml``)."""
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        if (parent / "_toc.yml").exists() and (parent / "data").is_dir():
            return parent.joinpath("data", *parts)
    return Path("data").joinpath(*parts)


def default_model_path() -> Path:
    """The shipped ensemble: ``data/models/mlp``."""
    return data_path("models", "mlp")


# --------------------------------------------------------------------------------------------
# Library access and features
# --------------------------------------------------------------------------------------------


def load_states(library):
    """The library as an xarray Dataset with crystallised states removed.

    ``library`` is a Dataset (schema of design.md) or a folder that
    :func:`supercooled.library.load_library` reads. Crystallised runs are not supercooled
    liquids, so they are dropped (the paper removes them too); aged glasses are kept.
    """
    import xarray as xr

    if isinstance(library, xr.Dataset):
        ds = library
    else:
        path = Path(library)
        if not path.exists():
            raise SupercooledError(f"library folder {path} does not exist")
        from supercooled.library import load_library

        ds = load_library(path)
    if "crystallized" in ds.coords or "crystallized" in ds:
        keep = np.asarray(ds["crystallized"].values) == 0
        ds = ds.isel(state=np.flatnonzero(keep))
    if ds.sizes.get("state", 0) < 2:
        raise SupercooledError(f"the library holds {ds.sizes.get('state', 0)} usable states; need >= 2")
    return ds


def interaction_labels(ds) -> np.ndarray:
    """0 for LJ, 1 for WCA, per state."""
    return np.array([INTERACTION_LABEL[normalize_interaction(str(v))]
                     for v in np.atleast_1d(ds["interaction"].values)])


def state_features(ds) -> np.ndarray:
    """(n_state, 303): S_AA, S_AB, S_BB on the k grid, then T, rho and the interaction label."""
    s = ds["S"].transpose("state", "pair", "k").sel(pair=["AA", "AB", "BB"]).values
    n = s.shape[0]
    return np.concatenate(
        [s.reshape(n, -1),
         np.asarray(ds["temperature"].values, float)[:, None],
         np.asarray(ds["density"].values, float)[:, None],
         interaction_labels(ds)[:, None]], axis=1)


def peak_values(ds) -> np.ndarray:
    """(n_state, 2): S_AA(k_p) and S_BB(k_p), linearly interpolated on the k grid."""
    k = np.asarray(ds["k"].values, float)
    kp = np.asarray(ds["k_p"].values, float)
    out = np.empty((len(kp), 2))
    for i, kpi in enumerate(kp):
        out[i, 0] = np.interp(kpi, k, ds["S"].isel(state=i).sel(pair="AA").values)
        out[i, 1] = np.interp(kpi, k, ds["S"].isel(state=i).sel(pair="BB").values)
    return out


def target_curves(ds) -> np.ndarray:
    """(n_state, n_time, 2): F_s^AA = phi_s^A S_AA(k_p) and F_s^BB = phi_s^B S_BB(k_p); NaN kept."""
    phi = ds["phi_s"].transpose("state", "time", "species").sel(species=["A", "B"]).values
    return phi * peak_values(ds)[:, None, :]


def rows_for(state_feats: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Feature rows (n_state * n_time, 304): each state's 303 features with log10 t appended."""
    n, nt = state_feats.shape[0], len(times)
    rep = np.repeat(state_feats, nt, axis=0)
    logt = np.tile(np.log10(times), n)[:, None]
    return np.concatenate([rep, logt], axis=1)


@dataclass
class Design:
    """Rows of one set of states: features x, targets y (NaN where unsampled), mask, state ids."""

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    state: np.ndarray


def design(ds, states=None) -> Design:
    """Rows of the given state indices (all if None); rows with no sampled target are dropped."""
    states = np.arange(ds.sizes["state"]) if states is None else np.asarray(states, int)
    sub = ds.isel(state=states)
    times = np.asarray(ds["time"].values, float)
    x = rows_for(state_features(sub), times)
    y = target_curves(sub).reshape(-1, 2)
    mask = np.isfinite(y)
    keep = mask.any(axis=1)
    ids = np.repeat(states, len(times))
    return Design(x[keep], y[keep], mask[keep], ids[keep])


#: Smallest standard deviation used to standardise a feature (in the feature's units).
MIN_STD = 0.02


@dataclass
class Scaler:
    """Standardisation z = (x - mean) / max(std, MIN_STD) with training statistics."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, min_std: float = MIN_STD) -> Scaler:
        mean = x.mean(axis=0)
        # S(k) at large k hardly varies between states (std ~ 1e-3, the size of its statistical
        # noise): dividing by that would turn noise, or a user's extrapolated tail, into
        # z-scores of several units. The floor (0.02, a typical error of a measured S(k))
        # keeps such features quiet; constant features (one interaction only) become 0.
        std = np.maximum(x.std(axis=0), min_std)
        return cls(mean, std)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def library_hash(ds) -> str:
    """sha256 of the numbers the model is trained on (S, phi_s, k_p, T, rho, interaction)."""
    h = hashlib.sha256()
    for arr in (state_features(ds), np.nan_to_num(target_curves(ds), nan=-1.0)):
        h.update(np.ascontiguousarray(np.round(arr, 10)).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Splits and scores
# --------------------------------------------------------------------------------------------


def split_states(n_states: int, test_fraction: float = 0.1, seed: int = 0,
                 candidates=None) -> tuple[np.ndarray, np.ndarray]:
    """Random split of state indices into (train, test); at least one state on each side.

    ``candidates`` restricts the split to a subset of indices. Splitting is by state, so no
    time point of a test state is ever seen in training.
    """
    pool = np.arange(n_states) if candidates is None else np.asarray(candidates, int)
    if len(pool) < 2:
        raise SupercooledError(f"need at least 2 states to split, got {len(pool)}")
    if not 0.0 < test_fraction < 1.0:
        raise SupercooledError(f"test fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool)
    n_test = min(len(pool) - 1, max(1, int(round(test_fraction * len(pool)))))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def r2_score(truth, pred) -> float:
    """1 - sum (y - f)^2 / sum (y - mean y)^2 over the finite entries of ``truth``."""
    truth, pred = np.asarray(truth, float), np.asarray(pred, float)
    ok = np.isfinite(truth) & np.isfinite(pred)
    if ok.sum() < 2:
        return float("nan")
    y, f = truth[ok], pred[ok]
    ss_tot = np.sum((y - y.mean()) ** 2)
    return float(1.0 - np.sum((y - f) ** 2) / ss_tot) if ss_tot > 0 else float("nan")


def rmse(truth, pred) -> float:
    truth, pred = np.asarray(truth, float), np.asarray(pred, float)
    ok = np.isfinite(truth) & np.isfinite(pred)
    return float(np.sqrt(np.mean((truth[ok] - pred[ok]) ** 2))) if ok.any() else float("nan")


# --------------------------------------------------------------------------------------------
# Network and the one training loop
# --------------------------------------------------------------------------------------------


def build_network(hidden=PAPER_HIDDEN, n_in: int = N_FEATURES, n_out: int = 2):
    """Fully connected n_in -> hidden... -> n_out with ReLU between layers."""
    import torch

    layers, width = [], n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, int(h)), torch.nn.ReLU()]
        width = int(h)
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


@contextlib.contextmanager
def _deterministic(device: str, threads: int | None):
    """Deterministic kernels and a fixed CPU thread count, restored afterwards."""
    import torch

    old_det = torch.are_deterministic_algorithms_enabled()
    old_threads = torch.get_num_threads()
    try:
        if device == "cpu":
            torch.use_deterministic_algorithms(True)
        torch.set_num_threads(int(threads or min(2, os.cpu_count() or 1)))
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def _masked_l1(pred, y, mask):
    """Mean |pred - y| over unmasked targets (masked entries contribute nothing)."""
    diff = (pred - y).abs() * mask
    return diff.sum() / mask.sum().clamp(min=1.0)


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_network` (defaults: the paper's network, 1000 epochs)."""

    hidden: tuple = PAPER_HIDDEN
    epochs: int = 1000
    learning_rate: float = 1e-3
    #: lambda of the lasso term lambda * sum |W|, chosen so that it is a few per cent of the
    #: L1 loss of a converged network (the paper does not give its value).
    l1_penalty: float = 1e-7
    batch_size: int = 256
    #: "cosine": the learning rate decays as a half cosine from ``learning_rate`` to 1 % of it
    #: over ``epochs`` (an L1 loss has gradients of constant size, so a fixed step keeps the
    #: weights rattling around the minimum); "none": constant (plain Adam as in the paper).
    lr_schedule: str = "cosine"
    #: stop after this many epochs without a better validation loss (None: never).
    patience: int | None = 200
    threads: int | None = None
    device: str = "cpu"

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def train_network(train: Design, validation: Design | None, scaler: Scaler, *, seed: int = 0,
                  config: TrainConfig | None = None, progress: bool = True, desc: str = "MLP"):
    """Train one network; return (network in eval mode on the CPU, history dict).

    Loss per mini-batch: masked mean |F_pred - F_sim| + lambda sum |W| (weights, not biases).
    After each epoch the validation loss (masked L1 on the validation states) is recorded; the
    weights of the best validation epoch are kept (early stopping with ``config.patience``).
    Everything random (initial weights, batch order) derives from ``seed``.
    """
    import torch

    cfg = config or TrainConfig()
    if len(train.x) == 0:
        raise SupercooledError("no training rows: every training state is empty")
    device = torch.device(cfg.device)
    with _deterministic(cfg.device, cfg.threads):
        torch.manual_seed(seed)
        net = build_network(cfg.hidden).to(device)
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        x, y, m = as_t(scaler.transform(train.x)), as_t(np.nan_to_num(train.y)), as_t(train.mask)
        has_val = validation is not None and len(validation.x) > 0
        if has_val:
            xv = as_t(scaler.transform(validation.x))
            yv, mv = as_t(np.nan_to_num(validation.y)), as_t(validation.mask)
        weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
        if cfg.lr_schedule not in ("cosine", "none"):
            raise SupercooledError(f"unknown lr_schedule {cfg.lr_schedule!r}: cosine or none")
        schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=cfg.epochs, eta_min=0.01 * cfg.learning_rate)
            if cfg.lr_schedule == "cosine" else None)
        gen = torch.Generator().manual_seed(seed)
        history = {"epoch": [], "loss": [], "val_loss": []}
        best, best_state, since = math.inf, None, 0
        bar = _progress(range(cfg.epochs), progress, desc)
        for epoch in bar:
            net.train()
            order = torch.randperm(len(x), generator=gen).to(device)
            total = 0.0
            for start in range(0, len(x), cfg.batch_size):
                idx = order[start:start + cfg.batch_size]
                opt.zero_grad()
                loss = _masked_l1(net(x[idx]), y[idx], m[idx])
                penalty = cfg.l1_penalty * sum(w.abs().sum() for w in weights)
                (loss + penalty).backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            if schedule is not None:
                schedule.step()
            net.eval()
            with torch.no_grad():
                val = float(_masked_l1(net(xv), yv, mv)) if has_val else total / len(x)
            history["epoch"].append(epoch + 1)
            history["loss"].append(total / len(x))
            history["val_loss"].append(val if has_val else float("nan"))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{total / len(x):.4f}", val=f"{val:.4f}")
            if val < best:
                best, since = val, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                since += 1
                if cfg.patience is not None and since > cfg.patience:
                    break
        if best_state is None:  # the loss was NaN (or inf) from the first epoch on
            raise SupercooledError(
                f"training diverged: the {'validation ' if has_val else ''}loss was not finite in"
                f" any of {len(history['epoch'])} epochs (learning rate {cfg.learning_rate:g});"
                " lower the learning rate or check the library for non-finite values")
        net.load_state_dict(best_state)
        history["best_epoch"] = int(history["epoch"][int(np.nanargmin(
            history["val_loss"] if has_val else history["loss"]))])
    return net.cpu().eval(), history


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="epoch", leave=False)


# --------------------------------------------------------------------------------------------
# Ensemble
# --------------------------------------------------------------------------------------------


@dataclass
class Ensemble:
    """M trained networks, the feature standardisation and the metadata of their training."""

    members: list
    scaler: Scaler
    hidden: tuple = PAPER_HIDDEN
    metadata: dict = field(default_factory=dict)

    def predict_rows(self, x: np.ndarray) -> np.ndarray:
        """(M, n_rows, 2) predictions of every member on raw (unstandardised) feature rows."""
        import torch

        z = torch.as_tensor(self.scaler.transform(x), dtype=torch.float32)
        with torch.no_grad():
            return np.stack([net(z).numpy().astype(float) for net in self.members])

    def predict_curves(self, state_feats: np.ndarray, times=TIME_GRID):
        """Mean and spread (std over members), each (n_state, n_time, 2), and all members."""
        times = np.asarray(times, float)
        out = self.predict_rows(rows_for(np.atleast_2d(state_feats), times))
        out = out.reshape(len(self.members), -1, len(times), 2)
        return out.mean(axis=0), out.std(axis=0), out

    # ---- persistence: state dicts of tensors (torch.save, read back with weights_only=True,
    # which refuses arbitrary pickled objects) + JSON metadata ----
    def save(self, path) -> Path:
        """Write member_<i>.pt (state_dict tensors) and metadata.json to the folder ``path``."""
        import torch

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for i, net in enumerate(self.members):
            torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()},
                       path / f"member_{i}.pt")
        meta = dict(self.metadata)
        meta.update({
            "format": "supercooled-mlp-ensemble/1",
            "package_version": __version__,
            "n_members": len(self.members),
            "hidden": list(self.hidden),
            "feature_names": FEATURE_NAMES,
            "target_names": list(TARGET_NAMES),
            "feature_mean": self.scaler.mean.tolist(),
            "feature_std": self.scaler.std.tolist(),
            "k_grid": K_GRID.tolist(),
            "time_grid": TIME_GRID.tolist(),
            "interaction_label": INTERACTION_LABEL,
        })
        tmp = path / (METADATA_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1, default=_json_default))
        tmp.replace(path / METADATA_FILE)
        return path

    @classmethod
    def load(cls, path=None) -> Ensemble:
        """Read an ensemble written by :meth:`save` (``torch.load(..., weights_only=True)``)."""
        import torch

        path = Path(path) if path is not None else default_model_path()
        meta_file = path / METADATA_FILE
        if not meta_file.exists():
            raise SupercooledError(f"no trained model in {path} (missing {METADATA_FILE})")
        meta = json.loads(meta_file.read_text())
        hidden = tuple(meta["hidden"])
        members = []
        for i in range(int(meta["n_members"])):
            net = build_network(hidden)
            net.load_state_dict(torch.load(path / f"member_{i}.pt", weights_only=True,
                                           map_location="cpu"))
            members.append(net.eval())
        scaler = Scaler(np.array(meta["feature_mean"]), np.array(meta["feature_std"]))
        return cls(members, scaler, hidden, meta)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def train_ensemble(ds, train_states, *, n_members: int = 5, seed: int = 0,
                   validation_fraction: float = 0.1, config: TrainConfig | None = None,
                   progress: bool = True) -> Ensemble:
    """Train M networks on the given training states of ``ds``.

    Member m uses seed 1000 seed + m for its weights, batch order and its validation subset
    (``validation_fraction`` of the training states, held out for early stopping), so members
    differ in all three. The feature standardisation uses all training states. The metadata
    records ``train_states`` and, per member, its ``validation_states`` (labels; empty when
    fewer than 3 training states leave none to hold out).
    """
    cfg = config or TrainConfig()
    train_states = np.asarray(train_states, int)
    if n_members < 1:
        raise SupercooledError(f"ensemble size must be >= 1, got {n_members}")
    scaler = Scaler.fit(design(ds, train_states).x)
    members, histories, validation_labels = [], [], []
    for m in range(n_members):
        member_seed = 1000 * seed + m
        if len(train_states) >= 3 and validation_fraction > 0:
            fit_states, val_states = split_states(ds.sizes["state"], validation_fraction,
                                                  member_seed, candidates=train_states)
            val = design(ds, val_states)
        else:
            fit_states, val_states, val = train_states, np.array([], int), None
        validation_labels.append(_state_labels(ds, val_states))
        net, hist = train_network(design(ds, fit_states), val, scaler, seed=member_seed,
                                  config=cfg, progress=progress,
                                  desc=f"member {m + 1}/{n_members}")
        members.append(net)
        histories.append(hist)
    meta = {"train_states": _state_labels(ds, train_states),
            "validation_states": validation_labels, "seed": seed,
            "validation_fraction": validation_fraction, "config": cfg.to_dict(),
            "histories": histories, "library_hash": library_hash(ds),
            "n_library_states": int(ds.sizes["state"])}
    return Ensemble(members, scaler, tuple(cfg.hidden), meta)


def _state_labels(ds, states) -> list[str]:
    return [state_label(ds, i) for i in np.asarray(states, int)]


def state_label(ds, i: int) -> str:
    """e.g. ``LJ_rho1.200_T0.4512`` (interaction, density, measured temperature)."""
    return (f"{normalize_interaction(str(ds['interaction'].values[i]))}_"
            f"rho{float(ds['density'].values[i]):.3f}_T{float(ds['temperature'].values[i]):.4f}")


# --------------------------------------------------------------------------------------------
# Evaluation on test states, cross-validation over splits
# --------------------------------------------------------------------------------------------


def evaluate(ensemble: Ensemble, ds, test_states, baselines: dict | None = None) -> list[dict]:
    """One row per test state: R^2 and RMSE of the ensemble mean, of each member and baseline.

    ``baselines`` maps a name to a fitted object with ``predict(ds, states)`` returning
    (n_state, n_time, 2) curves. Columns: state, interaction, density, T, r2_mlp (both
    species pooled, the paper's score), r2_mlp_AA and r2_mlp_BB (each species alone; usually
    lower, because the offset between F_AA and F_BB no longer counts as explained variance),
    r2_member_mean, r2_member_std, rmse_mlp, spread (mean ensemble std over sampled
    points), abs_error (mean |mean - truth|), r2_<baseline>.
    """
    test_states = np.asarray(test_states, int)
    sub = ds.isel(state=test_states)
    truth = target_curves(sub)
    mean, std, members = ensemble.predict_curves(state_features(sub), ds["time"].values)
    base_pred = {name: b.predict(ds, test_states) for name, b in (baselines or {}).items()}
    rows = []
    for j, i in enumerate(test_states):
        ok = np.isfinite(truth[j])
        member_r2 = [r2_score(truth[j], members[m, j]) for m in range(len(members))]
        row = {
            "state": state_label(ds, i),
            "interaction": normalize_interaction(str(ds["interaction"].values[i])),
            "density": float(ds["density"].values[i]),
            "T": float(ds["temperature"].values[i]),
            "r2_mlp": r2_score(truth[j], mean[j]),
            **{f"r2_mlp_{name.removeprefix('F_')}": r2_score(truth[j][:, a], mean[j][:, a])
               for a, name in enumerate(TARGET_NAMES)},
            "r2_member_mean": float(np.mean(member_r2)),
            "r2_member_std": float(np.std(member_r2)),
            "rmse_mlp": rmse(truth[j], mean[j]),
            "spread": float(std[j][ok].mean()),
            "abs_error": float(np.abs(mean[j] - truth[j])[ok].mean()),
        }
        for name, pred in base_pred.items():
            row[f"r2_{name}"] = r2_score(truth[j], pred[j])
            row[f"rmse_{name}"] = rmse(truth[j], pred[j])
        rows.append(row)
    return rows


def spread_error_correlation(rows) -> float:
    """Spearman rank correlation between ensemble spread and |error| over test states."""
    from scipy.stats import spearmanr

    spread = np.array([r["spread"] for r in rows])
    err = np.array([r["abs_error"] for r in rows])
    if len(rows) < 3 or np.ptp(spread) == 0 or np.ptp(err) == 0:
        return float("nan")  # one member (no spread) or too few states: undefined
    return float(spearmanr(spread, err).statistic)


def cross_validate(ds, *, n_splits: int = 1, seed: int = 0, test_fraction: float = 0.1,
                   n_members: int = 5, config: TrainConfig | None = None,
                   train_candidates=None, test_candidates=None, with_baselines: bool = True,
                   with_mct: bool = True, progress: bool = True):
    """Train and test ensembles on ``n_splits`` random state splits (seeds seed ... seed+n-1).

    Returns (pandas DataFrame of :func:`evaluate` rows with a ``split_seed`` column, list of
    ensembles). ``train_candidates`` / ``test_candidates`` restrict which states may be used
    for training and testing (transferability studies); by default a split draws its test
    states from all states and trains on the rest. With fixed candidates for both and no
    overlap, the split seed only changes the ensemble's seeds and validation states.
    """
    import pandas as pd

    from supercooled import baselines as base

    frames, ensembles = [], []
    n = ds.sizes["state"]
    for s in range(n_splits):
        split_seed = seed + s
        train, test = _split_for(n, test_fraction, split_seed, train_candidates, test_candidates)
        ens = train_ensemble(ds, train, n_members=n_members, seed=split_seed, config=config,
                             progress=progress)
        fitted = base.fit_all(ds, train, with_mct=with_mct) if with_baselines else {}
        rows = evaluate(ens, ds, test, fitted)
        for r in rows:
            r["split_seed"] = split_seed
        ens.metadata["split_seed"] = split_seed
        ens.metadata["test_states"] = _state_labels(ds, test)
        ens.metadata["metrics"] = summarize(rows)
        frames.append(pd.DataFrame(rows))
        ensembles.append(ens)
    return pd.concat(frames, ignore_index=True), ensembles


def _split_for(n, test_fraction, seed, train_candidates, test_candidates):
    if train_candidates is None and test_candidates is None:
        return split_states(n, test_fraction, seed)
    train = np.arange(n) if train_candidates is None else np.asarray(train_candidates, int)
    test = np.arange(n) if test_candidates is None else np.asarray(test_candidates, int)
    overlap = np.intersect1d(train, test)
    if len(overlap):
        # States that could be in both are split randomly so that none is in both.
        tr, te = split_states(n, test_fraction, seed, candidates=overlap)
        train = np.union1d(np.setdiff1d(train, overlap), tr)
        test = np.union1d(np.setdiff1d(test, overlap), te)
    if len(train) == 0 or len(test) == 0:
        raise SupercooledError("empty training or test set for this selection")
    return np.sort(train), np.sort(test)


def summarize(rows) -> dict:
    """Mean and std over test states of R^2, RMSE and the spread-error rank correlation."""
    out = {"n_test_states": len(rows)}
    if not rows:
        return out
    for key in [k for k in rows[0] if k.startswith(("r2_", "rmse_"))]:
        vals = np.array([r[key] for r in rows], float)
        out[f"{key}_mean"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else None
        out[f"{key}_std"] = float(np.nanstd(vals)) if np.isfinite(vals).any() else None
    out["spread_error_spearman"] = spread_error_correlation(rows)
    return out


def train_model(library, out=None, *, epochs: int | None = None, n_members: int = 5, seed: int = 0,
                n_splits: int = 1, test_fraction: float = 0.1, config: TrainConfig | None = None,
                with_mct: bool = True, progress: bool = True):
    """The one call that (re)trains the shipped model: split, train, test, save.

    Trains ``n_splits`` ensembles on 90/10 state splits; the first (split seed ``seed``) is
    saved to ``out`` with the per-state test results of all splits (``evaluation.csv``),
    their summary in the metadata, and MCT's curves of the test states of all splits
    (``mct_curves.csv``, with ``with_mct``). ``epochs``, if given, overrides that of ``config``
    (default :class:`TrainConfig`; the caller's object is not changed). Returns (ensemble,
    evaluation DataFrame).
    """
    cfg = replace(config) if config is not None else TrainConfig()
    if epochs is not None:
        cfg.epochs = int(epochs)
    if cfg.epochs < 1:
        raise SupercooledError(f"epochs must be >= 1, got {cfg.epochs}")
    ds = load_states(library)
    table, ensembles = cross_validate(ds, n_splits=n_splits, seed=seed,
                                      test_fraction=test_fraction, n_members=n_members,
                                      config=cfg, with_mct=with_mct, progress=progress)
    model = ensembles[0]
    model.metadata["split_seeds"] = [seed + s for s in range(n_splits)]
    model.metadata["metrics_all_splits"] = summarize(table.to_dict("records"))
    model.metadata["training_ranges"] = training_ranges(ds, model.metadata["train_states"])
    if out is not None:
        model.save(out)
        table.to_csv(Path(out) / "evaluation.csv", index=False)
        from supercooled.baselines import cached_mct_table

        mct_curves = cached_mct_table(ds) if with_mct else None
        if mct_curves is not None:  # MCT of the test states, so figures need not re-solve it
            mct_curves.to_csv(Path(out) / "mct_curves.csv", index=False, float_format="%.6g")
    return model, table


def combine_runs(model_dir, other_dirs) -> dict:
    """Merge the test results of training runs made in parallel into the model in ``model_dir``.

    ``supercooled train --splits 1 --seed s`` for several seeds can run as separate processes;
    this appends their ``evaluation.csv`` rows to that of ``model_dir`` (the shipped model,
    unchanged) and updates its metadata (``split_seeds``, ``metrics_all_splits``). Runs must
    come from the same library (same content hash). Returns the updated metrics.
    """
    import pandas as pd

    model_dir = Path(model_dir)
    meta = json.loads((model_dir / METADATA_FILE).read_text())
    frames = [pd.read_csv(model_dir / "evaluation.csv")]
    for other in map(Path, other_dirs):
        other_meta = json.loads((other / METADATA_FILE).read_text())
        if other_meta["library_hash"] != meta["library_hash"]:
            raise SupercooledError(f"{other} was trained on another library than {model_dir}")
        frames.append(pd.read_csv(other / "evaluation.csv"))
    table = pd.concat(frames, ignore_index=True).drop_duplicates(["state", "split_seed"])
    meta["split_seeds"] = sorted(int(s) for s in table.split_seed.unique())
    meta["metrics_all_splits"] = summarize(table.to_dict("records"))
    table.to_csv(model_dir / "evaluation.csv", index=False)
    tmp = model_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, default=_json_default))
    tmp.replace(model_dir / METADATA_FILE)
    return meta["metrics_all_splits"]


def training_ranges(ds, train_labels) -> dict:
    """Ranges of the training states: sampled times, T, rho, interactions, S(k) envelope."""
    labels = [state_label(ds, i) for i in range(ds.sizes["state"])]
    idx = np.array([labels.index(lab) for lab in train_labels])
    feats = state_features(ds.isel(state=idx))
    nk = len(K_GRID)
    sampled = np.isfinite(target_curves(ds.isel(state=idx))).any(axis=(0, 2))
    times = np.asarray(ds["time"].values, float)[sampled]
    return {
        "time": [float(times.min()), float(times.max())],
        "T": [float(feats[:, 3 * nk].min()), float(feats[:, 3 * nk].max())],
        "rho": [float(feats[:, 3 * nk + 1].min()), float(feats[:, 3 * nk + 1].max())],
        "interactions": sorted({normalize_interaction(str(ds["interaction"].values[i]))
                                for i in idx}),
        "S_min": feats[:, :3 * nk].min(axis=0).tolist(),
        "S_max": feats[:, :3 * nk].max(axis=0).tolist(),
    }


# --------------------------------------------------------------------------------------------
# Prediction for a user's structure factor
# --------------------------------------------------------------------------------------------

REQUIRED_COLUMNS = ("k", "S_AA", "S_AB", "S_BB")


def read_structure_factor(source):
    """A user's S(k) as a DataFrame with columns k, S_AA, S_AB, S_BB (path or DataFrame)."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source)
        if not path.exists():
            raise SupercooledError(f"structure-factor file {path} does not exist")
        try:
            frame = pd.read_csv(path, comment="#", skipinitialspace=True)
        except Exception as error:  # pandas raises several parser errors; all are bad input
            raise SupercooledError(f"cannot read {path} as CSV: {error}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in REQUIRED_COLUMNS:
        if col not in frame.columns:
            raise SupercooledError(
                f"structure factor is missing column {col!r} (need {', '.join(REQUIRED_COLUMNS)};"
                f" found {', '.join(map(str, frame.columns))})")
    try:
        frame = frame[list(REQUIRED_COLUMNS)].astype(float)
    except (TypeError, ValueError):
        raise SupercooledError("structure factor has non-numeric values") from None
    return frame


def structure_on_grid(frame) -> tuple[np.ndarray, dict]:
    """Interpolate a user's S(k) onto the model's k grid; return ((3, 100) array, flags).

    Checks: no NaN, k strictly increasing and positive, S_AA and S_BB non-negative (S_AB may
    be negative), the grid reaches at least k = 20. Inside the user's range S is linearly
    interpolated. Below the user's first k, S is held at its first value, as
    :mod:`supercooled.structure` does below the box's smallest wave vector (S(k) is even in k
    and nearly flat there in a dense liquid).
    Above the user's last k, S relaxes to its large-k limit (S_AA -> x_A, S_BB -> x_B,
    S_AB -> 0, design.md) as S_inf + (S(k_last) - S_inf) exp(-(k - k_last)), because the
    oscillations of S(k) die out there. Flags list the extrapolated grid points.
    """
    values = frame.to_numpy(float)
    if not np.isfinite(values).all():
        bad = [c for c in frame.columns if not np.isfinite(frame[c].to_numpy(float)).all()]
        raise SupercooledError(f"structure factor has NaN or infinite values in {', '.join(bad)}")
    k = values[:, 0]
    if len(k) < 2 or np.any(np.diff(k) <= 0) or k[0] < 0:
        raise SupercooledError("column k must be non-negative and strictly increasing")
    for j, col in ((1, "S_AA"), (3, "S_BB")):
        if np.any(values[:, j] < 0):
            raise SupercooledError(f"{col} has negative values; a partial S_aa(k) is >= 0")
    if k[-1] < MIN_K_MAX:
        raise SupercooledError(
            f"structure factor grid ends at k = {k[-1]:g}; the model needs it up to at least "
            f"k = {MIN_K_MAX:g} sigma_AA^-1")
    limits = (FRACTION_A, 0.0, 1.0 - FRACTION_A)
    out = np.empty((3, len(K_GRID)))
    for j in range(3):
        s = values[:, j + 1]
        inside = np.interp(K_GRID, k, s)  # np.interp holds end values outside
        above = K_GRID > k[-1]
        decay = np.exp(-(K_GRID[above] - k[-1]))
        inside[above] = limits[j] + (s[-1] - limits[j]) * decay
        out[j] = inside
    flags = {"extrapolated_below": K_GRID[K_GRID < k[0]].tolist(),
             "extrapolated_above": K_GRID[K_GRID > k[-1]].tolist()}
    return out, flags


#: Width of the large-k window whose mean S_aa is compared with x_a (one period 2 pi / sigma_AA of
#: the oscillations of S(k), so that they average out), and the largest deviation accepted.
#: Over the library's states the mean over any such window ending at k >= 20 lies within 0.04
#: of x_a; a per-species normalisation (S_aa -> 1) is off by 0.2 (AA) and 0.8 (BB).
LARGE_K_WINDOW = 2.0 * math.pi
NORMALISATION_TOLERANCE = 0.1


def normalisation_warnings(frame) -> list[str]:
    """Messages for S_AA, S_BB whose large-k mean is far from x_a (a wrong normalisation).

    The package's S_ab(k) are normalised by the total number of particles N (design.md), so
    S_aa(k -> inf) = x_a (x_A = 0.8, x_B = 0.2). A structure factor normalised per species
    (by N_a, S_aa -> 1) is silently wrong input for the MLP: it is flagged when the mean of
    S_aa over the last :data:`LARGE_K_WINDOW` of the user's grid (trapezoidal, in k) differs
    from x_a by more than :data:`NORMALISATION_TOLERANCE`.
    """
    k = frame["k"].to_numpy(float)
    window = k >= k[-1] - LARGE_K_WINDOW
    if window.sum() < 2:  # one point in the window: use the last two
        window[-2:] = True
    kw = k[window]
    msgs = []
    for col, expected, name in (("S_AA", FRACTION_A, "x_A"), ("S_BB", 1.0 - FRACTION_A, "x_B")):
        s = frame[col].to_numpy(float)[window]
        mean = float(np.sum(0.5 * (s[1:] + s[:-1]) * np.diff(kw)) / (kw[-1] - kw[0]))
        if abs(mean - expected) > NORMALISATION_TOLERANCE:
            msgs.append(
                f"{col} averages {mean:.2f} over k = {kw[0]:.3g} ... {kw[-1]:.3g}, but the model "
                f"expects S_ab normalised by the total N, so that {col}(k -> inf) = {name} = "
                f"{expected:g} (a per-species normalisation gives 1); predictions will be wrong")
    return msgs


def out_of_range(ensemble: Ensemble, structure: np.ndarray, interaction: str, density: float,
                 temperature: float, tolerance: float = 0.1) -> list[str]:
    """Names of inputs outside the training range widened by ``tolerance`` of its width."""
    r = ensemble.metadata.get("training_ranges")
    if not r:
        return []
    msgs = []
    for name, value in (("T", temperature), ("rho", density)):
        lo, hi = r[name]
        pad = tolerance * max(hi - lo, 1e-12 + 0.1 * abs(hi))
        if not lo - pad <= value <= hi + pad:
            msgs.append(f"{name} = {value:g} outside training range [{lo:g}, {hi:g}]")
    if interaction not in r["interactions"]:
        msgs.append(f"interaction {interaction} not in training set {r['interactions']}")
    s_min, s_max = np.array(r["S_min"]), np.array(r["S_max"])
    pad = tolerance * np.maximum(s_max - s_min, 0.05)
    flat = structure.reshape(-1)
    outside = (flat < s_min - pad) | (flat > s_max + pad)
    if outside.mean() > 0.05:
        pairs = sorted({("S_AA", "S_AB", "S_BB")[i // len(K_GRID)] for i in np.flatnonzero(outside)})
        msgs.append(f"{outside.mean():.0%} of the S(k) values ({', '.join(pairs)}) lie outside "
                    "the range of the training states")
    return msgs


def tau_alpha(times, phi) -> float:
    """First time where phi drops below 1/e, interpolated linearly in (log t, phi); NaN if never."""
    times, phi = np.asarray(times, float), np.asarray(phi, float)
    target = math.exp(-1.0)
    below = np.flatnonzero(np.isfinite(phi) & (phi < target))
    if len(below) == 0 or below[0] == 0:
        return float("nan")
    j = below[0]
    lt = np.log(times[j - 1:j + 1])
    frac = (phi[j - 1] - target) / (phi[j - 1] - phi[j])
    return float(np.exp(lt[0] + frac * (lt[1] - lt[0])))


def predict(structure_factor, interaction: str, density: float, temperature: float,
            model=None, times=None):
    """Predict F_s^AA(k_p, t) and F_s^BB(k_p, t) for a user's structure factor.

    ``structure_factor``: CSV path or DataFrame with columns k, S_AA, S_AB, S_BB (normalised
    as design.md: S_aa(k -> inf) = x_a) on any grid reaching k >= 20. ``model``: an
    :class:`Ensemble`, a model folder, or None for the shipped model. Returns a DataFrame with
    columns t, F_AA, F_AA_std, F_BB, F_BB_std, phi_A, phi_A_std, phi_B, phi_B_std; its
    ``attrs`` hold tau_alpha (1/e time of phi_A), k_p, the extrapolation flags, the
    out-of-range warnings and the normalisation warnings of :func:`normalisation_warnings`
    (both also issued as :class:`UserWarning`). ``density`` and ``temperature``: positive
    finite real numbers (Python or NumPy; not bool).
    """
    import pandas as pd

    interaction = normalize_interaction(interaction)
    for name, value in (("density", density), ("temperature", temperature)):
        if not (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
                and math.isfinite(value) and value > 0):
            raise SupercooledError(f"{name} must be a positive number, got {value!r}")
    ensemble = model if isinstance(model, Ensemble) else Ensemble.load(model)
    user_frame = read_structure_factor(structure_factor)
    structure, flags = structure_on_grid(user_frame)
    normalisation = normalisation_warnings(user_frame)
    if times is None:  # the grid times the training data covered: no extrapolation in t
        times = np.asarray(ensemble.metadata.get("time_grid", TIME_GRID), float)
        lo, hi = ensemble.metadata.get("training_ranges", {}).get("time", [0.0, np.inf])
        times = times[(times >= lo * (1 - 1e-9)) & (times <= hi * (1 + 1e-9))]
    times = np.asarray(times, float)
    feats = np.concatenate([structure.reshape(-1),
                            [temperature, density, INTERACTION_LABEL[interaction]]])
    mean, std, _ = ensemble.predict_curves(feats[None, :], times)
    mean, std = mean[0], std[0]
    from supercooled.structure import peak_position

    kp = peak_position(structure[0])  # same definition of k_p as the library
    s_peak = np.array([np.interp(kp, K_GRID, structure[0]), np.interp(kp, K_GRID, structure[2])])
    frame = pd.DataFrame({"t": times, "F_AA": mean[:, 0], "F_AA_std": std[:, 0],
                          "F_BB": mean[:, 1], "F_BB_std": std[:, 1],
                          "phi_A": mean[:, 0] / s_peak[0], "phi_A_std": std[:, 0] / s_peak[0],
                          "phi_B": mean[:, 1] / s_peak[1], "phi_B_std": std[:, 1] / s_peak[1]})
    warn = out_of_range(ensemble, structure, interaction, float(density), float(temperature))
    for msg in warn:
        warnings.warn(f"extrapolation: {msg}", UserWarning, stacklevel=2)
    for msg in normalisation:
        warnings.warn(f"structure factor normalisation: {msg}", UserWarning, stacklevel=2)
    frame.attrs.update({"tau_alpha": tau_alpha(times, frame["phi_A"].to_numpy()), "k_p": kp,
                        "out_of_range": warn, "normalisation": normalisation, **flags})
    return frame


# --------------------------------------------------------------------------------------------
# T / T_mct
# --------------------------------------------------------------------------------------------


def reduced_temperature(ds, table=None) -> np.ndarray:
    """T / T_mct per state, with T_mct of its (interaction, density); NaN where unknown.

    ``table``: a DataFrame or CSV path with columns interaction, density, T_mct (default
    ``data/mct/critical_temperatures.csv`` when it exists).
    """
    import pandas as pd

    if table is None:
        path = data_path("mct", "critical_temperatures.csv")
        if not path.exists():
            return np.full(ds.sizes["state"], np.nan)
        table = path
    if not isinstance(table, pd.DataFrame):
        table = pd.read_csv(table, comment="#")
    lookup = {(normalize_interaction(r.interaction), round(float(r.density), 3)): float(r.T_mct)
              for r in table.itertuples() if np.isfinite(float(r.T_mct))}
    out = np.full(ds.sizes["state"], np.nan)
    for i in range(ds.sizes["state"]):
        key = (normalize_interaction(str(ds["interaction"].values[i])),
               round(float(ds["density"].values[i]), 3))
        if key in lookup:
            out[i] = float(ds["temperature"].values[i]) / lookup[key]
    return out
