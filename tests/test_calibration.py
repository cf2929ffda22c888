"""Calibrated intervals and the out-of-distribution score (supercooled.ml.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from supercooled.ml import calibration
from supercooled.ml.features import state_features

TIMES = 10.0 ** np.linspace(-2, 3, 26)


def _gaussian_problem(rng, n, scale):
    mean = rng.uniform(0.2, 0.8, (n, len(TIMES), 2))
    sigma = rng.uniform(0.01, 0.03, (n, len(TIMES), 2))
    truth = mean + scale * sigma * rng.normal(size=mean.shape)
    return truth, mean, sigma


def test_conformal_scaling_fixes_an_overconfident_spread():
    """The errors are 3 sigma wide: raw +-1 sigma covers ~26 %, the calibrated 68 % and 90 %
    intervals cover their nominal fraction of new data (an independent computation)."""
    rng = np.random.default_rng(1)
    calib = calibration.fit_calibration(*_gaussian_problem(rng, 40, 3.0), TIMES)
    truth, mean, sigma = _gaussian_problem(rng, 200, 3.0)
    for level in calibration.LEVELS:
        lo, hi = calibration.interval(calib, mean, sigma, TIMES, level)
        by_hand = np.mean((truth >= lo) & (truth <= hi))
        assert by_hand == pytest.approx(level, abs=0.04)
        rows = calibration.coverage_table(truth, mean, sigma, TIMES, calib, levels=[level])
        np.testing.assert_allclose([r["coverage"] for r in rows],
                                   [np.mean((truth[..., a] >= lo[..., a]) & (truth[..., a] <= hi[..., a]))
                                    for a in range(2)])
    raw = np.mean(np.abs(truth - mean) <= sigma)
    assert raw < 0.35
    # q of a Gaussian with std 3 sigma (sigma_floor aside) near 3 z_p
    q68 = np.asarray(calib["scale"]["0.68"])
    assert np.median(q68) == pytest.approx(3 * 0.994, rel=0.15)


def test_intervals_stay_in_the_support_and_widen():
    calib = calibration.fit_calibration(*_gaussian_problem(np.random.default_rng(2), 30, 1.0), TIMES)
    mean = np.full((1, len(TIMES), 2), 0.99)
    sigma = np.full_like(mean, 0.05)
    lo, hi = calibration.interval(calib, mean, sigma, TIMES, 0.9)
    assert (hi <= 1).all() and (lo >= 0).all()
    lo2, hi2 = calibration.interval(calib, mean, sigma, TIMES, 0.9, widen=3.0)
    assert (mean - lo2 >= 3 * (mean - lo) - 1e-12).all()
    with pytest.raises(Exception, match="no calibration at level 0.5"):
        calibration.interval(calib, mean, sigma, TIMES, 0.5)


def test_ood_score_flags_foreign_structure_and_temperature(synthetic_library):
    ds = synthetic_library(temperatures=(0.5, 0.6, 0.7, 0.85, 1.0, 1.5, 2.0, 3.0))
    feats = state_features(ds)
    train = np.arange(0, len(feats), 2)
    ref = calibration.fit_reference(feats[train])
    inside = calibration.ood_score(ref, feats[1])
    assert inside["score"] <= 1.5 and inside["temperature"] < 1
    wrong_t = feats[1].copy()
    wrong_t[300] *= 0.5  # S(k) of one state with half its temperature
    res = calibration.ood_score(ref, wrong_t)
    assert res["score"] > 1 and any(m.startswith("T = ") for m in res["messages"])
    foreign = feats[1].copy()
    foreign[:300] *= 1.6
    assert calibration.ood_score(ref, foreign)["structure"] > 1
    cold = feats[1].copy()
    cold[300] = 0.1
    assert any("outside the training range" in m for m in calibration.ood_score(ref, cold)["messages"])
    assert calibration.widening(0.3) == 1.0 and calibration.widening(2.5) == 2.5


def test_structure_temperature_of_a_series_is_its_least_squares_plane():
    # A series whose ln T is exactly linear in the two leading coordinates: the plane recovers
    # T inside and beyond the ends of the series, where the two nearest states cannot.
    rng = np.random.default_rng(1)
    x = np.c_[np.linspace(-2.0, 2.0, 7), 0.3 * rng.normal(size=7), rng.normal(size=(7, 2))]
    temperatures = np.exp(0.2 - 0.5 * x[:, 0] + 0.1 * x[:, 1])
    for probe in (np.array([0.7, 0.1, 0.0, 0.0]), np.array([-3.0, 0.2, 0.0, 0.0])):
        expected = 0.2 - 0.5 * probe[0] + 0.1 * probe[1]
        assert abs(calibration._structure_log_t(x, temperatures, probe) - expected) < 1e-10
    # the end of the series, from the two nearest states, misses by the slope times the gap
    few = calibration._structure_log_t(x[:2], temperatures[:2], np.array([-3.0, 0.2, 0.0, 0.0]))
    assert abs(few - (0.2 + 1.5 + 0.02)) > 0.3


def test_loo_scales_come_from_the_stored_coordinates(synthetic_library):
    ds = synthetic_library(temperatures=(0.5, 0.6, 0.7, 0.85, 1.0, 1.5, 2.0, 3.0))
    ref = calibration.fit_reference(state_features(ds))
    again = calibration.with_loo_scales({k: v for k, v in ref.items()
                                         if k not in ("d_95", "log_t_95")})
    assert again["d_95"] == pytest.approx(ref["d_95"]) and \
        again["log_t_95"] == pytest.approx(ref["log_t_95"])
