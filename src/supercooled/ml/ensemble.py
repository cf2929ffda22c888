"""A deep ensemble of networks (Lakshminarayanan et al. 2017): training, prediction, files.

M members that differ in initialisation, batch order and validation states give a mean
prediction and a spread (standard deviation over members). On disk an ensemble is a folder of
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
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import split_indices, state_labels
from supercooled.ml.features import (
    FEATURE_NAMES,
    INTERACTION_LABEL,
    TARGET_NAMES,
    Scaler,
    design,
    library_hash,
    rows_for,
)
from supercooled.ml.network import PAPER_HIDDEN, TrainConfig, build_network, train_network
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
            "format": FORMAT,
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
        write_metadata(path, meta)
        return path

    @classmethod
    def load(cls, path=None) -> Ensemble:
        """Read an ensemble written by :meth:`save` (default: the shipped model,
        :func:`supercooled.paths.model_path`)."""
        import torch

        path = Path(path) if path is not None else model_path()
        meta = read_metadata(path)
        hidden = tuple(meta["hidden"])
        members = []
        for i in range(int(meta["n_members"])):
            net = build_network(hidden)
            net.load_state_dict(torch.load(path / f"member_{i}.pt", weights_only=True,
                                           map_location="cpu"))
            members.append(net.eval())
        scaler = Scaler(np.array(meta["feature_mean"]), np.array(meta["feature_std"]))
        return cls(members, scaler, hidden, meta)


def read_metadata(path) -> dict:
    """The ``metadata.json`` of the model folder ``path``."""
    meta_file = Path(path) / METADATA_FILE
    if not meta_file.exists():
        raise SupercooledError(f"no trained model in {path} (missing {METADATA_FILE})")
    return json.loads(meta_file.read_text())


def write_metadata(path, meta: dict) -> None:
    """Write ``metadata.json`` to the model folder ``path`` atomically (temp file + replace)."""
    tmp = Path(path) / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, default=_json_default))
    tmp.replace(Path(path) / METADATA_FILE)


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
            fit_states, val_states = split_indices(ds.sizes["state"], validation_fraction,
                                                   member_seed, candidates=train_states)
            val = design(ds, val_states)
        else:
            fit_states, val_states, val = train_states, np.array([], int), None
        validation_labels.append(state_labels(ds, val_states))
        net, hist = train_network(design(ds, fit_states), val, scaler, seed=member_seed,
                                  config=cfg, progress=progress,
                                  desc=f"member {m + 1}/{n_members}")
        members.append(net)
        histories.append(hist)
    meta = {"train_states": state_labels(ds, train_states),
            "validation_states": validation_labels, "seed": seed,
            "validation_fraction": validation_fraction, "config": cfg.to_dict(),
            "histories": histories, "library_hash": library_hash(ds),
            "n_library_states": int(ds.sizes["state"])}
    return Ensemble(members, scaler, tuple(cfg.hidden), meta)
