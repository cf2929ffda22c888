"""The one exception type for bad user input.

Everything the package raises because of what a user asked for (a missing file, an unknown
interaction, a non-positive temperature, a grid that is too short, NaN in an input) is a
:class:`SupercooledError`. The command line prints its message as one line and exits with a
non-zero status instead of showing a traceback. It subclasses :class:`ValueError` so that
Python callers can catch it the usual way.
"""


class SupercooledError(ValueError):
    """Bad input: the message says what is wrong and, where possible, what to do instead."""


def check_output_path(path, *, folder: bool = False, suffixes=None) -> None:
    """Raise :class:`SupercooledError` now if ``path`` cannot be written later.

    Commands call this before their long work (a training, a CMA-ES fit), so a mistyped
    output path fails at once instead of after hours. A file needs an existing parent folder,
    must not be a folder, and (with ``suffixes``) must end in one of them; a ``folder`` must
    not be an existing file (it is created if missing).
    """
    from pathlib import Path

    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise SupercooledError(f"output folder {path} is an existing file")
        return
    if path.is_dir():
        raise SupercooledError(f"output {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise SupercooledError(f"folder {path.parent} of output {path} does not exist")
    if suffixes is not None and path.suffix.lower().lstrip(".") not in suffixes:
        raise SupercooledError(f"output {path}: unsupported file type {path.suffix or '(none)'}; "
                               f"use one of {', '.join(sorted(suffixes))}")


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
