"""The predictor comparison's bookkeeping (supercooled.ml.comparison): wide rows to long rows,
and the summary's pooled coverage against a direct count."""

import numpy as np
import pandas as pd

from supercooled.ml import comparison


def _wide(state, r2, cov68, n):
    return {"state": state, "interaction": "LJ", "density": 1.2, "T": 1.0,
            "r2_mlp": r2, "r2_mlp_AA": r2, "r2_mlp_BB": r2 - 0.1, "tau_factor_mlp_A": 1.5,
            "tau_factor_mlp_B": 2.0, "r2_ridge": 0.5, "r2_ridge_AA": 0.4, "r2_ridge_BB": 0.3,
            "cov68_A": cov68, "cov68_B": cov68, "cov90_A": 1.0, "cov90_B": 1.0,
            "n_A": n, "n_B": n}


def test_long_rows_and_summary():
    wide = [_wide("s1", 0.9, 0.5, 10), _wide("s2", 0.7, 1.0, 30)]
    rows = comparison.long_rows(wide, ("mlp", "ridge", "knn"), study="split", setting="x",
                                set="test")
    assert [r["method"] for r in rows] == ["mlp", "ridge", "mlp", "ridge"]
    ridge = [r for r in rows if r["method"] == "ridge"]
    assert "cov68_A" not in ridge[0] and ridge[0]["r2_AA"] == 0.4
    table = comparison.summary(pd.DataFrame(rows))
    mlp = table[table.method == "mlp"].iloc[0]
    assert mlp["n_states"] == 2 and np.isclose(mlp["R2_AA"], 0.8)
    # 5 of 10 and 30 of 30 points inside: 35 of 40
    assert np.isclose(mlp["coverage68_A"], 35 / 40)
    assert np.isclose(mlp["tau_factor_B_median"], 2.0)
    assert np.isnan(table[table.method == "ridge"].iloc[0]["coverage68_A"])
