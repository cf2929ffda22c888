"""Tests of supercooled.ml: features, masking, splits, training, persistence and predict."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from supercooled.dynamics import tau_alpha
from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import split_indices, state_labels
from supercooled.ml import ensemble, evaluation, features, network
from supercooled.ml.ensemble import Ensemble
from supercooled.ml.features import Design, Scaler, design, target_curves
from supercooled.ml.network import TrainConfig, train_network
from supercooled.ml.predict import normalisation_warnings, predict
from supercooled.paths import data_path

TINY = TrainConfig(hidden=(32, 32), epochs=120, learning_rate=3e-3, batch_size=64, threads=1,
                   patience=None, l1_penalty=0.0, architecture="paper")


@pytest.fixture(scope="module")
def library(synthetic_library):
    return synthetic_library()


@pytest.fixture(scope="module")
def tiny_model(library):
    train, _ = split_indices(library.sizes["state"], 0.2, seed=1)
    cfg = TrainConfig(hidden=(16, 16), epochs=5, batch_size=128, patience=None)
    ens = ensemble.train_ensemble(library, train, n_members=2, seed=0, config=cfg, progress=False)
    ens.metadata["training_ranges"] = features.training_ranges(library, ens.metadata["train_states"])
    return ens


def test_features_have_the_papers_layout(library):
    d = design(library, [0])
    assert d.x.shape[1] == features.N_FEATURES == 304
    s = library["S"].isel(state=0)
    np.testing.assert_allclose(d.x[0, :100], s.sel(pair="AA").values)
    np.testing.assert_allclose(d.x[0, 100:200], s.sel(pair="AB").values)
    np.testing.assert_allclose(d.x[0, 200:300], s.sel(pair="BB").values)
    assert d.x[0, 300] == library["temperature"].values[0]
    assert d.x[0, 301] == library["density"].values[0]
    assert d.x[0, 302] == 0.0  # LJ
    np.testing.assert_allclose(d.x[:, 303], np.log10(TIME_GRID[: len(d.x)]))


def test_targets_are_phi_times_peak_height(library):
    y = target_curves(library)
    kp = float(library["k_p"].values[3])
    s_aa = np.interp(kp, K_GRID, library["S"].isel(state=3).sel(pair="AA").values)
    s_bb = np.interp(kp, K_GRID, library["S"].isel(state=3).sel(pair="BB").values)
    np.testing.assert_allclose(y[3, :, 0], s_aa * library["phi_s"].values[3, 0])
    np.testing.assert_allclose(y[3, :, 1], s_bb * library["phi_s"].values[3, 1])
    np.testing.assert_allclose(y[3, 0], [s_aa, s_bb], rtol=0.02)  # F(t -> 0) = S_aa(k_p)


def test_unsampled_times_are_masked_not_zero_filled(library):
    warm = int(np.flatnonzero(library["temperature"].values >= 1.5)[0])
    d = design(library, [warm])
    # only sampled times become rows: t <= 100 for this short run
    assert d.x[:, 303].max() <= 2.0 + 1e-9
    assert len(d.x) == int(np.sum(TIME_GRID <= 1e2))
    assert d.mask.all() and np.isfinite(d.y).all()


def test_scaler_uses_training_statistics_and_survives_constant_features():
    x = np.array([[1.0, 5.0, 0.800], [3.0, 5.0, 0.802]])
    sc = Scaler.fit(x)
    # std of the last column (0.001) is floored at MIN_STD: noise stays small in z
    np.testing.assert_allclose(sc.transform(x), [[-1.0, 0.0, -0.05], [1.0, 0.0, 0.05]])


def test_split_never_leaks_a_state(library):
    n = library.sizes["state"]
    for seed in range(5):
        train, test = split_indices(n, 0.1, seed)
        assert len(np.intersect1d(train, test)) == 0
        assert len(train) + len(test) == n
        tr, te = design(library, train), design(library, test)
        assert set(tr.state).isdisjoint(te.state)
    assert not np.array_equal(split_indices(n, 0.1, 0)[1], split_indices(n, 0.1, 1)[1])


def test_ensemble_validation_states_come_from_training_states(library, monkeypatch):
    """The validation split train_ensemble makes: inside the training states, never a test
    state, never a state the member is fitted on; recorded per member in the metadata."""
    seen = []  # (states fitted on, validation states) of every train_network call
    real = network.train_network

    def spy(train, validation, scaler, **kwargs):
        seen.append((set(train.state.tolist()), set(validation.state.tolist())))
        return real(train, validation, scaler, **kwargs)

    monkeypatch.setattr(ensemble, "train_network", spy)
    cfg = TrainConfig(hidden=(4,), epochs=1, patience=None, threads=1)
    _, ensembles = evaluation.cross_validate(library, n_splits=2, n_members=3, test_fraction=0.2,
                                      config=cfg, with_baselines=False, progress=False)
    labels = state_labels(library)
    assert len(seen) == 6
    for e, ens in enumerate(ensembles):
        meta = ens.metadata
        train, test = set(meta["train_states"]), set(meta["test_states"])
        assert train.isdisjoint(test) and train | test == set(labels)
        assert len(meta["validation_states"]) == 3
        for m, val in enumerate(meta["validation_states"]):
            assert val and set(val) <= train and set(val).isdisjoint(test)
            fit, val_rows = seen[3 * e + m]
            assert {labels[i] for i in val_rows} == set(val)  # what was really held out
            assert fit.isdisjoint(val_rows)
            calib = set(meta["calibration_states"])
            assert calib and calib <= train and calib.isdisjoint({labels[i] for i in fit} | set(val))
            assert {labels[i] for i in fit} | set(val) | calib == train
        assert len({tuple(v) for v in meta["validation_states"]}) > 1  # members differ
    with pytest.raises(SupercooledError, match="need at least 2 states"):
        split_indices(library.sizes["state"], 0.1, 0, candidates=[3])


def test_training_learns_a_known_law(library):
    """A small network recovers the stretched-exponential law on unseen states."""
    train, test = split_indices(library.sizes["state"], 0.2, seed=2)
    scaler = Scaler.fit(design(library, train).x)
    net, hist = train_network(design(library, train), design(library, test), scaler,
                                  seed=0, config=TINY, progress=False)
    assert hist["loss"][-1] < 0.2 * hist["loss"][0]
    ens = Ensemble([net], scaler, TINY.hidden)
    rows = evaluation.evaluate(ens, library, test)
    assert np.median([r["r2_mlp"] for r in rows]) > 0.9
    # Per-species scores are R^2 of each species' curve alone, computed here independently.
    sub = library.isel(state=test)
    truth = target_curves(sub)
    mean, _, _ = ens.predict_curves(features.state_features(sub), library["time"].values)
    for j, row in enumerate(rows):
        for a, name in enumerate(("AA", "BB")):
            y, f = truth[j, :, a], mean[j, :, a]
            ok = np.isfinite(y)
            expected = 1 - np.sum((y[ok] - f[ok]) ** 2) / np.sum((y[ok] - y[ok].mean()) ** 2)
            assert row[f"r2_mlp_{name}"] == pytest.approx(expected)


def test_training_is_deterministic(library):
    train, test = split_indices(library.sizes["state"], 0.2, seed=2)
    feats = features.state_features(library.isel(state=test))
    for arch in ("physics", "paper"):
        cfg = TrainConfig(hidden=(16,), epochs=3, batch_size=64, patience=None, architecture=arch)
        a = ensemble.train_ensemble(library, train, n_members=1, seed=4, config=cfg, progress=False)
        b = ensemble.train_ensemble(library, train, n_members=1, seed=4, config=cfg, progress=False)
        np.testing.assert_array_equal(a.predict_phi(feats), b.predict_phi(feats))


def test_save_load_round_trip(tmp_path, tiny_model, library):
    tiny_model.save(tmp_path / "m")
    loaded = Ensemble.load(tmp_path / "m")
    x = features.state_features(library)
    np.testing.assert_array_equal(tiny_model.predict_phi(x), loaded.predict_phi(x))
    assert loaded.architecture == "physics" and loaded.metadata["calibration"]["scale"]
    assert loaded.metadata["library_hash"] == features.library_hash(library)
    assert loaded.metadata["k_grid"] == pytest.approx(K_GRID.tolist())


def test_crystallized_states_are_dropped(library):
    ds = library.assign_coords(crystallized=("state", np.r_[1, np.zeros(library.sizes["state"] - 1, int)]))
    assert features.load_states(ds).sizes["state"] == library.sizes["state"] - 1


def _user_csv(library, i=2, k=None):
    k = np.linspace(0.5, 30.0, 120) if k is None else k
    s = library["S"].isel(state=i)
    return pd.DataFrame({"k": k, **{f"S_{p}": np.interp(k, K_GRID, s.sel(pair=p).values)
                                    for p in ("AA", "AB", "BB")}})


def test_predict_good_input(tmp_path, tiny_model, library):
    frame = _user_csv(library)
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an in-range state raises no warning
        out = predict(path, "LJ", 1.2, 1.0, model=tiny_model)
    assert list(out.columns[:7]) == ["t", "phi_A", "phi_A_lo", "phi_A_hi", "phi_B", "phi_B_lo",
                                     "phi_B_hi"]
    assert {"F_AA", "F_AA_lo", "F_AA_hi", "F_BB_lo", "F_BB_hi"} <= set(out.columns)
    for name in ("A", "B"):
        assert (out[f"phi_{name}_lo"] <= out[f"phi_{name}"]).all()
        assert (out[f"phi_{name}"] <= out[f"phi_{name}_hi"]).all()
        assert out[f"phi_{name}_lo"].min() >= 0 and out[f"phi_{name}_hi"].max() <= 1
    np.testing.assert_allclose(out.F_AA / out.phi_A, out.F_AA.iloc[0] / out.phi_A.iloc[0])
    expected = tau_alpha(out.phi_A.to_numpy(), out.t.to_numpy())
    assert out.attrs["tau_alpha"] == pytest.approx(expected, nan_ok=True)
    assert out.attrs["calibrated"] and out.attrs["ood"]["score"] >= 0
    assert out.attrs["extrapolated_above"][0] > 30.0
    assert out.attrs["extrapolated_below"] == [0.2]


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.drop(columns="S_AB"), "missing column 'S_AB'"),
    (lambda f: f.assign(S_AA=np.where(f.k > 5, np.nan, f.S_AA)), "NaN"),
    (lambda f: f.assign(S_BB=-f.S_BB), "negative"),
    (lambda f: f[f.k < 15], "at least k = 20"),
])
def test_predict_rejects_bad_structure_factor(mutate, message, tiny_model, library):
    with pytest.raises(SupercooledError, match=message):
        predict(mutate(_user_csv(library)), "LJ", 1.2, 1.0, model=tiny_model)


@pytest.mark.parametrize("kwargs, message", [
    ({"interaction": "Morse"}, "unknown interaction"),
    ({"density": -1.0}, "density must be a positive"),
    ({"temperature": float("nan")}, "temperature must be a positive"),
])
def test_predict_rejects_bad_state(kwargs, message, tiny_model, library):
    args = {"interaction": "LJ", "density": 1.2, "temperature": 1.0, **kwargs}
    with pytest.raises(SupercooledError, match=message):
        predict(_user_csv(library), model=tiny_model, **args)


def test_predict_accepts_numpy_numbers_and_rejects_bool(tiny_model, library):
    frame = _user_csv(library)
    reference = predict(frame, "LJ", 1.2, 1.0, model=tiny_model)
    out = predict(frame, "LJ", np.float32(1.2), np.int64(1), model=tiny_model)
    np.testing.assert_allclose(out.F_AA, reference.F_AA, rtol=1e-6)
    out = predict(frame, "LJ", 1.2, np.int32(1), model=tiny_model)
    np.testing.assert_array_equal(out.F_AA, reference.F_AA)
    for bad in (True, np.bool_(True), "1.0", None):
        with pytest.raises(SupercooledError, match="temperature must be a positive"):
            predict(frame, "LJ", 1.2, bad, model=tiny_model)


def test_predict_warns_about_a_per_species_normalisation(tiny_model, library):
    frame = _user_csv(library)
    assert normalisation_warnings(frame) == []
    per_species = frame.assign(S_AA=frame.S_AA / 0.8, S_AB=frame.S_AB / 0.4,
                               S_BB=frame.S_BB / 0.2)  # S_aa(k -> inf) = 1
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = predict(per_species, "LJ", 1.2, 1.0, model=tiny_model)
    messages = [str(w.message) for w in rec if w.category is UserWarning]
    assert any(m.startswith("structure factor normalisation: S_AA averages 1.00 ")
               and "x_A = 0.8" in m for m in messages)
    assert any("S_BB averages 1.00" in m and "x_B = 0.2" in m for m in messages)
    assert len(out.attrs["normalisation"]) == 2
    # only the large-k mean counts: 0.15 off in S_AA is flagged, 0.05 is not
    for shift, flagged in ((0.15, True), (0.05, False)):
        msgs = normalisation_warnings(frame.assign(S_AA=frame.S_AA + shift))
        assert bool(msgs) == flagged and all("S_AA" in m for m in msgs)
    for i in range(library.sizes["state"]):
        assert normalisation_warnings(_user_csv(library, i, np.linspace(0.2, 20.2, 51))) == []


def test_normalisation_check_passes_every_shipped_state():
    """Measured S(k) still oscillate at k = 20 (most at rho = 1.8): no false alarm, on the
    full grid or cut at k = 20.2 (the shortest grid predict accepts)."""
    files = sorted(data_path("library").glob("*.nc"))
    if not files:
        pytest.skip("no shipped library")
    for path in files:
        with xr.open_dataset(path) as state:
            k = state["k"].values
            frame = pd.DataFrame({"k": k, **{f"S_{p}": state["S"].sel(pair=p).values
                                             for p in ("AA", "AB", "BB")}})
        for cut in (frame, frame[frame.k <= 20.2]):
            assert normalisation_warnings(cut) == [], path.name


def test_predict_warns_far_outside_training_range(tiny_model, library):
    with pytest.warns(UserWarning, match="T = 40 outside training range"):
        out = predict(_user_csv(library), "LJ", 1.2, 40.0, model=tiny_model)
    assert any("T = 40" in m for m in out.attrs["out_of_range"])


def test_predict_missing_file_and_model(tmp_path, tiny_model):
    with pytest.raises(SupercooledError, match="does not exist"):
        predict(tmp_path / "nope.csv", "LJ", 1.2, 1.0, model=tiny_model)
    with pytest.raises(SupercooledError, match="no trained model"):
        Ensemble.load(tmp_path)


def test_predict_command_line(tmp_path, tiny_model, library, capsys):
    from supercooled.cli import main

    tiny_model.save(tmp_path / "m")
    _user_csv(library).to_csv(tmp_path / "s.csv", index=False)
    base = ["predict", "--model", str(tmp_path / "m"), "--structure-factor", str(tmp_path / "s.csv"),
            "--interaction", "WCA", "--density", "1.4"]
    assert main(base + ["--temperature", "0.7", "--out", str(tmp_path / "o.csv"),
                        "--plot", str(tmp_path / "o.png")]) == 0
    out = pd.read_csv(tmp_path / "o.csv", comment="#")
    assert len(out) == len(TIME_GRID) and (tmp_path / "o.png").stat().st_size > 0
    assert "tau_alpha=" in (tmp_path / "o.csv").read_text().splitlines()[0]
    assert main(base + ["--temperature", "-2"]) == 2
    assert "temperature must be a positive" in capsys.readouterr().err
    pd.DataFrame({"k": [1.0, 2.0], "S_AA": [1.0, 1.0]}).to_csv(tmp_path / "bad.csv", index=False)
    base[4] = str(tmp_path / "bad.csv")
    assert main(base + ["--temperature", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing column 'S_AB'" in err
    # Bad output paths fail before any prediction, and nothing is written.
    base[4] = str(tmp_path / "s.csv")
    good = base + ["--temperature", "0.7"]
    assert main(good + ["--out", str(tmp_path / "o2.csv"), "--plot", str(tmp_path / "o2.xyz")]) == 2
    assert "unsupported file type .xyz" in capsys.readouterr().err
    assert main(good + ["--out", str(tmp_path / "missing" / "o.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(good + ["--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not (tmp_path / "o2.csv").exists()


def test_predict_stays_inside_the_trained_time_window(tiny_model, library):
    import copy

    model = copy.copy(tiny_model)
    model.metadata = copy.deepcopy(tiny_model.metadata)
    model.metadata["training_ranges"]["time"] = [TIME_GRID[0], 1e2]
    out = predict(_user_csv(library), "LJ", 1.2, 1.0, model=model)
    assert out.t.max() <= 1e2 * (1 + 1e-9) and len(out) == int(np.sum(TIME_GRID <= 1e2 * (1 + 1e-9)))


def test_diverged_training_is_a_one_line_error(library):
    d, v = design(library, [0, 1, 2]), design(library, [3])
    cfg = TrainConfig(hidden=(4,), epochs=2, learning_rate=1e30, patience=None, threads=1,
                      architecture="paper")
    with pytest.raises(SupercooledError, match="training diverged") as info:
        train_network(d, v, Scaler.fit(d.x), config=cfg, progress=False)
    assert "\n" not in str(info.value) and "validation loss" in str(info.value)
    # without validation states: a NaN feature makes the training loss NaN from the start
    x = d.x.copy()
    x[:, 0] = np.nan
    bad = Design(x, d.y, d.mask, d.state)
    cfg = TrainConfig(hidden=(4,), epochs=2, patience=None, threads=1, architecture="paper")
    with pytest.raises(SupercooledError, match="training diverged: the loss was not finite"):
        train_network(bad, None, Scaler.fit(x), config=cfg, progress=False)


def test_unknown_learning_rate_schedule_is_an_error(library):
    d = design(library, [0, 1])
    cfg = TrainConfig(hidden=(4,), epochs=1, lr_schedule="step", architecture="paper")
    with pytest.raises(SupercooledError, match="unknown lr_schedule"):
        train_network(d, None, Scaler.fit(d.x), config=cfg, progress=False)


def test_train_model_keeps_the_config_epochs_unless_told_and_leaves_the_config_alone(library):
    cfg = TrainConfig(hidden=(4,), epochs=2, patience=None, threads=1)
    model, _ = evaluation.train_model(library, None, n_members=1, config=cfg, with_mct=False, progress=False)
    assert model.metadata["config"]["epochs"] == 2
    model, _ = evaluation.train_model(library, None, n_members=1, config=cfg, epochs=1, with_mct=False,
                               progress=False)
    assert model.metadata["config"]["epochs"] == 1 and cfg.epochs == 2


def test_combine_runs_merges_parallel_splits(tmp_path, library):
    cfg = TrainConfig(hidden=(8,), epochs=2, patience=None, threads=1)
    for seed in (0, 1):
        evaluation.train_model(library, tmp_path / f"s{seed}", n_members=1, seed=seed, config=cfg,
                        epochs=2, with_mct=False, progress=False)
    metrics = evaluation.combine_runs(tmp_path / "s0", [tmp_path / "s1"])
    merged = pd.read_csv(tmp_path / "s0" / "evaluation.csv")
    assert sorted(merged.split_seed.unique()) == [0, 1]
    assert metrics["n_test_states"] == len(merged)
    assert Ensemble.load(tmp_path / "s0").metadata["split_seeds"] == [0, 1]
    with pytest.raises(SupercooledError, match="another library"):
        evaluation.train_model(library.isel(state=slice(0, 10)), tmp_path / "s2", n_members=1,
                        config=cfg, epochs=2, with_mct=False, progress=False)
        evaluation.combine_runs(tmp_path / "s0", [tmp_path / "s2"])


def test_train_command_line(tmp_path, library, capsys, state_files):
    from supercooled.cli import main

    state_files(library.isel(state=slice(0, 12)), tmp_path / "lib")
    out = tmp_path / "model"
    for arch in ("paper", "physics"):
        assert main(["train", "--library", str(tmp_path / "lib"), "--out", str(out), "--epochs",
                     "1", "--ensemble", "1", "--threads", "1", "--no-mct", "--independent",
                     "none", "--architecture", arch]) == 0
        assert "R^2_AA" in capsys.readouterr().out
        meta = Ensemble.load(out).metadata
        assert meta["n_library_states"] == 12 and meta["config"]["epochs"] == 1
        assert meta["architecture"] == arch and Ensemble.load(out).architecture == arch
    assert main(["train", "--library", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert main(["train", "--library", str(tmp_path / "lib"), "--out", str(out),
                 "--ensemble", "0"]) == 2


def test_library_without_state_names_is_an_error(library):
    with pytest.raises(SupercooledError, match="no 'label' coordinate"):
        features.load_states(library.drop_vars("label"))


def test_result_rows_find_their_states_by_interaction_density_and_temperature(library):
    rows = pd.DataFrame({"state": ["an old name", "another", "none"],
                         "interaction": ["WCA", "lj", "LJ"], "density": [1.4, 1.2, 1.2],
                         "T": [1.0000004, 0.7, 0.71]})
    index = evaluation.match_states(library, rows)
    assert state_labels(library, index[:2]) == ["WCA_rho1.400_T1.0000", "LJ_rho1.200_T0.7000"]
    assert index[2] == -1


def test_shipped_model_reproduces_its_evaluation():
    """The shipped ensemble loads and scores its own test states as when it was trained."""
    model_dir, library_dir = data_path("models", "mlp"), data_path("library")
    if not (model_dir / "metadata.json").exists() or not list(library_dir.glob("*.nc")):
        pytest.skip("no shipped model or library")
    ds = features.load_states(library_dir)
    model = Ensemble.load()
    table = pd.read_csv(model_dir / "evaluation.csv")
    table = table[table.split_seed == model.metadata["split_seed"]]
    if "set" in table:
        table = table[table.set == "test"]
    index = evaluation.match_states(ds, table)
    assert (index >= 0).all()
    rows = pd.DataFrame(evaluation.evaluate(model, ds, index))
    # float32 forward passes: another thread count than training's sums in another order
    # (measured up to 1.7e-6 relative on abs_error); a wrong model or feature is off by far more
    for column in ("r2_mlp", "r2_mlp_AA", "r2_mlp_BB", "spread", "abs_error"):
        np.testing.assert_allclose(rows[column], table[column], rtol=1e-5, err_msg=column)


def test_the_paper_model_shipped_before_still_loads_and_predicts(library):
    folder = data_path("models", "mlp", "paper")
    if not (folder / "metadata.json").exists():
        pytest.skip("no shipped paper model")
    model = Ensemble.load(folder)
    assert model.architecture == "paper" and "architecture" not in model.metadata
    with pytest.warns(UserWarning, match="no calibration"):
        out = predict(_user_csv(library), "LJ", 1.2, 1.0, model=model)
    assert not out.attrs["calibrated"] and (out.phi_A_lo <= out.phi_A_hi).all()


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.assign(S_AA=0.0, S_AB=0.0, S_BB=0.0), "all zero"),
    (lambda f: f.iloc[::6], "too few k points to cover the main peak"),
])
def test_predict_refuses_degenerate_structure_factors(mutate, message, tiny_model, library):
    with pytest.raises(SupercooledError, match=message) as info:
        predict(mutate(_user_csv(library)), "LJ", 1.2, 1.0, model=tiny_model)
    assert "\n" not in str(info.value)


def test_predict_refuses_a_broken_model(tmp_path, tiny_model, library, capsys):
    import json

    import torch

    from supercooled.cli import main

    tiny_model.save(tmp_path / "nan")
    weights = torch.load(tmp_path / "nan" / "member_0.pt", weights_only=True)
    next(iter(weights.values()))[0] = float("nan")
    torch.save(weights, tmp_path / "nan" / "member_0.pt")
    with pytest.raises(SupercooledError, match="non-finite weights"):
        Ensemble.load(tmp_path / "nan")
    tiny_model.save(tmp_path / "zero")
    meta = json.loads((tmp_path / "zero" / "metadata.json").read_text())
    meta["feature_std"][5] = 0.0
    (tmp_path / "zero" / "metadata.json").write_text(json.dumps(meta))
    _user_csv(library).to_csv(tmp_path / "s.csv", index=False)
    for name in ("nan", "zero"):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", "--model", str(tmp_path / name), "--structure-factor",
                     str(tmp_path / "s.csv"), "--interaction", "LJ", "--density", "1.2",
                     "--temperature", "1.0", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and ("non-finite" in err or "feature scaling" in err)
        assert not out.exists()


def test_predict_header_carries_the_interval_and_the_ood_score(tmp_path, tiny_model, library):
    from supercooled.cli import main

    tiny_model.save(tmp_path / "m")
    _user_csv(library).to_csv(tmp_path / "s.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "m"), "--structure-factor",
                 str(tmp_path / "s.csv"), "--interaction", "LJ", "--density", "1.2",
                 "--temperature", "1.0", "--level", "0.9", "--out", str(tmp_path / "o.csv")]) == 0
    head = (tmp_path / "o.csv").read_text().splitlines()[:2]
    assert "tau_alpha_lo=" in head[0] and "level=0.9" in head[0] and "ood_score=" in head[1]
    out = pd.read_csv(tmp_path / "o.csv", comment="#")
    assert {"phi_A_lo", "phi_A_hi", "F_BB_lo", "F_BB_hi"} <= set(out.columns)


def test_splits_trained_together_share_their_calibration_states(library):
    cfg = TrainConfig(hidden=(8,), epochs=2, patience=None, threads=1)
    _, ensembles = evaluation.cross_validate(library, n_splits=2, n_members=1, config=cfg,
                                             with_baselines=False, progress=False)
    for ens in ensembles:
        calib = ens.metadata["calibration"]
        own = len(ens.calibration_curves["states"])
        assert calib["pooled_runs"] == 2 and calib["n_states"] > own
        # the split's own test states never enter its calibration
        pooled = set(sum((e.calibration_curves["states"] for e in ensembles), []))
        if pooled & set(ens.metadata["test_states"]):
            total = sum(len(e.calibration_curves["states"]) for e in ensembles)
            assert calib["n_states"] < total
