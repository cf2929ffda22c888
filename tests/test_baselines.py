"""Tests of the baselines (ridge with exact leave-one-out alpha, nearest neighbours, MCT)."""

from __future__ import annotations

import numpy as np
import pytest
from test_mlp import synthetic_library

from supercooled import baselines, mlp


@pytest.fixture(scope="module")
def library():
    return synthetic_library()


def test_loo_shortcut_equals_refitting():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=12)
    fast = baselines._loo_errors(x, y)
    for a, alpha in enumerate(baselines.ALPHAS[::4]):
        brute = 0.0
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            w, b = baselines._ridge(x[keep], y[keep], alpha)
            brute += (y[i] - b - x[i] @ w) ** 2
        assert fast[4 * a] == pytest.approx(brute, rel=1e-8)


def test_ridge_solution_matches_normal_equations():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=20)
    w, b = baselines._ridge(x, y, 0.7)
    xc = x - x.mean(axis=0)
    expected = np.linalg.solve(xc.T @ xc + 0.7 * np.eye(4), xc.T @ (y - y.mean()))
    np.testing.assert_allclose(w, expected, rtol=1e-10)
    assert b == pytest.approx(y.mean() - x.mean(axis=0) @ w)


def test_ridge_recovers_a_law_linear_in_the_features(library):
    # replace the targets by a linear function of T: ridge must reproduce it on unseen states
    t = library["temperature"].values
    phi = np.broadcast_to((0.3 * t)[:, None, None], library["phi_s"].shape).copy()
    ds = library.assign(phi_s=(library["phi_s"].dims, phi / mlp.peak_values(library)[:, :, None]))
    train, test = mlp.split_states(ds.sizes["state"], 0.25, 0)
    pred = baselines.RidgeBaseline().fit(ds, train).predict(ds, test)
    np.testing.assert_allclose(pred, mlp.target_curves(ds.isel(state=test)), atol=2e-2)


def test_ridge_is_nan_only_where_no_training_state_sampled(library):
    warm = np.flatnonzero(library["temperature"].values >= 1.5)
    pred = baselines.RidgeBaseline().fit(library, warm).predict(library, [0])
    sampled = np.isfinite(mlp.target_curves(library.isel(state=warm))).any(axis=(0, 2))
    assert np.isfinite(pred[0, sampled]).all() and np.isnan(pred[0, ~sampled]).all()


def test_one_nearest_neighbour_returns_the_closest_curve(library):
    train = np.arange(0, library.sizes["state"], 2)
    knn = baselines.NearestNeighbourBaseline(k=1).fit(library, train)
    np.testing.assert_allclose(knn.predict(library, train[:3]),
                               mlp.target_curves(library.isel(state=train[:3])))
    # a state between two training states is predicted by one of them
    pred = knn.predict(library, [1])[0]
    curves = mlp.target_curves(library.isel(state=train))
    assert any(np.allclose(pred, c, equal_nan=True) for c in curves)


def test_fit_all_without_mct(library):
    fitted = baselines.fit_all(library, np.arange(10), with_mct=False)
    assert set(fitted) == {"ridge", "knn"}
    rows = mlp.evaluate(mlp.Ensemble([mlp.build_network((4,))], mlp.Scaler.fit(
        mlp.design(library).x), (4,)), library, [12, 13], fitted)
    assert {"r2_ridge", "r2_knn", "rmse_ridge"} <= set(rows[0])


def test_fit_all_with_mct_adds_the_parameter_free_mct_baseline(library, monkeypatch):
    calls = []
    monkeypatch.setattr(baselines, "MCT_CACHE", {})
    fitted = baselines.fit_all(library, np.arange(10), with_mct=True)
    assert set(fitted) == {"ridge", "knn", "mct"}
    fitted["mct"].function = lambda ds, i, times: calls.append(i) or np.full((len(times), 2), 0.5)
    pred = fitted["mct"].predict(library, [12, 13])  # solved only when asked, then cached
    assert pred.shape == (2, library.sizes["time"], 2) and calls == [12, 13]
    fitted["mct"].predict(library, [12])
    assert calls == [12, 13]
    assert callable(baselines.mct_function())


@pytest.mark.slow
def test_mct_baseline_is_mct_for_state_and_cached(library):
    from supercooled import mct

    function = baselines.mct_function()
    assert function is not None
    ds = library.isel(state=[0])
    curve = baselines.mct_curve(ds, 0, function)
    direct = mct.mct_for_state(ds, 0, kind="tagged", dynamics="newtonian",
                               times=ds["time"].values).F_s
    np.testing.assert_allclose(curve, direct)
    assert baselines.mct_curve(ds, 0, function) is curve  # second call comes from the cache
    table = baselines.cached_mct_table(ds)
    assert len(table) == ds.sizes["time"] and set(table.state) == {mlp.state_label(ds, 0)}
