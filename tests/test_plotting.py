"""Tests of supercooled.plotting on a synthetic library (Agg backend, nothing is shown)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from supercooled import plotting  # noqa: E402


@pytest.fixture
def library(synthetic_library):
    ds = synthetic_library(temperatures=(0.5, 1.0, 2.0), densities=(1.2,))
    tau = np.exp(2.0 / ds["temperature"].values)
    return ds.assign(tau_alpha=("state", tau))


def test_tau_map_colours_equilibrated_states(library):
    fig, ax = plt.subplots()
    plotting.plot_tau_map(library, ax)
    assert len(ax.collections) == 2 and len(fig.axes) == 2  # LJ, WCA and a colour bar
    assert ax.get_xlabel().startswith("density") and ax.get_ylabel().startswith("temperature")
    plt.close(fig)


@pytest.mark.parametrize("case", ["aged", "crystallised", "no tau", "empty"])
def test_tau_map_without_any_equilibrated_state_is_an_empty_labelled_plot(library, case):
    n = library.sizes["state"]
    ds = {"aged": library.assign_coords(equilibrated=("state", np.zeros(n, int))),
          "crystallised": library.assign_coords(crystallized=("state", np.ones(n, int))),
          "no tau": library.assign(tau_alpha=("state", np.full(n, np.nan))),
          "empty": library.isel(state=[])}[case]
    fig, ax = plt.subplots()
    assert plotting.plot_tau_map(ds, ax) is ax
    assert not ax.collections and len(fig.axes) == 1  # no points, no colour bar
    assert ax.get_xlabel().startswith("density") and ax.get_ylabel().startswith("temperature")
    assert "no equilibrated state" in ax.texts[0].get_text()
    plt.close(fig)
