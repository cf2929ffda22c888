"""``supercooled fit-memory``: fit the eq. 6 memory function of one library state with CMA-ES."""

from __future__ import annotations


def register(subparsers):
    parser = subparsers.add_parser(
        "fit-memory",
        help="fit a stretched-exponential memory function to one library state (CMA-ES)",
        description="Solve the memory equation at k_p for candidate memories (eq. 6 of "
        "Ciarella et al. 2023) and fit them to the state's F_s(k_p, t) with CMA-ES, starting "
        "from the MCT memory. Prints the loss, R^2 and parameters; --out writes one CSV row.",
    )
    parser.add_argument("--library", required=True, help="folder of state files (data/library)")
    parser.add_argument("--interaction", required=True, help="LJ or WCA")
    parser.add_argument("--density", required=True, type=float, help="number density rho")
    parser.add_argument("--temperature", required=True, type=float,
                        help="temperature; the nearest measured state within 2 %% is used")
    parser.add_argument("--n-exp", type=int, default=2, help="stretched exponentials (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="CMA-ES seed (default 0)")
    parser.add_argument("--out", help="write the result as a one-row CSV file")
    parser.add_argument("--sigma0", type=float, default=None,
                        help="initial CMA-ES step in the unconstrained coordinates "
                        "(default 0.1; the paper's value is 5e-4)")
    parser.add_argument("--target-loss", type=float, default=1e-6, help="stop below this loss")
    parser.add_argument("--max-generations", type=int, default=5000, help="generation budget")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-time budget")
    parser.add_argument("--start", choices=("mct", "heuristic"), default="mct",
                        help="initial memory: MCT's fitted with eq. 6 (default) or a data heuristic")
    parser.add_argument("--coupling", choices=("paper", "self"), default="paper",
                        help="species coupling of the memory equation (see supercooled.memory)")
    parser.add_argument("--dynamics", choices=("brownian", "newtonian"), default="brownian",
                        help="first-order eq. 5 as in the paper (default) or second order")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    import pandas as pd

    from supercooled import evolution
    from supercooled.errors import SupercooledError, check_output_path

    if args.out:
        check_output_path(args.out)
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise SupercooledError(f"--max-seconds must be positive, got {args.max_seconds}")
    settings = evolution.FitSettings(
        n_exp=args.n_exp, seed=args.seed, target_loss=args.target_loss,
        max_generations=args.max_generations, max_seconds=args.max_seconds,
        progress=not args.quiet,
        **({"sigma0": args.sigma0} if args.sigma0 is not None else {}),
    )
    library = evolution.open_library(args.library)
    state = evolution.select_state(library, args.interaction, args.density, args.temperature)
    result = evolution.fit_state(state, settings, start=args.start, coupling=args.coupling,
                                  dynamics=args.dynamics)
    row = evolution.result_row(result)
    print(f"{result.problem.label}: N_exp = {result.n_exp}, loss = {result.loss:.3e}, "
          f"R^2 = {result.r2:.6f}, {result.generations} generations in {result.wall_time:.1f} s "
          f"({result.stop_reason}; start: {row['start']})")
    for name, value in result.parameters().items():
        print(f"  {name:>10s} = {value:.6g}")
    if args.out:
        try:
            pd.DataFrame([row]).to_csv(args.out, index=False)
        except OSError as error:
            raise SupercooledError(f"cannot write {args.out}: {error.strerror}") from None
        print(f"wrote {args.out}")
    return 0
