"""One campaign per library: a lock file naming its owner.

Two campaigns on one library would run the same states in the same scratch folders and write
the same files. :class:`LibraryLock` creates ``<library>/.campaign.lock`` atomically
(``O_CREAT | O_EXCL``) holding the owner's host, pid and start time, and removes it on exit. A
second campaign finds the file and stops with one line naming the owner. A lock left by a
campaign that was killed is recognised as stale when its host is this one and its pid is no
longer alive, and is taken over; a lock from another host (a shared file system) cannot be
checked and is never taken over: the message says which file to delete if that campaign is gone.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from supercooled.errors import SupercooledError

LOCK_NAME = ".campaign.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class LibraryLock:
    """Context manager holding the campaign lock of ``library`` (see the module docstring)."""

    def __init__(self, library):
        self.path = Path(library) / LOCK_NAME
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                      "started": datetime.now(UTC).isoformat(timespec="seconds")}

    def _owner_of_existing(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None  # vanished meanwhile, or unreadable: treated below

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a second try after removing a stale lock
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                owner = self._owner_of_existing()
                if owner is None or self._stale(owner):
                    self.path.unlink(missing_ok=True)
                    continue
                raise SupercooledError(
                    f"library {self.path.parent} is in use by a campaign (pid {owner.get('pid')} "
                    f"on {owner.get('host')} since {owner.get('started')}); if that campaign is "
                    f"gone, delete {self.path}") from None
            with os.fdopen(handle, "w") as stream:
                json.dump(self.owner, stream)
            return
        raise SupercooledError(f"could not take the campaign lock {self.path}")

    def _stale(self, owner: dict) -> bool:
        same_host = owner.get("host") == self.owner["host"]
        return same_host and not _alive(int(owner.get("pid", -1)))

    def release(self) -> None:
        if self._owner_of_existing() == self.owner:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> LibraryLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
