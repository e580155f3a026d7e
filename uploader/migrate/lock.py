"""One migration at a time per state directory: an ``flock`` that dies with its process."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from localbackup.paths import ensure_private_dir

LOCK_FILE = "migrate.lock"


class MigrationLocked(Exception):
    """Another ``migrate`` runs on the same state directory."""


@contextlib.contextmanager
def migration_lock(state_dir: Path) -> Iterator[None]:
    """Hold the migration lock of ``state_dir`` (the kernel releases it if the process dies)."""
    ensure_private_dir(state_dir)
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise MigrationLocked(
                f"another migrate (pid {holder}) is running with the state directory {state_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
