"""A deep ensemble of networks (Lakshminarayanan et al. 2017): training, prediction, files.

M members that differ in initialisation, batch order and validation states give a mean
prediction and a spread (standard deviation over members). A fraction of the training states
(``calibration_fraction``) is held out of every member: on them the spread is calibrated
(:mod:`supercooled.ml.calibration`) and the metadata stores the conformal scales and the
out-of-distribution reference of the states the members learned from. The architecture
(``"physics"`` or ``"paper"``, :mod:`supercooled.ml.network`) is recorded in the metadata;
a model written before it was (the paper's network) loads as ``"paper"``. On disk an ensemble is a folder of
``member_<i>.pt`` (state dicts of tensors only, read back with ``weights_only=True``, which
refuses arbitrary pickled objects) and ``metadata.json`` (feature standardisation, grids,
training settings, training and test states, metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from supercooled import __version__
from supercooled.atomic import replacing, write_text
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import split_indices, state_labels
from supercooled.ml import calibration, physics
from supercooled.ml.features import (
    FEATURE_NAMES,
    INTERACTION_LABEL,
    TARGET_NAMES,
    Scaler,
    design,
    library_hash,
    peak_heights,
    phi_curves,
    rows_for,
    state_design,
    state_features,
)
from supercooled.ml.network import PAPER_HIDDEN, TrainConfig, build, train_network
from supercooled.paths import model_path

METADATA_FILE = "metadata.json"
FORMAT = "supercooled-mlp-ensemble/1"


@dataclass
class Ensemble:
    """M trained networks, the feature standardisation and the metadata of their training."""

    members: list
    scaler: Scaler
    hidden: tuple = PAPER_HIDDEN
    metadata: dict = field(default_factory=dict)
    architecture: str = "paper"
    #: The calibration states' curves of this training run, {"states", "truth", "mean",
    #: "sigma"} (labels and (n, n_time, 2) arrays of phi), kept in memory (not saved) so that
    #: :func:`supercooled.ml.evaluation.pool_calibrations` can pool the runs of several splits.
    calibration_curves: dict | None = None

    def predict_rows(self, x: np.ndarray) -> np.ndarray:
        """(M, n_rows, 2) F of every member on raw feature rows (paper architecture only)."""
        import torch

        if self.architecture != "paper":
            raise SupercooledError("predict_rows: only the paper's network predicts row by row")
        z = torch.as_tensor(self.scaler.transform(x), dtype=torch.float32)
        with torch.no_grad():
            return np.stack([net(z).numpy().astype(float) for net in self.members])

    def predict_phi(self, state_feats: np.ndarray, times=TIME_GRID, peaks=None) -> np.ndarray:
        """(M, n_state, n_time, 2) phi_s^A, phi_s^B of every member from 303 state features.

        Physics architecture: exp(-g) on each state's reduced times. Paper architecture: its
        F divided by S_aa(k_p), ``peaks`` (n_state, 2) or by default that of the state's S
        (:func:`~supercooled.ml.features.peak_heights`).
        """
        import torch

        f, times = np.atleast_2d(state_feats), np.asarray(times, float)
        if self.architecture == "paper":
            out = self.predict_rows(rows_for(f, times)).reshape(len(self.members), len(f),
                                                                len(times), 2)
            peaks = peak_heights(f) if peaks is None else np.atleast_2d(peaks)
            return out / peaks[None, :, None, :]
        z = torch.as_tensor(self.scaler.transform(f[:, physics.INPUT_COLUMNS]),
                            dtype=torch.float32)
        weights = physics.state_weights(f, times)
        with torch.no_grad():
            return np.stack([physics.phi_from_grid(net(z).numpy().astype(float), weights)
                             for net in self.members])

    def predict_curves(self, state_feats: np.ndarray, times=TIME_GRID):
        """F_s^aa = phi_s^a S_aa(k_p): mean and spread (std over members), each
        (n_state, n_time, 2), and all members (M, n_state, n_time, 2)."""
        f = np.atleast_2d(state_feats)
        out = self.predict_phi(f, times) * peak_heights(f)[None, :, None, :]
        return out.mean(axis=0), out.std(axis=0), out

    def save(self, path) -> Path:
        """Write member_<i>.pt (state_dict tensors) and metadata.json to the folder ``path``."""
        import torch

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for i, net in enumerate(self.members):
            with replacing(path / f"member_{i}.pt") as temporary:
                torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()},
                           temporary)
        meta = dict(self.metadata)
        meta.update({
            "format": FORMAT,
            "package_version": __version__,
            "n_members": len(self.members),
            "architecture": self.architecture,
            "hidden": list(self.hidden),
            "feature_names": (FEATURE_NAMES if self.architecture == "paper" else
                              [FEATURE_NAMES[i] for i in physics.INPUT_COLUMNS]),
            "target_names": list(TARGET_NAMES),
            "feature_mean": self.scaler.mean.tolist(),
            "feature_std": self.scaler.std.tolist(),
            "k_grid": K_GRID.tolist(),
            "time_grid": TIME_GRID.tolist(),
            "interaction_label": INTERACTION_LABEL,
        })
        if self.architecture == "physics":
            meta["reduced_time_grid"] = physics.REDUCED_TIME_GRID.tolist()
        write_metadata(path, meta)
        return path

    @classmethod
    def load(cls, path=None) -> Ensemble:
        """Read an ensemble written by :meth:`save` (default: the shipped model,
        :func:`supercooled.paths.model_path`)."""
        import torch

        path = Path(path) if path is not None else model_path()
        meta = read_metadata(path)
        hidden, architecture, n_members, scaler = _checked_metadata(path, meta)
        members = []
        for i in range(n_members):
            net = build(architecture, hidden)
            weights = _member_weights(path / f"member_{i}.pt")
            bad = [k for k, v in weights.items() if not torch.isfinite(v).all()]
            if bad:
                raise SupercooledError(f"model {path}: member {i} has non-finite weights "
                                       f"({bad[0]}); retrain it")
            try:
                net.load_state_dict(weights)
            except RuntimeError as error:  # missing or unexpected keys, wrong shapes
                first = str(error).strip().splitlines()[-1].strip()
                raise SupercooledError(f"model {path}: member_{i}.pt does not fit the "
                                       f"{architecture} network of {METADATA_FILE} (hidden "
                                       f"{list(hidden)}): {first}") from None
            members.append(net.eval())
        return cls(members, scaler, hidden, meta, architecture)


def read_metadata(path) -> dict:
    """The ``metadata.json`` of the model folder ``path`` (a JSON object)."""
    meta_file = Path(path) / METADATA_FILE
    if not meta_file.exists():
        raise SupercooledError(f"no trained model in {path} (missing {METADATA_FILE})")
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise SupercooledError(f"model {path}: {METADATA_FILE} is not valid JSON ({error})") \
            from None
    if not isinstance(meta, dict):
        raise SupercooledError(f"model {path}: {METADATA_FILE} must hold a JSON object")
    return meta


#: what :meth:`Ensemble.load` needs from ``metadata.json``
REQUIRED_METADATA = ("n_members", "hidden", "feature_mean", "feature_std")


def _checked_metadata(path: Path, meta: dict):
    """(hidden, architecture, n_members, scaler) from a model's metadata, or a one-line error
    saying what is missing or wrong (a tampered or truncated file)."""
    missing = [key for key in REQUIRED_METADATA if key not in meta]
    if missing:
        raise SupercooledError(f"model {path}: {METADATA_FILE} lacks {', '.join(missing)}; "
                               "it is incomplete or was edited: retrain the model")
    try:
        hidden = tuple(int(h) for h in meta["hidden"])
        n_members = int(meta["n_members"])
        mean = np.array(meta["feature_mean"], float)
        std = np.array(meta["feature_std"], float)
    except (TypeError, ValueError) as error:
        raise SupercooledError(f"model {path}: {METADATA_FILE} has a value of the wrong type "
                               f"({error})") from None
    architecture = meta.get("architecture", "paper")
    if architecture not in ("paper", "physics") or n_members < 1 or not hidden \
            or min(hidden) < 1:
        raise SupercooledError(f"model {path}: {METADATA_FILE} describes no valid network "
                               f"(architecture {architecture!r}, {n_members} members, "
                               f"hidden {list(hidden)})")
    inputs = len(FEATURE_NAMES) if architecture == "paper" else len(physics.INPUT_COLUMNS)
    if mean.shape != (inputs,) or std.shape != (inputs,):
        raise SupercooledError(f"model {path}: {METADATA_FILE} has {mean.size} feature means "
                               f"and {std.size} scales; the {architecture} network takes {inputs}")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise SupercooledError(f"model {path}: feature scaling is not finite and positive "
                               "(zero or NaN feature_std); retrain it")
    return hidden, architecture, n_members, Scaler(mean, std)


def _member_weights(file: Path) -> dict:
    """The tensors of one ``member_<i>.pt``; a one-line error for a missing, truncated or
    corrupt file, and for one holding Python objects other than tensors, which are never
    loaded (unpickling them could run code)."""
    import pickle
    import warnings

    import torch

    if not file.is_file():
        raise SupercooledError(f"model {file.parent}: {file.name} is missing")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols
            weights = torch.load(file, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise SupercooledError(f"{file} holds Python objects other than tensors and was "
                                   "refused: a model of this package holds tensors only (the "
                                   "file is corrupt or was tampered with)") from None
        raise SupercooledError(f"{file} is not a readable model file (corrupt)") from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError):
        raise SupercooledError(f"{file} is not a readable model file (truncated or "
                               "corrupt)") from None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor)
                                                for v in weights.values()):
        raise SupercooledError(f"{file} holds no network weights (a dict of tensors)")
    return weights


def write_metadata(path, meta: dict) -> None:
    """Write ``metadata.json`` to the model folder ``path`` atomically (temp file + replace)."""
    write_text(Path(path) / METADATA_FILE, json.dumps(meta, indent=1, default=_json_default))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def train_ensemble(ds, train_states, *, n_members: int = 5, seed: int = 0,
                   validation_fraction: float = 0.1, calibration_fraction: float = 0.1,
                   config: TrainConfig | None = None, progress: bool = True) -> Ensemble:
    """Train M networks on the given training states of ``ds`` and calibrate their spread.

    First ``calibration_fraction`` of the training states (seeded by ``seed``; none when fewer
    than 6 training states) are set aside as calibration states: no member fits or
    early-stops on them. Member m uses seed 1000 seed + m for its weights, batch order and its
    validation subset (``validation_fraction`` of the remaining states, held out for early
    stopping), so members differ in all three. The feature standardisation uses the states
    the members learn from. The metadata records ``train_states`` (all, calibration states
    included), ``calibration_states``, per member its ``validation_states`` (labels; empty
    when fewer than 3 states leave none to hold out), ``calibration`` (conformal scales,
    :func:`supercooled.ml.calibration.fit_calibration`; absent without calibration states)
    and ``ood_reference`` (:func:`supercooled.ml.calibration.fit_reference`).
    """
    cfg = config or TrainConfig()
    train_states = np.asarray(train_states, int)
    if n_members < 1:
        raise SupercooledError(f"ensemble size must be >= 1, got {n_members}")
    calib_states = np.array([], int)
    if calibration_fraction > 0 and len(train_states) >= 6:
        train_states_fit, calib_states = split_indices(ds.sizes["state"], calibration_fraction,
                                                       10_000 + seed, candidates=train_states)
    else:
        train_states_fit = train_states
    paper = cfg.architecture == "paper"
    make = design if paper else state_design
    x_all = make(ds, train_states_fit).x
    scaler = Scaler.fit(x_all)
    members, histories, validation_labels = [], [], []
    for m in range(n_members):
        member_seed = 1000 * seed + m
        if len(train_states_fit) >= 3 and validation_fraction > 0:
            fit_states, val_states = split_indices(ds.sizes["state"], validation_fraction,
                                                   member_seed, candidates=train_states_fit)
            val = make(ds, val_states)
        else:
            fit_states, val_states, val = train_states_fit, np.array([], int), None
        validation_labels.append(state_labels(ds, val_states))
        net, hist = train_network(make(ds, fit_states), val, scaler, seed=member_seed,
                                  config=cfg, progress=progress,
                                  desc=f"member {m + 1}/{n_members}")
        members.append(net)
        histories.append(hist)
    fit_feats = state_features(ds.isel(state=train_states_fit))
    meta = {"train_states": state_labels(ds, train_states),
            "calibration_states": state_labels(ds, calib_states),
            "validation_states": validation_labels, "seed": seed,
            "validation_fraction": validation_fraction,
            "calibration_fraction": calibration_fraction, "config": cfg.to_dict(),
            "histories": histories, "library_hash": library_hash(ds),
            "n_library_states": int(ds.sizes["state"]),
            "ood_reference": calibration.fit_reference(fit_feats,
                                                       state_labels(ds, train_states_fit))}
    ens = Ensemble(members, scaler, tuple(cfg.hidden), meta, cfg.architecture)
    if len(calib_states):
        sub = ds.isel(state=calib_states)
        phi = ens.predict_phi(state_features(sub), ds["time"].values)
        ens.calibration_curves = {"states": state_labels(ds, calib_states),
                                  "truth": phi_curves(sub), "mean": phi.mean(axis=0),
                                  "sigma": phi.std(axis=0)}
        meta["calibration"] = calibration.fit_calibration(
            ens.calibration_curves["truth"], ens.calibration_curves["mean"],
            ens.calibration_curves["sigma"], ds["time"].values)
    return ens
