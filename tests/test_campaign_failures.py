"""Campaigns that are killed, interrupted or started twice: the log, the scratch and the lock.

The library-write/log boundary (a state file in the library, no ``done`` record, its scratch
folder left), a second campaign on a busy library, and Ctrl-C, with real LAMMPS runs of 100
particles on a dask LocalCluster where it matters.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tomllib

import pytest

from supercooled.campaign import config, policy, progress
from supercooled.campaign.lock import LOCK_NAME
from supercooled.campaign.reconcile import reconcile
from supercooled.cli import main

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
"""


def _records(library, event="done"):
    return [r for r in progress.read_log(library) if r["event"] == event]


def _attempt_folder(scratch, spec, settings, seed=None, lengths=(2.0, 4.0)):
    seed = policy.state_seed(spec, settings["seed"], 0) if seed is None else seed
    folder = progress.run_directory(scratch, spec, seed, lengths)
    folder.mkdir(parents=True)
    (folder / "thermo.csv").write_text("step\n")
    return folder


def test_reconcile_logs_unrecorded_states_and_removes_only_orphaned_scratch(
        tmp_path, synthetic_state_file):
    camp = config.parse_campaign(tomllib.loads(
        "[campaign]\nseed = 3\n[[series]]\ninteraction = 'LJ'\ndensity = 1.2\n"
        "temperatures = [0.6, 0.5]\n"))
    warm, cold = camp.series[("LJ", 1.2)]
    library, scratch = tmp_path / "library", tmp_path / "scratch"
    synthetic_state_file(library, temperature=0.6)  # in the library, never logged
    orphan = _attempt_folder(scratch, warm, camp.settings)
    foreign = _attempt_folder(scratch, warm, camp.settings, seed=12345)  # another campaign's
    resumable = _attempt_folder(scratch, cold, camp.settings)  # a state still to do
    (resumable / "checkpoint.json").write_text("{}")

    assert reconcile(camp, library, scratch) == {"recorded": 1, "removed": 1}
    [record] = _records(library)
    assert record["temperature_target"] == 0.6 and record["reconciled"] is True
    assert record["tau_alpha"] == 1.0 and "wall_time" not in record
    assert not orphan.exists() and foreign.is_dir() and (resumable / "checkpoint.json").is_file()
    # a state with its record gets no second one; nothing else to do
    assert reconcile(camp, library, scratch) == {"recorded": 0, "removed": 0}
    assert len(_records(library)) == 1


def test_reconcile_keeps_the_scratch_of_a_campaign_that_keeps_its_trajectories(
        tmp_path, synthetic_state_file):
    camp = config.parse_campaign(tomllib.loads(
        "[campaign]\nkeep_trajectories = true\n[[series]]\ninteraction = 'LJ'\n"
        "density = 1.2\ntemperatures = [0.6]\n"))
    [spec] = camp.states
    synthetic_state_file(tmp_path / "library", temperature=0.6)
    kept = _attempt_folder(tmp_path / "scratch", spec, camp.settings)
    assert reconcile(camp, tmp_path / "library", tmp_path / "scratch")["removed"] == 0
    assert kept.is_dir()


@pytest.mark.slow
def test_a_kill_between_the_library_write_and_the_log_is_reconciled_at_the_next_start(
        tmp_path, capsys):
    """The worker writes the state file, then is killed (SIGKILL) before it removes its
    scratch folder and before the client logs ``done``; the next start repairs both."""
    toml = tmp_path / "one.toml"
    toml.write_text(TINY.replace("[2.0, 1.5]", "[2.0]"))
    library, scratch = tmp_path / "library", tmp_path / ".campaign-scratch"
    script = textwrap.dedent(f"""
        import os, signal
        from supercooled.campaign import config, policy, runner
        camp = config.load_campaign({str(toml)!r})
        [spec] = camp.states
        write = runner.write_state

        def write_then_die(*args):  # killed the moment the state is in the library
            write(*args)
            os.kill(os.getpid(), signal.SIGKILL)

        runner.write_state = write_then_die
        lengths = policy.run_lengths(spec, 0.1, camp.settings)
        runner.run_state(spec, lengths, policy.state_seed(spec, 5, 0), {str(scratch)!r},
                         {str(library)!r}, camp.settings)
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert (library / "LJ_rho1.200_T2.0000.nc").is_file() and not _records(library)
    [left] = list(scratch.iterdir())

    assert main(["campaign", str(toml), "--library", str(library)]) == 0
    out = capsys.readouterr().out
    assert "1 states in the library got their done record, 1 orphaned scratch" in out
    assert "nothing left to do" in out
    [record] = _records(library)
    assert record["reconciled"] and record["temperature_target"] == 2.0
    assert not left.exists() and not (library / LOCK_NAME).exists()
    assert main(["campaign", str(toml), "--library", str(library)]) == 0  # nothing to repair
    assert "reconciled" not in capsys.readouterr().out and len(_records(library)) == 1


def _default_signals():
    # pytest started as a background job of a script ("... &") ignores SIGINT, and a child
    # inherits that: the campaign would then run to its end and the Ctrl-C test fail
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start(command, **kwargs):
    return subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals,
                            **kwargs)


def _long_campaign(tmp_path):
    """A one-worker campaign whose first state runs for minutes; (process, library, scratch)
    once that state is running on the worker (its scratch folder exists)."""
    toml = tmp_path / "long.toml"
    toml.write_text(TINY.replace("max_time = 6.0", "max_time = 400.0")
                    .replace("min_production_time = 4.0", "min_production_time = 400.0")
                    .replace("n_particles = 100", "n_particles = 500"))
    library, scratch = tmp_path / "library", tmp_path / ".campaign-scratch"
    campaign = _start([sys.executable, "-m", "supercooled.cli", "campaign", str(toml),
                       "--library", str(library), "--workers", "1"])
    if not _wait_for(lambda: scratch.is_dir() and any(scratch.iterdir())):
        os.killpg(campaign.pid, signal.SIGKILL)
        pytest.fail("the campaign's first state never started")
    time.sleep(2.0)
    return campaign, library, scratch


def _wait_for(predicate, timeout=240.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_a_second_campaign_on_a_busy_library_is_refused_while_the_first_completes(
        tmp_path, capsys):
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY)
    library = tmp_path / "library"
    first = _start([sys.executable, "-m", "supercooled.cli", "campaign", str(toml),
                    "--library", str(library), "--workers", "1"])
    try:
        assert _wait_for(lambda: (library / LOCK_NAME).is_file())
        owner = json.loads((library / LOCK_NAME).read_text())
        assert owner["pid"] == first.pid
        assert main(["campaign", str(toml), "--library", str(library), "--workers", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"in use by a campaign (pid {first.pid}" in err
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, err
    camp = config.load_campaign(toml)
    assert {p.name for p in library.glob("*.nc")} == {s.filename for s in camp.states}
    done = [r["temperature_target"] for r in _records(library)]
    assert sorted(done) == [1.5, 2.0]  # each state ran once, by the first campaign
    assert not (library / LOCK_NAME).exists()


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_quietly(tmp_path):
    campaign, library, _ = _long_campaign(tmp_path)
    try:
        os.killpg(campaign.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = campaign.communicate(timeout=120)
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, signal.SIGKILL)
    assert campaign.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == "supercooled: interrupted", err
    # nothing else but the progress bar: no traceback, no dask warning, no leaked semaphore
    assert all(line.startswith("states:") for line in lines[:-1]), err
    assert not (library / LOCK_NAME).exists() and not list(library.glob("*.nc"))


@pytest.mark.slow
def test_sigterm_to_the_client_stops_the_workers_and_releases_the_lock(tmp_path):
    import psutil

    campaign, library, scratch = _long_campaign(tmp_path)
    workers = psutil.Process(campaign.pid).children(recursive=True)
    try:
        campaign.send_signal(signal.SIGTERM)  # the client only, as `kill <pid>` does
        out, err = campaign.communicate(timeout=120)
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, signal.SIGKILL)
    assert campaign.returncode == 143
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == "supercooled: terminated", err
    assert all(line.startswith("states:") for line in lines[:-1]), err
    assert not (library / LOCK_NAME).exists() and not list(library.glob("*.nc"))
    assert workers and _wait_for(lambda: not any(_alive(w) for w in workers), timeout=30)
    assert any(scratch.iterdir())  # the running state's folder stays, to be resumed


def _alive(process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line_and_releases_the_lock(tmp_path, capsys):
    import dask

    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY)
    library = tmp_path / "library"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        status = main(["campaign", str(toml), "--library", str(library),
                       "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.count("\n") == 0
    assert err.startswith("supercooled: error: cannot connect to the dask scheduler tcp://")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library", "tiny.toml"]
    assert list(library.iterdir()) == []  # no lock left, no log, no scratch beside it
