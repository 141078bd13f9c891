"""Who may write a run: this process's live runs and its claims in the claims file.

A run belongs to one process at a time. Its claim is an operating-system lock on one
byte of ``<journal>-claims``, which the kernel drops when the process ends, however it
ends; `LIVE` keeps two `SqliteJournal` objects of one process apart, which the locks
cannot (a process never conflicts with its own locks).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: claims hold within one process
    fcntl = None  # type: ignore[assignment]

__all__ = ["CLAIMS", "LIVE", "LIVE_LOCK", "OWNER", "Claims"]

#: this process, as the ``owner`` of the runs it starts or resumes
OWNER = f"{socket.gethostname()}:{os.getpid()}"

#: (journal file, run id) of every run going on in this process, whatever the
#: `SqliteJournal` object: a run must not be resumed while it runs. The claims file
#: cannot tell: a process never conflicts with its own locks.
LIVE: set[tuple[str, str]] = set()
LIVE_LOCK = threading.Lock()


class Claims:
    """This process's claims on runs: byte locks in each journal's claims file.

    POSIX record locks belong to the process, and closing *any* descriptor of a file
    drops all of the process's locks on it, so each claims file is opened once and
    stays open while this process holds a claim in it. Two run ids may hash to the same
    byte (one chance in 2**62 per pair); a count per byte keeps one run's release from
    dropping the other's claim. Used under `LIVE_LOCK` only.
    """

    def __init__(self) -> None:
        #: claims file -> (descriptor, {byte: claims held on it})
        self._files: dict[str, tuple[int, dict[int, int]]] = {}

    @staticmethod
    def _byte(run_id: str) -> int:
        return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big") >> 2

    def acquire(self, journal: str, run_id: str) -> bool:
        """Claim ``run_id``; False if another process holds it. `OSError` if the claims
        file cannot be opened."""
        if fcntl is None:  # pragma: no cover
            return True
        path = journal + "-claims"
        entry = self._files.get(path)
        if entry is None:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            entry = self._files[path] = (descriptor, {})
        descriptor, held = entry
        byte = self._byte(run_id)
        if byte not in held:
            try:
                fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, byte)
            except OSError:
                if not held:
                    self._close(path)
                return False
        held[byte] = held.get(byte, 0) + 1
        return True

    def release(self, journal: str, run_id: str) -> None:
        path = journal + "-claims"
        entry = self._files.get(path)
        byte = self._byte(run_id)
        if fcntl is None or entry is None or byte not in entry[1]:
            return
        descriptor, held = entry
        held[byte] -= 1
        if held[byte]:
            return
        del held[byte]
        if held:
            fcntl.lockf(descriptor, fcntl.LOCK_UN, 1, byte)
        else:
            self._close(path)  # drops the lock too

    def _close(self, path: str) -> None:
        descriptor, _ = self._files.pop(path)
        os.close(descriptor)


CLAIMS = Claims()
