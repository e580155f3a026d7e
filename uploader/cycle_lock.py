"""One process at a time works on a cycle's archive: a lock per cycle in the state directory.

The lock is ``flock`` on ``<state_dir>/locks/<cycle id>.lock``. The kernel releases it when its
holder ends however it ends (a SIGKILL too), so a crash never leaves a cycle locked; the holder
writes its pid into the file, so whoever finds the cycle busy can say who has it. The file is
removed by its holder on release; a process that locked a file removed meanwhile tries again on
the new one (the inode is checked after locking), so two processes never both hold a cycle.

Who takes it:

- :func:`uploader.upload.upload_cycle`, for the whole upload: a second ``upload`` of the same
  cycle (a CLI ``upload`` beside the service, two CLI runs) stands aside with :class:`CycleBusy`
  ("being uploaded by pid N") instead of racing the first through the catalogue and the store;
- the maintenance pass (``prune``, ``inventory``, the service's loop), around what it does to one
  cycle's objects: adopting an object a listing shows, aborting a multipart upload it takes for an
  orphan, deleting an archive. A busy cycle is left alone for this pass.

Locks are per state directory, that is per host: another host sharing the store has its own
cycles under its own key prefix.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from localbackup.fileio import PRIVATE_FILE_MODE
from localbackup.paths import ensure_private_dir

LOCKS = "locks"


class CycleBusy(Exception):
    """Another live process holds the cycle's lock: it is being uploaded (or pruned) now.

    A refusal of this program's, not a failure: the other process finishes the work."""

    def __init__(self, cycle_id: str, pid: int | None) -> None:
        self.cycle_id, self.pid = cycle_id, pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"cycle {cycle_id} is being uploaded by {who}")


def lock_path(state_dir: Path, cycle_id: str) -> Path:
    """The lock file of ``cycle_id`` (a cycle id is a file name: ``20260101T000000Z``)."""
    if not cycle_id or "/" in cycle_id or cycle_id.startswith("."):
        raise ValueError(f"not a cycle id: {cycle_id!r}")
    return state_dir / LOCKS / f"{cycle_id}.lock"


@contextlib.contextmanager
def cycle_lock(state_dir: Path, cycle_id: str) -> Iterator[None]:
    """Hold the lock of ``cycle_id`` until the block ends; :class:`CycleBusy` at once if another
    process (or another part of this one) holds it."""
    path = lock_path(state_dir, cycle_id)
    ensure_private_dir(path.parent)
    fd = _acquire(path, cycle_id)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        # Removed while still held: whoever opens the name next makes a new file, and whoever
        # opened this one and waits for it finds it unlinked (_acquire) and starts over.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def _acquire(path: Path, cycle_id: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise CycleBusy(cycle_id, holder(path)) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed it as we locked it: lock the new file


def holder(path: Path) -> int | None:
    """The pid written in a lock file, if any (None while its holder has not written it)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
