"""Crash-safe file writes: temp name, fsync, rename (or link), fsync of the directory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from localbackup.fileio import PRIVATE_FILE_MODE, create_file

PARTIAL_SUFFIX = ".partial"  # ends the name of whatever is still being written


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """The name a file has while it is being written: hidden, and never trusted after a crash."""
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = PRIVATE_FILE_MODE) -> Iterator[BinaryIO]:
    """Open a temp file next to ``path``; on clean exit fsync it and rename it into place.

    On error the temp file is removed, so readers only ever see the old file or the whole new one.
    """
    tmp = temp_name(path)
    f = create_file(tmp, mode)
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):  # closing flushes: on a full disk that fails too
            f.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write ``data`` to ``path`` with :func:`atomic_writer`: readers see all of it or none."""
    with atomic_writer(path, mode) as f:
        f.write(data)


def atomic_create(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Create ``path`` holding ``data``, crash-safe and never replacing a file.

    Written under :func:`temp_name`, fsynced, then hard-linked into place: the link fails with
    :class:`FileExistsError` when the name is taken, and a crash leaves no partial file under the
    name. The file gets exactly ``mode``, whatever the umask.
    """
    tmp = temp_name(path)
    try:
        with create_file(tmp, mode) as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
