"""The ``supercooled`` command line: one entry point, one module per subcommand.

Subcommands live in :mod:`supercooled.commands`. Bad input raises
:class:`~supercooled.errors.SupercooledError` (the package turns the errors of the libraries it
drives, LAMMPS, torch, JSON, dask, into one); it is printed as one line
(``supercooled: error: ...``) and the exit status is 2, with no traceback. A bad argument is
one line too, and Ctrl-C prints ``supercooled: interrupted`` (status 130); a campaign stopped
by SIGTERM prints ``supercooled: terminated`` (status 143). Exit status 1 is a command that ran
but did not do its whole job (``campaign`` with failed states).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

from supercooled import __version__, commands
from supercooled.errors import SupercooledError, Terminated


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), like every other error."""

    def error(self, message):
        self.exit(2, f"supercooled: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="supercooled",
        description="Simulate Kob-Andersen mixtures, measure S(k) and F_s(k_p, t), and predict "
        "slow dynamics with mode-coupling theory, a neural network or a fitted memory function.",
    )
    parser.add_argument("--version", action="version", version=f"supercooled {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings on the command line: one line each, without the source location."""
    print(f"supercooled: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _one_line_warning
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a bad argument (one line printed)
        return stop.code if isinstance(stop.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (SupercooledError, OSError) as error:
        # OSError: missing file, a folder given for a file, no permission, disk full ...
        if isinstance(error, SupercooledError) or not error.strerror:
            message = str(error)
        else:
            message = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
        print(f"supercooled: error: {message}", file=sys.stderr)
        return 2
    except Terminated:
        print("supercooled: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("supercooled: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
