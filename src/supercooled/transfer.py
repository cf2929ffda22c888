"""Transferability of the MLP: temperature, interaction and density (paper section 2.1.1).

Each study chooses which states may be trained on and which are tested, then calls
:func:`supercooled.mlp.cross_validate` (and through it :func:`supercooled.mlp.train_network`,
the package's one training loop). States that are both trainable and testable are split
90/10 at random per split seed, so a test state is never a training state; states outside
the training selection are always test states ("unseen").

* temperature: train on T / T_mct > T_0 for thresholds T_0; test on everything;
* model (interaction): train on LJ, test on WCA, and the reverse;
* density (beyond the paper): leave one density out, train on the others, test on it.

Each result row is one (split, test state) with the state's R^2 of the ensemble mean, the
members' R^2 spread, the ensemble spread and whether the state was in the trained region.
"""

from __future__ import annotations

import numpy as np

from supercooled import mlp
from supercooled.errors import SupercooledError
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
         progress):
    table, _ = mlp.cross_validate(ds, n_splits=n_splits, n_members=n_members, seed=seed,
                                  config=config, train_candidates=train, test_candidates=test,
                                  with_baselines=False, progress=progress)
    labels = [mlp.state_label(ds, i) for i in range(ds.sizes["state"])]
    index = {lab: i for i, lab in enumerate(labels)}
    trained = set(int(i) for i in train)
    table["T_over_Tmct"] = [reduced_t[index[s]] for s in table["state"]]
    table["region"] = ["trained" if index[s] in trained else "unseen" for s in table["state"]]
    for key, value in label.items():
        table.insert(0, key, value)
    return table


def temperature_study(ds, reduced_t, thresholds=(1.5, 1.2, 1.0, 0.8), *, n_splits: int = 1,
                      n_members: int = 5, seed: int = 0, config=None, progress: bool = True):
    """Train on T / T_mct > T_0 for each threshold; test on held-out and all colder states."""
    import pandas as pd

    frames = []
    for t0 in thresholds:
        train = temperature_selection(reduced_t, t0)
        if len(train) < 3:
            raise SupercooledError(f"only {len(train)} states above T/T_mct = {t0}; need >= 3")
        frames.append(_run(ds, reduced_t, train, np.arange(ds.sizes["state"]),
                           label={"T0_over_Tmct": t0}, n_splits=n_splits, n_members=n_members,
                           seed=seed, config=config, progress=progress))
    return pd.concat(frames, ignore_index=True)


def model_study(ds, reduced_t, *, n_splits: int = 1, n_members: int = 5, seed: int = 0,
                config=None, progress: bool = True):
    """Train on LJ and test on WCA, and the reverse (paper fig. 5)."""
    import pandas as pd

    frames = []
    for source, target in (("LJ", "WCA"), ("WCA", "LJ")):
        train, test = interaction_selection(ds, source)
        frames.append(_run(ds, reduced_t, train, test,
                           label={"train_on": source, "test_on": target}, n_splits=n_splits,
                           n_members=n_members, seed=seed, config=config, progress=progress))
    return pd.concat(frames, ignore_index=True)


def density_study(ds, reduced_t, densities=None, *, n_splits: int = 1, n_members: int = 5,
                  seed: int = 0, config=None, progress: bool = True):
    """Leave each density out in turn: train on the other densities, test on it."""
    import pandas as pd

    frames = []
    for rho in densities or library_densities(ds):
        train, test = density_selection(ds, rho)
        frames.append(_run(ds, reduced_t, train, test, label={"left_out_density": rho},
                           n_splits=n_splits, n_members=n_members, seed=seed, config=config,
                           progress=progress))
    return pd.concat(frames, ignore_index=True)


def binned(table, column: str = "r2_mlp", by=(), bins=None):
    """Mean, std and count of ``column`` in bins of T / T_mct (per group of ``by``)."""
    import pandas as pd

    bins = np.arange(0.4, 3.01, 0.2) if bins is None else np.asarray(bins)
    frame = table.copy()
    frame["bin"] = pd.cut(frame["T_over_Tmct"], bins)
    frame["T_mid"] = [iv.mid if isinstance(iv, pd.Interval) else np.nan for iv in frame["bin"]]
    groups = [*by, "T_mid"]
    out = frame.groupby(groups, observed=True)[column].agg(["mean", "std", "count"])
    return out.reset_index()
