"""The drift study: the slope measure on a known energy trace, and a resumable table of real runs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from supercooled import drift
from supercooled.errors import SupercooledError
from supercooled.systems import StatePoint


def thermo(path, times, energies, temperature=0.5, phase="production"):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "time", "temperature", "total_energy", "phase"])
        writer.writerow([0, -1.0, temperature, 100.0, "equilibration"])  # not production
        for n, (t, e) in enumerate(zip(times, energies, strict=True)):
            writer.writerow([n + 1, t, temperature, e, phase])
    return path


def test_drift_rates_of_a_straight_line_with_noise(tmp_path):
    # E(t) = -5 - 2e-4 t + noise, <T> = 0.5: slope -2e-4 per tau, so per 1000 tau
    # relative 0.2 / 5 = 0.04 (signed -0.04), thermal 0.2 / 0.5 = 0.4
    t = np.linspace(0.0, 500.0, 2001)
    noise = 1e-3 * np.random.default_rng(0).standard_normal(t.size)
    rates = drift.drift_rates(thermo(tmp_path / "thermo.csv", t, -5.0 - 2e-4 * t + noise))
    assert rates["signed"] == pytest.approx(-0.04, rel=0.01)
    assert rates["relative"] == pytest.approx(0.04, rel=0.01)
    assert rates["thermal"] == pytest.approx(0.4, rel=0.01)
    # a rising energy is positive: slope 2e-4 over |<E>| = 4.95 (E from -5 to -4.9); the
    # equilibration row (E = 100) would swamp the slope if it were used
    rising = drift.drift_rates(thermo(tmp_path / "up.csv", t, -5.0 + 2e-4 * t))
    assert rising["signed"] == pytest.approx(0.2 / 4.95, rel=1e-9)


def test_drift_rates_needs_three_production_rows(tmp_path):
    with pytest.raises(SupercooledError, match="fewer than 3 production rows"):
        drift.drift_rates(thermo(tmp_path / "t.csv", [0.0, 1.0], [-5.0, -5.0]))


def test_extend_study_runs_only_what_the_table_lacks(tmp_path):
    table = tmp_path / "drift.csv"
    state = StatePoint("LJ", 1.2, 1.0, 100)
    settings = {"equilibration_time": 0.5, "production_time": 2.0, "progress": False}
    rows = drift.extend_study(table, [state], [0.003], seeds=[1, 2], **settings)
    assert [r["seed"] for r in rows] == [1, 2]
    for row in rows:
        # dt = dt~ rho^(-1/3) T^(-1/2), rounded to 3 digits
        assert row["dt"] == pytest.approx(0.003 * 1.2 ** (-1 / 3), rel=2e-3)
        assert row["drift_per_1000tau"] == abs(row["signed_drift_per_1000tau"])
        assert 0.0 < row["drift_per_1000tau"] < 1.0  # a sane NVE run at a small step
    # different seeds are different runs
    assert rows[0]["signed_drift_per_1000tau"] != rows[1]["signed_drift_per_1000tau"]
    stamp = table.stat().st_mtime_ns
    again = drift.extend_study(table, [state], [0.003], seeds=[1, 2], **settings)
    assert table.stat().st_mtime_ns == stamp  # nothing ran, nothing rewritten
    assert again == drift.read_study(table)
    more = drift.extend_study(table, [state], [0.003], seeds=[1, 2, 3], **settings)
    assert [r["seed"] for r in more] == [1, 2, 3] and more[:2] == again


def test_read_study_keeps_old_rows_without_a_sign(tmp_path):
    table = tmp_path / "old.csv"
    row = {"interaction": "LJ", "density": 1.2, "temperature": 0.5, "dt_reduced": 0.002,
           "dt": 0.00266, "seed": 1, "drift_per_1000tau": 8e-6,
           "signed_drift_per_1000tau": "", "thermal_drift_per_1000tau": 1e-4,
           "production_time": 600.0}
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=drift.COLUMNS)
        writer.writeheader()
        writer.writerow(row)
    (read,) = drift.read_study(table)
    assert math.isnan(read["signed_drift_per_1000tau"]) and read["seed"] == 1
    assert read["drift_per_1000tau"] == 8e-6


def test_the_committed_study_is_a_readable_table():
    from supercooled import paths

    rows = drift.read_study(paths.results_path("drift_study.csv"))
    assert {r["interaction"] for r in rows} == {"LJ", "WCA"}
    assert all(r["drift_per_1000tau"] >= 0 for r in rows)
