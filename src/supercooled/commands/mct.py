"""``supercooled mct``: mode-coupling theory critical points and the T_mct table."""

from __future__ import annotations

from supercooled.errors import SupercooledError


def register(subparsers):
    p = subparsers.add_parser(
        "mct", help="mode-coupling theory: critical points (hard spheres, T_mct) and tables",
        description="Fit-parameter-free multi-component mode-coupling theory on the 100-point "
        "k grid (0.2 ... 39.8).")
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    crit = actions.add_parser(
        "critical", help="critical packing fraction of PY hard spheres, or T_mct of a series",
        description="With --hard-spheres: the Percus-Yevick hard-sphere critical packing "
        "fraction (0.515912 on this grid) and the exponent parameter lambda. With --library: "
        "T_mct of one (interaction, density) series, S(k; T) interpolated between its "
        "neighbouring equilibrated temperatures (extrapolated linearly, and flagged, if the "
        "series does not bracket it).")
    which = crit.add_mutually_exclusive_group(required=True)
    which.add_argument("--hard-spheres", action="store_true", help="PY hard spheres")
    which.add_argument("--library", help="folder of state files (data/library)")
    crit.add_argument("--interaction", help="LJ or WCA (with --library)")
    crit.add_argument("--density", type=float, help="number density rho (with --library)")
    crit.add_argument("--tolerance", type=float, default=None,
                      help="bisection tolerance: absolute in packing fraction (1e-7), "
                      "relative in T (1e-4)")
    crit.set_defaults(func=run_critical)

    table = actions.add_parser(
        "table", help="T_mct of LJ and WCA at rho = 1.2 ... 1.8 as a CSV",
        description="Compute T_mct for every (interaction, density) of the library and write "
        "the table (default data/mct/critical_temperatures.csv) with the library's fingerprint "
        "beside it (.json), which the chapter uses to decide whether to recompute.")
    table.add_argument("--library", default=None,
                       help="folder of state files (data/library, or $SUPERCOOLED_LIBRARY)")
    table.add_argument("--out", default=None,
                       help="CSV path (critical_temperatures.csv in data/mct, or in mct/ beside "
                       "$SUPERCOOLED_LIBRARY)")
    table.set_defaults(func=run_table)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _tolerance(value, default):
    if value is None:
        return default
    if not value > 0:
        raise SupercooledError(f"--tolerance must be positive, got {value}")
    return value


def _library_folder(value) -> None:
    from pathlib import Path

    path = Path(value)
    if path.is_file():
        raise SupercooledError(f"library {path} is a file, not a folder of state files")
    if not path.is_dir():
        raise SupercooledError(f"library folder {path} does not exist")


def run_critical(args) -> int:
    if args.hard_spheres:
        from supercooled import mct

        if args.interaction or args.density is not None:
            raise SupercooledError("--interaction/--density go with --library, not --hard-spheres")
        cp = mct.hard_sphere_critical_point(tolerance=_tolerance(args.tolerance, 1e-7),
                                            progress=True)
        lam = mct.exponent_parameter(cp.system, cp.plateau.F[:, 0, 0])
        print(f"critical packing fraction (PY hard spheres, k = 0.2 ... 39.8, dk = 0.4): "
              f"{cp.value:.7f} (bracket {cp.liquid_side:.7f} ... {cp.glass_side:.7f}); "
              f"lambda = {lam:.4f}")
        return 0
    if not args.interaction or args.density is None:
        raise SupercooledError("--library needs --interaction and --density")

    from supercooled import mct_table
    from supercooled.library import load_library

    _library_folder(args.library)
    result = mct_table.critical_temperature(load_library(args.library), args.interaction,
                                            args.density,
                                            tolerance=_tolerance(args.tolerance, 1e-4))
    flag = " (extrapolated: the series does not bracket it)" if result.extrapolated else ""
    print(f"T_mct({result.interaction}, rho = {result.density:g}) = {result.T_mct:.5g}{flag}; "
          f"{result.n_states} temperatures {result.T_lowest:g} ... {result.T_highest:g}")
    return 0


def run_table(args) -> int:
    from supercooled import mct_table
    from supercooled.errors import check_output_path

    if args.library is not None:
        _library_folder(args.library)
    if args.out:  # checked before the minutes of MCT (the default folder is created)
        check_output_path(args.out, suffixes={"csv"})
    out = args.out or mct_table.default_critical_temperature_path()
    table = mct_table.ensure_critical_temperature_table(args.library, out, refresh=True,
                                                        progress=True)
    print(table.to_string(index=False))
    print(f"written to {out}")
    return 0
