"""``supercooled train-memory``: train the memory predictor and compare it with the MLP."""

from __future__ import annotations

from supercooled.errors import SupercooledError, check_output_path


def register(subparsers):
    p = subparsers.add_parser(
        "train-memory",
        help="train the memory predictor (S(k) -> memory -> memory equation -> F_s) and "
        "compare it with the MLP",
        description="Fit an ensemble of regressors from the structure of a state to the "
        "parameters of its fitted memory function (the completely monotone family: self "
        "coupling, Brownian, b <= 1, N_exp = 2, fitted by supercooled fit-memory --all "
        "--n-exps 2 --coupling self --dynamics brownian --exponent-max 1), on the training "
        "states of the shipped MLP; calibrate it and save it as JSON. With --compare, also "
        "train and score it on the MLP's state splits and transfer studies and write "
        "predictors.csv.")
    p.add_argument("--library", default=None, help="folder of state files (data/library)")
    p.add_argument("--fits", default=None,
                   help="memory-fit table (default data/results/memory_fits.csv)")
    p.add_argument("--like", default=None,
                   help="MLP model folder whose training states are used (default data/models/mlp)")
    p.add_argument("--regressor", choices=("gp", "ridge"), default="gp",
                   help="Gaussian process (default) or ridge")
    p.add_argument("--ensemble", type=int, default=None, help="bootstrap members (16)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (0)")
    p.add_argument("--out", default=None,
                   help="predictor file (default data/models/memory/predictor.json)")
    p.add_argument("--compare", default=None, metavar="DIR",
                   help="also run the comparison and write DIR/predictors.csv and "
                   "DIR/predictors_states.csv")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from supercooled.library import state_labels
    from supercooled.memory_fits import load_fits
    from supercooled.ml import memory_predictor as mp
    from supercooled.ml.ensemble import read_metadata
    from supercooled.ml.features import load_states
    from supercooled.paths import library_path, memory_predictor_path, model_path

    n_members = mp.N_MEMBERS if args.ensemble is None else args.ensemble
    if n_members < 1:
        raise SupercooledError(f"--ensemble must be >= 1, got {n_members}")
    if args.seed < 0:
        raise SupercooledError(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out) if args.out else memory_predictor_path()
    if not args.out:  # the shipped predictor's folder is the package's own: make it
        out.parent.mkdir(parents=True, exist_ok=True)
    check_output_path(out)
    if args.compare:
        check_output_path(args.compare, folder=True)
    fits_path = Path(args.fits) if args.fits else None
    if fits_path is not None and not fits_path.is_file():
        raise SupercooledError(f"memory-fit table {fits_path} does not exist")
    like = Path(args.like) if args.like else model_path()
    library = Path(args.library) if args.library else library_path()
    if not library.is_dir():
        raise SupercooledError(f"library folder {library} does not exist")
    ds = load_states(library)
    fits = load_fits(fits_path)
    labels = state_labels(ds)
    wanted = read_metadata(like)["train_states"]
    train = [labels.index(lab) for lab in wanted if lab in labels]
    model = mp.train(ds, fits, train, regressor=args.regressor, n_members=n_members,
                     seed=args.seed)
    model.metadata["trained_like"] = str(like)
    model.save(out)
    print(f"trained a {args.regressor} memory predictor ({n_members} members) on "
          f"{model.metadata['n_train']} of the {len(wanted)} training states of {like} (those "
          f"with a usable fit); saved to {out}")
    if args.compare:
        from supercooled.ml.comparison import write_comparison

        regressors = (args.regressor,) + tuple(r for r in mp.REGRESSORS if r != args.regressor)
        result = write_comparison(ds, args.compare, fits=fits, model_dir=like,
                                  regressors=regressors, n_members=n_members,
                                  progress=not args.quiet)
        print(f"wrote {Path(args.compare) / 'predictors.csv'} "
              f"({len(result['summary'])} rows)")
    return 0
