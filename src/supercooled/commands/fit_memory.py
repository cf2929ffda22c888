"""``supercooled fit-memory``: fit the eq. 6 memory function to library states with CMA-ES.

One state (``--interaction --density --temperature``), or with ``--all`` every state of the
fit plan (:func:`supercooled.memory_fits.fit_plan`) into the results table, resumable.
"""

from __future__ import annotations


def register(subparsers):
    from supercooled.evolution import FitSettings

    parser = subparsers.add_parser(
        "fit-memory",
        help="fit a stretched-exponential memory function to library states (CMA-ES)",
        description="Solve the memory equation at k_p for candidate memories (eq. 6 of "
        "Ciarella et al. 2023) and fit them to a state's F_s(k_p, t) with CMA-ES, starting "
        "from the MCT memory. One state: prints the loss, R^2 and parameters; --out writes one "
        "CSV row. --all: fits every state of the plan into the results table (resumable).",
    )
    parser.add_argument("--library", default=None,
                        help="folder of state files (default: data/library or $SUPERCOOLED_LIBRARY)")
    parser.add_argument("--all", action="store_true",
                        help="fit every state of the plan (a series per interaction with N_exp "
                        "= 1, 2, 3, every other equilibrated state with --n-exp) into --out")
    parser.add_argument("--interaction", help="LJ or WCA (one state)")
    parser.add_argument("--density", type=float, help="number density rho (one state)")
    parser.add_argument("--temperature", type=float,
                        help="temperature; the nearest measured state within 2 %% is used")
    parser.add_argument("--n-exp", type=int, default=2, help="stretched exponentials (default 2)")
    parser.add_argument("--n-exps", type=int, nargs="+", default=[1, 2, 3],
                        help="with --all: the N_exp values of the series (default 1 2 3)")
    parser.add_argument("--seed", type=int, default=0, help="CMA-ES seed (default 0)")
    parser.add_argument("--out", help="one state: write the result as a one-row CSV file; "
                        "--all: the results table (default data/results/memory_fits.csv)")
    parser.add_argument("--sigma0", type=float, default=None,
                        help="initial CMA-ES step in the unconstrained coordinates "
                        "(default 0.1; the paper's value is 5e-4)")
    parser.add_argument("--max-generations", type=int, default=None,
                        help="generation budget of each CMA-ES run (default "
                        f"{FitSettings.max_generations}; a run usually stops earlier, when "
                        "the loss has stalled)")
    parser.add_argument("--restarts", type=int, default=None,
                        help=f"IPOP restarts of CMA-ES (default {FitSettings.restarts})")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-time budget")
    parser.add_argument("--start", choices=("mct", "heuristic"), default="mct",
                        help="initial memory: MCT's fitted with eq. 6 (default) or a data heuristic")
    parser.add_argument("--coupling", choices=("paper", "self"), default="paper",
                        help="species coupling of the memory equation (see supercooled.memory)")
    parser.add_argument("--dynamics", choices=("brownian", "newtonian"), default="brownian",
                        help="first-order eq. 5 as in the paper (default) or second order")
    parser.add_argument("--exponent-max", type=float, default=None,
                        help="largest eq. 6 exponent b (default 3; 1 with --coupling self "
                        "--dynamics brownian: the completely monotone family, valid by "
                        "construction, of predict --method memory)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _settings(args):
    from supercooled.errors import SupercooledError
    from supercooled.evolution import FitSettings

    if args.max_seconds is not None and not args.max_seconds > 0:
        raise SupercooledError(f"--max-seconds must be positive, got {args.max_seconds}")
    given = {"sigma0": args.sigma0, "max_generations": args.max_generations,
             "restarts": args.restarts}
    return FitSettings(n_exp=args.n_exp, seed=args.seed, max_seconds=args.max_seconds,
                       progress=not args.quiet,
                       **{name: value for name, value in given.items() if value is not None})


def _library(args):
    from pathlib import Path

    from supercooled.errors import SupercooledError
    from supercooled.library import load_library
    from supercooled.paths import library_path

    folder = Path(args.library) if args.library else library_path()
    if folder.is_file():
        raise SupercooledError(f"library {folder} is a file, not a folder of state files")
    if not folder.is_dir():
        raise SupercooledError(f"library folder {folder} does not exist")
    return load_library(folder, skip_bad=args.all)


def run(args) -> int:
    from supercooled import memory
    from supercooled.errors import SupercooledError, check_output_path

    if args.out or args.all:
        check_output_path(args.out or _default_out())
    if args.seed < 0:
        raise SupercooledError(f"--seed must be >= 0, got {args.seed}")
    for n_exp in args.n_exps:
        memory.check_n_exp(n_exp)
    one = [args.interaction, args.density, args.temperature]
    if args.all and any(v is not None for v in one):
        raise SupercooledError("--all fits every state: drop --interaction/--density/--temperature")
    if not args.all and any(v is None for v in one):
        raise SupercooledError("give --interaction, --density and --temperature, or --all")
    settings = _settings(args)
    args.exponent_max = _exponent_max(args.exponent_max)
    library = _library(args)
    return _fit_all(args, library, settings) if args.all else _fit_one(args, library, settings)


def _exponent_max(value) -> float:
    from supercooled import memory
    from supercooled.errors import SupercooledError

    if value is None:
        return memory.EXPONENT_RANGE[1]
    low, high = memory.EXPONENT_RANGE
    if not low < value <= high:
        raise SupercooledError(f"--exponent-max must lie in ({low:g}, {high:g}], got {value:g}")
    return float(value)


def _default_out():
    from supercooled import memory_fits
    from supercooled.paths import results_path

    return results_path(memory_fits.RESULTS_FILE)


def _fit_all(args, library, settings) -> int:
    from supercooled import memory_fits

    out = args.out or _default_out()
    table = memory_fits.fit_library(library, out, settings, n_exps=args.n_exps,
                                    start=args.start, coupling=args.coupling,
                                    dynamics=args.dynamics, exponent_max=args.exponent_max,
                                    progress=not args.quiet)
    print(f"{len(table)} fits in {out}")
    return 0


def _fit_one(args, library, settings) -> int:
    import pandas as pd

    from supercooled import memory_fits
    from supercooled.atomic import replacing
    from supercooled.errors import SupercooledError
    from supercooled.library import select_state

    state = select_state(library, args.interaction, args.density, args.temperature)
    result = memory_fits.fit_state(state, settings, start=args.start, coupling=args.coupling,
                                   dynamics=args.dynamics, exponent_max=args.exponent_max)
    row = memory_fits.result_row(result)
    print(f"{result.problem.label}: N_exp = {result.n_exp}, loss = {result.loss:.3e}, "
          f"R^2 = {result.r2:.6f}, {result.generations} generations in {result.wall_time:.1f} s "
          f"({result.stop_reason}; start: {row['start']})")
    for name, value in result.parameters().items():
        print(f"  {name:>10s} = {value:.6g}")
    if args.out:
        try:
            with replacing(args.out) as temporary:
                pd.DataFrame([row]).to_csv(temporary, index=False)
        except OSError as error:
            raise SupercooledError(f"cannot write {args.out}: {error.strerror}") from None
        print(f"wrote {args.out}")
    return 0
