"""The one R^2 and RMSE of the project, against hand-computed values."""

import numpy as np
import pytest

from supercooled.metrics import r2_score, rmse


def test_r2_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert r2_score(y, y) == 1.0
    assert r2_score(y, np.full(4, y.mean())) == pytest.approx(0.0)
    # SS_res = 4 * 0.25, SS_tot = 5
    assert r2_score(y, y + 0.5) == pytest.approx(1 - 4 * 0.25 / 5.0)


def test_r2_and_rmse_skip_entries_not_finite_in_either_array():
    y = np.array([1.0, np.nan, 3.0, 4.0, 2.0])
    f = np.array([1.5, 2.0, np.inf, 4.0, 2.0])
    # only (1, 1.5), (4, 4), (2, 2) count: SS_res = 0.25, SS_tot = sum (y - 7/3)^2 = 42/9
    assert r2_score(y, f) == pytest.approx(1 - 0.25 / (42 / 9))
    assert rmse(y, f) == pytest.approx(np.sqrt(0.25 / 3))


def test_undefined_cases():
    assert np.isnan(r2_score([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))  # constant truth
    assert np.isnan(r2_score([1.0, np.nan], [1.0, 2.0]))  # one usable point
    assert np.isnan(rmse([np.nan], [1.0]))
    with pytest.raises(ValueError, match="shape"):
        r2_score([1.0, 2.0], [1.0, 2.0, 3.0])


# --- scores of issue 17: per species, tau_alpha factor, coverage, conformal quantile ---------

from supercooled.metrics import (  # noqa: E402
    conformal_quantile,
    interval_coverage,
    log_ratio_factor,
    r2_per_species,
)


def test_r2_per_species_uses_each_species_own_mean():
    truth = np.array([[1.0, 0.1], [2.0, 0.2], [3.0, 0.3]])
    pred = np.array([[1.0, 0.2], [2.0, 0.2], [3.5, 0.3]])
    # A: SS_res = 0.25, SS_tot = 2; B: SS_res = 0.01, SS_tot = 0.02
    np.testing.assert_allclose(r2_per_species(truth, pred), [1 - 0.25 / 2, 1 - 0.01 / 0.02])
    # scale invariance: R^2 of phi equals R^2 of F = phi S_aa(k_p)
    np.testing.assert_allclose(r2_per_species(truth * [2.5, 0.3], pred * [2.5, 0.3]),
                               r2_per_species(truth, pred))


def test_tau_factor_is_symmetric_and_nan_when_undefined():
    assert log_ratio_factor(10.0, 20.0) == pytest.approx(2.0)
    assert log_ratio_factor(20.0, 10.0) == pytest.approx(2.0)
    assert log_ratio_factor(5.0, 5.0) == 1.0
    out = log_ratio_factor([1.0, np.nan, 2.0, -1.0], [3.0, 1.0, np.inf, 1.0])
    assert out[0] == pytest.approx(3.0) and np.isnan(out[1:]).all()


def _coverage_by_loop(y, lo, hi):
    inside = total = 0
    for a, b, c in zip(y.ravel(), lo.ravel(), hi.ravel(), strict=False):
        if np.isnan(a) or np.isnan(b) or np.isnan(c):
            continue
        total += 1
        inside += int(b <= a <= c)
    return inside / total


def test_interval_coverage_against_an_independent_loop():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(40, 30))
    y[rng.random(y.shape) < 0.1] = np.nan
    lo, hi = -np.abs(rng.normal(size=y.shape)), np.abs(rng.normal(size=y.shape))
    assert interval_coverage(y, lo, hi) == pytest.approx(_coverage_by_loop(y, lo, hi))
    assert interval_coverage([1.0, 2.0, 3.0], [1.0, 2.5, 0.0], [1.0, 3.0, 2.0]) == pytest.approx(1 / 3)
    assert np.isnan(interval_coverage([np.nan], [0.0], [1.0]))


def test_conformal_quantile_gives_its_coverage_on_exchangeable_scores():
    assert conformal_quantile(np.arange(1.0, 10.0), 0.5) == 5.0  # ceil(10 * 0.5) = 5th
    assert conformal_quantile([1.0, 2.0], 0.9) == np.inf  # ceil(3 * 0.9) = 3 > 2 scores
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(400):
        s = np.abs(rng.normal(size=51))
        hits.append(s[-1] <= conformal_quantile(s[:-1], 0.9))
    assert 0.86 <= np.mean(hits) <= 0.96  # P >= 0.9 (and <= 0.9 + 1/(n+1))
