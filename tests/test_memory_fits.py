"""Tests of supercooled.memory_fits and `supercooled fit-memory`: library states to fits."""

import numpy as np

from supercooled import memory_fits


def test_fit_memory_command_writes_a_row_and_rejects_bad_input(tmp_path, capsys,
                                                              synthetic_state_file):
    import pandas as pd

    from supercooled.cli import main

    synthetic_state_file(tmp_path)
    out = tmp_path / "fit.csv"
    code = main(["fit-memory", "--library", str(tmp_path), "--interaction", "LJ", "--density",
                 "1.2", "--temperature", "0.5", "--n-exp", "1", "--start", "heuristic",
                 "--max-generations", "3", "--quiet", "--out", str(out)])
    assert code == 0
    row = pd.read_csv(out).iloc[0]
    assert row["state"] == "LJ_rho1.200_T0.5000" and row["n_exp"] == 1
    assert row["generations"] <= 2 * 3  # the budget of the first run and of one IPOP restart
    assert np.isfinite(row["loss"]) and np.isfinite(row["AA_w1"]) and np.isnan(row["AA_w2"])
    assert {"r2_A", "r2_B", "converged", "valid"} <= set(row.index)
    # unknown temperature, interaction, density: one-line errors, exit 2
    for bad in (["--temperature", "0.9"], ["--interaction", "XY"], ["--density", "1.4"]):
        args = dict(zip(["--interaction", "--density", "--temperature"], ["LJ", "1.2", "0.5"],
                        strict=True))
        args[bad[0]] = bad[1]
        argv = ["fit-memory", "--library", str(tmp_path)] + [x for kv in args.items() for x in kv]
        assert main(argv + ["--quiet"]) == 2
        assert "supercooled: error:" in capsys.readouterr().err


def test_fit_plan_series_first_then_every_equilibrated_state():
    import xarray as xr

    inter = ["LJ", "LJ", "LJ", "WCA", "WCA", "LJ"]
    dens = [1.2, 1.2, 1.4, 1.2, 1.2, 1.2]
    temps = [0.8, 0.6, 1.0, 0.7, 0.9, 0.5]
    equil = [1, 1, 1, 1, 1, 0]  # the aged LJ state is never fitted
    lib = xr.Dataset(coords={"interaction": ("state", inter), "density": ("state", dens),
                             "temperature": ("state", temps), "equilibrated": ("state", equil)})
    plan = memory_fits.fit_plan(lib, series_density=1.2)
    # LJ series at rho = 1.2 (ascending T), all N_exp; then WCA; then the rest with N_exp = 2
    assert plan[:6] == [(1, 1), (1, 2), (1, 3), (0, 1), (0, 2), (0, 3)]
    assert plan[6:12] == [(3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3)]
    assert plan[12:] == [(2, 2)]
    assert all(i != 5 for i, _ in plan)


def test_fit_memory_all_fills_the_table_and_resumes(tmp_path, capsys, synthetic_state_file):
    import pandas as pd

    from supercooled.cli import main

    synthetic_state_file(tmp_path)
    out = tmp_path / "fits.csv"
    argv = ["fit-memory", "--all", "--library", str(tmp_path), "--n-exps", "1",
            "--n-exp", "1", "--start", "heuristic", "--max-generations", "2", "--quiet",
            "--out", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert list(table["state"]) == ["LJ_rho1.200_T0.5000"] and list(table["n_exp"]) == [1]
    assert main(argv) == 0  # resumed: the fit is in the table, nothing is added
    assert len(pd.read_csv(out)) == 1
    assert main(argv[:2] + ["--interaction", "LJ"] + argv[2:]) == 2
    assert "drop --interaction" in capsys.readouterr().err


def test_a_failing_fit_to_the_mct_memory_falls_back_to_the_heuristic_start(
        tmp_path, synthetic_state_file, monkeypatch):
    """A singular least-squares fit of eq. 6 to MCT's memory (seen for WCA rho = 1.8 at high
    T) must not stop a whole table: the start says why it is the heuristic one."""
    from supercooled.library import load_library

    synthetic_state_file(tmp_path)
    state = load_library(tmp_path).isel(state=0)
    problem = memory_fits.problem_for_state(state)
    monkeypatch.setattr(memory_fits, "mct_memory", lambda *a, **k: np.ones((60, 2, 2)))

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(memory_fits, "fit_parametrisation", singular)
    theta, origin = memory_fits.start_parameters(state, problem, 2)
    assert origin.startswith("heuristic (eq. 6 fit to MCT failed: SVD did not converge")
    assert theta.shape == (27,) and np.all(np.isfinite(theta))
