"""Bad input across the subcommands: exit status 2, one line on stderr, nothing written.

Every case runs ``supercooled.cli.main`` in this process, in a folder of its own, on tiny
synthetic inputs (a library of a few states, a one-member model, a 15-particle trajectory, a
campaign file). It asserts status 2, exactly one stderr line starting ``supercooled: error:``
that says what is wrong, no traceback, and that no file anywhere in the inputs or the case's
folder appeared, vanished or changed.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from supercooled.cli import main
from supercooled.grids import K_GRID

CAMPAIGN = """
[campaign]
name = "tiny"
seed = 5

[[series]]
interaction = "LJ"
density = 1.2
n_particles = 100
temperatures = [2.0, 1.5]
"""
SERIES = "[[series]]\ninteraction = 'LJ'\ndensity = 1.2\nn_particles = 100\ntemperatures = [1.0]\n"


# -- the inputs ---------------------------------------------------------------------------

def structure_csv(ds: xr.Dataset, path: Path, i: int = 2) -> Path:
    k = np.linspace(0.5, 30.0, 120)
    s = ds["S"].isel(state=i)
    pd.DataFrame({"k": k, **{f"S_{p}": np.interp(k, K_GRID, s.sel(pair=p).values)
                             for p in ("AA", "AB", "BB")}}).to_csv(path, index=False)
    return path


def write_gsd(path: Path, *, nan: bool = False, frames: int = 3) -> Path:
    from supercooled.trajectory import write_trajectory

    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 2.3, (frames, 15, 3))
    if nan:
        positions[1, 3, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN cast to an image flag
        write_trajectory(path, np.arange(frames) * 10, positions, np.r_[[0] * 12, [1] * 3],
                         2.3, dt=0.005)
    return path


@dataclass
class World:
    """The shared inputs of the cases (read only: every case checks it is unchanged)."""

    root: Path
    lib: Path
    badlib: Path
    model: Path
    memory_model: Path
    sk: Path
    gsd: Path
    nan_gsd: Path
    toml: Path
    library_ds: xr.Dataset


@pytest.fixture(scope="module")
def world(tmp_path_factory, synthetic_library, state_files) -> World:
    from supercooled.library import split_indices
    from supercooled.ml import ensemble
    from supercooled.ml.network import TrainConfig

    root = tmp_path_factory.mktemp("world")
    ds = synthetic_library(temperatures=(0.7, 1.0, 1.5), densities=(1.2,))
    lib = state_files(ds, root / "lib")
    badlib = state_files(ds.isel(state=[0, 1]), root / "badlib")
    # a state at T = -1 (written past write_state, which refuses it)
    bad = xr.open_dataset(next(badlib.glob("*.nc"))).load()
    bad.attrs["temperature"] = -1.0
    bad.to_netcdf(badlib / "LJ_rho1.200_T9.0000.nc")
    train, _ = split_indices(ds.sizes["state"], 0.2, seed=1)
    cfg = TrainConfig(hidden=(8, 8), epochs=1, batch_size=128, patience=None, threads=1)
    model = ensemble.train_ensemble(ds, train, n_members=1, config=cfg, progress=False)
    model.save(root / "model")
    memory_model = tiny_memory_predictor(ds, root / "memory.json")
    toml = root / "tiny.toml"
    toml.write_text(CAMPAIGN)
    return World(root, lib, badlib, root / "model", memory_model,
                 structure_csv(ds, root / "sk.csv"),
                 write_gsd(root / "t.gsd"), write_gsd(root / "nan.gsd", nan=True), toml, ds)


def tiny_memory_predictor(ds, path: Path) -> Path:
    """A calibrated two-member memory predictor of the synthetic states (random targets: its
    predictions are valid correlators, which is all the input checks need)."""
    from supercooled.library import state_labels
    from supercooled.ml import memory_predictor as mp
    from supercooled.ml.features import state_features

    feats = state_features(ds)
    targets = np.random.default_rng(0).normal(0.0, 1.0, (len(feats), len(mp.TARGET_NAMES)))
    data = mp.TrainingSet(feats, np.asarray(ds["k_p"].values, float), targets, state_labels(ds))
    model = mp.MemoryPredictor("ridge", data, n_members=2)
    model.calibrate(ds, np.asarray(ds["time"].values, float))
    model.save(path)
    return path


def listing(*folders: Path) -> dict:
    """Every file under ``folders`` with its size and modification time, and every folder
    (a folder made and removed again by a failed run is no change)."""
    out = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            stat = path.stat()
            out[str(path)] = "folder" if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return out


# -- per-case inputs (made in the case's folder before the listing is taken) ---------------

def toml(text: str):
    def make(w: World, tmp: Path) -> str:
        (tmp / "c.toml").write_text(text)
        return str(tmp / "c.toml")
    return make


def copied_model(tamper):
    """A copy of the world's model in the case's folder, changed by ``tamper(folder)``."""
    def make(w: World, tmp: Path) -> str:
        import shutil

        folder = tmp / "model"
        shutil.copytree(w.model, folder)
        tamper(folder)
        return str(folder)
    return make


def _metadata(edit):
    def tamper(folder):
        path = folder / "metadata.json"
        meta = json.loads(path.read_text())
        path.write_text(json.dumps(edit(meta)))
    return tamper


def _pop(key):
    def edit(meta):
        meta.pop(key)
        return meta
    return edit


def _set(key, value):
    def edit(meta):
        meta[key] = value
        return meta
    return edit


def _std_zero(meta):
    meta["feature_std"][3] = 0.0
    return meta


def _truncate(folder):
    member = folder / "member_0.pt"
    member.write_bytes(member.read_bytes()[:300])


def _wrong_shape(folder):
    import torch

    weights = torch.load(folder / "member_0.pt", weights_only=True)
    key = next(iter(weights))
    weights[key] = torch.zeros(3, 3)
    torch.save(weights, folder / "member_0.pt")


def _missing_key(folder):
    import torch

    weights = torch.load(folder / "member_0.pt", weights_only=True)
    weights.pop(next(iter(weights)))
    torch.save(weights, folder / "member_0.pt")


def _nan_weights(folder):
    import torch

    weights = torch.load(folder / "member_0.pt", weights_only=True)
    next(iter(weights.values())).view(-1)[0] = float("nan")
    torch.save(weights, folder / "member_0.pt")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _malicious(folder):
    with open(folder / "member_0.pt", "wb") as handle:
        pickle.dump({"w": _Payload()}, handle)


def sk_frame(change):
    """A changed copy of the world's S(k) CSV in the case's folder."""
    def make(w: World, tmp: Path) -> str:
        frame = change(pd.read_csv(w.sk))
        frame.to_csv(tmp / "s.csv", index=False)
        return str(tmp / "s.csv")
    return make


def text_file(name: str, text: str):
    def make(w: World, tmp: Path) -> str:
        (tmp / name).write_text(text)
        return str(tmp / name)
    return make


def run_dir(run_json: str):
    """A run folder in the case's folder: the world's trajectory and this run.json."""
    def make(w: World, tmp: Path) -> str:
        folder = tmp / "run"
        folder.mkdir()
        (folder / "trajectory.gsd").write_bytes(w.gsd.read_bytes())
        (folder / "run.json").write_text(run_json)
        return str(folder)
    return make


def locked_library(w: World, tmp: Path) -> str:
    """A library whose lock is held by a live process (this one) on this host."""
    folder = tmp / "locked"
    folder.mkdir()
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": "now"}
    (folder / ".campaign.lock").write_text(json.dumps(owner))
    return str(folder)


def _zero(frame):
    return frame.assign(S_AA=0.0, S_AB=0.0, S_BB=0.0)


def _inf(frame):
    frame.loc[5, "S_AB"] = np.inf
    return frame


def _nan(frame):
    frame.loc[7, "S_BB"] = np.nan
    return frame


# -- the cases ----------------------------------------------------------------------------
# (id, argv: items are strings, World attribute names as "@name", or makers f(world, tmp),
#  and a piece of the expected message)

PREDICT = ["predict", "--model", "@model", "--structure-factor", "@sk", "--interaction", "LJ",
           "--density", "1.2", "--temperature", "1.0"]


def predict_with(**changes):
    argv = list(PREDICT)
    for option, value in changes.items():
        flag = "--" + option.replace("_", "-")
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


def campaign_file(text):
    return ["campaign", toml(text), "--status", "--library", lambda w, t: str(t / "lib")]


MEASURE = ["measure", "@gsd", "--interaction", "LJ", "--temperature", "1.0", "--quiet"]
SIM = ["simulate", "--interaction", "LJ", "--density", "1.2", "--temperature", "1.0",
       "--out", lambda w, t: str(t / "run"), "--equilibration-time", "1",
       "--production-time", "1", "--particles", "100", "--quiet"]


def sim_with(*extra):
    return SIM + list(extra)


DRIFT = ["drift-study", "--state", "LJ:1.2:1.0", "--dt-reduced", "0.003", "--quiet",
         "--out", lambda w, t: str(t / "d.csv")]


def drift_with(*extra):
    return DRIFT[:1] + list(extra) + DRIFT[3:]


FIT = ["fit-memory", "--library", "@lib", "--interaction", "LJ", "--density", "1.2",
       "--temperature", "1.0", "--quiet"]
TRAIN = ["train", "--library", "@lib", "--out", lambda w, t: str(t / "m"), "--epochs", "1",
         "--ensemble", "1", "--no-mct", "--independent", "none"]

CASES = [
    # campaign: every setting is checked when the file is read
    ("campaign-seed-negative", campaign_file("[campaign]\nseed = -7\n" + SERIES), "seed must be at least 0"),
    ("campaign-seed-float", campaign_file("[campaign]\nseed = 1.5\n" + SERIES), "seed = 1.5 must be a int"),
    ("campaign-dt-zero", campaign_file(SERIES + "dt = 0\n"), "dt must be above 0"),
    ("campaign-dt-negative", campaign_file(SERIES + "dt = -0.001\n"), "dt must be above 0"),
    ("campaign-dt-string", campaign_file(SERIES + "dt = 'big'\n"), "dt = 'big' must be a number"),
    ("campaign-age-time-negative", campaign_file(
        SERIES + "aged_temperatures = [0.3]\nage_time = -5\naged_production_time = 1.0\n"),
     "age_time must be at least 0"),
    ("campaign-aged-production-zero", campaign_file(
        SERIES + "aged_temperatures = [0.3]\nage_time = 1\naged_production_time = 0\n"),
     "aged_production_time must be above 0"),
    ("campaign-temperatures-empty", campaign_file(SERIES.replace("[1.0]", "[]")),
     "temperatures is empty"),
    ("campaign-temperatures-strings", campaign_file(SERIES.replace("[1.0]", "['hot']")),
     "temperatures must hold numbers"),
    ("campaign-temperatures-not-list", campaign_file(SERIES.replace("[1.0]", "1.0")),
     "temperatures must be a list"),
    ("campaign-density-100", campaign_file(SERIES.replace("1.2", "100")), "density 100 is above"),
    ("campaign-density-negative", campaign_file(SERIES.replace("1.2", "-1.2")),
     "density must be positive"),
    ("campaign-n-too-few", campaign_file(SERIES.replace("= 100", "= 5")), "too few"),
    ("campaign-box-below-cutoff", campaign_file(SERIES.replace("= 100", "= 15")),
     "not longer than the LJ cutoff"),
    ("campaign-n-not-multiple-of-5", campaign_file(SERIES.replace("= 100", "= 101")), "80:20"),
    ("campaign-n-float", campaign_file(SERIES.replace("= 100", "= 100.5")), "must be an integer"),
    ("campaign-temperature-negative", campaign_file(SERIES.replace("[1.0]", "[-1.0]")),
     "temperature must be positive"),
    ("campaign-unknown-key", campaign_file("[campaign]\nspeed = 1\n" + SERIES), "unknown [campaign] keys"),
    ("campaign-max-time-zero", campaign_file("[campaign]\nmax_time = 0\n" + SERIES),
     "max_time must be positive"),
    ("campaign-grid-no-densities", campaign_file(
        "[grid]\ninteractions = ['LJ']\ndensities = []\n"), "densities is empty"),
    ("campaign-grid-interactions-string", campaign_file(
        "[grid]\ninteractions = 'LJ'\ndensities = [1.2]\n"), "interactions must be a non-empty list"),
    ("campaign-not-toml", campaign_file("[[series\n"), "not valid TOML"),
    ("campaign-missing-file", ["campaign", "nope.toml", "--status"], "campaign file not found"),
    ("campaign-workers-zero", ["campaign", "@toml", "--workers", "0"], "--workers must be at least 1"),
    ("campaign-scheduler-no-port", ["campaign", "@toml", "--scheduler", "tcp://localhost"],
     "is not a scheduler address"),
    ("campaign-scheduler-garbage", ["campaign", "@toml", "--scheduler", "::::"],
     "is not a scheduler address"),
    ("campaign-library-is-file", ["campaign", "@toml", "--library", "@sk"], "is a file"),
    ("campaign-library-locked", ["campaign", "@toml", "--library", locked_library], "is in use"),
    # simulate: the state and the run folder are checked before any MD
    ("simulate-particles-5", sim_with("--particles", "5"), "too few"),
    ("simulate-particles-7", sim_with("--particles", "7"), "80:20"),
    ("simulate-density-100", sim_with("--density", "100"), "density 100 is above"),
    ("simulate-density-zero", sim_with("--density", "0"), "density must be positive"),
    ("simulate-temperature-negative", sim_with("--temperature", "-1"), "temperature must be positive"),
    ("simulate-temperature-nan", sim_with("--temperature", "nan"), "temperature must be positive"),
    ("simulate-dt-zero", sim_with("--dt", "0"), "dt must be positive"),
    ("simulate-dt-lost-atoms", sim_with("--dt", "0.5"), "Lost atoms"),
    ("simulate-seed-negative", sim_with("--seed", "-1"), "seed must be a non-negative"),
    ("simulate-threads-zero", sim_with("--threads", "0"), "threads must be a positive"),
    ("simulate-production-zero", sim_with("--production-time", "0"), "production_time must be"),
    ("simulate-block-too-long", sim_with("--block-time", "1e9"), "block_time"),
    ("simulate-platform-lammps", sim_with("--platform", "CUDA"), "--platform applies to"),
    ("simulate-out-is-file", ["simulate", "--interaction", "LJ", "--density", "1.2",
                              "--temperature", "1", "--out", "@sk"], "is an existing file"),
    ("simulate-bad-float", sim_with("--density", "dense"), "invalid float value"),
    ("simulate-bad-interaction", sim_with("--interaction", "Morse"), "invalid choice"),
    ("simulate-missing-argument", ["simulate", "--interaction", "LJ"], "required"),
    # measure
    ("measure-not-gsd", ["measure", text_file("x.gsd", "hello"), "--quiet"], "is not a GSD file"),
    ("measure-empty-gsd", ["measure", text_file("x.gsd", ""), "--quiet"], "is not a GSD file"),
    ("measure-not-gsd-suffix", ["measure", "@sk", "--quiet"], "is not a .gsd trajectory"),
    ("measure-missing", ["measure", "nope.gsd"], "No such run directory"),
    ("measure-nan-position", ["measure", "@nan_gsd", "--interaction", "LJ", "--temperature", "1",
                              "--quiet"], "non-finite positions"),
    ("measure-out-is-input", MEASURE + ["--out", "@gsd"], "is an input"),
    ("measure-out-folder-missing", MEASURE + ["--out", "no/such/state.nc"], "does not exist"),
    ("measure-out-is-folder", MEASURE + ["--out", "@lib"], "is a folder"),
    ("measure-dt-zero", MEASURE + ["--dt", "0"], "time step dt must be positive"),
    ("measure-temperature-negative", ["measure", "@gsd", "--interaction", "LJ", "--temperature",
                                      "-1", "--quiet"], "temperature must be positive"),
    ("measure-interaction-unknown", ["measure", "@gsd", "--interaction", "Morse", "--quiet"],
     "unknown interaction"),
    ("measure-no-interaction", ["measure", "@gsd", "--quiet"], "pass --interaction"),
    ("measure-structure-frames-zero", MEASURE + ["--structure-frames", "0"], "at least 1"),
    ("measure-run-json-list", ["measure", run_dir("[1, 2]"), "--quiet"], "must hold a JSON object"),
    ("measure-run-json-invalid", ["measure", run_dir("{oops"), "--quiet"], "not valid JSON"),
    ("measure-run-json-state-not-object", ["measure", run_dir('{"state": 3}'), "--quiet"],
     "'state' must be a JSON object"),
    ("measure-run-dir-empty", ["measure", lambda w, t: str(t)], "holds no trajectory.gsd"),
    # predict: the S(k)
    ("predict-zero-rows", predict_with(structure_factor=sk_frame(lambda f: f.iloc[:0])),
     "has 0 row(s)"),
    ("predict-one-row", predict_with(structure_factor=sk_frame(lambda f: f.iloc[:1])),
     "has 1 row(s)"),
    ("predict-two-points", predict_with(structure_factor=sk_frame(lambda f: f.iloc[[10, 80]])),
     "has 2 row(s)"),
    ("predict-all-zero", predict_with(structure_factor=sk_frame(_zero)), "all zero"),
    ("predict-infinite", predict_with(structure_factor=sk_frame(_inf)), "NaN or infinite"),
    ("predict-nan", predict_with(structure_factor=sk_frame(_nan)), "NaN or infinite"),
    ("predict-peak-unresolved", predict_with(structure_factor=sk_frame(lambda f: f.iloc[::8])),
     "too few k points to cover the main peak"),
    ("predict-short-grid", predict_with(structure_factor=sk_frame(lambda f: f[f.k < 15])),
     "at least k = 20"),
    ("predict-k-decreasing", predict_with(structure_factor=sk_frame(lambda f: f.iloc[::-1])),
     "strictly increasing"),
    ("predict-negative-s", predict_with(structure_factor=sk_frame(lambda f: f.assign(S_AA=-f.S_AA))),
     "negative"),
    ("predict-missing-column", predict_with(
        structure_factor=sk_frame(lambda f: f.drop(columns="S_AB"))), "missing column 'S_AB'"),
    ("predict-non-numeric", predict_with(structure_factor=text_file(
        "s.csv", "k,S_AA,S_AB,S_BB\n" + "x,1,2,3\n" * 12)), "non-numeric"),
    ("predict-missing-file", predict_with(structure_factor="nope.csv"), "does not exist"),
    # predict: the state and the outputs
    ("predict-temperature-negative", predict_with(temperature="-1"), "temperature must be a positive"),
    ("predict-density-zero", predict_with(density="0"), "density must be a positive"),
    ("predict-interaction-unknown", predict_with(interaction="Morse"), "unknown interaction"),
    ("predict-out-is-input", predict_with(out="@sk"), "is an input"),
    ("predict-plot-is-input", predict_with(plot="@sk"), "is an input"),
    ("predict-out-is-plot", predict_with(out=lambda w, t: str(t / "a.png"),
                                         plot=lambda w, t: str(t / "a.png")), "is an input"),
    ("predict-out-folder-missing", predict_with(out="no/such/o.csv"), "does not exist"),
    ("predict-plot-bad-suffix", predict_with(plot="o.xyz"), "unsupported file type .xyz"),
    # predict: tampered or broken models
    ("model-missing", predict_with(model="nope"), "no trained model"),
    ("model-metadata-invalid-json", predict_with(model=copied_model(
        lambda f: (f / "metadata.json").write_text("{not json"))), "not valid JSON"),
    ("model-metadata-not-object", predict_with(model=copied_model(
        lambda f: (f / "metadata.json").write_text("[1, 2]"))), "must hold a JSON object"),
    ("model-metadata-missing-hidden", predict_with(model=copied_model(_metadata(_pop("hidden")))),
     "lacks hidden"),
    ("model-metadata-missing-scaling", predict_with(
        model=copied_model(_metadata(_pop("feature_std")))), "lacks feature_std"),
    ("model-metadata-wrong-type", predict_with(
        model=copied_model(_metadata(_set("n_members", "five")))), "wrong type"),
    ("model-metadata-too-many-members", predict_with(
        model=copied_model(_metadata(_set("n_members", 3)))), "member_1.pt is missing"),
    ("model-metadata-short-scaling", predict_with(
        model=copied_model(_metadata(_set("feature_mean", [0.0, 1.0])))), "feature means"),
    ("model-zero-feature-scale", predict_with(model=copied_model(_metadata(_std_zero))),
     "feature scaling is not finite and positive"),
    ("model-member-truncated", predict_with(model=copied_model(_truncate)), "truncated or corrupt"),
    ("model-member-wrong-shape", predict_with(model=copied_model(_wrong_shape)), "does not fit"),
    ("model-member-missing-key", predict_with(model=copied_model(_missing_key)), "does not fit"),
    ("model-member-nan", predict_with(model=copied_model(_nan_weights)), "non-finite weights"),
    ("model-member-malicious", predict_with(model=copied_model(_malicious)),
     "Python objects other than tensors"),
    ("model-member-text", predict_with(model=copied_model(
        lambda f: (f / "member_0.pt").write_text("hello"))), "not a readable model file"),
    # train
    ("train-threads-zero", TRAIN + ["--threads", "0"], "--threads must be >= 1"),
    ("train-device-cuda", TRAIN + ["--device", "cuda"], "--device cuda"),
    ("train-device-bogus", TRAIN + ["--device", "toaster"], "is not a torch device"),
    ("train-epochs-zero", TRAIN + ["--epochs", "0"], "--epochs must be >= 1"),
    ("train-ensemble-zero", TRAIN + ["--ensemble", "0"], "--ensemble must be >= 1"),
    ("train-library-missing", ["train", "--library", "nope", "--out", "m"], "does not exist"),
    ("train-library-is-file", ["train", "--library", "@sk", "--out", "m"], "is a file"),
    ("train-out-is-file", ["train", "--library", "@lib", "--out", "@sk"], "is an existing file"),
    ("train-out-is-library", ["train", "--library", "@lib", "--out", "@lib"], "is an input"),
    ("train-independent-missing", TRAIN[:-1] + ["nope"], "does not exist"),
    ("train-invalid-state", ["train", "--library", "@badlib", "--out", lambda w, t: str(t / "m"),
                             "--epochs", "1", "--no-mct", "--independent", "none"],
     "LJ_rho1.200_T9.0000.nc"),
    # fit-memory
    ("fit-no-state", ["fit-memory", "--library", "@lib"], "give --interaction"),
    ("fit-all-and-state", ["fit-memory", "--all", "--interaction", "LJ", "--out",
                           lambda w, t: str(t / "f.csv")], "drop --interaction"),
    ("fit-library-missing", FIT[:2] + ["nope"] + FIT[3:], "does not exist"),
    ("fit-library-is-file", FIT[:2] + ["@sk"] + FIT[3:], "is a file"),
    ("fit-n-exp-zero", FIT + ["--n-exp", "0"], "n_exp"),
    ("fit-n-exps-zero", ["fit-memory", "--all", "--n-exps", "0", "--out",
                         lambda w, t: str(t / "f.csv")], "n_exp"),
    ("fit-max-seconds-zero", FIT + ["--max-seconds", "0"], "--max-seconds must be positive"),
    ("fit-sigma0-negative", FIT + ["--sigma0", "-1"], "sigma0 must be positive"),
    ("fit-generations-zero", FIT + ["--max-generations", "0"], "max_generations must be >= 1"),
    ("fit-restarts-negative", FIT + ["--restarts", "-1"], "restarts must be >= 0"),
    ("fit-seed-negative", FIT + ["--seed", "-1"], "--seed must be >= 0"),
    ("fit-out-folder-missing", FIT + ["--out", "no/such/f.csv"], "does not exist"),
    ("fit-out-is-folder", FIT + ["--out", "@lib"], "is a folder"),
    ("fit-state-not-there", FIT[:8] + ["9.0"] + FIT[9:], "near T = 9.0"),
    ("fit-invalid-state", ["fit-memory", "--library", "@badlib", "--interaction", "LJ",
                           "--density", "1.2", "--temperature", "0.7"], "LJ_rho1.200_T9.0000.nc"),
    # mct
    ("mct-library-is-file", ["mct", "critical", "--library", "@sk", "--interaction", "LJ",
                             "--density", "1.2"], "is a file, not a folder"),
    ("mct-library-missing", ["mct", "critical", "--library", "nope", "--interaction", "LJ",
                             "--density", "1.2"], "does not exist"),
    ("mct-library-no-density", ["mct", "critical", "--library", "@lib"], "needs --interaction"),
    ("mct-no-series", ["mct", "critical", "--library", "@lib", "--interaction", "LJ",
                       "--density", "1.8"], "1.8"),
    ("mct-invalid-state", ["mct", "critical", "--library", "@badlib", "--interaction", "LJ",
                           "--density", "1.2"], "LJ_rho1.200_T9.0000.nc"),
    ("mct-hard-spheres-tolerance", ["mct", "critical", "--hard-spheres", "--tolerance", "0"],
     "--tolerance must be positive"),
    ("mct-hard-spheres-with-density", ["mct", "critical", "--hard-spheres", "--density", "1.2"],
     "go with --library"),
    ("mct-table-library-is-file", ["mct", "table", "--library", "@sk"], "is a file"),
    ("mct-table-out-folder-missing", ["mct", "table", "--library", "@lib", "--out",
                                      "no/such/t.csv"], "does not exist"),
    ("mct-table-out-not-csv", ["mct", "table", "--library", "@lib", "--out", "t.txt"],
     "unsupported file type"),
    ("unknown-command", ["frobnicate"], "invalid choice"),
    # drift-study: the states, steps and the table are checked before any MD
    ("drift-study-state-short", drift_with("--state", "LJ:1.2"), "expected INTERACTION:RHO:T"),
    ("drift-study-interaction", drift_with("--state", "XX:1.2:1"), "unknown interaction"),
    ("drift-study-temperature-negative", drift_with("--state", "LJ:1.2:-1"),
     "temperature must be positive"),
    ("drift-study-dt-zero", DRIFT[:3] + ["--dt-reduced", "0,0.003"] + DRIFT[5:],
     "expected positive numbers"),
    ("drift-study-not-a-study", DRIFT[:-1] + ["@sk"], "not a drift study"),
    ("drift-study-no-folder", DRIFT[:-1] + [lambda w, t: str(t / "nope" / "d.csv")],
     "does not exist"),
]

# predict --method memory refuses the same inputs as the MLP, with the same messages
CASES += [(f"memory-{name}", [("@memory_model" if a == "@model" else a) for a in argv]
           + ["--method", "memory"], message)
          for name, argv, message in list(CASES) if name.startswith("predict-")]
CASES += [
    ("memory-model-missing", predict_with(model="nope.json") + ["--method", "memory"],
     "does not exist"),
    ("memory-model-not-json", predict_with(model="@sk") + ["--method", "memory"],
     "not valid JSON"),
    ("memory-model-is-mlp", predict_with() + ["--method", "memory"], "is a folder"),
    ("predict-method-unknown", predict_with() + ["--method", "oracle"], "invalid choice"),
    ("train-memory-ensemble-zero", ["train-memory", "--ensemble", "0"], "--ensemble must be >= 1"),
    ("train-memory-seed-negative", ["train-memory", "--seed", "-2"], "--seed must be >= 0"),
    ("train-memory-fits-missing", ["train-memory", "--fits", "nope.csv", "--out",
                                   lambda w, t: str(t / "p.json")], "does not exist"),
    ("train-memory-library-missing", ["train-memory", "--library", "nope", "--out",
                                      lambda w, t: str(t / "p.json")], "does not exist"),
    ("train-memory-no-usable-fits", ["train-memory", "--like", "@model", "--fits", "@sk",
                                     "--out", lambda w, t: str(t / "p.json")], "not a memory-fit table"),
]

if not os.access("/proc/sys", os.W_OK):  # a folder even root cannot write to
    CASES += [("predict-out-read-only", predict_with(out="/proc/sys/o.csv"), "is not writable"),
              ("train-out-read-only", TRAIN[:4] + ["/proc/sys/model"] + TRAIN[5:],
               "is not writable")]


def test_there_are_at_least_sixty_cases_over_every_subcommand():
    commands = {next(a for a in argv if isinstance(a, str)) for _, argv, _ in CASES}
    assert len(CASES) >= 60 and len({case[0] for case in CASES}) == len(CASES)
    assert {"campaign", "simulate", "measure", "predict", "train", "fit-memory", "mct"} <= commands


@pytest.mark.parametrize(("argv", "message"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, world, tmp_path,
                                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUPERCOOLED_LIBRARY", str(world.lib))
    args = []
    for item in argv:
        if callable(item):
            item = item(world, tmp_path)
        elif item.startswith("@"):
            item = str(getattr(world, item[1:]))
        args.append(item)
    before = listing(world.root, tmp_path)
    capsys.readouterr()
    status = main(args)
    err = capsys.readouterr().err
    lines = err.strip().split("\n")
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("supercooled: error: "), err
    assert "Traceback" not in err and message in lines[0], err
    assert "weights_only" not in err and ".tmp" not in err
    assert listing(world.root, tmp_path) == before, "files were written"


# -- outputs: atomic, with the user's umask; a failed figure leaves no table --------------

def test_a_failed_plot_leaves_no_csv_and_names_no_temporary_file(world, tmp_path, monkeypatch,
                                                                 capsys):
    from matplotlib.figure import Figure

    def disk_full(self, path, **kwargs):
        Path(path).write_bytes(b"half a png")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(Figure, "savefig", disk_full)
    argv = [str(getattr(world, a[1:])) if a.startswith("@") else a for a in PREDICT]
    status = main(argv + ["--out", str(tmp_path / "o.csv"), "--plot", str(tmp_path / "o.png")])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the model's warnings
    assert status == 2 and last == f"supercooled: error: No space left on device: {tmp_path / 'o.png'}"
    assert list(tmp_path.iterdir()) == []  # no CSV, no figure, no temporary file


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_written_files_get_the_users_umask(world, tmp_path, mask, capsys, state_files):
    argv = [str(getattr(world, a[1:])) if a.startswith("@") else a for a in PREDICT]
    old = os.umask(mask)
    try:
        assert main(argv + ["--out", str(tmp_path / "o.csv"), "--plot",
                            str(tmp_path / "o.png")]) == 0
        state_files(world.library_ds.isel(state=[0]), tmp_path / "lib")
    finally:
        os.umask(old)
    capsys.readouterr()
    files = [tmp_path / "o.csv", tmp_path / "o.png", *(tmp_path / "lib").glob("*.nc")]
    assert len(files) == 3
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib", "o.csv", "o.png"]


def test_no_resume_removes_the_old_state_file(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["simulate", "--interaction", "WCA", "--density", "1.2", "--temperature", "2.0",
            "--particles", "100", "--equilibration-time", "0.5", "--production-time", "1",
            "--out", str(run), "--quiet"]
    assert main(argv) == 0
    (run / "state.nc").write_text("measured from the old trajectory")
    assert main(argv + ["--no-resume"]) == 0
    capsys.readouterr()
    assert not (run / "state.nc").exists() and (run / "run.json").is_file()


def test_lammps_errors_become_one_line_with_their_likely_cause():
    from supercooled.engines.lammps import LammpsEngine

    engine = LammpsEngine.__new__(LammpsEngine)  # no LAMMPS instance needed to word an error
    engine.dt = 0.5
    overflow = Exception("ERROR on proc 0: Neighbor list overflow, boost neigh_modify one\n"
                         "For more information see https://docs.lammps.org/err0036 (npair.cpp)")
    assert engine.describe_error(overflow) == (
        "LAMMPS stopped the run: Neighbor list overflow, boost neigh_modify one (the density "
        "is too high or particles overlap)")
    lost = Exception("ERROR: Lost atoms: original 100 current 4\nFor more information see ...")
    assert engine.describe_error(lost).endswith("(the time step dt = 0.5 is too large for this "
                                                "state)")
    assert engine.describe_error(ValueError("a bug")) is None  # other errors stay errors
