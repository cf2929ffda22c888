"""The memory predictor: valid correlators by construction, and a parameter model that recovers
known parameters (supercooled.ml.memory_predictor)."""

import numpy as np
import pytest

from supercooled import memory
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID
from supercooled.ml import memory_predictor as mp

TIMES = np.geomspace(5e-3, 3e3, 90)
# the solver's discretisation noise on phi (evolution.VALID_TOLERANCE is 2e-3; this is tighter)
TOLERANCE = 1e-4


def _assert_valid(phi):
    assert np.all(np.isfinite(phi))
    assert np.all(phi >= -TOLERANCE) and np.all(phi <= 1 + TOLERANCE)
    assert np.all(np.diff(phi, axis=-2) <= TOLERANCE)


def test_every_predicted_memory_gives_a_valid_correlator():
    """Random targets, far wider than any fit (N(0, 4^2) in every reduced coordinate), at
    random states: phi(0) = 1, 0 <= phi <= 1, non-increasing, for each of 200 memories."""
    rng = np.random.default_rng(3)
    for _ in range(10):
        k_p, temperature, density = rng.uniform(5, 9), rng.uniform(0.3, 5), rng.uniform(1.1, 1.9)
        y = rng.normal(0.0, 4.0, (20, len(mp.TARGET_NAMES)))
        theta = mp.from_targets(y, k_p, temperature, density)
        phi = mp.solve_phi(theta, k_p, temperature, TIMES)
        _assert_valid(phi)
        # phi at the first sampled time follows from phi(0) = 1 and the initial slope -Omega^2
        assert np.all(phi[:, 0] <= 1) and np.all(phi[:, 0] >= np.exp(-mp.omega2(k_p, temperature)
                                                                        * TIMES[0]) - TOLERANCE)


def test_the_bound_on_the_exponents_is_what_makes_it_valid():
    """The same random memories with compressed exponents (b up to 3) or Newtonian dynamics do
    give invalid correlators: the validity above is the family's, not the solver's."""
    rng = np.random.default_rng(4)
    k_p, temperature = 7.2, 1.0
    o2 = mp.omega2(k_p, temperature)
    problem = memory.MemoryProblem(TIMES, np.ones((TIMES.size, 2)), np.array([3.0, 0.0, 1.0]),
                                   k_p, temperature, coupling="self")
    z = rng.normal(0.0, 2.0, (200, memory.n_parameters(2)))
    theta = memory.to_physical(z, 2, memory.Bounds.for_data(TIMES, o2))
    invalid = 0
    for dynamics in ("brownian", "newtonian"):
        problem.dynamics = dynamics
        phi = memory.solve_for_memory(problem, theta, 2)  # F0 = I: phi itself
        ok = (np.all(np.isfinite(phi), axis=(1, 2)) & np.all(phi > -1e-3, axis=(1, 2))
              & np.all(np.diff(phi, axis=1) < 1e-3, axis=(1, 2)))
        invalid += int((~ok).sum())
    assert invalid > 50


def test_targets_and_parameters_round_trip():
    rng = np.random.default_rng(5)
    k_p, temperature, density = 7.1, 0.6, 1.2
    y = rng.uniform(-4, 4, len(mp.TARGET_NAMES))
    theta = mp.from_targets(y, k_p, temperature, density)
    again = mp.from_targets(mp.to_targets(theta, k_p, temperature, density), k_p, temperature,
                            density)
    # the same memories (exponentials stored fastest first): equal parameters after ordering
    np.testing.assert_allclose(again, memory.canonical_order(theta, mp.N_EXP), rtol=1e-9)
    # reduced units: at twice the temperature the same targets mean a faster memory
    hot = memory.unpack(mp.from_targets(y, k_p, 2 * temperature, density), mp.N_EXP)
    cold = memory.unpack(theta, mp.N_EXP)
    np.testing.assert_allclose(hot["tau"][[0, 2]], cold["tau"][[0, 2]] / np.sqrt(2))
    np.testing.assert_allclose(hot["w"][[0, 2]], 2 * cold["w"][[0, 2]])


def _synthetic_states(n, rng):
    """303-feature rows whose S(k) has a main peak of varying height at k ~ 7.2."""
    height = rng.uniform(2.0, 3.5, n)
    temperature = rng.uniform(0.4, 2.0, n)
    density = rng.choice([1.2, 1.4], n)
    peak = np.exp(-((K_GRID - 7.2) ** 2) / 0.6)
    s_aa = 1.0 + height[:, None] * peak
    s_ab = -0.2 * height[:, None] * peak
    s_bb = 0.3 + 0.4 * height[:, None] * peak
    return np.column_stack([s_aa, s_ab, s_bb, temperature, density, np.zeros(n)])


@pytest.mark.parametrize("regressor", mp.REGRESSORS)
def test_parameter_model_recovers_known_parameters(regressor):
    """Targets that are a known smooth function of the peak height and ln T: the model trained
    on 40 states predicts 10 unseen ones within a few per cent of the targets' spread, and
    their correlators within 0.01."""
    rng = np.random.default_rng(6)
    feats = _synthetic_states(50, rng)
    h, log_t = feats[:, 50:51].copy(), np.log(feats[:, 300:301])
    truth_y = (rng.normal(0, 1, len(mp.TARGET_NAMES)) + (h - 2.7) * rng.normal(0, 1, 18)
               + log_t * rng.normal(0, 1, 18))
    k_p = np.full(50, 7.2)
    data = mp.TrainingSet(feats[:40], k_p[:40], truth_y[:40], [f"s{i}" for i in range(40)])
    model = mp.MemoryPredictor(regressor, data, n_members=1)
    predicted = model.predict_targets(feats[40:])[0]
    spread = truth_y.std(axis=0)
    assert np.max(np.abs(predicted - truth_y[40:]) / spread) < 0.1
    phi = model.predict_phi(feats[40:42], TIMES, k_p[40:42])[0]
    for j in range(2):
        exact = mp.solve_phi(mp.from_targets(truth_y[40 + j], 7.2, feats[40 + j, 300],
                                             feats[40 + j, 301]), 7.2, feats[40 + j, 300], TIMES)
        np.testing.assert_allclose(phi[j], exact[0], atol=1e-2)


def test_bootstrap_members_differ_and_are_reproducible():
    rng = np.random.default_rng(7)
    feats = _synthetic_states(30, rng)
    y = rng.normal(0, 1, (30, len(mp.TARGET_NAMES)))
    data = mp.TrainingSet(feats, np.full(30, 7.2), y, [f"s{i}" for i in range(30)])
    a = mp.MemoryPredictor("ridge", data, n_members=4, seed=1).predict_targets(feats[:3])
    b = mp.MemoryPredictor("ridge", data, n_members=4, seed=1).predict_targets(feats[:3])
    np.testing.assert_array_equal(a, b)
    assert np.all(a.std(axis=0) > 0)


def test_save_and_load_give_the_same_predictions(tmp_path):
    rng = np.random.default_rng(8)
    feats = _synthetic_states(20, rng)
    y = rng.normal(0, 1, (20, len(mp.TARGET_NAMES)))
    model = mp.MemoryPredictor("ridge", mp.TrainingSet(feats, np.full(20, 7.2), y,
                                                        [f"s{i}" for i in range(20)]), 3, 2)
    model.save(tmp_path / "m.json")
    again = mp.MemoryPredictor.load(tmp_path / "m.json")
    np.testing.assert_array_equal(model.predict_targets(feats[:2]), again.predict_targets(feats[:2]))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SupercooledError, match="not valid JSON"):
        mp.MemoryPredictor.load(tmp_path / "bad.json")
    with pytest.raises(SupercooledError, match="does not exist"):
        mp.MemoryPredictor.load(tmp_path / "missing.json")
    with pytest.raises(SupercooledError, match="unknown regressor"):
        mp.make_regressor("forest")


def test_predict_with_the_memory_method_gives_the_mlp_columns_and_valid_bounds(tmp_path,
                                                                               synthetic_library):
    from supercooled.library import state_labels
    from supercooled.ml.features import state_features
    from supercooled.ml.predict import predict

    ds = synthetic_library(temperatures=(0.7, 1.0, 1.5), densities=(1.2,))
    feats = state_features(ds)
    targets = np.random.default_rng(9).normal(0.0, 1.0, (len(feats), len(mp.TARGET_NAMES)))
    data = mp.TrainingSet(feats, np.asarray(ds["k_p"].values, float), targets, state_labels(ds))
    model = mp.MemoryPredictor("ridge", data, n_members=3)
    model.calibrate(ds, np.asarray(ds["time"].values, float))
    model.metadata["time_grid"] = np.asarray(ds["time"].values, float).tolist()
    model.save(tmp_path / "p.json")
    import pandas as pd

    from supercooled.grids import K_GRID

    s = ds["S"].isel(state=1).sel(pair=["AA", "AB", "BB"]).values
    sk = pd.DataFrame({"k": K_GRID, "S_AA": s[0], "S_AB": s[1], "S_BB": s[2]})
    frame = predict(sk, "LJ", 1.2, float(feats[1, 300]), model=tmp_path / "p.json",
                    method="memory")
    expected = ["t"] + [f"phi_{a}{x}" for a in "AB" for x in ("", "_lo", "_hi")] \
        + [f"F_{a}{x}" for a in ("AA", "BB") for x in ("", "_lo", "_hi")] \
        + ["phi_A_std", "phi_B_std"]
    assert list(frame.columns) == expected
    for a in "AB":
        phi = frame[f"phi_{a}"].to_numpy()
        assert np.all(np.diff(phi) <= TOLERANCE) and phi.max() <= 1 + TOLERANCE
        assert np.all(frame[f"phi_{a}_lo"] <= phi + 1e-12) and np.all(frame[f"phi_{a}_hi"] >= phi - 1e-12)
    assert frame.attrs["architecture"] == "memory-ridge" and frame.attrs["calibrated"]
