"""Score tables of the prediction study (supercooled.ml.evaluation)."""

import numpy as np
import pandas as pd
import pytest

from supercooled.ml.evaluation import score_table


def test_score_table_counts_distinct_states_and_state_tests():
    # two splits test the same independent state and one state each of their own
    rows = []
    for split, states in ((0, ["a", "x"]), (1, ["b", "x"])):
        for state, r2 in zip(states, (0.9, 0.5), strict=True):
            rows.append({"set": "test", "split_seed": split, "state": state, "r2_mlp": r2,
                         "r2_mlp_AA": r2, "r2_mlp_BB": r2 - 0.1,
                         "tau_factor_mlp_A": 1.2, "tau_factor_mlp_B": np.nan})
    table = score_table(pd.DataFrame(rows))
    row = table[table.model == "mlp"].iloc[0]
    assert row.n_states == 3 and row.n_tests == 4
    assert row.R2_AA == pytest.approx(0.7) and row.R2_AA_worst == pytest.approx(0.5)
    assert row.R2_AA_std == pytest.approx(np.std([0.9, 0.5, 0.9, 0.5], ddof=1))
    assert row.n_tau_A == 4 and row.n_tau_B == 0 and np.isnan(row.tau_factor_B_median)
