"""File I/O shared across localbackup: how files are read and created, and with which sizes.

- Reading the files being backed up: :func:`open_for_reading` (never follows a symlink, never
  blocks on a FIFO, spares the atime where allowed) and :func:`read_xattrs`.
- Creating the suite's own files and directories: :data:`PRIVATE_FILE_MODE` and
  :data:`PRIVATE_DIR_MODE` (backups and work directories are the owner's alone; a restore gives
  its entries their archived modes at the end) and :func:`create_file`.
- :data:`CHUNK_SIZE`, the size of one read, hash update or compressed write.
- A full filesystem said plainly: :func:`is_no_space` and :class:`NoSpaceError` (the path, what
  the write needed, what is free).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "CHUNK_SIZE",
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "NoSpaceError",
    "Opener",
    "create_file",
    "is_no_space",
    "open_for_reading",
    "read_xattrs",
]

CHUNK_SIZE = 1 << 20
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

#: Opens a path for reading and returns a file descriptor (a seam for fault tests).
Opener = Callable[[bytes], int]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NOATIME = getattr(os, "O_NOATIME", 0)


def open_for_reading(path: bytes) -> int:
    """Open without following symlinks or blocking, with O_NOATIME where permitted."""
    if _NOATIME:
        try:
            return os.open(path, _OPEN_FLAGS | _NOATIME)
        except PermissionError:
            pass  # O_NOATIME needs ownership (or CAP_FOWNER)
    return os.open(path, _OPEN_FLAGS)


def read_xattrs(target: int | bytes) -> list[tuple[bytes, bytes]]:
    """Extended attributes of an fd or (not followed) path; [] where unsupported."""
    try:
        names = (
            os.listxattr(target, follow_symlinks=False)
            if isinstance(target, bytes)
            else (os.listxattr(target))
        )
        if not names:
            return []
        out: list[tuple[bytes, bytes]] = []
        for name in sorted(names):
            value = (
                os.getxattr(target, name, follow_symlinks=False)
                if isinstance(target, bytes)
                else os.getxattr(target, name)
            )
            out.append((name.encode("utf-8", "surrogateescape"), value))
        return out
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.ENODATA, errno.EPERM, errno.EACCES):
            return []
        raise


def create_file(path: Path, mode: int = PRIVATE_FILE_MODE) -> BinaryIO:
    """Open ``path`` for writing, created with ``mode`` or truncated (its mode unchanged)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    return os.fdopen(fd, "wb")


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` says a filesystem (or the user's quota on it) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class NoSpaceError(OSError):
    """A write failed because the filesystem of ``path`` is full: the message names the path,
    how much had been written (the write needed more than that) and how much is free now."""

    def __init__(
        self, path: Path, what: str, written: int, fix: str, removed: str = "the partial file"
    ) -> None:
        from localbackup.configkit import format_size

        where = path
        while not where.exists() and where.parent != where:
            where = where.parent  # a target that was never made: its filesystem is its parent's
        try:
            st = os.statvfs(where)
            free = f"{format_size(st.f_bavail * st.f_frsize)} free of "
            free += format_size(st.f_blocks * st.f_frsize)
        except OSError:
            free = "free space unknown"
        self.message = (
            f"no space left on the filesystem of {path}: {what} needed more than the "
            f"{format_size(written)} written before it filled ({free} now, {removed} removed); "
            f"{fix}"
        )
        super().__init__(errno.ENOSPC, self.message, str(path))

    def __str__(self) -> str:
        return self.message
