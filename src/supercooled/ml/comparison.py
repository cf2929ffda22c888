"""The MLP and the memory predictor side by side, with the baselines, on the same states.

Every comparison trains the memory predictor (:mod:`supercooled.ml.memory_predictor`) on the
training states of an existing MLP result and scores it on that result's test states, so that
each method is judged on exactly the same states:

* ``split``: the state splits of the shipped model (``data/models/mlp/evaluation.csv``, every
  split seed it holds, 10 test states each); the independent set (``data/independent``) is scored by
  the shipped model (split seed 0) and by the memory predictor trained on the same states;
* ``temperature``, ``model``, ``density``: the three transfer studies
  (``data/results/transfer_<study>.csv``): for each setting, the predictor is trained on the
  study's training selection (:mod:`supercooled.ml.transfer`) less the states the MLP was
  tested on, and tested on those.

Ridge and nearest neighbours (:mod:`supercooled.ml.baselines`) are refitted on the same
training states; MCT has no parameters. The memory predictor trains only on states with a
usable fit of its family, so its training set is the MLP's less the aged glasses and any state
whose fit did not converge; its test states are the MLP's, all of them.

Per-state scores (long format, one row per state, setting and method): r2_AA, r2_BB (each
species on its own scale), r2_pooled (the paper's), tau_factor_A, tau_factor_B
(exp|ln tau_pred / tau_sim|), and for the two predictors with calibrated intervals cov68_A,
cov90_A, ... with n_A, n_B sampled points. :func:`summary` turns them into
``data/results/predictors.csv``: per (study, setting, set, method) the mean and spread of the
per-species R^2, the median and 90th percentile of the tau_alpha factors and the coverage
pooled over sampled points.
"""

from __future__ import annotations

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.library import state_labels
from supercooled.ml import memory_predictor as mp
from supercooled.ml.evaluation import BASELINES, SPECIES, find_states, state_scores
from supercooled.ml.transfer import SETTING_COLUMNS as STUDY_SETTINGS

SCORES = ("r2_AA", "r2_BB", "r2_pooled", "tau_factor_A", "tau_factor_B")
COVERAGE = tuple(f"cov{p}_{s}" for p in (68, 90) for s in SPECIES) + ("n_A", "n_B")


def long_rows(wide: list[dict] | object, methods, **label) -> list[dict]:
    """Per-state rows of :func:`supercooled.ml.evaluation.evaluate` (or a DataFrame of them),
    wide (r2_<m>_AA, ...), to one row per (state, method) with the SCORES columns."""
    records = wide.to_dict("records") if hasattr(wide, "to_dict") else list(wide)
    out = []
    for r in records:
        for m in methods:
            if f"r2_{m}_AA" not in r:
                continue
            row = {**label, "state": r["state"], "interaction": r["interaction"],
                   "density": r["density"], "T": r["T"], "method": m,
                   "r2_AA": r[f"r2_{m}_AA"], "r2_BB": r[f"r2_{m}_BB"], "r2_pooled": r[f"r2_{m}"],
                   **{f"tau_factor_{s}": r.get(f"tau_factor_{m}_{s}", np.nan) for s in SPECIES}}
            if m in ("mlp", "memory"):
                row.update({k: r.get(k, np.nan) for k in COVERAGE})
                row["ood_score"] = r.get("ood_score", np.nan)
            out.append(row)
    return out


def baseline_rows(ds, train, test, mct_curves=None) -> list[dict]:
    """Wide rows of the baselines fitted on ``train`` and scored on ``test`` of ``ds``."""
    from supercooled.library import structure_at_peak
    from supercooled.ml.baselines import fit_all
    from supercooled.ml.features import phi_curves
    from supercooled.systems import normalize_interaction

    fitted = fit_all(ds, train, mct_curves)
    times = np.asarray(ds["time"].values, float)
    sub = ds.isel(state=np.asarray(test, int))
    truth = phi_curves(sub)
    peaks = np.array([structure_at_peak(sub.isel(state=j))[[0, 2]] for j in range(len(test))])
    preds = {name: b.predict(ds, test) / peaks[:, None, :] for name, b in fitted.items()}
    rows = []
    for j, label in enumerate(state_labels(sub)):
        row = {"state": label, "interaction": normalize_interaction(str(sub["interaction"].values[j])),
               "density": float(sub["density"].values[j]), "T": float(sub["temperature"].values[j])}
        for name, pred in preds.items():
            row.update(state_scores(name, truth[j], pred[j], peaks[j], times))
        rows.append(row)
    return rows


def memory_study_rows(ds, fits, train, test, *, regressor: str, method: str = "memory",
                      independent=None, n_members: int = mp.N_MEMBERS, seed: int = 0,
                      **label) -> list[dict]:
    """Long rows (method ``method``) of a memory predictor trained on ``train`` (states with
    usable fits) and scored on ``test`` (``set`` = "test") and on all of ``independent``."""
    model = mp.train(ds, fits, train, regressor=regressor, n_members=n_members, seed=seed)
    rows = []
    sets = [("test", ds, np.asarray(test, int))]
    if independent is not None:
        sets.append(("independent", independent, np.arange(independent.sizes["state"])))
    for name, data, states in sets:
        wide = mp.evaluate(model, data, states)
        for r in long_rows(wide, ["memory"], set=name, **label):
            r["method"] = method
            r["regressor"] = regressor
            r["n_train"] = model.metadata["n_train"]
            rows.append(r)
    return rows


def split_study(ds, fits, evaluation, *, shipped=None, independent=None, mct_curves=None,
                regressors=("gp", "ridge"), n_members: int = mp.N_MEMBERS) -> list[dict]:
    """The ``split`` comparison: each split seed of ``evaluation`` (the shipped model's
    per-state table); ``shipped`` (the MLP ensemble of split 0) scores the independent set.
    The first of ``regressors`` is method ``memory``, the others ``memory-<regressor>``."""
    from supercooled.ml.baselines import fit_all
    from supercooled.ml.evaluation import evaluate

    rows = []
    tests = evaluation[(evaluation["set"] == "test")
                       & (evaluation["architecture"] == "physics")]
    for split_seed, g in tests.groupby("split_seed"):
        test = find_states(ds, list(g["state"]))
        train = np.setdiff1d(np.arange(ds.sizes["state"]), test)
        label = {"study": "split", "setting": f"seed {split_seed}", "split_seed": int(split_seed)}
        rows += long_rows(g, ("mlp",) + BASELINES, set="test", **label)
        for n, regressor in enumerate(regressors):
            use_independent = independent if split_seed == 0 else None
            rows += memory_study_rows(ds, fits, train, test, regressor=regressor,
                                      method="memory" if n == 0 else f"memory-{regressor}",
                                      independent=use_independent, n_members=n_members,
                                      seed=int(split_seed), **label)
        if split_seed == 0 and shipped is not None and independent is not None:
            fitted = fit_all(ds, train, mct_curves)
            wide = evaluate(shipped, independent, np.arange(independent.sizes["state"]), fitted)
            rows += long_rows(wide, ("mlp",) + BASELINES, set="independent", **label)
    return rows


def _training_candidates(ds, study: str, setting, reduced_t) -> np.ndarray:
    from supercooled.ml import transfer

    if study == "temperature":
        return transfer.temperature_selection(reduced_t, float(setting))
    if study == "model":
        return transfer.interaction_selection(ds, str(setting))[0]
    if study == "density":
        return transfer.density_selection(ds, float(setting))[0]
    raise SupercooledError(f"unknown study {study!r}: choose one of {', '.join(STUDY_SETTINGS)}")


def transfer_study(ds, fits, table, study: str, reduced_t, *, mct_curves=None,
                   regressor: str = "gp", n_members: int = mp.N_MEMBERS) -> list[dict]:
    """The comparison on one transfer study's table (the MLP's per-state test rows)."""
    column = STUDY_SETTINGS[study]
    rows = []
    for setting, g in table.groupby(column):
        test = find_states(ds, list(g["state"]))
        g = g.assign(state=state_labels(ds, test))  # the library's names for every method
        train = np.setdiff1d(_training_candidates(ds, study, setting, reduced_t), test)
        label = {"study": study, "setting": f"{column}={setting}", "split_seed": 0}
        region = dict(zip(g["state"], g["region"], strict=True))
        part = long_rows(g, ("mlp",), set="test", **label)
        part += long_rows(baseline_rows(ds, train, test, mct_curves), BASELINES, set="test",
                          **label)
        part += memory_study_rows(ds, fits, train, test, regressor=regressor,
                                  n_members=n_members, **label)
        for r in part:
            r["region"] = region[r["state"]]
        rows += part
    return rows


def summary(states):
    """``predictors.csv``: one row per (study, setting, set, region, method) of the per-state
    table: n_states, mean R^2_AA (with its standard deviation and worst value) and R^2_BB,
    mean pooled R^2, median and 90th percentile of the tau_alpha factors, coverage of the
    68 % and 90 % intervals pooled over sampled points (predictors with intervals only)."""
    import pandas as pd

    states = states.copy()
    if "region" not in states:
        states["region"] = "all"
    states["region"] = states["region"].fillna("all")
    out = []
    for key, g in states.groupby(["study", "setting", "set", "region", "method"], sort=False):
        row = dict(zip(["study", "setting", "set", "region", "method"], key, strict=True))
        row.update({"n_states": int(g["state"].nunique()), "n_tests": len(g),
                    "R2_AA": g["r2_AA"].mean(), "R2_AA_std": g["r2_AA"].std(),
                    "R2_AA_worst": g["r2_AA"].min(), "R2_BB": g["r2_BB"].mean(),
                    "R2_BB_std": g["r2_BB"].std(), "R2_pooled": g["r2_pooled"].mean()})
        for s in SPECIES:
            f = g[f"tau_factor_{s}"].dropna()
            row[f"tau_factor_{s}_median"] = f.median() if len(f) else np.nan
            row[f"tau_factor_{s}_p90"] = f.quantile(0.9) if len(f) else np.nan
        for p in (68, 90):
            for s in SPECIES:
                c = g.get(f"cov{p}_{s}")
                n = g.get(f"n_{s}")
                ok = (np.isfinite(c) & np.isfinite(n)) if c is not None and n is not None \
                    else None
                row[f"coverage{p}_{s}"] = (float((c[ok] * n[ok]).sum() / n[ok].sum())
                                           if ok is not None and ok.any() else np.nan)
        out.append(row)
    return pd.DataFrame(out)


def write_comparison(library, out_dir, *, fits=None, model_dir=None, results_dir=None,
                     independent=None, studies=("split", "temperature", "model", "density"),
                     regressors=("gp", "ridge"), n_members: int = mp.N_MEMBERS,
                     progress: bool = True) -> dict:
    """Run the comparisons and write ``predictors_states.csv`` (per state) and
    ``predictors.csv`` (:func:`summary`) to ``out_dir``; return both DataFrames.

    ``fits``: the memory-fit table (default ``data/results/memory_fits.csv``); ``model_dir``:
    the shipped MLP (its ``evaluation.csv`` defines the splits); ``results_dir``: where the
    transfer tables are (default ``data/results``); ``independent``: a Dataset (default
    :func:`supercooled.ml.evaluation.load_independent`). The first regressor is used for the
    transfer studies.
    """
    from pathlib import Path

    import pandas as pd
    from tqdm import tqdm

    from supercooled.atomic import replacing
    from supercooled.mct_table import reduced_temperature
    from supercooled.memory_fits import load_fits
    from supercooled.ml.baselines import MCTCurves
    from supercooled.ml.ensemble import Ensemble
    from supercooled.ml.evaluation import load_independent
    from supercooled.ml.features import load_states
    from supercooled.paths import model_path, results_path

    ds = load_states(library)
    fits = load_fits(fits) if fits is None or not hasattr(fits, "columns") else fits
    model_dir = Path(model_dir) if model_dir is not None else model_path()
    results_dir = Path(results_dir) if results_dir is not None else results_path()
    independent = load_independent() if independent is None else independent
    mct_curves = MCTCurves()
    rows = []
    for study in tqdm(studies, desc="predictor comparison", disable=not progress):
        if study == "split":
            evaluation = pd.read_csv(model_dir / "evaluation.csv")
            rows += split_study(ds, fits, evaluation, shipped=Ensemble.load(model_dir),
                                independent=independent, mct_curves=mct_curves,
                                regressors=regressors, n_members=n_members)
            continue
        if study not in STUDY_SETTINGS:
            raise SupercooledError(f"unknown study {study!r}: choose split or one of "
                                   f"{', '.join(STUDY_SETTINGS)}")
        table = pd.read_csv(results_dir / f"transfer_{study}.csv")
        rows += transfer_study(ds, fits, table, study, reduced_temperature(ds),
                               mct_curves=mct_curves, regressor=regressors[0],
                               n_members=n_members)
    states = pd.DataFrame(rows)
    index = {lab: i for i, lab in enumerate(state_labels(ds))}
    reduced = reduced_temperature(ds)
    states["T_over_Tmct"] = [reduced[index[s]] if s in index else np.nan for s in states.state]
    table = summary(states)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in (("predictors_states.csv", states), ("predictors.csv", table)):
        with replacing(out_dir / name) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
    return {"states": states, "summary": table}
