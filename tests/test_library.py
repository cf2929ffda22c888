"""State files: schema, atomic round trip, loading a folder, selection, splitting, bad files."""

import warnings

import numpy as np
import pytest
import xarray as xr

from supercooled.errors import SupercooledError
from supercooled.grids import K_GRID, TIME_GRID
from supercooled.library import (
    LibraryError,
    load_library,
    read_state,
    select,
    select_state,
    split_states,
    state_filename,
    write_state,
)
from supercooled.paths import library_path


def make_state(interaction="LJ", density=1.2, temperature=0.5, equilibrated=True, extra=True):
    rng = np.random.default_rng(round(temperature * 1000))
    data = {
        "S": (("pair", "k"), 1.0 + 0.1 * rng.random((3, K_GRID.size))),
        "phi_s": (("species", "time"), np.exp(-TIME_GRID[None] / temperature) * np.ones((2, 1))),
        "msd": (("species", "time"), 6 * temperature * TIME_GRID[None] * np.ones((2, 1))),
        "k_p": ((), 7.2),
        "tau_alpha": ((), temperature),
    }
    if extra:
        data["D"] = (("species",), [temperature, 2 * temperature])
    attrs = {"interaction": interaction, "density": density, "temperature": temperature * 1.01,
             "temperature_target": temperature, "n_particles": 1200, "seed": 1, "dt": 0.005,
             "engine": "lammps", "engine_version": "x", "equilibration_time": 10.0,
             "production_time": 100.0, "energy_drift": 1e-4, "crystallized": False,
             "equilibrated": equilibrated, "created": "2026-01-01T00:00:00+00:00"}
    return xr.Dataset(data, coords={"k": K_GRID, "time": TIME_GRID, "pair": ["AA", "AB", "BB"],
                                    "species": ["A", "B"]}, attrs=attrs)


def test_state_filename():
    assert state_filename("LJ", 1.2, 0.45) == "LJ_rho1.200_T0.4500.nc"
    assert state_filename("wca", 1.4, 2.0, equilibrated=False) == "WCA_rho1.400_T2.0000_aged.nc"


def test_round_trip_is_exact_and_atomic(tmp_path):
    state = make_state()
    path = write_state(state, tmp_path / state_filename("LJ", 1.2, 0.5))
    back = read_state(path)
    for name in ("S", "phi_s", "msd", "k_p", "tau_alpha", "D"):
        np.testing.assert_array_equal(back[name].values, state[name].values)
    assert back.attrs["crystallized"] == 0 and back.attrs["equilibrated"] == 1
    assert back.attrs["interaction"] == "LJ" and back.attrs["density"] == 1.2
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    big = make_state()
    big.attrs["seed"] = 3_000_000_007  # beyond int32 (netCDF3 has no int64)
    assert int(read_state(write_state(big, tmp_path / "big.nc")).attrs["seed"]) == 3_000_000_007


def test_write_refuses_incomplete_dataset(tmp_path):
    with pytest.raises(LibraryError, match="missing variable 'msd'"):
        write_state(make_state().drop_vars("msd"), tmp_path / "x.nc")
    bad = make_state()
    del bad.attrs["seed"]
    with pytest.raises(LibraryError, match="seed"):
        write_state(bad, tmp_path / "x.nc")
    assert not list(tmp_path.iterdir())


def test_corrupt_and_incomplete_files_are_named(tmp_path):
    write_state(make_state(), tmp_path / "good.nc")
    (tmp_path / "broken.nc").write_bytes(b"CDF\x01 this is not a netCDF file")
    with pytest.raises(LibraryError, match="broken.nc"):
        load_library(tmp_path)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes((tmp_path / "good.nc").read_bytes()[:300])
    with pytest.raises(LibraryError, match="truncated.nc"):
        read_state(truncated)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        library = load_library(tmp_path, skip_bad=True)
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.nc" in messages and "truncated.nc" in messages
    assert library.sizes["state"] == 1


def test_load_select_split(tmp_path):
    states = [("LJ", 1.2, 0.5), ("LJ", 1.2, 0.6), ("LJ", 1.4, 1.0), ("WCA", 1.2, 0.5),
              ("WCA", 1.2, 0.7)]
    for i, (interaction, density, temperature) in enumerate(states):
        # one older file without the optional D: loading fills it with NaN
        write_state(make_state(interaction, density, temperature, extra=i != 4),
                    tmp_path / state_filename(interaction, density, temperature))
    library = load_library(tmp_path)
    assert library.sizes["state"] == 5
    assert library["S"].dims == ("state", "pair", "k")
    assert set(library["interaction"].values) == {"LJ", "WCA"}
    assert np.isnan(select(library, interaction="WCA", temperature=0.7)["D"].values).all()
    lj = select(library, interaction="lj", density=1.2)
    assert sorted(lj["temperature_target"].values) == [0.5, 0.6]
    assert select(library, temperature=(0.55, 1.0)).sizes["state"] == 3
    assert select(library, temperature=0.5).sizes["state"] == 2
    train, test = split_states(library, test_fraction=0.4, seed=3)
    assert train.sizes["state"] == 3 and test.sizes["state"] == 2
    assert not set(train["label"].values) & set(test["label"].values)
    again = split_states(library, test_fraction=0.4, seed=3)[1]
    assert list(again["label"].values) == list(test["label"].values)
    with pytest.raises(SupercooledError, match="unknown state coordinate"):
        select(library, colour="red")


def test_empty_library_and_default_path(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERCOOLED_LIBRARY", raising=False)  # a user's setting must not leak in
    empty = load_library(tmp_path / "does-not-exist")
    assert empty.sizes["state"] == 0 and empty.sizes["k"] == K_GRID.size
    with pytest.raises(SupercooledError):
        split_states(empty)
    assert library_path().parts[-2:] == ("data", "library")
    monkeypatch.setenv("SUPERCOOLED_LIBRARY", str(tmp_path))
    assert library_path() == tmp_path


def _select_library(temps, targets, equil):
    import xarray as xr

    n = len(temps)
    return xr.Dataset(coords={"interaction": ("state", ["LJ"] * n), "density": ("state", [1.2] * n),
                              "temperature": ("state", temps),
                              "temperature_target": ("state", targets),
                              "equilibrated": ("state", equil)})


def test_select_state_prefers_equilibrated_only_at_the_same_temperature():
    # aged glass exactly at T = 0.35, an equilibrated state 1.4 % away: the nearer one wins
    lib = _select_library([0.3502, 0.355], [0.35, 0.355], [0, 1])
    assert float(select_state(lib, "LJ", 1.2, 0.35).temperature) == 0.3502
    assert float(select_state(lib, "LJ", 1.2, 0.355).temperature) == 0.355
    # same target temperature: the equilibrated run wins although its measured T is further
    lib = _select_library([0.3501, 0.3512], [0.35, 0.35], [0, 1])
    assert float(select_state(lib, "LJ", 1.2, 0.3501).temperature) == 0.3512
    # ... and so it does when the two differ from T by (nearly) the same amount
    lib = _select_library([0.3495, 0.3505], [0.349, 0.351], [0, 1])
    assert float(select_state(lib, "LJ", 1.2, 0.35).temperature) == 0.3505
    # between two equilibrated states the nearer wins
    lib = _select_library([0.34, 0.352, 0.3485], [0.34, 0.352, 0.3485], [1, 1, 1])
    assert float(select_state(lib, "LJ", 1.2, 0.35).temperature) == 0.3485
    with pytest.raises(SupercooledError, match="no LJ state at rho = 1.2 near T = 0.4"):
        select_state(lib, "LJ", 1.2, 0.4)
