"""Scores of ensembles and baselines on test states, cross-validation, and the shipped model.

Splits are always by state (:func:`supercooled.library.split_indices`), never by time point.
R^2 of one state is :func:`supercooled.metrics.r2_score` over all its sampled times and both
species, with SS_tot around the mean of the *simulated* curve (the usual definition; the
paper writes it around the mean prediction). Each split trains an ensemble and fits the
baselines of :mod:`supercooled.ml.baselines` (this module is the only one that uses them) on
the same training states. :func:`train_model` is the one call that (re)trains the shipped
model. Temperatures in units of T_mct come from :func:`supercooled.mct_table.reduced_temperature`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.library import split_indices, state_labels
from supercooled.metrics import r2_score, rmse
from supercooled.ml.baselines import MCTCurves, fit_all
from supercooled.ml.ensemble import Ensemble, read_metadata, train_ensemble, write_metadata
from supercooled.ml.features import (
    TARGET_NAMES,
    load_states,
    state_features,
    target_curves,
    training_ranges,
)
from supercooled.ml.network import TrainConfig
from supercooled.systems import normalize_interaction


def evaluate(ensemble: Ensemble, ds, test_states, baselines: dict | None = None) -> list[dict]:
    """One row per test state: R^2 and RMSE of the ensemble mean, of each member and baseline.

    ``baselines`` maps a name to a fitted object with ``predict(ds, states)`` returning
    (n_state, n_time, 2) curves. Columns: state (the library label), interaction, density, T
    (measured), r2_mlp (both species pooled, the paper's score), r2_mlp_AA and r2_mlp_BB
    (each species alone; usually lower, because the offset between F_AA and F_BB no longer
    counts as explained variance), r2_member_mean, r2_member_std, rmse_mlp, spread (mean
    ensemble std over sampled points), abs_error (mean |mean - truth|), r2_<baseline>,
    rmse_<baseline>.
    """
    test_states = np.asarray(test_states, int)
    sub = ds.isel(state=test_states)
    truth = target_curves(sub)
    mean, std, members = ensemble.predict_curves(state_features(sub), ds["time"].values)
    base_pred = {name: b.predict(ds, test_states) for name, b in (baselines or {}).items()}
    labels = state_labels(ds, test_states)
    rows = []
    for j, i in enumerate(test_states):
        ok = np.isfinite(truth[j])
        member_r2 = [r2_score(truth[j], members[m, j]) for m in range(len(members))]
        row = {
            "state": labels[j],
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


def split_for(n: int, test_fraction: float, seed: int, train_candidates=None,
              test_candidates=None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) state indices of one split, optionally restricted to candidate sets.

    Without candidates: :func:`supercooled.library.split_indices`. States that are candidates
    for both sides are split at random so that none is in both; the others stay on their side.
    """
    if train_candidates is None and test_candidates is None:
        return split_indices(n, test_fraction, seed)
    train = np.arange(n) if train_candidates is None else np.asarray(train_candidates, int)
    test = np.arange(n) if test_candidates is None else np.asarray(test_candidates, int)
    overlap = np.intersect1d(train, test)
    if len(overlap):
        tr, te = split_indices(n, test_fraction, seed, candidates=overlap)
        train = np.union1d(np.setdiff1d(train, overlap), tr)
        test = np.union1d(np.setdiff1d(test, overlap), te)
    if len(train) == 0 or len(test) == 0:
        raise SupercooledError("empty training or test set for this selection")
    return np.sort(train), np.sort(test)


def cross_validate(ds, *, n_splits: int = 1, seed: int = 0, test_fraction: float = 0.1,
                   n_members: int = 5, config: TrainConfig | None = None,
                   train_candidates=None, test_candidates=None, with_baselines: bool = True,
                   with_mct: bool = True, mct_curves: MCTCurves | None = None,
                   progress: bool = True):
    """Train and test ensembles on ``n_splits`` random state splits (seeds seed ... seed+n-1).

    Returns (pandas DataFrame of :func:`evaluate` rows with a ``split_seed`` column, list of
    ensembles). ``train_candidates`` / ``test_candidates`` restrict which states may be used
    for training and testing (transferability studies); by default a split draws its test
    states from all states and trains on the rest. With fixed candidates for both and no
    overlap, the split seed only changes the ensemble's seeds and validation states. The MCT
    baseline (``with_baselines`` and ``with_mct``) keeps its curves in ``mct_curves`` (a fresh
    :class:`~supercooled.ml.baselines.MCTCurves` unless given), shared by all splits.
    """
    import pandas as pd

    if with_baselines and with_mct and mct_curves is None:
        mct_curves = MCTCurves()
    frames, ensembles = [], []
    n = ds.sizes["state"]
    for s in range(n_splits):
        split_seed = seed + s
        train, test = split_for(n, test_fraction, split_seed, train_candidates, test_candidates)
        ens = train_ensemble(ds, train, n_members=n_members, seed=split_seed, config=config,
                             progress=progress)
        fitted = (fit_all(ds, train, mct_curves if with_mct else None)
                  if with_baselines else {})
        rows = evaluate(ens, ds, test, fitted)
        for r in rows:
            r["split_seed"] = split_seed
        ens.metadata["split_seed"] = split_seed
        ens.metadata["test_states"] = state_labels(ds, test)
        ens.metadata["metrics"] = summarize(rows)
        frames.append(pd.DataFrame(rows))
        ensembles.append(ens)
    return pd.concat(frames, ignore_index=True), ensembles


def train_model(library, out=None, *, epochs: int | None = None, n_members: int = 5, seed: int = 0,
                n_splits: int = 1, test_fraction: float = 0.1, config: TrainConfig | None = None,
                with_mct: bool = True, progress: bool = True):
    """The one call that (re)trains the shipped model: split, train, test, save.

    Trains ``n_splits`` ensembles on 90/10 state splits; the first (split seed ``seed``) is
    saved to ``out`` with the per-state test results of all splits (``evaluation.csv``),
    their summary in the metadata, and MCT's curves of the test states of all splits
    (``mct_curves.csv``, with ``with_mct``). ``epochs``, if given, overrides that of ``config``
    (default :class:`~supercooled.ml.network.TrainConfig`; the caller's object is not
    changed). Returns (ensemble, evaluation DataFrame).
    """
    cfg = replace(config) if config is not None else TrainConfig()
    if epochs is not None:
        cfg.epochs = int(epochs)
    if cfg.epochs < 1:
        raise SupercooledError(f"epochs must be >= 1, got {cfg.epochs}")
    ds = load_states(library)
    mct_curves = MCTCurves() if with_mct else None
    table, ensembles = cross_validate(ds, n_splits=n_splits, seed=seed,
                                      test_fraction=test_fraction, n_members=n_members,
                                      config=cfg, with_mct=with_mct, mct_curves=mct_curves,
                                      progress=progress)
    model = ensembles[0]
    model.metadata["split_seeds"] = [seed + s for s in range(n_splits)]
    model.metadata["metrics_all_splits"] = summarize(table.to_dict("records"))
    model.metadata["training_ranges"] = training_ranges(ds, model.metadata["train_states"])
    if out is not None:
        model.save(out)
        table.to_csv(Path(out) / "evaluation.csv", index=False)
        curves = mct_curves.table(ds) if mct_curves is not None else None
        if curves is not None:  # MCT of the test states, so figures need not re-solve it
            curves.to_csv(Path(out) / "mct_curves.csv", index=False, float_format="%.6g")
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
    meta = read_metadata(model_dir)
    frames = [pd.read_csv(model_dir / "evaluation.csv")]
    for other in map(Path, other_dirs):
        if read_metadata(other)["library_hash"] != meta["library_hash"]:
            raise SupercooledError(f"{other} was trained on another library than {model_dir}")
        frames.append(pd.read_csv(other / "evaluation.csv"))
    table = pd.concat(frames, ignore_index=True).drop_duplicates(["state", "split_seed"])
    meta["split_seeds"] = sorted(int(s) for s in table.split_seed.unique())
    meta["metrics_all_splits"] = summarize(table.to_dict("records"))
    table.to_csv(model_dir / "evaluation.csv", index=False)
    write_metadata(model_dir, meta)
    return meta["metrics_all_splits"]


def match_states(ds, table, rtol: float = 1e-6) -> np.ndarray:
    """Index in ``ds`` of the state of each row of a result table; -1 where none matches.

    Rows are matched on their interaction, density and (measured) ``T`` columns, not on the
    ``state`` column, so that tables written when states were named by their measured
    temperature (before the library's ``label`` became the one state name) still find their
    states. ``rtol`` allows for the rounding of a written table (``%.6g``).
    """
    inter = np.array([normalize_interaction(str(v)) for v in ds["interaction"].values])
    rho = np.asarray(ds["density"].values, float)
    temp = np.asarray(ds["temperature"].values, float)
    out = np.full(len(table), -1, int)
    for n, row in enumerate(table[["interaction", "density", "T"]].itertuples(index=False)):
        same = ((inter == normalize_interaction(str(row.interaction)))
                & np.isclose(rho, float(row.density), rtol=1e-9, atol=1e-6))
        close = same & np.isclose(temp, float(row.T), rtol=rtol, atol=0.0)
        if close.any():
            candidates = np.flatnonzero(close)
            out[n] = candidates[np.argmin(np.abs(temp[candidates] - float(row.T)))]
    return out
