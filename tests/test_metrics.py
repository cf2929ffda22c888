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
