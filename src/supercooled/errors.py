"""The one exception type for bad user input.

Everything the package raises because of what a user asked for (a missing file, an unknown
interaction, a non-positive temperature, a grid that is too short, NaN in an input) is a
:class:`SupercooledError`. The command line prints its message as one line and exits with a
non-zero status instead of showing a traceback. It subclasses :class:`ValueError` so that
Python callers can catch it the usual way.
"""


class SupercooledError(ValueError):
    """Bad input: the message says what is wrong and, where possible, what to do instead."""
