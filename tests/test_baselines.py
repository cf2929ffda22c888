"""Tests of the baselines (ridge with exact leave-one-out alpha, nearest neighbours, MCT)."""

from __future__ import annotations

import numpy as np
import pytest

from supercooled.library import split_indices, state_labels, structure_at_peak
from supercooled.mct_table import state_fs
from supercooled.ml import baselines, evaluation
from supercooled.ml.ensemble import Ensemble
from supercooled.ml.features import Scaler, design, target_curves
from supercooled.ml.network import TrainConfig, build_network


@pytest.fixture(scope="module")
def library(synthetic_library):
    return synthetic_library()


def test_loo_shortcut_equals_refitting():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=12)
    fast = baselines.loo_errors(x, y)
    for a, alpha in enumerate(baselines.ALPHAS[::4]):
        brute = 0.0
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            w, b = baselines.ridge(x[keep], y[keep], alpha)
            brute += (y[i] - b - x[i] @ w) ** 2
        assert fast[4 * a] == pytest.approx(brute, rel=1e-8)


def test_ridge_solution_matches_normal_equations():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=20)
    w, b = baselines.ridge(x, y, 0.7)
    xc = x - x.mean(axis=0)
    expected = np.linalg.solve(xc.T @ xc + 0.7 * np.eye(4), xc.T @ (y - y.mean()))
    np.testing.assert_allclose(w, expected, rtol=1e-10)
    assert b == pytest.approx(y.mean() - x.mean(axis=0) @ w)


def test_ridge_recovers_a_law_linear_in_the_features(library):
    # replace the targets by a linear function of T: ridge must reproduce it on unseen states
    t = library["temperature"].values
    phi = np.broadcast_to((0.3 * t)[:, None, None], library["phi_s"].shape).copy()
    peaks = np.array([structure_at_peak(library.isel(state=i))[[0, 2]]
                      for i in range(library.sizes["state"])])
    ds = library.assign(phi_s=(library["phi_s"].dims, phi / peaks[:, :, None]))
    train, test = split_indices(ds.sizes["state"], 0.25, 0)
    pred = baselines.RidgeBaseline().fit(ds, train).predict(ds, test)
    np.testing.assert_allclose(pred, target_curves(ds.isel(state=test)), atol=2e-2)


def test_ridge_is_nan_only_where_no_training_state_sampled(library):
    warm = np.flatnonzero(library["temperature"].values >= 1.5)
    pred = baselines.RidgeBaseline().fit(library, warm).predict(library, [0])
    sampled = np.isfinite(target_curves(library.isel(state=warm))).any(axis=(0, 2))
    assert np.isfinite(pred[0, sampled]).all() and np.isnan(pred[0, ~sampled]).all()


def test_one_nearest_neighbour_returns_the_closest_curve(library):
    train = np.arange(0, library.sizes["state"], 2)
    knn = baselines.NearestNeighbourBaseline(k=1).fit(library, train)
    np.testing.assert_allclose(knn.predict(library, train[:3]),
                               target_curves(library.isel(state=train[:3])))
    # a state between two training states is predicted by one of them
    pred = knn.predict(library, [1])[0]
    curves = target_curves(library.isel(state=train))
    assert any(np.allclose(pred, c, equal_nan=True) for c in curves)


def test_fit_all_without_mct(library):
    fitted = baselines.fit_all(library, np.arange(10))
    assert set(fitted) == {"ridge", "knn"}
    rows = evaluation.evaluate(Ensemble([build_network((4,))], Scaler.fit(design(library).x), (4,)),
                               library, [12, 13], fitted)
    assert {"r2_ridge", "r2_knn", "rmse_ridge"} <= set(rows[0])


def test_fit_all_with_mct_adds_the_parameter_free_mct_baseline(library):
    calls = []

    def fake_mct(ds, i, times):
        calls.append(i)
        return np.full((len(times), 2), 0.5)

    curves = baselines.MCTCurves(fake_mct)
    fitted = baselines.fit_all(library, np.arange(10), curves)
    assert set(fitted) == {"ridge", "knn", "mct"} and fitted["mct"].curves is curves
    pred = fitted["mct"].predict(library, [12, 13])  # solved only when asked, then cached
    assert pred.shape == (2, library.sizes["time"], 2) and calls == [12, 13]
    fitted["mct"].predict(library, [12])
    assert calls == [12, 13]
    # another baseline sharing the cache (the next split) does not solve again
    baselines.MCTBaseline(curves).predict(library.isel(state=[13, 14]), [0, 1])
    assert calls == [12, 13, 1]
    table = curves.table(library.isel(state=[12, 13]))
    assert len(table) == 2 * library.sizes["time"]
    assert set(table.state) == set(state_labels(library, [12, 13]))
    assert curves.table(library.isel(state=[0])) is None
    assert baselines.MCTBaseline().curves.function is state_fs


def test_cross_validation_solves_each_mct_state_once(library):
    calls = []

    def fake_mct(ds, i, times):
        calls.append(state_labels(ds, [i])[0])
        return np.full((len(times), 2), 0.5)

    cfg = TrainConfig(hidden=(4,), epochs=1, patience=None, threads=1)
    curves = baselines.MCTCurves(fake_mct)
    table, _ = evaluation.cross_validate(library, n_splits=3, n_members=1, test_fraction=0.3,
                                         config=cfg, mct_curves=curves, progress=False)
    assert "r2_mct" in table.columns
    assert sorted(calls) == sorted(set(table.state)) and len(curves) == len(calls)


@pytest.mark.slow
def test_mct_baseline_is_the_mct_table_state_fs_and_cached(library):
    ds = library.isel(state=[0])
    curves = baselines.MCTCurves()
    curve = curves.curve(ds, 0)
    np.testing.assert_allclose(curve, state_fs(ds, 0, ds["time"].values))
    assert curves.curve(ds, 0) is curve  # second call comes from the cache
    table = curves.table(ds)
    assert len(table) == ds.sizes["time"] and set(table.state) == set(state_labels(ds))
