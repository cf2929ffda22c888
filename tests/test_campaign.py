"""Campaign configuration, run-length planning, and real tiny campaigns on a LocalCluster."""

import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supercooled.campaign import config, policy, progress, report, runner
from supercooled.errors import SupercooledError

TINY = """
[campaign]
name = "tiny"
seed = 5
min_equilibration_time = 2.0
min_production_time = 4.0
max_time = 6.0
equilibration_tau_alpha = 1.0
production_tau_alpha = 1.0
first_tau_alpha_guess = 0.1

[[series]]
interaction = "LJ"
density = 1.2
n_particles = 100
temperatures = [2.0, 1.5]
aged_temperatures = [0.3]
age_time = 2.0
aged_production_time = 3.0

[[series]]
interaction = "WCA"
density = 1.2
n_particles = 100
temperatures = [2.0]
"""


def test_grid_expands_with_density_scaling(tmp_path):
    camp = config.load_campaign(Path(__file__).resolve().parents[1] / "campaigns" / "paper.toml")
    assert len(camp.series) == 8 and len(camp.states) >= 80
    lj12 = [s.temperature for s in camp.series[("LJ", 1.2)]]
    lj18 = [s.temperature for s in camp.series[("LJ", 1.8)]]
    assert lj18[0] == pytest.approx(lj12[0] * 1.5**5, rel=1e-4)
    assert all(not s.equilibrated for s in camp.aged) and len(camp.aged) == 16
    assert len({s.filename for s in camp.states}) == len(camp.states)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[campaign]\nname='x'\n", "nothing to simulate"),
        ("[campaign]\nspeed=1\n", "unknown"),
        ("[[series]]\ninteraction='LJ'\ndensity=1.2\ntemperatures=[1.0, 2.0]\n", "decrease"),
        ("[[series]]\ninteraction='Yukawa'\ndensity=1.2\ntemperatures=[1.0]\n", "unknown interaction"),
        ("[[series]]\ninteraction='LJ'\ndensity=1.2\ntemperatures=[-1.0]\n", "temperature"),
        ("[[series]]\ninteraction='LJ'\ndensity=1.2\n", "lacks"),
        ("[[series\n", "not valid TOML"),
        # typos and wrong types are one-line errors, never silently ignored or a traceback
        ("[[series]]\ninteraction='LJ'\ndensity=1.2\ntemperatures=[1.0]\nn_particle=100\n",
         "unknown \\[series\\] keys: n_particle"),
        ("[[extend-series]]\ninteraction='LJ'\n", "unknown tables: extend-series"),
        ("[[series]]\ninteraction='LJ'\ndensity='abc'\ntemperatures=[1.0]\n", "wrong type"),
        ("[[series]]\ninteraction='LJ'\ndensity=1.2\ntemperatures=1.0\n", "must be a list of numbers"),
        ("[grid]\ninteractions=['LJ']\n", "lacks densities"),
        ("[campaign]\ntau_alpha_max='300'\n", "tau_alpha_max = '300' must be a float"),
        ("[campaign]\nproduction_tau_alpha=0\n", "production_tau_alpha must be positive"),
        ("[campaign]\nmax_attempts=0\n", "max_attempts must be at least 1"),
        ("[campaign]\nkeep_trajectories=1\n", "must be a bool"),
        ("[[series]]\ninteraction='LJ'\ndensity=1.2\ntemperatures=[1.0, 0.99999]\n",
         "share a file name"),
        ("[[series]]\ninteraction='LJ'\ndensity=1.2\ntemperatures=[1.0]\naged_temperatures="
         "[0.3, 0.3]\nage_time=1.0\naged_production_time=1.0\n", "share a file name"),
    ],
)
def test_bad_campaign_files(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(SupercooledError, match=message):
        config.load_campaign(path)


def test_missing_campaign_file(tmp_path):
    with pytest.raises(SupercooledError, match="not found"):
        config.load_campaign(tmp_path / "nope.toml")


def test_tau_estimate_recovers_arrhenius_law():
    def tau(t):
        return 0.01 * math.exp(3.0 / t)

    finished = [(2.0, tau(2.0)), (1.0, tau(1.0)), (1.5, tau(1.5))]
    assert policy.estimate_tau_alpha(0.6, finished, 1.0) == pytest.approx(tau(0.6), rel=1e-9)
    assert policy.estimate_tau_alpha(0.6, [], 7.0) == 7.0
    assert policy.estimate_tau_alpha(0.5, [(1.0, 2.0)], 1.0) == pytest.approx(8.0)


def test_run_lengths_follow_tau_within_limits():
    settings = config.SETTINGS_DEFAULTS | {"min_equilibration_time": 10.0, "min_production_time": 30.0,
                                       "max_time": 1000.0}
    spec = config.StateSpec("LJ", 1.2, 0.5)
    assert policy.run_lengths(spec, 0.1, settings) == (10.0, 30.0)
    assert policy.run_lengths(spec, 5.0, settings) == (100.0, 100.0)
    assert policy.run_lengths(spec, 500.0, settings) == (1000.0, 1000.0)
    aged = config.StateSpec("LJ", 1.2, 0.3, equilibrated=False, age_time=7.0, aged_production_time=9.0)
    assert policy.run_lengths(aged, 5.0, settings) == (7.0, 9.0)


def test_seeds_are_reproducible_and_distinct():
    a, b = config.StateSpec("LJ", 1.2, 0.5), config.StateSpec("LJ", 1.2, 0.6)
    assert policy.state_seed(a, 1, 0) == policy.state_seed(a, 1, 0)
    assert len({policy.state_seed(a, 1, 0), policy.state_seed(a, 1, 1), policy.state_seed(b, 1, 0)}) == 3


def _log(library):
    path = library / progress.LOG_NAME
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_tiny_campaign_on_two_workers_and_a_failing_state(tmp_path):
    from supercooled.library import load_library

    text = TINY + '\n[[series]]\ninteraction = "LJ"\ndensity = 1.4\nn_particles = 100\n' \
        'dt = 0.5\ntemperatures = [3.0]\n'  # a time step far too large: LAMMPS loses atoms
    camp = config.parse_campaign(__import__("tomllib").loads(text))
    library = tmp_path / "library"
    counts = runner.run_campaign(camp, library, workers=2, scratch=tmp_path / "scratch", progress=False)
    assert counts["failed"] == 1 and counts["done"] == 4
    data = load_library(library)
    assert data.sizes["state"] == 4
    assert sorted(int(e) for e in data["equilibrated"].values) == [0, 1, 1, 1]
    failed = [e for e in _log(library) if e["event"] == "failed"]
    assert len(failed) == 1 and failed[0]["density"] == 1.4
    assert not list(library.glob("*.tmp")) and not list(library.glob(".*tmp"))
    # Everything done: a second run has nothing to do but the failed state.
    assert [s.density for s in progress.pending_states(camp, library)] == [1.4]


@pytest.mark.slow
def test_campaign_on_an_existing_scheduler(tmp_path):
    from distributed import LocalCluster

    text = TINY.split("[[series]]")[0] + '[[series]]\ninteraction = "WCA"\ndensity = 1.2\n' \
        'n_particles = 100\ntemperatures = [2.0, 1.5]\n'
    camp = config.parse_campaign(__import__("tomllib").loads(text))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address=":0") as cluster:
        counts = runner.run_campaign(camp, tmp_path / "library", scheduler=cluster.scheduler_address,
                                 scratch=tmp_path / "scratch", progress=False)
    assert counts["done"] == 2 and counts["pending"] == 0
    assert sorted(p.name for p in (tmp_path / "library").glob("*.nc")) == sorted(
        s.filename for s in camp.states)


@pytest.mark.slow
def test_killed_campaign_resumes_with_every_state_once(tmp_path):
    # One large state (2000 particles, 60 tau) among tiny ones: the cheapest-first scheduler
    # starts it only when a tiny state has finished, so it is still running when the first
    # file appears, however fast the machine (it takes thousands of times the 0.1 s poll).
    big = '\n[[series]]\ninteraction = "WCA"\ndensity = 1.4\nn_particles = 2000\ntemperatures = [3.0]\n'
    text = TINY.replace("min_production_time = 4.0", "min_production_time = 40.0") \
        .replace("min_equilibration_time = 2.0", "min_equilibration_time = 20.0") \
        .replace("max_time = 6.0", "max_time = 60.0") + big
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(text)
    library = tmp_path / "library"
    command = [sys.executable, "-m", "supercooled.cli", "campaign", str(config_file),
               "--library", str(library), "--workers", "2"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list(library.glob("*.nc")):
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # the client and its workers, mid-campaign
    process.wait()
    first = {p.name for p in library.glob("*.nc")}
    assert 1 <= len(first) and "WCA_rho1.400_T3.0000.nc" not in first
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    camp = config.load_campaign(config_file)
    assert {p.name for p in library.glob("*.nc")} == {s.filename for s in camp.states}
    done = [(e["interaction"], e["temperature_target"], e["equilibrated"]) for e in _log(library) if e["event"] == "done"]
    assert len(done) == len(set(done))  # no state measured twice
    assert not [p for p in library.iterdir() if p.name.endswith(".tmp")]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    assert "nothing left to do" in result.stdout


def test_restart_keeps_the_longer_lengths_of_a_logged_too_short_run(tmp_path):
    camp = config.parse_campaign(__import__("tomllib").loads(TINY))
    library = tmp_path / "library"
    library.mkdir()
    spec = camp.series[("LJ", 1.2)][0]
    progress.EventLog(library).write("rerun", spec, tau_alpha=5.0, production_time=4.0)
    progress.EventLog(library).write("rerun", spec, tau_alpha=float("nan"), production_time=40.0)
    series = {key: progress.SeriesProgress(specs, {}, camp.settings) for key, specs in camp.series.items()}
    settings = camp.settings
    fresh = policy.run_lengths(spec, settings["tau_estimate_safety"] * settings["first_tau_alpha_guess"],
                           settings)
    progress.restore_reruns(series, library, settings)
    # The last record wins; a tau that never reached 1/e plans four times the production.
    expected = policy.run_lengths(spec, 1.2 * 4.0 * 40.0 / settings["production_tau_alpha"], settings)
    assert series[("LJ", 1.2)].override[spec] == expected != fresh
    only_lj = {("LJ", 1.2): series[("LJ", 1.2)]}
    assert runner.choose_next(only_lj, [], set(), set(), settings) == (spec, expected)


def test_acceptance_needs_twenty_tau_and_no_ageing():
    settings = config.SETTINGS_DEFAULTS | {"max_time": 1000.0}
    liquid = config.StateSpec("LJ", 1.2, 0.5)
    ok = {"tau_alpha": 10.0, "production_time": 200.0, "equilibration_time": 200.0,
          "ageing_check": 0.05}
    assert policy.acceptable(liquid, ok, settings)
    assert not policy.acceptable(liquid, ok | {"production_time": 180.0}, settings)
    assert not policy.acceptable(liquid, ok | {"tau_alpha": float("nan")}, settings)
    assert policy.acceptable(liquid, ok | {"tau_alpha": 100.0, "production_time": 1000.0}, settings)
    assert not policy.acceptable(liquid, ok | {"ageing_check": 0.2}, settings)
    glass = config.StateSpec("LJ", 1.2, 0.3, equilibrated=False, age_time=7.0, aged_production_time=9.0)
    assert policy.acceptable(glass, ok | {"ageing_check": 0.5, "production_time": 9.0}, settings)


def test_a_still_ageing_run_is_redone_with_a_longer_equilibration():
    settings = config.SETTINGS_DEFAULTS | {"max_time": 5000.0}
    spec = config.StateSpec("WCA", 1.4, 0.9942)
    summary = {"tau_alpha": 40.0, "production_time": 1000.0, "equilibration_time": 1000.0}
    # Long enough for its tau but ageing: the equilibration doubles, the production follows tau.
    assert policy.rerun_lengths(spec, summary | {"ageing_check": 0.18}, settings) == (2000.0, 960.0)
    assert policy.rerun_lengths(spec, summary | {"ageing_check": 0.05}, settings) == (960.0, 960.0)


SERIES = """
[campaign]
name = "ends"
tau_alpha_max = 100.0
first_tau_alpha_guess = 0.1

[[series]]
interaction = "LJ"
density = 1.2
temperatures = [1.0, 0.8, 0.6]
aged_temperatures = [0.3]
age_time = 10.0
aged_production_time = 10.0

[[extend_series]]
interaction = "LJ"
density = 1.2
temperatures = [0.5, 0.4]
"""


def _arrhenius(t):
    return 0.1 * math.exp(4.0 / t)  # 5.5, 14.8, 78.6, 298 tau at T = 1, 0.8, 0.6, 0.5


def test_extend_series_adds_colder_and_in_between_states_to_a_series():
    camp = config.parse_campaign(__import__("tomllib").loads(SERIES))
    assert [s.temperature for s in camp.series[("LJ", 1.2)]] == [1.0, 0.8, 0.6, 0.5, 0.4]
    between = SERIES.replace("[0.5, 0.4]", "[0.4, 0.9, 0.5]")
    camp = config.parse_campaign(__import__("tomllib").loads(between))
    assert [s.temperature for s in camp.series[("LJ", 1.2)]] == [1.0, 0.9, 0.8, 0.6, 0.5, 0.4]
    paper = config.load_campaign(Path(__file__).resolve().parents[1] / "campaigns" / "paper.toml")
    assert [s.temperature for s in paper.series[("LJ", 1.8)]][-5:] == [3.3, 3.2, 3.15, 3.12, 3.1]
    # the deeper series: their own ends, the others keep the campaign's
    assert paper.limit(("LJ", 1.2)) == 1000.0 and paper.limit(("LJ", 1.8)) == 500.0
    assert paper.settings["tau_alpha_max"] == 300.0


def test_a_series_ends_at_its_own_tau_alpha_max():
    deeper = SERIES + "[[extend_series]]\ninteraction='LJ'\ndensity=1.2\ntemperatures=[]\n" \
        "tau_alpha_max=2500.0\n"
    camp = config.parse_campaign(__import__("tomllib").loads(deeper))
    specs = camp.series[("LJ", 1.2)]
    finished = {s: _arrhenius(s.temperature) for s in specs[:4]}  # T = 0.5 took 298
    shallow = progress.SeriesProgress(specs, finished, camp.settings | {"tau_alpha_max": 200.0})
    assert specs[4] in shallow.skipped()
    deep = progress.SeriesProgress(specs, finished, camp.settings, camp.limit(("LJ", 1.2)))
    assert deep.skipped() == {} and deep.next_pending(set(), set()) == specs[4]
    with pytest.raises(SupercooledError, match="tau_alpha_max"):
        config.parse_campaign(__import__("tomllib").loads(deeper.replace("2500.0", "-1")))


@pytest.mark.parametrize(("extension", "message"), [
    ("interaction='WCA'\ndensity=1.2\ntemperatures=[0.3]\n", "extends no series"),
    ("interaction='LJ'\ndensity=1.2\ntemperatures=[0.8]\n", "repeats a temperature"),
    ("interaction='LJ'\ndensity=1.2\ntemperatures=[0.3, 0.30001]\n", "repeats a temperature"),
    ("interaction='LJ'\ndensity=1.2\ntemperatures=[-0.3]\n", "temperature"),
    ("interaction='LJ'\ntemperatures=[0.3]\n", "lacks"),
])
def test_bad_series_extensions(extension, message):
    text = SERIES.split("[[extend_series]]")[0] + "[[extend_series]]\n" + extension
    with pytest.raises(SupercooledError, match=message):
        config.parse_campaign(__import__("tomllib").loads(text))


def test_series_ends_where_tau_alpha_passes_or_is_extrapolated_far_beyond_the_limit():
    camp = config.parse_campaign(__import__("tomllib").loads(SERIES))
    specs, settings = camp.series[("LJ", 1.2)], camp.settings
    warm = {s: _arrhenius(s.temperature) for s in specs[:2]}
    # T = 0.6 extrapolates to 78.6 < 1.5 x 100: it runs.
    ends = progress.SeriesProgress(specs, dict(warm), settings)
    assert ends.skipped() == {} and ends.next_pending(set(), set()) == specs[2]
    # With T = 0.6 done, T = 0.5 extrapolates to 298 > 150: the series ends at 0.6 ...
    ends.tau[specs[2]] = _arrhenius(0.6)
    assert set(ends.skipped()) == set(specs[3:]) and ends.next_pending(set(), set()) is None
    assert "298" in ends.skipped()[specs[3]]
    # ... unless the rule is off: then the measured tau_alpha decides.
    off = progress.SeriesProgress(specs, dict(ends.tau), settings | {"skip_estimate_factor": 0})
    assert off.skipped() == {} and off.next_pending(set(), set()) == specs[3]
    off.tau[specs[3]] = 120.0  # measured above tau_alpha_max
    assert set(off.skipped()) == {specs[4]} and off.next_pending(set(), set()) is None
    # One finished state is no basis for an extrapolation.
    one = progress.SeriesProgress(specs, {specs[0]: 90.0}, settings)
    assert one.skipped() == {}


def test_a_failed_state_does_not_switch_off_the_end_of_its_series():
    camp = config.parse_campaign(__import__("tomllib").loads(SERIES))
    specs, settings = camp.series[("LJ", 1.2)], camp.settings
    # T = 0.6 failed: the series goes on below it, but T = 0.5 (298, from 1.0 and 0.8) is
    # still judged by the rule, so the series ends there instead of running 0.5 and 0.4.
    ends = progress.SeriesProgress(specs, {s: _arrhenius(s.temperature) for s in specs[:2]}, settings)
    failed = {specs[2]}
    assert set(ends.skipped(failed)) == set(specs[3:])
    assert ends.next_pending(set(), failed) is None


def test_a_state_whose_phi_s_never_decays_ends_its_series():
    camp = config.parse_campaign(__import__("tomllib").loads(SERIES))
    specs, settings = camp.series[("LJ", 1.2)], camp.settings | {"skip_estimate_factor": 0}
    ends = progress.SeriesProgress(specs, {specs[0]: 5.0, specs[1]: float("nan")}, settings)
    assert set(ends.skipped()) == set(specs[2:]) and ends.next_pending(set(), set()) is None


class _Done:
    """A finished dask future as ``record_outcome`` sees it."""

    def __init__(self, summary):
        self.status, self._summary = "finished", summary

    def result(self):
        return self._summary


def test_crystallised_runs_are_retried_with_new_seeds_then_dropped_and_restarts_remember(tmp_path):
    camp = config.parse_campaign(__import__("tomllib").loads(TINY))
    settings = camp.settings | {"max_attempts": 2}
    series = {key: progress.SeriesProgress(specs, {}, settings) for key, specs in camp.series.items()}
    spec, log = camp.series[("LJ", 1.2)][0], progress.EventLog(tmp_path)
    attempts, failed = {}, set()
    crystal = _Done({"crystallized": True, "accepted": False})
    assert runner.record_outcome(crystal, spec, series, [], attempts, failed, log, settings) == "rerun"
    assert attempts[spec] == 1 and spec not in failed
    # A restart reads the attempt back from the log: the next run uses the next seed.
    assert progress.logged_attempts(camp, tmp_path) == {spec: 1}
    assert runner.record_outcome(crystal, spec, series, [], attempts, failed, log, settings) == "dropped"
    assert spec in failed and [e["event"] for e in _log(tmp_path)] == ["crystallized", "dropped"]
    assert progress.closed_states(camp, tmp_path)[spec].startswith("dropped")
    # An aged glass that crystallised goes back into the queue.
    aged, queue = camp.aged[0], []
    assert runner.record_outcome(crystal, aged, series, queue, {}, set(), log, settings) == "rerun"
    assert queue == [aged]


def test_a_state_too_short_three_times_fails(tmp_path):
    camp = config.parse_campaign(__import__("tomllib").loads(TINY))
    settings = camp.settings
    series = {key: progress.SeriesProgress(specs, {}, settings) for key, specs in camp.series.items()}
    spec, log, attempts, failed = camp.series[("LJ", 1.2)][0], progress.EventLog(tmp_path), {}, set()
    short = _Done({"crystallized": False, "accepted": False, "tau_alpha": 50.0,
                   "production_time": 4.0, "equilibration_time": 2.0})
    outcomes = [runner.record_outcome(short, spec, series, [], attempts, failed, log, settings) for _ in range(3)]
    assert outcomes == ["rerun", "rerun", "failed"] and spec in failed
    assert series[("LJ", 1.2)].override[spec] == policy.rerun_lengths(spec, short.result(), settings)
    # Two logged reruns: after a restart one more rejection fails the state.
    assert progress.logged_attempts(camp, tmp_path)[("length", spec)] == 2


def test_rates_cover_every_interaction_or_none():
    camp = config.parse_campaign(__import__("tomllib").loads(TINY))
    assert report.complete_rates({}, camp) == {}
    assert report.complete_rates({"WCA": 8e6}, camp) == {"LJ": 8e6, "WCA": 8e6}
    assert report.complete_rates({"LJ": 1e6, "WCA": 8e6}, camp) == {"LJ": 1e6, "WCA": 8e6}


def test_skipped_and_dropped_states_are_not_pending(tmp_path, monkeypatch, capsys):
    from supercooled.cli import main

    config_file = tmp_path / "ends.toml"
    config_file.write_text(SERIES)
    camp = config.load_campaign(config_file)
    library = tmp_path / "library"
    library.mkdir()
    specs = camp.series[("LJ", 1.2)]
    finished = {s: _arrhenius(s.temperature) for s in specs[:3]}
    for spec in finished:  # stand-ins: the state files exist, their tau_alpha is read below
        (library / spec.filename).write_text("")
    monkeypatch.setattr(progress, "finished_tau", lambda _, series: {s: finished[s] for s in series if s in finished})
    assert progress.pending_states(camp, library) == camp.aged
    progress.EventLog(library).write("dropped", camp.aged[0], reason="crystallised in every attempt")
    closed = progress.closed_states(camp, library)
    assert set(closed) == set(specs[3:]) | set(camp.aged)
    assert closed[camp.aged[0]].startswith("dropped") and closed[specs[4]].startswith("skipped")
    assert progress.pending_states(camp, library) == []
    assert main(["campaign", str(config_file), "--library", str(library), "--status"]) == 0
    out = capsys.readouterr().out
    assert "3 of 6 states" in out and "3 skipped or dropped" in out and "nothing left to do" in out


def test_status_plans_the_pending_states_from_the_warmer_ones(tmp_path, monkeypatch):
    camp = config.parse_campaign(__import__("tomllib").loads(SERIES))
    library = tmp_path / "library"
    library.mkdir()
    specs, settings = camp.series[("LJ", 1.2)], camp.settings
    finished = {s: _arrhenius(s.temperature) for s in specs[:2]}
    for spec in finished:
        (library / spec.filename).write_text("")
    monkeypatch.setattr(progress, "finished_tau", lambda _, series: {s: finished[s] for s in series if s in finished})
    rows = {row["spec"]: row for row in report.plan_remaining(camp, library)}
    assert set(rows) == set(specs[2:]) | set(camp.aged)
    # Arrhenius data: the extrapolation is exact, and chained through the estimates.
    for spec in specs[2:]:
        assert rows[spec]["tau_estimate"] == pytest.approx(_arrhenius(spec.temperature), rel=1e-9)
    assert [rows[s]["ready"] for s in specs[2:]] == [True, False, False]
    assert [rows[s]["likely_skipped"] for s in specs[2:]] == [False, True, True]
    tau = settings["tau_estimate_safety"] * _arrhenius(0.6)
    assert rows[specs[2]]["lengths"] == pytest.approx(policy.run_lengths(specs[2], tau, settings), rel=1e-12)
    assert rows[specs[2]]["atom_steps"] == policy.cost(specs[2], rows[specs[2]]["lengths"])


def test_a_checkpointed_run_costs_only_what_is_left_and_goes_first(tmp_path):
    camp = config.parse_campaign(__import__("tomllib").loads(TINY))
    settings = camp.settings
    series = {key: progress.SeriesProgress(specs, {}, settings) for key, specs in camp.series.items()}
    lj, wca = series[("LJ", 1.2)].specs[0], series[("WCA", 1.2)].specs[0]
    lengths = policy.run_lengths(lj, settings["tau_estimate_safety"] * settings["first_tau_alpha_guess"], settings)
    # Without checkpoints the same-size LJ and WCA states tie; the aged one (5 tau) is cheapest.
    first, _ = runner.choose_next(series, list(camp.aged), set(), set(), settings, scratch=tmp_path)
    assert first == camp.aged[0]
    run_dir = progress.run_directory(tmp_path, wca, policy.state_seed(wca, settings["seed"], 0), lengths)
    run_dir.mkdir()
    schedule = {"n_blocks": 4, "block_length_steps": 100}
    (run_dir / "checkpoint.json").write_text(json.dumps(
        {"engine_step": 900, "settings": {"equilibration_steps": 600, "schedule": schedule}}))
    assert progress.checkpointed_fraction(run_dir) == 0.9
    assert progress.checkpointed_fraction(tmp_path / "missing") == 0.0
    assert runner.choose_next(series, list(camp.aged), set(), set(), settings, scratch=tmp_path) == (wca, lengths)
    # Another seed (a crystallised attempt) is another run: its checkpoint does not count.
    assert runner.choose_next(series, list(camp.aged), set(), set(), settings, scratch=tmp_path,
                           attempts={wca: 1})[0] == camp.aged[0]


def test_time_left_adds_the_runs_and_bounds_the_wall_time_by_the_longest_series():
    lj, lj2, wca = config.StateSpec("LJ", 1.2, 0.5), config.StateSpec("LJ", 1.2, 0.45), config.StateSpec("WCA", 1.2, 0.4)
    rates = {"LJ": 1e6, "WCA": 4e6}
    hour = 3600e6  # atom-steps in an hour at 1e6 per second
    rows = [{"spec": lj, "atom_steps": 2 * hour, "likely_skipped": False},
            {"spec": lj2, "atom_steps": 3 * hour, "likely_skipped": False},
            {"spec": wca, "atom_steps": 4 * hour, "likely_skipped": False},
            {"spec": config.StateSpec("WCA", 1.2, 0.3), "atom_steps": 99 * hour, "likely_skipped": True}]
    total, wall = report.time_left(rows, rates, workers=2)
    assert total == pytest.approx(6.0)  # 2 + 3 LJ hours, 4 / 4 WCA hours; the skipped one not
    assert wall == pytest.approx(5.0)   # the LJ series runs its two states one after another
    assert report.time_left(rows, rates, workers=1)[1] == pytest.approx(6.0)


def test_throughput_is_the_median_of_the_latest_long_runs_per_interaction(tmp_path):
    log = progress.EventLog(tmp_path)
    spec = config.StateSpec("LJ", 1.2, 1.0)
    atom_steps = policy.cost(spec, (10.0, 10.0))
    for wall in (1000.0, 900.0, 10.0, 100.0, 200.0, 400.0):  # oldest first; 10 s is start-up
        log.write("done", spec, equilibration_time=10.0, production_time=10.0, wall_time=wall)
    log.write("rerun", config.StateSpec("WCA", 1.2, 1.0), equilibration_time=10.0,
              production_time=10.0, wall_time=50.0)
    rates = report.measured_throughput(tmp_path, recent=3)
    assert rates["LJ"] == pytest.approx(atom_steps / 400.0)  # median of 900, 200, 400 s (not 10, 100)
    assert rates["WCA"] == pytest.approx(policy.cost(config.StateSpec("WCA", 1.2, 1.0), (10.0, 10.0)) / 50.0)
    assert report.measured_throughput(tmp_path / "none") == {}


def test_readme_quality_lines_report_drift_and_its_rate_per_1000_tau():
    import pandas as pd

    table = pd.DataFrame({
        "interaction": ["LJ", "LJ", "WCA"], "density": [1.2, 1.2, 1.4],
        "T_target": [1.0, 0.5, 0.8], "equilibrated": [1, 1, 0],
        "production_time": [100.0, 4000.0, 1000.0],
        "energy_drift": [5e-5, -4e-4, 2e-5], "ageing_check": [0.01, 0.03, float("nan")],
        "dt_rule": ["legacy", "reduced", "reduced"],
        "nve_start": ["as-thermostatted", "energy-matched", "energy-matched"],
    })
    drift, rule, start, ageing = report.quality_lines(table)
    # |drift| 5e-5, 4e-4, 2e-5: median 5e-5, one above 1e-4, largest the 4000-tau LJ T=0.5 run;
    # per 1000 tau: 0.5e-3, 1e-4, 2e-5 -> median 1e-4, largest 5e-4
    assert "median 5e-05, above 1e-4 for 1 of 3 states, largest 0.0004 (LJ rho=1.2 T=0.5, 4000 tau" \
        in drift
    assert "per 1000 tau of production: median 0.0001, largest 0.0005" in drift
    assert "2 by the reduced rule, 1 by the legacy rule" in rule
    assert "2 energy-matched, 1 as-thermostatted" in start
    assert "median 0.02, largest 0.03" in ageing
    assert report.quality_lines(table.iloc[:0]) == []


def test_a_second_campaign_on_a_locked_library_is_refused_and_a_stale_lock_taken_over(tmp_path):
    import json as json_
    import socket

    from supercooled.campaign.lock import LOCK_NAME, LibraryLock

    library = tmp_path / "library"
    with LibraryLock(library):
        owner = json_.loads((library / LOCK_NAME).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(SupercooledError, match=f"in use by a campaign .pid {os.getpid()}"):
            LibraryLock(library).acquire()
    assert not (library / LOCK_NAME).exists()  # released on exit
    # a lock of a process that no longer exists on this host is stale: taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (library / LOCK_NAME).write_text(json_.dumps({"host": socket.gethostname(), "pid": dead.pid,
                                                  "started": "2026-01-01T00:00:00+00:00"}))
    with LibraryLock(library):
        assert json_.loads((library / LOCK_NAME).read_text())["pid"] == os.getpid()
    # another host's lock cannot be checked: refused, naming the file to delete
    (library / LOCK_NAME).write_text(json_.dumps({"host": "elsewhere", "pid": 1, "started": "x"}))
    with pytest.raises(SupercooledError, match="delete .*campaign.lock"):
        LibraryLock(library).acquire()


def test_a_corrupt_log_line_is_skipped_with_its_line_number(tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    camp = config.parse_campaign(__import__("tomllib").loads(SERIES))
    log = progress.EventLog(library)
    log.write("done", camp.series[("LJ", 1.2)][0], tau_alpha=1.0)
    with (library / progress.LOG_NAME).open("a") as handle:
        handle.write('{"event": "done", "interac\n[1, 2]\n')  # cut by a kill; not an object
    log.write("done", camp.series[("LJ", 1.2)][1], tau_alpha=2.0)
    with pytest.warns(UserWarning, match="line 2 is not a JSON object") as caught:
        records = progress.read_log(library)
    assert len(caught) == 2 and "line 3" in str(caught[1].message)
    assert [r["tau_alpha"] for r in records] == [1.0, 2.0]


def test_library_readme_names_its_purpose_states_and_time_step_rule(tmp_path,
                                                                   synthetic_state_file):
    from supercooled.campaign import write_library_readme

    synthetic_state_file(tmp_path, temperature=0.5)  # dt = 0.005: the legacy rule at T = 0.5
    path = write_library_readme(tmp_path, command="supercooled campaign x.toml",
                                config=str(tmp_path / "absent.toml"), machine="a test machine",
                                title="A test set", purpose="Only for testing.")
    text = path.read_text()
    assert text.startswith("# A test set\n\nOnly for testing.\n")
    assert "- States in the library: 1 (1 equilibrated, 0 aged glasses)." in text
    assert "- Time step (column dt_rule): 1 by the legacy rule" in text
    assert "- Compute spent (sum of the logged per-state wall times, reruns included): 0.00 " in text
    assert "- NVE start (column nve_start): 1 as-thermostatted (" in text  # a file without it



def test_a_refreshed_library_readme_keeps_its_provenance_and_counts_the_new_state(
        tmp_path, synthetic_state_file):
    from supercooled.campaign import refresh_library_readme, write_library_readme

    synthetic_state_file(tmp_path, temperature=0.5)
    machine = "a test machine, run over several days (2026-11-24 to 2026-12-03)"
    first = write_library_readme(tmp_path, command="supercooled campaign x.toml",
                                 config="absent.toml", machine=machine, title="A test set",
                                 purpose="Only for testing.\nNever trained on.").read_text()
    assert refresh_library_readme(tmp_path).read_text() == first  # nothing new: the same text
    synthetic_state_file(tmp_path, temperature=0.6)
    text = refresh_library_readme(tmp_path, last_day="2026-12-04").read_text()
    assert text.startswith("# A test set\n\nOnly for testing.\nNever trained on.\n")
    assert "made by `supercooled campaign x.toml` from `absent.toml` with" in text
    assert "- Machine: a test machine, run over several days (2026-11-24 to 2026-12-04)." in text
    assert "- States in the library: 2 (2 equilibrated, 0 aged glasses)." in text


def test_refreshing_a_readme_that_write_library_readme_did_not_write_is_one_line(tmp_path):
    from supercooled.campaign import refresh_library_readme

    (tmp_path / "README.md").write_text("# notes\n\nhand written\n")
    with pytest.raises(SupercooledError, match="was not written by write_library_readme"):
        refresh_library_readme(tmp_path)
    assert (tmp_path / "README.md").read_text() == "# notes\n\nhand written\n"

def test_library_readme_adds_the_logged_wall_times_and_counts_the_resumed_runs(tmp_path):
    from supercooled.campaign import write_library_readme

    camp = config.parse_campaign(__import__("tomllib").loads(SERIES))
    log = progress.EventLog(tmp_path)
    first, second = camp.series[("LJ", 1.2)][:2]
    log.write("rerun", first, wall_time=1800.0)  # a rejected attempt's compute counts too
    log.write("done", first, wall_time=3600.0, resumed_after=0.0)
    log.write("done", second, wall_time=5400.0, resumed_after=1000.0)
    text = write_library_readme(tmp_path, command="c", config="absent.toml",
                                machine="m").read_text()
    assert "reruns included): 3.00 core-hours." in text
    assert "(records so far: 1)" in text


def test_a_resumed_state_logs_the_wall_time_spent_before_its_resume(tmp_path, monkeypatch,
                                                                     kill_after_checkpoint):
    # A state killed after a production checkpoint and then resumed: its logged wall time is
    # the checkpoint's (the work before the kill) plus the resumed part, not the latter alone.
    camp = config.parse_campaign(__import__("tomllib").loads(TINY.replace("[2.0, 1.5]", "[2.0]")))
    spec = camp.series[("LJ", 1.2)][0]
    lengths = policy.run_lengths(spec, 0.1, camp.settings)
    seed = policy.state_seed(spec, 5, 0)
    scratch, library = tmp_path / "scratch", tmp_path / "library"
    library.mkdir()
    monkeypatch.setattr(runner, "simulate", functools.partial(
        runner.simulate, on_checkpoint=kill_after_checkpoint.remember))
    with pytest.raises(kill_after_checkpoint.Killed):
        runner.run_state(spec, lengths, seed, str(scratch), str(library), camp.settings)
    run_dir = progress.run_directory(str(scratch), spec, seed, lengths)
    before = json.loads((run_dir / "checkpoint.json").read_text())["wall_time"]
    assert before > 0.0
    kill_after_checkpoint.stop()
    resumed = runner.run_state(spec, lengths, seed, str(scratch), str(library), camp.settings)
    assert resumed["resumed_after"] == pytest.approx(before)
    assert resumed["wall_time"] > before
    fresh = runner.run_state(spec, lengths, seed, str(tmp_path / "other"), str(library),
                             camp.settings)
    assert fresh["resumed_after"] == 0.0 and fresh["wall_time"] > 0.0
