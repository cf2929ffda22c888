"""Scores of ensembles and baselines on test states, cross-validation, and the shipped model.

Splits are always by state (:func:`supercooled.library.split_indices`), never by time point.
Scores of one state (definitions in :mod:`supercooled.metrics`): R^2 of each species on its
own scale over its sampled times (R^2_AA, R^2_BB), the error of tau_alpha per species as a
factor exp|ln(tau_pred / tau_sim)|, the coverage of the calibrated intervals, and, for
comparison with the paper, the pooled R^2 of F_AA and F_BB together (SS_tot around the mean
of the *simulated* curve, the usual definition; the paper writes it around the mean
prediction). Besides the test states of each split, every ensemble is scored on the
independent set (``data/independent``, states of another N that no model trains on) when it
is given; the ``set`` column says which. Each split trains an ensemble and fits the
baselines of :mod:`supercooled.ml.baselines` (this module is the only one that uses them) on
the same training states. :func:`train_model` is the one call that (re)trains the shipped
model. Temperatures in units of T_mct come from :func:`supercooled.mct_table.reduced_temperature`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from supercooled.dynamics import tau_alpha
from supercooled.errors import SupercooledError
from supercooled.library import split_indices, state_labels, structure_at_peak
from supercooled.metrics import interval_coverage, log_ratio_factor, r2_per_species, r2_score, rmse
from supercooled.ml import calibration
from supercooled.ml.baselines import MCTCurves, fit_all
from supercooled.ml.ensemble import Ensemble, read_metadata, train_ensemble, write_metadata
from supercooled.ml.features import (
    load_states,
    phi_curves,
    state_features,
    training_ranges,
)
from supercooled.ml.network import TrainConfig
from supercooled.systems import normalize_interaction

SPECIES = ("A", "B")


def state_scores(prefix: str, truth_phi, pred_phi, peaks, times) -> dict:
    """Scores of one state's phi prediction (n_time, 2): pooled R^2 of F = phi S_aa(k_p) (the
    paper's), R^2 per species, RMSE of F, tau_alpha per species and its error factor."""
    f_true, f_pred = truth_phi * peaks, pred_phi * peaks
    r2_a = r2_per_species(truth_phi, pred_phi)
    row = {f"r2_{prefix}": r2_score(f_true, f_pred),
           **{f"r2_{prefix}_{s}{s}": r2_a[a] for a, s in enumerate(SPECIES)},
           f"rmse_{prefix}": rmse(f_true, f_pred)}
    for a, s in enumerate(SPECIES):
        tau = tau_alpha(pred_phi[:, a], times)
        row[f"tau_{prefix}_{s}"] = tau
        row[f"tau_factor_{prefix}_{s}"] = log_ratio_factor(tau_alpha(truth_phi[:, a], times), tau)
    return row


def evaluate(ensemble: Ensemble, ds, test_states, baselines: dict | None = None) -> list[dict]:
    """One row per test state: scores of the ensemble mean, of each member and baseline.

    ``baselines`` maps a name to a fitted object with ``predict(ds, states)`` returning
    (n_state, n_time, 2) F curves. Columns: state (the library label), interaction, density,
    T (measured), architecture; for the MLP and each baseline b: r2_<b> (F_AA and F_BB
    pooled, the paper's score), r2_<b>_AA and r2_<b>_BB (R^2 of each species on its own
    scale, :func:`supercooled.metrics.r2_per_species`), rmse_<b> (of F), tau_<b>_A, tau_<b>_B
    (tau_alpha of the predicted phi_s^a, :func:`supercooled.dynamics.tau_alpha`) and
    tau_factor_<b>_A, _B (exp|ln(tau_pred / tau_sim)|); tau_sim_A, tau_sim_B; for the MLP
    also r2_member_mean, r2_member_std (pooled R^2 of the members), spread (mean ensemble
    std of phi over sampled points), abs_error (mean |phi_mean - phi_sim|), ood_score
    (:func:`supercooled.ml.calibration.ood_score`) and, with a calibrated model, cov<p>_<a>
    (fraction of the sampled points of species a inside the calibrated interval of nominal
    level p = 68, 90, widened as ``predict`` widens it) with n_<a> sampled points.
    """
    test_states = np.asarray(test_states, int)
    sub = ds.isel(state=test_states)
    times = np.asarray(ds["time"].values, float)
    feats = state_features(sub)
    truth = phi_curves(sub)
    # S_aa(k_p) at the library's k_p, the normalisation of the eq. 1 targets
    peaks = np.array([structure_at_peak(sub.isel(state=j))[[0, 2]] for j in range(len(truth))])
    members = ensemble.predict_phi(feats, times, peaks)
    mean, std = members.mean(axis=0), members.std(axis=0)
    base_pred = {name: b.predict(ds, test_states) / peaks[:, None, :]
                 for name, b in (baselines or {}).items()}
    meta = ensemble.metadata
    labels = state_labels(ds, test_states)
    rows = []
    for j, i in enumerate(test_states):
        ok = np.isfinite(truth[j])
        member_r2 = [r2_score(truth[j] * peaks[j], members[m, j] * peaks[j])
                     for m in range(len(members))]
        row = {
            "state": labels[j],
            "interaction": normalize_interaction(str(ds["interaction"].values[i])),
            "density": float(ds["density"].values[i]),
            "T": float(ds["temperature"].values[i]),
            "architecture": ensemble.architecture,
            **{f"tau_sim_{s}": tau_alpha(truth[j][:, a], times) for a, s in enumerate(SPECIES)},
            **state_scores("mlp", truth[j], mean[j], peaks[j], times),
            "r2_member_mean": float(np.mean(member_r2)),
            "r2_member_std": float(np.std(member_r2)),
            "spread": float(std[j][ok].mean()),
            "abs_error": float(np.abs(mean[j] - truth[j])[ok].mean()),
        }
        row.update(interval_columns(meta, feats[j], mean[j], std[j], truth[j], times))
        for name, pred in base_pred.items():
            row.update(state_scores(name, truth[j], pred[j], peaks[j], times))
        rows.append(row)
    return rows


def interval_columns(meta: dict, feats, mean, std, truth, times) -> dict:
    """The OOD score of one state (``ood_score``, with the model's ``ood_reference``) and the
    coverage of its calibrated intervals (``cov<p>_<a>`` for p = 68, 90, widened as
    ``predict`` widens them, with ``n_<a>`` sampled points), from the members' mean and std of
    phi (n_time, 2) against ``truth``; empty where the model has no reference or calibration."""
    row, widen = {}, 1.0
    calib, ref = meta.get("calibration"), meta.get("ood_reference")
    if ref:
        row["ood_score"] = calibration.ood_score(ref, feats)["score"]
        widen = calibration.widening(row["ood_score"])
    if calib:
        ok = np.isfinite(truth)
        for level in calibration.LEVELS:
            lo, hi = calibration.interval(calib, mean[None], std[None], times, level, widen)
            for a, s in enumerate(SPECIES):
                row[f"cov{round(100 * level)}_{s}"] = interval_coverage(
                    truth[:, a], lo[0][:, a], hi[0][:, a])
        row.update({f"n_{s}": int(ok[:, a].sum()) for a, s in enumerate(SPECIES)})
    return row


MODELS = ("mlp", "ridge", "knn", "mct")
#: The baselines every score table shows next to the network.
BASELINES = MODELS[1:]


def score_table(table, by=("set",)):
    """Scores side by side, one row per (group of ``by``, model): mean R^2_AA, R^2_BB and
    pooled R^2 over the state tests (one per split and test state), the standard deviation
    of R^2_AA over them (R2_AA_std), median and 90th percentile of the tau_alpha error factor
    per species (over tests where both tau_alpha are defined); n_tests counts the state
    tests, n_states the distinct states among them (a state tested by several splits, as the
    independent set is, counts once)."""
    import pandas as pd

    out = []
    groups = table.groupby(list(by)) if by else [((), table)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        for m in MODELS:
            if f"r2_{m}" not in g:
                continue
            row = dict(zip(by, key, strict=False))
            scored = g[g[f"r2_{m}"].notna()]
            n_states = scored["state"].nunique() if "state" in scored else len(scored)
            row.update({"model": m, "n_states": int(n_states), "n_tests": len(scored),
                        "R2_AA": g[f"r2_{m}_AA"].mean(), "R2_AA_std": g[f"r2_{m}_AA"].std(),
                        "R2_BB": g[f"r2_{m}_BB"].mean(),
                        "R2_AA_worst": g[f"r2_{m}_AA"].min(), "R2_pooled": g[f"r2_{m}"].mean()})
            for s in SPECIES:
                f = g[f"tau_factor_{m}_{s}"].dropna()
                row[f"tau_factor_{s}_median"] = f.median() if len(f) else np.nan
                row[f"tau_factor_{s}_p90"] = f.quantile(0.9) if len(f) else np.nan
                row[f"n_tau_{s}"] = len(f)
            out.append(row)
    return pd.DataFrame(out)


def coverage_summary(table, by=("architecture", "set"), n_boot: int = 2000, seed: int = 0):
    """Empirical coverage of the calibrated intervals: one row per (``by``, species, nominal),
    coverage = (sum over states of cov * n) / (sum of n), i.e. over all sampled points.

    Points of one state are strongly correlated (a state's curve is either inside its band or
    shifted out of it), so the spread of the coverage is set by the number of states:
    ``coverage_lo`` and ``coverage_hi`` are the 5th and 95th percentiles of the same ratio
    over ``n_boot`` bootstrap resamples of the distinct states (a state tested in several
    splits is resampled with all its rows), seeded by ``seed``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for key, g in table.groupby(list(by)):
        key = key if isinstance(key, tuple) else (key,)
        for level in calibration.LEVELS:
            for s in SPECIES:
                c, n = g.get(f"cov{round(100 * level)}_{s}"), g.get(f"n_{s}")
                if c is None or n is None or not np.isfinite(c).any():
                    continue
                ok = (np.isfinite(c) & np.isfinite(n)).to_numpy()
                hit = (c * n).to_numpy()[ok]
                # per distinct state: covered points and points, summed over its splits
                codes, names = pd.factorize(g.state.to_numpy()[ok])
                covered = np.bincount(codes, weights=hit, minlength=len(names))
                points = np.bincount(codes, weights=n.to_numpy()[ok], minlength=len(names))
                draws = rng.integers(0, len(names), size=(n_boot, len(names)))
                boot = covered[draws].sum(axis=1) / points[draws].sum(axis=1)
                rows.append({**dict(zip(by, key, strict=False)), "species": s, "nominal": level,
                             "coverage": float(covered.sum() / points.sum()),
                             "coverage_lo": float(np.percentile(boot, 5)),
                             "coverage_hi": float(np.percentile(boot, 95)),
                             "n_points": int(points.sum()), "n_states": len(names),
                             "n_splits": int(g.split_seed.nunique()) if "split_seed" in g else 1})
    return pd.DataFrame(rows)


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
    for key in [k for k in rows[0] if k.startswith(("r2_", "rmse_", "tau_factor_"))]:
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
                   independent=None, pool: bool = True, progress: bool = True):
    """Train and test ensembles on ``n_splits`` random state splits (seeds seed ... seed+n-1).

    Returns (pandas DataFrame of :func:`evaluate` rows with a ``split_seed`` column, list of
    ensembles). ``train_candidates`` / ``test_candidates`` restrict which states may be used
    for training and testing (transferability studies); by default a split draws its test
    states from all states and trains on the rest. With fixed candidates for both and no
    overlap, the split seed only changes the ensemble's seeds and validation states. The MCT
    baseline (``with_baselines`` and ``with_mct``) keeps its curves in ``mct_curves`` (a fresh
    :class:`~supercooled.ml.baselines.MCTCurves` unless given), shared by all splits.
    ``independent``: a Dataset of states never trained on; every ensemble and baseline is also
    scored on all of them (rows with ``set`` = "independent"; test rows have "test").
    ``pool``: calibrate every ensemble on the calibration states of all splits
    (:func:`pool_calibrations`) before it is scored.
    """
    import pandas as pd

    if with_baselines and with_mct and mct_curves is None:
        mct_curves = MCTCurves()
    runs = []
    n = ds.sizes["state"]
    for s in range(n_splits):
        split_seed = seed + s
        train, test = split_for(n, test_fraction, split_seed, train_candidates, test_candidates)
        ens = train_ensemble(ds, train, n_members=n_members, seed=split_seed, config=config,
                             progress=progress)
        ens.metadata["split_seed"] = split_seed
        ens.metadata["test_states"] = state_labels(ds, test)
        runs.append((train, test, ens))
    ensembles = [ens for *_, ens in runs]
    if pool:
        pool_calibrations(ensembles, ds["time"].values)
    frames = []
    for train, test, ens in runs:
        fitted = (fit_all(ds, train, mct_curves if with_mct else None)
                  if with_baselines else {})
        rows = [{**r, "set": "test"} for r in evaluate(ens, ds, test, fitted)]
        if independent is not None and independent.sizes.get("state", 0):
            rows += [{**r, "set": "independent"} for r in
                     evaluate(ens, independent, np.arange(independent.sizes["state"]), fitted)]
        for r in rows:
            r["split_seed"] = ens.metadata["split_seed"]
        ens.metadata["metrics"] = summarize([r for r in rows if r["set"] == "test"])
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True), ensembles


def pool_calibrations(ensembles, times) -> None:
    """Calibrate each ensemble on the calibration states of all of them (in place).

    One run sets aside about 10 % of its training states (9 of the library's 101) for
    calibration, too few for stable quantiles of the non-conformity score. Runs of the same
    settings on other splits have the same score distribution, so the calibration of run k is
    refitted (:func:`supercooled.ml.calibration.fit_calibration`) on the calibration curves of
    every run, leaving out those of states in run k's test set (so its test coverage is still
    measured on states its calibration never saw). ``metadata["calibration"]["pooled_runs"]``
    says how many runs contributed. Runs without calibration curves are skipped.
    """
    runs = [e for e in ensembles if e.calibration_curves is not None]
    if len(runs) < 2:
        return
    for ens in runs:
        own_test = set(ens.metadata.get("test_states", []))
        parts = {"truth": [], "mean": [], "sigma": []}
        for other in runs:
            curves = other.calibration_curves
            keep = np.array([other is ens or label not in own_test
                             for label in curves["states"]], bool)
            for key in parts:
                parts[key].append(curves[key][keep])
        pooled = calibration.fit_calibration(*(np.concatenate(parts[k]) for k in parts), times)
        pooled["pooled_runs"] = len(runs)
        ens.metadata["calibration"] = pooled


def train_model(library, out=None, *, epochs: int | None = None, n_members: int = 5, seed: int = 0,
                n_splits: int = 1, test_fraction: float = 0.1, config: TrainConfig | None = None,
                with_mct: bool = True, independent=None, progress: bool = True):
    """The one call that (re)trains the shipped model: split, train, test, save.

    Trains ``n_splits`` ensembles on 90/10 state splits; the first (split seed ``seed``) is
    saved to ``out`` with the per-state test results of all splits (``evaluation.csv``),
    their summary in the metadata, and MCT's curves of the test states of all splits
    (``mct_curves.csv``, with ``with_mct``). ``epochs``, if given, overrides that of ``config``
    (default :class:`~supercooled.ml.network.TrainConfig`; the caller's object is not
    changed). ``independent``: a Dataset or folder of states never trained on (see
    :func:`cross_validate`), e.g. :func:`supercooled.paths.independent_path`; None: none.
    Returns (ensemble, evaluation DataFrame).
    """
    cfg = replace(config) if config is not None else TrainConfig()
    if epochs is not None:
        cfg.epochs = int(epochs)
    if cfg.epochs < 1:
        raise SupercooledError(f"epochs must be >= 1, got {cfg.epochs}")
    ds = load_states(library)
    if independent is not None and not hasattr(independent, "sizes"):
        independent = load_independent(independent)
    mct_curves = MCTCurves() if with_mct else None
    table, ensembles = cross_validate(ds, n_splits=n_splits, seed=seed,
                                      test_fraction=test_fraction, n_members=n_members,
                                      config=cfg, with_mct=with_mct, mct_curves=mct_curves,
                                      independent=independent, progress=progress)
    model = ensembles[0]
    model.metadata["split_seeds"] = [seed + s for s in range(n_splits)]
    model.metadata["metrics_all_splits"] = summarize(table[table.set == "test"].to_dict("records"))
    model.metadata["independent_states"] = (state_labels(independent)
                                            if independent is not None else [])
    model.metadata["training_ranges"] = training_ranges(ds, model.metadata["train_states"])
    if out is not None:
        from supercooled.atomic import replacing

        model.save(out)
        with replacing(Path(out) / "evaluation.csv") as temporary:
            table.to_csv(temporary, index=False)
        curves = mct_curves.table(ds) if mct_curves is not None else None
        if curves is not None:  # MCT of the test states, so figures need not re-solve it
            with replacing(Path(out) / "mct_curves.csv") as temporary:
                curves.to_csv(temporary, index=False, float_format="%.6g")
    return model, table


def combine_runs(model_dir, other_dirs) -> dict:
    """Merge the test results of training runs made in parallel into the model in ``model_dir``.

    ``supercooled train --splits 1 --seed s`` for several seeds can run as separate processes;
    this appends their ``evaluation.csv`` rows to that of ``model_dir`` (the shipped model,
    unchanged) and updates its metadata (``split_seeds``, ``metrics_all_splits``). Runs must
    come from the same library (same content hash). Each run keeps the calibration of its own
    calibration states: runs trained apart cannot pool them as :func:`cross_validate` does.
    Returns the updated metrics.
    """
    import pandas as pd

    model_dir = Path(model_dir)
    meta = read_metadata(model_dir)
    frames = [pd.read_csv(model_dir / "evaluation.csv")]
    for other in map(Path, other_dirs):
        if read_metadata(other)["library_hash"] != meta["library_hash"]:
            raise SupercooledError(f"{other} was trained on another library than {model_dir}")
        frames.append(pd.read_csv(other / "evaluation.csv"))
    table = pd.concat(frames, ignore_index=True)
    if "set" not in table:
        table["set"] = "test"
    table = table.drop_duplicates(["state", "split_seed", "set"])
    meta["split_seeds"] = sorted(int(s) for s in table.split_seed.unique())
    meta["metrics_all_splits"] = summarize(table[table.set == "test"].to_dict("records"))
    table.to_csv(model_dir / "evaluation.csv", index=False)
    write_metadata(model_dir, meta)
    return meta["metrics_all_splits"]


def score_model(model: Ensemble, ds, independent=None, *, mct_curves: MCTCurves | None = None):
    """:func:`evaluate` rows of a saved ensemble on its own test states (``set`` = "test") and
    on ``independent`` (``set`` = "independent"), with the baselines fitted on its training
    states; so that a model trained earlier (e.g. the paper's network) is scored as the
    current one is. States are found by label; returns a DataFrame."""
    import pandas as pd

    train, test = (find_states(ds, model.metadata[k]) for k in ("train_states", "test_states"))
    fitted = fit_all(ds, train, mct_curves)
    rows = [{**r, "set": "test"} for r in evaluate(model, ds, test, fitted)]
    if independent is not None:
        rows += [{**r, "set": "independent"} for r in
                 evaluate(model, independent, np.arange(independent.sizes["state"]), fitted)]
    table = pd.DataFrame(rows)
    table["split_seed"] = model.metadata.get("split_seed", 0)
    return table


def find_states(ds, names) -> np.ndarray:
    """Indices of states named by label, or, for names of the older form
    <interaction>_rho<density>_T<measured T>, by :func:`match_states`."""
    import pandas as pd

    labels = state_labels(ds)
    out = []
    for name in names:
        if name in labels:
            out.append(labels.index(name))
            continue
        inter, rho, temp = name.split("_")[:3]
        row = pd.DataFrame({"interaction": [inter], "density": [float(rho[3:])],
                            "T": [float(temp[1:])]})
        i = int(match_states(ds, row, rtol=2e-4)[0])
        if i < 0:
            raise SupercooledError(f"state {name} of the model is not in the library")
        out.append(i)
    return np.array(out, int)


def load_independent(path=None):
    """The independent set (default ``data/independent``) as a Dataset, or None when the folder
    holds no state file; crystallised states are dropped as from the library."""
    from supercooled.paths import independent_path

    path = Path(path) if path is not None else independent_path()
    if not path.is_dir() or not list(path.glob("*.nc")):
        return None
    from supercooled.library import load_library

    ds = load_library(path)
    if "crystallized" in ds.coords or "crystallized" in ds:
        ds = ds.isel(state=np.flatnonzero(np.asarray(ds["crystallized"].values) == 0))
    return ds if ds.sizes.get("state", 0) else None


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


def write_result_tables(table, results_dir) -> dict:
    """Write ``evaluation.csv`` (per-state rows of ``table``: every architecture, split and
    set) and ``calibration.csv`` (:func:`coverage_summary` by architecture and set) to
    ``results_dir``; return both DataFrames."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    coverage = coverage_summary(table)
    table.to_csv(results_dir / "evaluation.csv", index=False, float_format="%.6g")
    coverage.to_csv(results_dir / "calibration.csv", index=False, float_format="%.4f")
    return {"evaluation": table, "calibration": coverage}
