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


def _coverage_rows(values, n=50):
    return pd.DataFrame([{"architecture": "physics", "set": "test", "split_seed": 0,
                          "state": f"s{i}", "cov68_A": c, "n_A": n, "cov68_B": c, "n_B": n,
                          "cov90_A": c, "cov90_B": c}
                         for i, c in enumerate(values)])


def test_coverage_spread_comes_from_resampling_states():
    from supercooled.ml.evaluation import coverage_summary

    same = coverage_summary(_coverage_rows([0.7] * 6))
    row = same[(same.species == "A") & (same.nominal == 0.68)].iloc[0]
    assert row.coverage == pytest.approx(0.7)
    assert row.coverage_lo == pytest.approx(0.7) and row.coverage_hi == pytest.approx(0.7)
    # half the states fully covered, half not at all: the point coverage is 0.5, but with 4
    # states its bootstrap spread is wide (a resample holds 0-4 covered states)
    split = coverage_summary(_coverage_rows([1.0, 0.0, 1.0, 0.0]))
    row = split[(split.species == "A") & (split.nominal == 0.68)].iloc[0]
    assert row.coverage == pytest.approx(0.5) and row.n_states == 4
    assert row.coverage_lo <= 0.25 and row.coverage_hi >= 0.75
    # a state tested in two splits counts once, with both rows' points
    twice = pd.concat([_coverage_rows([1.0, 0.0]), _coverage_rows([1.0]).assign(split_seed=1)])
    row = coverage_summary(twice).query("species == 'A' and nominal == 0.68").iloc[0]
    assert row.n_states == 2 and row.coverage == pytest.approx(2 / 3) and row.n_splits == 2


def test_pooled_calibration_leaves_out_each_runs_test_states():
    from supercooled.ml import calibration
    from supercooled.ml.ensemble import Ensemble
    from supercooled.ml.evaluation import pool_calibrations

    times = 10.0 ** np.linspace(-2, 3, 26)
    rng = np.random.default_rng(3)

    def run(states, test, scale):
        mean = rng.uniform(0.2, 0.8, (len(states), len(times), 2))
        sigma = np.full_like(mean, 0.02)
        truth = mean + scale * sigma * rng.normal(size=mean.shape)
        ens = Ensemble([], None, metadata={"test_states": test})
        ens.calibration_curves = {"states": states, "truth": truth, "mean": mean,
                                  "sigma": sigma}
        return ens

    # run 0 tests state "c", which run 1 calibrated on: run 0 must not use it
    runs = [run(["a", "b"], ["c"], 1.0), run(["c", "d"], ["a"], 1.0)]
    pool_calibrations(runs, times)
    c0, c1 = runs[0].calibration_curves, runs[1].calibration_curves
    expected0 = calibration.fit_calibration(
        np.concatenate([c0["truth"], c1["truth"][1:]]),
        np.concatenate([c0["mean"], c1["mean"][1:]]),
        np.concatenate([c0["sigma"], c1["sigma"][1:]]), times)
    assert runs[0].metadata["calibration"]["scale"] == expected0["scale"]
    assert runs[0].metadata["calibration"]["n_states"] == 3
    assert runs[1].metadata["calibration"]["n_states"] == 3  # "a" left out of run 1's pool
    assert runs[0].metadata["calibration"]["pooled_runs"] == 2
    # one run alone keeps the calibration it has
    alone = [run(["a"], ["b"], 1.0)]
    alone[0].metadata["calibration"] = {"kept": True}
    pool_calibrations(alone, times)
    assert alone[0].metadata["calibration"] == {"kept": True}
