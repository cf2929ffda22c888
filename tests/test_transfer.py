"""Tests of the transferability selections (supercooled.ml.transfer) on a synthetic library."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from supercooled.errors import SupercooledError
from supercooled.library import state_labels
from supercooled.mct_table import reduced_temperature
from supercooled.ml import evaluation, transfer
from supercooled.ml.ensemble import Ensemble
from supercooled.ml.features import Scaler, design, library_hash
from supercooled.ml.network import TrainConfig, build_network

TINY = TrainConfig(hidden=(8,), epochs=2, batch_size=256, patience=None, threads=1)


@pytest.fixture(scope="module")
def library(synthetic_library):
    return synthetic_library(temperatures=(0.5, 0.8, 1.0, 1.5, 2.0), densities=(1.2, 1.4, 1.6))


@pytest.fixture(scope="module")
def reduced(library):
    # T_mct = 1.0 for LJ and 0.5 for WCA at every density; 1.6 has no T_mct
    table = pd.DataFrame({"interaction": ["LJ", "LJ", "WCA", "WCA"],
                          "density": [1.2, 1.4, 1.2, 1.4], "T_mct": [1.0, 1.0, 0.5, 0.5]})
    return reduced_temperature(library, table)


def test_reduced_temperature_uses_its_own_tmct(library, reduced):
    t = library["temperature"].values
    lj = library["interaction"].values == "LJ"
    known = library["density"].values < 1.5
    np.testing.assert_allclose(reduced[lj & known], t[lj & known])
    np.testing.assert_allclose(reduced[~lj & known], t[~lj & known] / 0.5)
    assert np.isnan(reduced[~known]).all()


@pytest.mark.parametrize("t0", [0.8, 1.0, 1.5, 2.0])
def test_temperature_threshold_is_strict_and_in_units_of_tmct(reduced, t0):
    sel = transfer.temperature_selection(reduced, t0)
    assert (reduced[sel] > t0).all()
    rest = np.setdiff1d(np.arange(len(reduced)), sel)
    assert not (np.nan_to_num(reduced[rest], nan=-1) > t0).any()


def test_temperature_selection_without_tmct_is_an_error():
    with pytest.raises(SupercooledError, match="T_mct is unknown"):
        transfer.temperature_selection(np.full(4, np.nan), 1.0)


def test_interaction_selection_is_a_partition(library):
    train, test = transfer.interaction_selection(library, "lj")
    assert set(library["interaction"].values[train]) == {"LJ"}
    assert set(library["interaction"].values[test]) == {"WCA"}
    assert len(train) + len(test) == library.sizes["state"]
    with pytest.raises(SupercooledError, match="both interactions"):
        transfer.interaction_selection(library.isel(state=train), "LJ")


def test_leave_one_density_out(library):
    assert transfer.library_densities(library) == [1.2, 1.4, 1.6]
    for rho in (1.2, 1.4, 1.6):
        train, test = transfer.density_selection(library, rho)
        assert np.allclose(library["density"].values[test], rho)
        assert not np.isclose(library["density"].values[train], rho).any()
        assert len(train) + len(test) == library.sizes["state"]
    with pytest.raises(SupercooledError, match="no state at density 1.8"):
        transfer.density_selection(library, 1.8)


def test_temperature_study_never_tests_a_training_state(library, reduced, monkeypatch):
    """Check the ensembles the study really trains: their recorded train and test states."""
    ensembles = []
    real = evaluation.cross_validate

    def spy(*args, **kwargs):
        table, ens = real(*args, **kwargs)
        ensembles.extend(ens)
        return table, ens

    monkeypatch.setattr(transfer, "cross_validate", spy)
    table = transfer.temperature_study(library, reduced, thresholds=(1.2,), n_members=1,
                                       n_splits=2, config=TINY, progress=False)
    labels = np.array(state_labels(library))
    warm = set(labels[np.nan_to_num(reduced, nan=0.0) > 1.2])  # independent of the selection
    assert len(ensembles) == 2 and len(warm) >= 10
    held_out = []
    for ens in ensembles:
        meta = ens.metadata
        train, test = set(meta["train_states"]), set(meta["test_states"])
        assert train.isdisjoint(test)
        assert train <= warm  # trained only above T_0
        assert test | train == set(labels)  # every other state is tested
        assert all(set(v) <= train for v in meta["validation_states"])
        rows = table[table.split_seed == meta["split_seed"]]
        assert set(rows.state) == test and len(rows) == len(test)  # one row per test state
        assert set(rows.state).isdisjoint(train)
        np.testing.assert_array_equal(rows.region == "trained", rows.state.isin(warm))
        held_out.append(set(rows.state[rows.region == "trained"]))
        assert held_out[-1]  # some warm states are held out and tested
    assert held_out[0] != held_out[1]  # and the split seed changes which
    assert {"r2_mlp", "r2_member_std", "spread", "T0_over_Tmct"} <= set(table.columns)


def test_model_study_trains_on_one_and_tests_on_the_other(library, reduced):
    table = transfer.model_study(library, reduced, n_members=1, config=TINY, progress=False)
    assert set(table.groupby("train_on").interaction.unique().map(tuple)) == {("WCA",), ("LJ",)}
    assert (table.train_on != table.interaction).all()
    assert (table.region == "unseen").all()


def test_example_state_skips_an_undefined_r2(library):
    ens = Ensemble([build_network((4,))], Scaler.fit(design(library).x), (4,))
    ens.metadata["split_seed"] = 0
    states = state_labels(library, [0, 1, 2])
    table = pd.DataFrame({"state": states, "train_on": "LJ", "split_seed": 0,
                          "r2_mlp": [np.nan, 0.5, 0.75]})
    example = transfer.example_for_r2(library, table, [("LJ", 0, ens)], 0.8)
    assert set(example.state) == {states[2]} and (example.r2_mlp == 0.75).all()
    with pytest.raises(SupercooledError, match="no test state has a finite R"):
        transfer.example_for_r2(library, table.assign(r2_mlp=np.nan), [("LJ", 0, ens)], 0.8)


def test_write_studies_rejects_an_unknown_study(tmp_path, library, reduced):
    with pytest.raises(SupercooledError, match="unknown transfer study 'temprature'"):
        transfer.write_studies(library, tmp_path, reduced_t=reduced, studies=("temprature",),
                               config=TINY, progress=False)
    assert not list(tmp_path.iterdir())


def test_binned_means(library):
    table = pd.DataFrame({"T_over_Tmct": [0.9, 0.95, 1.5], "r2_mlp": [0.5, 0.7, 1.0]})
    out = transfer.binned(table, bins=[0.8, 1.0, 1.6])
    np.testing.assert_allclose(out["mean"], [0.6, 1.0])
    np.testing.assert_allclose(out["count"], [2, 1])


def test_binned_default_bins_count_every_state():
    """The default bins cover the data: cold (0.315 T_mct) and hot (3.44) states included."""
    t = [0.315, 0.4, 0.9, 1.0, 2.99, 3.44]
    table = pd.DataFrame({"T_over_Tmct": t, "r2_mlp": np.linspace(0, 1, len(t)),
                          "region": ["unseen"] * 3 + ["trained"] * 3})
    for by in ((), ("region",)):
        out = transfer.binned(table, by=by)
        assert out["count"].sum() == len(t)
    out = transfer.binned(table)
    np.testing.assert_allclose(out.T_mid, [0.3, 0.9, 2.9, 3.5])
    np.testing.assert_allclose(out["count"], [2, 2, 1, 1])  # bins are (a, b]: 0.4 in (0.2, 0.4]
    # the bins are on one grid, so separately binned tables share their bin centres
    cold = transfer.binned(table[table.T_over_Tmct < 1.5])
    assert set(cold.T_mid) <= set(out.T_mid)


def test_binned_warns_of_rows_it_leaves_out():
    table = pd.DataFrame({"T_over_Tmct": [0.3, 0.9, np.nan], "r2_mlp": [0.1, 0.5, 0.7]})
    with pytest.warns(UserWarning, match=r"2 of 3 rows left out \(1 without T / T_mct, 1 outside"):
        out = transfer.binned(table, bins=[0.4, 1.0])
    np.testing.assert_allclose(out["count"], [1])


def test_write_studies_writes_the_three_tables(tmp_path, library, reduced):
    tables = transfer.write_studies(library, tmp_path, reduced_t=reduced, thresholds=(1.2,),
                                    densities=(1.6,), n_members=1, config=TINY, progress=False)
    for name in ("temperature", "model", "density", "model_example"):
        assert (tmp_path / f"transfer_{name}.csv").exists()
    example = tables["model_example"]
    assert example.state.nunique() == 1 and len(example) == library.sizes["time"]
    row = tables["model"].iloc[np.nanargmin(np.abs(tables["model"].r2_mlp - 0.8))]
    assert example.state.iloc[0] == row.state
    assert (tables["density"].density == 1.6).all()
    # every study table records how it was made; the example curves do not
    for name in ("temperature", "model", "density"):
        assert (tables[name].library_hash == library_hash(library)).all()
        assert (tables[name].epochs == TINY.epochs).all()
    assert "library_hash" not in example.columns


def test_method_comparison_puts_both_networks_and_the_baselines_side_by_side():
    new = pd.DataFrame({"T0_over_Tmct": [1.5, 1.5, 1.5, 1.2], "architecture": "physics",
                        "region": ["trained", "unseen", "unseen", "unseen"],
                        "r2_mlp_AA": [0.9, 0.5, 0.7, 0.2], "r2_ridge_AA": [0.8, 0.1, 0.3, 0.0],
                        "r2_knn_AA": [0.7, 0.0, 0.2, -1.0]})
    old = pd.DataFrame({"T0_over_Tmct": [1.5, 1.5, 1.2], "region": ["trained", "unseen",
                                                                     "unseen"],
                        "r2_mlp_AA": [0.95, -1.0, 0.4]})
    table = transfer.method_comparison({"temperature": new}, {"temperature": old})
    row = table.loc[("temperature", "1.5", "unseen")]
    assert row["n"] == 2 and row["physics"] == pytest.approx(0.6)
    assert row["paper"] == pytest.approx(-1.0) and row["ridge"] == pytest.approx(0.2)
    assert "mct" not in table  # no MCT column in the table: none in the comparison
    median = transfer.method_comparison({"temperature": new}, statistic="median")
    assert median.loc[("temperature", "1.2", "unseen"), "knn"] == pytest.approx(-1.0)
    with pytest.raises(SupercooledError, match="statistic"):
        transfer.method_comparison({"temperature": new}, statistic="max")
    with pytest.raises(SupercooledError, match="no transfer study"):
        transfer.method_comparison({})
