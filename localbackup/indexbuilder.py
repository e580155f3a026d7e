"""The new index of an increment, built entry by entry with its columns on disk.

Holding the new index as a dictionary of records (as :class:`localbackup.index.Index` does)
costs ~580 bytes of Python objects per entry: 878 MiB of RSS for a full backup of a million
files. The index format (docs/formats.md ``## Index``, version 1) is a set of columns, and
change detection produces entries in archive order, so :class:`IndexBuilder` appends each
entry's row, flag, path, link target and content hash to five column files (temporary, in the
directory given) and :meth:`IndexBuilder.write` streams them into the one zstd frame of the
index at the end: memory stays flat whatever the number of entries. The bytes written are
exactly those :func:`localbackup.index.write_index` writes for the same entries.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import BinaryIO

import zstandard

from localbackup.index import _HEAD, _ROW, FLAG_IN_INCREMENT, INDEX_MAGIC, Record

__all__ = ["IndexBuilder"]

_FLUSH = 1 << 20  # bytes buffered per column before they go to its file
_ROWS, _FLAGS, _PATHS, _LINKS, _HASHES = range(5)


class IndexBuilder:
    """Appends entries (in archive order) to column files; :meth:`write` makes the index."""

    def __init__(self, tmp_dir: Path | None = None) -> None:
        self._open = contextlib.ExitStack()
        self._files = [
            self._open.enter_context(tempfile.TemporaryFile(dir=tmp_dir))  # noqa: SIM115
            for _ in range(5)
        ]
        self._bufs = [bytearray() for _ in range(5)]
        self._sizes = [0] * 5
        self.count = 0
        self._pack = _ROW.pack
        #: content hashes of entries with more than one link, for their later names
        self.link_hashes: dict[bytes, str] = {}

    def close(self) -> None:
        """Remove the column files."""
        self._open.close()

    def __enter__(self) -> IndexBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spill(self, column: int) -> None:
        buf = self._bufs[column]
        self._files[column].write(buf)
        self._sizes[column] += len(buf)
        buf.clear()

    def append(
        self, path: bytes, rec: Record, written: bool, link: bytes | None, h: str | None
    ) -> None:
        """One entry: its path, record, whether its content is in this increment, its link
        target (symlink, or the first name of a hardlink) and content hash."""
        if b"\0" in path:
            raise ValueError("NUL byte in a path")
        bufs = self._bufs
        bufs[_ROWS] += self._pack(*rec)
        bufs[_FLAGS].append(FLAG_IN_INCREMENT if written else 0)
        bufs[_PATHS] += path
        bufs[_PATHS].append(0)
        if link:
            bufs[_LINKS] += link
        bufs[_LINKS].append(0)
        if h:
            bufs[_HASHES] += h.encode("ascii")
            if rec[8] > 1:
                self.link_hashes[path] = h
        bufs[_HASHES].append(0)
        self.count += 1
        if len(bufs[_ROWS]) >= _FLUSH or len(bufs[_PATHS]) >= _FLUSH:
            for column in range(5):
                self._spill(column)

    def extend(
        self,
        paths: list[bytes],
        rows: bytes | memoryview,
        links: list[bytes] | None,
        hashes: list[str] | None,
    ) -> None:
        """Entries carried over unchanged from the base, in bulk: their paths, their packed
        rows, and their link targets and hashes (None: none of them has one)."""
        n = len(paths)
        if not n:
            return
        joined = b"\0".join(paths)
        if joined.count(0) != n - 1:
            raise ValueError("NUL byte in a path")
        bufs = self._bufs
        bufs[_ROWS] += rows
        bufs[_FLAGS] += bytes(n)
        bufs[_PATHS] += joined
        bufs[_PATHS].append(0)
        bufs[_LINKS] += b"\0".join(links) + b"\0" if links else bytes(n)
        bufs[_HASHES] += "\0".join(hashes).encode("ascii") + b"\0" if hashes else bytes(n)
        self.count += n
        for column in range(5):
            self._spill(column)

    def write(self, out: BinaryIO, *, level: int = 1) -> None:
        """Write the index (one zstd frame, as :func:`localbackup.index.write_index` does)."""
        for column in range(5):
            self._spill(column)
        # every entry left a separator after its path, link and hash: the format has none
        # after the last one
        lengths = [max(size - 1, 0) for size in self._sizes[_PATHS:]]
        head = INDEX_MAGIC + _HEAD.pack(self.count, *lengths)
        total = len(head) + self._sizes[_ROWS] + self._sizes[_FLAGS] + sum(lengths)
        cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
        with cctx.stream_writer(out, size=total, closefd=False) as z:
            z.write(head)
            for column in range(5):
                f = self._files[column]
                f.seek(0)
                keep = self._sizes[column] if column < _PATHS else lengths[column - _PATHS]
                _copy(f, z, keep)


def _copy(src: BinaryIO, dst: BinaryIO, n: int) -> None:
    while n:
        chunk = src.read(min(n, _FLUSH))
        if not chunk:
            raise OSError("an index column file is shorter than written")
        dst.write(chunk)
        n -= len(chunk)
