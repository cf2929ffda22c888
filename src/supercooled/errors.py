"""The one exception type for bad user input.

Everything the package raises because of what a user asked for (a missing file, an unknown
interaction, a non-positive temperature, a grid that is too short, NaN in an input) is a
:class:`SupercooledError`. The command line prints its message as one line and exits with a
non-zero status instead of showing a traceback. It subclasses :class:`ValueError` so that
Python callers can catch it the usual way.
"""


class SupercooledError(ValueError):
    """Bad input: the message says what is wrong and, where possible, what to do instead."""


def check_output_path(path, *, folder: bool = False, suffixes=None, inputs=()) -> None:
    """Raise :class:`SupercooledError` now if ``path`` cannot be written later.

    Commands call this before their long work (a training, a CMA-ES fit), so a mistyped
    output path fails at once instead of after hours. A file needs an existing, writable
    parent folder, must not be a folder, must not be one of ``inputs`` (the files the command
    reads: writing over them would destroy its own input) and (with ``suffixes``) must end in
    one of them; a ``folder`` must not be an existing file, and the folder, or its nearest
    existing parent if it is created, must be writable.
    """
    import os
    from pathlib import Path

    path = Path(path)
    for given in inputs:
        if given is not None and _same_file(path, Path(given)):
            raise SupercooledError(f"output {path} is an input of the command ({given}): "
                                   "choose another output")
    if folder:
        if path.exists() and not path.is_dir():
            raise SupercooledError(f"output folder {path} is an existing file")
        existing = next(p for p in (path, *path.absolute().parents) if p.exists())
        if not existing.is_dir():
            raise SupercooledError(f"cannot create output folder {path}: {existing} is a file")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise SupercooledError(f"output folder {existing} is not writable")
        return
    if path.is_dir():
        raise SupercooledError(f"output {path} is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise SupercooledError(f"folder {parent} of output {path} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SupercooledError(f"folder {parent} of output {path} is not writable")
    if suffixes is not None and path.suffix.lower().lstrip(".") not in suffixes:
        raise SupercooledError(f"output {path}: unsupported file type {path.suffix or '(none)'}; "
                               f"use one of {', '.join(sorted(suffixes))}")


def _same_file(a, b) -> bool:
    """Whether two paths name the same file (or would: the same absolute path)."""
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return os.path.abspath(a) == os.path.abspath(b)


def positive_number(name: str, value) -> float:
    """``value`` as a float if it is a positive finite number; else a one-line error naming it."""
    import math

    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SupercooledError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise SupercooledError(f"{name} must be positive and finite, got {value}")
    return number


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch system's time limit) turned into the Ctrl-C path.

    A campaign raises it in its client so that a terminated run shuts its workers down and
    releases the library lock as Ctrl-C does; the command line prints ``supercooled:
    terminated`` and exits with status 143 (128 + SIGTERM), the shell's convention.
    """
