"""Transferability of the MLP: temperature, interaction and density (paper section 2.1.1).

Each study chooses which states may be trained on and which are tested, then calls
:func:`supercooled.ml.evaluation.cross_validate` (and through it
:func:`supercooled.ml.network.train_network`, the package's one training loop). States that are both trainable and testable are split
90/10 at random per split seed, so a test state is never a training state; states outside
the training selection are always test states ("unseen").

* temperature: train on T / T_mct > T_0 for thresholds T_0; test on everything;
* model (interaction): train on LJ, test on WCA, and the reverse;
* density (beyond the paper): leave one density out, train on the others, test on it.

Each result row is one (split, test state) with the scores of
:func:`supercooled.ml.evaluation.evaluate` (R^2 per species, tau_alpha error factors, coverage
of the calibrated intervals, OOD score; the pooled R^2 for comparison) of the ensemble and,
fitted on the same training states, of ridge, nearest neighbours and MCT, and whether the
state was in the trained region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from supercooled.errors import SupercooledError
from supercooled.library import state_labels
from supercooled.mct_table import reduced_temperature
from supercooled.ml.baselines import MCTCurves
from supercooled.ml.evaluation import BASELINES, cross_validate
from supercooled.ml.features import library_hash, load_states, state_features, target_curves
from supercooled.ml.network import TrainConfig
from supercooled.systems import normalize_interaction


def temperature_selection(reduced_t, threshold: float) -> np.ndarray:
    """Indices of states with T / T_mct strictly above ``threshold`` (NaN never selected)."""
    reduced_t = np.asarray(reduced_t, float)
    if not np.isfinite(reduced_t).any():
        raise SupercooledError("T_mct is unknown for every state: run the MCT chapter first "
                               "(data/mct/critical_temperatures.csv)")
    return np.flatnonzero(np.nan_to_num(reduced_t, nan=-np.inf) > threshold)


def interaction_selection(ds, interaction: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, test): the states of ``interaction`` and those of the other interaction."""
    name = normalize_interaction(interaction)
    labels = np.array([normalize_interaction(str(v)) for v in ds["interaction"].values])
    train, test = np.flatnonzero(labels == name), np.flatnonzero(labels != name)
    if len(train) == 0 or len(test) == 0:
        raise SupercooledError(f"need states of both interactions to train on {name} and test "
                               f"on the other; library has {sorted(set(labels))}")
    return train, test


def density_selection(ds, density: float, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """(train, test): states at other densities, and the states at ``density`` (left out)."""
    rho = np.asarray(ds["density"].values, float)
    held = np.abs(rho - density) < tol
    if not held.any():
        raise SupercooledError(f"no state at density {density:g}; library has "
                               f"{', '.join(f'{r:g}' for r in sorted(set(np.round(rho, 3))))}")
    if held.all():
        raise SupercooledError("leave-one-density-out needs at least two densities")
    return np.flatnonzero(~held), np.flatnonzero(held)


def library_densities(ds) -> list[float]:
    return sorted({round(float(r), 3) for r in ds["density"].values})


def _run(ds, reduced_t, train, test, *, label: dict, n_splits, n_members, seed, config,
         progress, mct_curves=None):
    """One study's cross-validation; baselines (MCT with ``mct_curves``) on the same splits."""
    table, ensembles = cross_validate(ds, n_splits=n_splits, n_members=n_members, seed=seed,
                                      config=config, train_candidates=train,
                                      test_candidates=test, with_baselines=True,
                                      with_mct=mct_curves is not None, mct_curves=mct_curves,
                                      progress=progress)
    index = {lab: i for i, lab in enumerate(state_labels(ds))}
    trained = set(int(i) for i in train)
    table["T_over_Tmct"] = [reduced_t[index[s]] for s in table["state"]]
    table["region"] = ["trained" if index[s] in trained else "unseen" for s in table["state"]]
    for key, value in label.items():
        table.insert(0, key, value)
    return table, ensembles


def temperature_study(ds, reduced_t, thresholds=(1.5, 1.2, 1.0, 0.8), *, n_splits: int = 1,
                      n_members: int = 5, seed: int = 0, config=None, progress: bool = True,
                      mct_curves=None):
    """Train on T / T_mct > T_0 for each threshold; test on held-out and all colder states."""
    import pandas as pd

    frames = []
    for t0 in thresholds:
        train = temperature_selection(reduced_t, t0)
        if len(train) < 3:
            raise SupercooledError(f"only {len(train)} states above T/T_mct = {t0}; need >= 3")
        frames.append(_run(ds, reduced_t, train, np.arange(ds.sizes["state"]),
                           label={"T0_over_Tmct": t0}, n_splits=n_splits, n_members=n_members,
                           seed=seed, config=config, progress=progress,
                           mct_curves=mct_curves)[0])
    return pd.concat(frames, ignore_index=True)


def model_study(ds, reduced_t, *, n_splits: int = 1, n_members: int = 5, seed: int = 0,
                config=None, progress: bool = True, example_r2: float | None = None,
                mct_curves=None):
    """Train on LJ and test on WCA, and the reverse (paper fig. 5).

    With ``example_r2`` (e.g. 0.8) also return the curves of the test state whose R^2 is
    closest to it (for the paper's inset): (table, example DataFrame). States whose R^2 is
    undefined (NaN) are never chosen; if every R^2 is NaN that is an error.
    """
    import pandas as pd

    frames, models = [], []
    for source, target in (("LJ", "WCA"), ("WCA", "LJ")):
        train, test = interaction_selection(ds, source)
        table, ensembles = _run(ds, reduced_t, train, test,
                                label={"train_on": source, "test_on": target},
                                n_splits=n_splits, n_members=n_members, seed=seed,
                                config=config, progress=progress, mct_curves=mct_curves)
        frames.append(table)
        models += [(source, e.metadata["split_seed"], e) for e in ensembles]
    table = pd.concat(frames, ignore_index=True)
    if example_r2 is None:
        return table
    return table, example_for_r2(ds, table, models, example_r2)


def example_for_r2(ds, table, models, example_r2: float):
    """:func:`example_curves` of the row of ``table`` whose (finite) R^2 is nearest ``example_r2``.

    ``models``: (train_on, split_seed, ensemble) for every ensemble of ``table``.
    """
    distance = np.abs(np.asarray(table.r2_mlp, float) - example_r2)
    if not np.isfinite(distance).any():
        raise SupercooledError("no test state has a finite R^2: cannot choose the example state "
                               "of the model study")
    row = table.iloc[int(np.nanargmin(distance))]
    ensemble = next(e for src, s, e in models if src == row.train_on and s == row.split_seed)
    return example_curves(ds, ensemble, state_labels(ds).index(row.state), row)


def example_curves(ds, ensemble, i: int, row=None):
    """Simulated and predicted F_s^aa(k_p, t) (mean, spread) of state ``i`` as a DataFrame."""
    import pandas as pd

    sub = ds.isel(state=[i])
    truth = target_curves(sub)[0]
    mean, std, _ = ensemble.predict_curves(state_features(sub), ds["time"].values)
    frame = pd.DataFrame({"t": ds["time"].values,
                          "F_AA_sim": truth[:, 0], "F_BB_sim": truth[:, 1],
                          "F_AA_mlp": mean[0, :, 0], "F_AA_std": std[0, :, 0],
                          "F_BB_mlp": mean[0, :, 1], "F_BB_std": std[0, :, 1]})
    frame.insert(0, "state", state_labels(ds, [i])[0])
    if row is not None:
        frame.insert(1, "train_on", row.train_on)
        frame.insert(2, "r2_mlp", row.r2_mlp)
    return frame


def density_study(ds, reduced_t, densities=None, *, n_splits: int = 1, n_members: int = 5,
                  seed: int = 0, config=None, progress: bool = True, mct_curves=None):
    """Leave each density out in turn: train on the other densities, test on it."""
    import pandas as pd

    frames = []
    for rho in densities or library_densities(ds):
        train, test = density_selection(ds, rho)
        frames.append(_run(ds, reduced_t, train, test, label={"left_out_density": rho},
                           n_splits=n_splits, n_members=n_members, seed=seed, config=config,
                           progress=progress, mct_curves=mct_curves)[0])
    return pd.concat(frames, ignore_index=True)


def binned(table, column: str = "r2_mlp", by=(), bins=None, width: float = 0.2):
    """Mean, std and count of ``column`` in bins of T / T_mct (per group of ``by``).

    ``bins``: the bin edges; by default bins of ``width`` on a fixed grid (edges at multiples
    of ``width``, so tables binned separately share their bins) from below the smallest to
    above the largest finite ``T_over_Tmct``, so that every state is counted. Rows that fall
    in no bin (no T / T_mct, or outside explicit ``bins``) are left out with a warning, never
    silently.
    """
    import warnings

    import pandas as pd

    x = np.asarray(table["T_over_Tmct"], float)
    if bins is None:
        finite = x[np.isfinite(x)]
        if finite.size:
            lo = np.floor(finite.min() / width)
            hi = max(np.ceil(finite.max() / width), lo + 1)
            if lo * width > finite.min():  # guard against rounding of x / width
                lo -= 1
            if hi * width < finite.max():
                hi += 1
            bins = np.round(np.arange(lo, hi + 1) * width, 12)
        else:
            bins = np.array([0.0, width])
    bins = np.asarray(bins, float)
    frame = table.copy()
    code = np.asarray(pd.cut(x, bins, labels=False, include_lowest=True), float)
    unbinned = np.isnan(code)
    mids = (bins[:-1] + bins[1:]) / 2
    frame["T_mid"] = np.where(unbinned, np.nan, mids[np.nan_to_num(code, nan=0).astype(int)])
    if unbinned.any():
        missing = int(np.isnan(x[unbinned]).sum())
        outside = int(unbinned.sum()) - missing
        warnings.warn(f"binned: {int(unbinned.sum())} of {len(frame)} rows left out "
                      f"({missing} without T / T_mct, {outside} outside the bins "
                      f"{bins[0]:g}..{bins[-1]:g})", stacklevel=2)
    groups = [*by, "T_mid"]
    out = frame.groupby(groups, observed=True)[column].agg(["mean", "std", "count"])
    return out.reset_index()


def write_studies(library, out_dir, *, reduced_t=None, thresholds=(1.5, 1.2, 1.0, 0.8),
                  densities=None, n_splits: int = 1, n_members: int = 5, seed: int = 0,
                  config=None, studies=("temperature", "model", "density"),
                  with_mct: bool = True, progress: bool = True) -> dict:
    """Run the studies and write ``transfer_<study>.csv`` to ``out_dir``; return the tables.

    Ridge and nearest neighbours are fitted on the same training states; MCT (``with_mct``)
    is solved once per state and shared by the studies. The model study also writes ``transfer_model_example.csv``: the curves of the test state
    whose R^2 is closest to 0.8, the paper's inset of fig. 5.

    ``library``: a Dataset or a library folder; ``reduced_t``: T / T_mct per state (default:
    from the MCT chapter's T_mct table, :func:`supercooled.mct_table.reduced_temperature`).
    The temperature study needs T_mct; the other two run without it (their T / T_mct column
    is then NaN).
    """
    ds = load_states(library)
    reduced_t = reduced_temperature(ds) if reduced_t is None else np.asarray(reduced_t)
    common = {"n_splits": n_splits, "n_members": n_members, "seed": seed, "config": config,
              "progress": progress, "mct_curves": MCTCurves() if with_mct else None}
    runners = {
        "temperature": lambda: temperature_study(ds, reduced_t, thresholds, **common),
        "model": lambda: model_study(ds, reduced_t, example_r2=0.8, **common),
        "density": lambda: density_study(ds, reduced_t, densities, **common),
    }
    unknown = [name for name in studies if name not in runners]
    if unknown:
        raise SupercooledError(f"unknown transfer stud{'ies' if len(unknown) > 1 else 'y'} "
                               f"{', '.join(map(repr, unknown))}: choose from "
                               f"{', '.join(runners)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {}
    cfg = config or TrainConfig()
    settings = {"epochs": cfg.epochs, "n_members": n_members, "n_splits": n_splits,
                "architecture": cfg.architecture,
                "n_library_states": int(ds.sizes["state"]), "library_hash": library_hash(ds)}
    for name in studies:
        result = runners[name]()
        if name == "model":  # with the curves of the state nearest R^2 = 0.8 (the inset)
            result, tables["model_example"] = result
            tables["model_example"].to_csv(out_dir / "transfer_model_example.csv", index=False,
                                           float_format="%.6g")
        result = result.assign(**settings)  # record how each table was made, in the table itself
        tables[name] = result
        result.to_csv(out_dir / f"transfer_{name}.csv", index=False, float_format="%.6g")
    return tables


#: The column that names a study's setting: the threshold, the training interaction, the
#: density left out.
SETTING_COLUMNS = {"temperature": "T0_over_Tmct", "model": "train_on",
                   "density": "left_out_density"}


def method_comparison(tables: dict, others: dict | None = None, other_name: str = "paper",
                      score: str = "r2_{}_AA", statistic: str = "mean"):
    """One row per (study, setting, region): ``statistic`` ("mean" or "median") of ``score``
    (``r2_{}_AA``, or ``tau_factor_{}_A`` for the error factor of tau_alpha^A) over the test
    states, for the network of ``tables`` (column named by its ``architecture``), for
    ``others`` (the same studies made with another network, e.g. the paper's; column
    ``other_name``) and for the baselines present in ``tables``, with ``n`` state tests.

    ``tables`` and ``others`` map a study name (:data:`SETTING_COLUMNS`) to its result table
    (:func:`write_studies`); studies missing from either are skipped there. Both networks are
    scored on their own tables; the baselines are fitted on the same training states.
    """
    import pandas as pd

    if statistic not in ("mean", "median"):
        raise SupercooledError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    frames = []
    for study, setting in SETTING_COLUMNS.items():
        table = tables.get(study)
        if table is None:
            continue
        name = str(table["architecture"].iloc[0]) if "architecture" in table else "paper"
        keys = [setting, "region"]
        methods = {name: score.format("mlp")}
        methods.update({b: score.format(b) for b in BASELINES if score.format(b) in table})
        groups = table.groupby(keys)
        out = groups[list(methods.values())].agg(statistic)
        out.columns = list(methods)
        out.insert(0, "n", groups.size())
        other = (others or {}).get(study)
        if other is not None and score.format("mlp") in other:
            out.insert(2, other_name, other.groupby(keys)[score.format("mlp")].agg(statistic))
        out = out.reset_index().rename(columns={setting: "setting"})
        out.insert(0, "study", study)
        out["setting"] = out["setting"].astype(str)
        frames.append(out)
    if not frames:
        raise SupercooledError("no transfer study to compare")
    return pd.concat(frames, ignore_index=True).set_index(["study", "setting", "region"])
