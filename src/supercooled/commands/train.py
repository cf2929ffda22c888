"""``supercooled train``: (re)train the MLP ensemble on a state-point library and save it."""

from __future__ import annotations

from supercooled.errors import SupercooledError, check_output_path


def register(subparsers):
    p = subparsers.add_parser(
        "train", help="train the MLP ensemble (F_s from S(k)) on a library and save it",
        description="Split the library's states 90/10, train a deep ensemble on the training "
        "states (early stopping on a validation subset of them, spread calibrated on held-out "
        "calibration states), test it and the baselines on the held-out states and on the "
        "independent set, and save weights + metadata to --out.")
    p.add_argument("--library", required=True, help="folder of state files (data/library)")
    p.add_argument("--out", required=True, help="folder for member_<i>.pt and metadata.json")
    p.add_argument("--architecture", default="physics", choices=("physics", "paper"),
                   help="physics: valid correlator by construction, reduced time (default); "
                   "paper: Ciarella et al.'s network")
    p.add_argument("--independent", default=None,
                   help="folder of states never trained on to score as well "
                   "(default: data/independent if it holds states; 'none' to skip)")
    p.add_argument("--epochs", type=int, default=1000, help="maximum epochs per member (1000)")
    p.add_argument("--ensemble", type=int, default=5, help="ensemble members (5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first split (0)")
    p.add_argument("--splits", type=int, default=1,
                   help="state splits to test on (seeds seed..seed+n-1); the first is saved (1)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (2)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (cpu)")
    p.add_argument("--no-mct", action="store_true",
                   help="skip the MCT baseline (it solves MCT for every test state, seconds each)")
    p.set_defaults(func=run)


def run(args) -> int:
    from supercooled.ml.evaluation import load_independent, train_model
    from supercooled.ml.network import TrainConfig

    for name in ("epochs", "ensemble", "splits"):
        if getattr(args, name) < 1:
            raise SupercooledError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise SupercooledError(f"--threads must be >= 1, got {args.threads}")
    folder_argument("--library", args.library)
    if args.independent not in (None, "none"):
        folder_argument("--independent", args.independent)
    check_output_path(args.out, folder=True, inputs=(args.library, args.independent))
    check_device(args.device)
    config = TrainConfig(epochs=args.epochs, threads=args.threads, device=args.device,
                         architecture=args.architecture)
    independent = None if args.independent == "none" else load_independent(args.independent)
    model, table = train_model(args.library, args.out, epochs=args.epochs,
                               n_members=args.ensemble, seed=args.seed, n_splits=args.splits,
                               config=config, with_mct=not args.no_mct, independent=independent)
    m = model.metadata["metrics_all_splits"]
    print(f"trained {args.ensemble} {args.architecture} members on "
          f"{len(model.metadata['train_states'])} of {model.metadata['n_library_states']} states "
          f"({len(model.metadata['calibration_states'])} of them for calibration); saved to "
          f"{args.out}")
    print(f"test states: {m['n_test_states']}  R^2_AA = {m['r2_mlp_AA_mean']:.3f}  R^2_BB = "
          f"{m['r2_mlp_BB_mean']:.3f}  (pooled R^2 = {m['r2_mlp_mean']:.3f})  "
          f"independent states: {len(model.metadata['independent_states'])}")
    return 0


def folder_argument(option: str, value) -> None:
    """A one-line error unless the folder named by ``option`` exists (and is a folder)."""
    from pathlib import Path

    path = Path(value)
    if not path.exists():
        raise SupercooledError(f"{option} folder {path} does not exist")
    if not path.is_dir():
        raise SupercooledError(f"{option} {path} is a file, not a folder of state files")


def check_device(name: str) -> None:
    """A one-line error unless torch can compute on device ``name`` here."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise SupercooledError(f"--device {name!r} is not a torch device (cpu, cuda, cuda:1, "
                               "mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is built without CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible")
            raise SupercooledError(f"--device {name}: {why}; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SupercooledError(f"--device {name}: there are only "
                                   f"{torch.cuda.device_count()} CUDA devices")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise SupercooledError(f"--device {name}: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise SupercooledError(f"--device {name}: training runs on cpu, cuda or mps")
