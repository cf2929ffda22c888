"""Running a campaign: each state on a dask worker, the client loop that schedules them.

Every state is simulated (:func:`supercooled.md.simulate`), measured
(:func:`supercooled.measure.measure_run`) and its state file is put into the library the moment
it is done, atomically, so a campaign can be killed at any moment and restarted: states already
in the library are skipped, a killed run loses only the work since its last checkpoint, and no
partial file is ever left in the library. Aged glasses are stored with ``equilibrated = 0``.
A crystallised run is rerun with another seed, up to ``max_attempts``; if every attempt
crystallises the state is dropped. Every event (done, rerun, crystallised, dropped, failed with
its error, skipped) is appended to the event log (:class:`~supercooled.campaign.progress.EventLog`).

States are scheduled on dask.distributed: a LocalCluster with one single-threaded worker per core
by default, or an existing scheduler (``--scheduler tcp://host:8786``, e.g. one started by
dask-jobqueue on a SLURM cluster). Among the states whose warmer neighbours are done, the one
with the smallest estimated cost runs first (:func:`choose_next`), so the library fills
breadth-first across series.
"""

from __future__ import annotations

import logging
import math
import shutil
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from supercooled import run_files
from supercooled.campaign.config import Campaign, StateSpec
from supercooled.campaign.policy import (
    acceptable,
    cost,
    estimate_tau_alpha,
    is_ageing,
    rerun_lengths,
    run_lengths,
    state_seed,
)
from supercooled.campaign.progress import (
    EventLog,
    closed_states,
    cost_left,
    default_scratch,
    logged_attempts,
    pending_states,
    restore_reruns,
    run_directory,
    series_progress,
)
from supercooled.campaign.reconcile import reconcile
from supercooled.campaign.report import (
    complete_rates,
    measured_throughput,
    plan_remaining,
    time_left,
)
from supercooled.errors import SupercooledError, Terminated
from supercooled.library import read_state, write_state
from supercooled.md import simulate
from supercooled.measure import measure_run


def run_state(spec: StateSpec, lengths: tuple[float, float], seed: int, scratch: str,
              library: str, settings: dict, keep_trajectory: bool = False) -> dict:
    """Simulate and measure one state; put its file into the library if it is
    :func:`~supercooled.campaign.policy.acceptable`.

    Runs on a dask worker. Returns a summary dict with ``accepted``; raises on failure (the
    client logs it).
    """
    start = time.time()
    _thread_lock_for_progress_bars()
    # The run folder is named by state, seed and lengths: a run killed mid-way (campaign
    # stopped) resumes from its LAMMPS checkpoint; a rerun with another seed or other lengths
    # starts fresh, and folders of superseded attempts are removed.
    stem = Path(spec.filename).stem
    run_dir = run_directory(scratch, spec, seed, lengths)
    for stale in Path(scratch).glob(f"{stem}-seed*"):
        if stale != run_dir:
            shutil.rmtree(stale, ignore_errors=True)
    # a run resumed from a checkpoint counts the wall time it spent before the resume too
    resumed_after = run_files.checkpoint_wall_time(run_dir)
    result = simulate(spec.state, run_dir, equilibration_time=lengths[0],
                      production_time=lengths[1], dt=spec.dt, seed=seed, progress=False,
                      resume=True)
    summary = {"crystallized": bool(result.crystallized), "accepted": False, "seed": seed,
               "equilibration_time": lengths[0], "production_time": lengths[1],
               "atom_steps": cost(spec, lengths)}
    if not summary["crystallized"]:
        measured = measure_run(run_dir, run_dir / "state.nc", progress=False,
                               equilibrated=spec.equilibrated)
        data = read_state(measured)
        tau = float(data["tau_alpha"])
        summary |= {"tau_alpha": tau, "temperature": float(data.attrs["temperature"]),
                    "energy_drift": float(data.attrs["energy_drift"])}
        if "ageing_check" in data:
            summary["ageing_check"] = float(data["ageing_check"])
        summary["accepted"] = acceptable(spec, summary, settings)
        if summary["accepted"]:
            write_state(data, Path(library) / spec.filename)  # atomic: temp file, then rename
    if not keep_trajectory:
        shutil.rmtree(run_dir, ignore_errors=True)
    return summary | {"wall_time": resumed_after + time.time() - start,
                      "resumed_after": resumed_after}


def _thread_lock_for_progress_bars() -> None:
    """Give tqdm (used with its bars disabled inside a run) a thread lock instead of its
    default, which holds a multiprocessing semaphore: a worker stopped at Ctrl-C would leave
    that semaphore behind, and Python's resource tracker reports it at exit."""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def choose_next(series, aged, in_flight, failed, settings, scratch=None, attempts=None,
                rates=None):
    """The ready state with the smallest estimated cost still to run, with its run lengths.

    The cost is in atom-steps, or in seconds where ``rates`` (atom-steps per second, per
    interaction: :func:`~supercooled.campaign.report.measured_throughput`) knows the
    interaction. A state whose run was checkpointed before the campaign stopped costs only
    what is left of it, so interrupted runs are resumed before fresh ones of similar size start.
    """
    def left(spec, lengths):
        steps = cost_left(spec, lengths, settings, scratch, (attempts or {}).get(spec, 0))
        return steps / (rates or {}).get(spec.interaction, 1.0)

    candidates = []
    for progress_ in series.values():
        spec = progress_.next_pending(in_flight, failed)
        if spec is not None:
            tau = settings["tau_estimate_safety"] * estimate_tau_alpha(
                spec.temperature, progress_.warmer_points(spec), settings["first_tau_alpha_guess"])
            lengths = progress_.override.get(spec) or run_lengths(spec, tau, settings)
            candidates.append((left(spec, lengths), spec, lengths))
    for spec in aged:
        if spec not in in_flight:
            lengths = run_lengths(spec, 0.0, settings)
            candidates.append((left(spec, lengths), spec, lengths))
    if not candidates:
        return None
    _, spec, lengths = min(candidates, key=lambda c: c[0])
    return spec, lengths


def record_outcome(future, spec, series, aged, attempts, failed, log, settings) -> str:
    """Record the outcome of one finished future; queue reruns. Returns the outcome's name."""
    progress_ = series.get(spec.series) if spec.equilibrated else None
    if future.status == "error":
        error = future.exception()
        log.write("failed", spec, error=f"{type(error).__name__}: {error}",
                  traceback="".join(traceback.format_tb(future.traceback()))[-2000:])
        failed.add(spec)
        return "failed"
    summary = future.result()
    if summary["crystallized"]:
        attempts[spec] = attempts.get(spec, 0) + 1
        if attempts[spec] >= settings["max_attempts"]:
            log.write("dropped", spec, reason="crystallised in every attempt", **summary)
            failed.add(spec)
            return "dropped"
        log.write("crystallized", spec, **summary)
        if not spec.equilibrated:
            aged.append(spec)
        return "rerun"
    if not summary["accepted"]:
        attempts[("length", spec)] = attempts.get(("length", spec), 0) + 1
        if attempts[("length", spec)] > 2:
            log.write("failed", spec, error="still too short or ageing after two longer reruns",
                      **summary)
            failed.add(spec)
            return "failed"
        progress_.override[spec] = rerun_lengths(spec, summary, settings)
        reason = ("phi_s of the two production halves differ (still ageing)"
                  if is_ageing(summary, settings)
                  else "production shorter than the measured tau_alpha requires")
        log.write("rerun", spec, reason=reason, **summary)
        return "rerun"
    if spec.equilibrated:
        progress_.tau[spec] = summary["tau_alpha"]
    log.write("done", spec, **summary)
    return "done"


def run_campaign(campaign: Campaign, library, *, workers: int = 2, scheduler: str | None = None,
                 scratch=None, progress: bool = True) -> dict:
    """Run every state of ``campaign`` not yet in ``library``; return counts of what happened."""
    from distributed import LocalCluster, as_completed
    from tqdm import tqdm  # text bar: tqdm.auto warns in notebooks without ipywidgets

    library = Path(library)
    library.mkdir(parents=True, exist_ok=True)
    scratch = Path(scratch or default_scratch(library))
    reconcile(campaign, library, scratch)  # states written but not logged by a killed run
    log, settings = EventLog(library), campaign.settings
    series = series_progress(campaign, library)
    restore_reruns(series, library, settings)
    closed_before = closed_states(campaign, library, series)
    todo = pending_states(campaign, library, series)
    aged = [s for s in todo if not s.equilibrated]
    counts = {"done": 0, "rerun": 0, "dropped": 0, "failed": 0, "skipped": 0}
    if not todo:
        return counts | {"pending": 0}

    with _workers_ignore_ctrl_c():
        cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1,
                                                      processes=True, dashboard_address=":0")
    client = _connect(scheduler or cluster, cluster)
    if scheduler:  # a dask-jobqueue cluster's jobs may still be queued: wait for the first
        client.wait_for_workers(1)
    scratch.mkdir(parents=True, exist_ok=True)

    def slots() -> int:
        """States to run at once: one per worker thread, counted anew as a cluster scales."""
        return workers if not scheduler else max(1, sum(client.nthreads().values()))

    bar = tqdm(total=len(todo), desc="states", unit="state", disable=not progress)
    # dropped states are passed over like failed ones, so their series go on below them;
    # crystallised attempts and rejected lengths logged before a restart still count
    failed, futures = set(closed_before), as_completed()
    running: dict = {}  # future -> the state it runs
    attempts = logged_attempts(campaign, library)
    rates = complete_rates(measured_throughput(library), campaign)
    sigterm_before = _sigterm_raises()  # a batch system's kill stops it as Ctrl-C does
    try:
        while True:
            while len(running) < slots():
                choice = choose_next(series, aged, set(running.values()), failed, settings,
                                     scratch=scratch, attempts=attempts, rates=rates)
                if choice is None:
                    break
                spec, lengths = choice
                seed = state_seed(spec, settings["seed"], attempts.get(spec, 0))
                future = client.submit(run_state, spec, lengths, seed, str(scratch), str(library),
                                       settings, settings["keep_trajectories"], pure=False)
                running[future] = spec
                futures.add(future)
                if spec in aged:
                    aged.remove(spec)
            if not running:
                break
            future = next(futures)
            spec = running.pop(future)
            outcome = record_outcome(future, spec, series, aged, attempts, failed, log, settings)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome in ("done", "dropped", "failed"):
                bar.update(1)
            # the runs just logged refine the estimate
            rates = complete_rates(measured_throughput(library), campaign)
            _, wall = time_left(plan_remaining(campaign, library, scratch), rates, slots())
            left = f"; about {wall:.1f} h left" if math.isfinite(wall) else ""
            bar.set_postfix_str(f"{spec.interaction} rho={spec.density} T={spec.temperature} "
                                f"{outcome}{left}")
        counts["skipped"] += _log_skipped(series, failed, closed_before, log, bar)
    except KeyboardInterrupt:
        # Ctrl-C: stop the workers without the warnings dask logs while its processes go
        _quiet_dask()
        try:
            client.run(_quiet_dask)
            client.run(_quiet_dask, nanny=True)
        except Exception:  # noqa: BLE001 - a worker already gone needs no silencing
            pass
        raise
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
        if sigterm_before is not None:
            signal.signal(signal.SIGTERM, sigterm_before)
    return counts | {"pending": len(pending_states(campaign, library))}


@contextmanager
def _workers_ignore_ctrl_c():
    """Start worker processes with SIGINT ignored (they inherit it): Ctrl-C then reaches only
    the client, which shuts the cluster down, instead of every worker printing a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _sigterm_raises():
    """Make SIGTERM raise :class:`~supercooled.errors.Terminated` in the client, so that
    ``kill`` or a batch system's time limit shuts the workers down and releases the lock the
    way Ctrl-C does (by default SIGTERM kills the client at once, leaving the lock and dask's
    semaphores behind). Returns the handler to restore, or None where nothing was changed: off
    the main thread, or where SIGTERM was deliberately ignored or handled by the caller."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def terminate(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, terminate)


def _quiet_dask() -> None:
    """Silence dask's loggers, which report every worker that goes during a shutdown."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _connect(address, cluster):
    """A dask Client of ``address``; a scheduler that cannot be reached is one line."""
    from distributed import Client

    try:
        return Client(address)
    except (OSError, TimeoutError, ValueError) as error:
        if cluster is not None:
            cluster.close()
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise SupercooledError(f"cannot connect to the dask scheduler {address}: {reason}") \
            from None


def _log_skipped(series: dict, failed: set, closed_before: dict, log: EventLog, bar) -> int:
    """Log the states that the end of their series closed during this run; how many."""
    n = 0
    for progress_ in series.values():
        for spec, reason in progress_.skipped(failed).items():
            if spec not in closed_before:
                log.write("skipped", spec, reason=reason)
                n += 1
                bar.update(1)
    return n
