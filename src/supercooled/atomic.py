"""Files written atomically: a temporary file in the same folder, then ``os.replace``.

Everything the package writes for a user (state files, tables, predictions, figures, model
files) goes through :func:`replacing`, so a reader never sees half a file, a failed or killed
write leaves the old file (or none) behind, and the new file gets the mode any new file of the
user gets (0666 less the umask: readable by collaborators on a shared file system, where
:func:`tempfile.mkstemp` alone would leave it private, 0600). An error while writing names the
file that was asked for, never the hidden temporary one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def umask() -> int:
    """The process's umask (reading it means setting it; it is restored at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it becomes ``path``.

    The temporary file is hidden (``.<name>.<random>.tmp``) and removed if the block raises.
    An :class:`OSError` of the block (disk full, no permission) is re-raised naming ``path``.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        try:
            yield Path(temporary)
            os.chmod(temporary, 0o666 & ~umask())
            os.replace(temporary, path)
        except OSError as error:
            if error.filename is None or str(error.filename) != str(path):
                raise OSError(error.errno, error.strerror or str(error), str(path)) from None
            raise
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`replacing`)."""
    with replacing(path) as temporary:
        temporary.write_text(text)
    return Path(path)
