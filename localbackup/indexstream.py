"""An index file read as a stream, in bounded memory: what the end of a restore walks.

The format (:mod:`localbackup.index`, docs/formats.md ``## Index``) is unchanged: this is a
second reader of version 1.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from localbackup.index import _HEAD, _ROW, INDEX_MAGIC, IndexFormatError, Record
from localbackup.integrity import VerifyingReader

__all__ = ["StreamedIndex", "verified_index"]


class StreamedIndex:
    """An index file read as a stream, entry by entry, in bounded memory (for a restore's end).

    :func:`read_index` holds the whole decompressed index and a ``bytes`` per path: ~180 MB for
    a million entries. The format keeps the rows and the paths in two regions of one zstd
    frame, so this reads them with two decompressors over the same file, in step: the frame is
    decompressed twice (cheap), and only a batch of rows and paths is in memory at a time.
    """

    def __init__(self, source: str | os.PathLike[str] | bytes) -> None:
        self.source = source  # a file, or the compressed index itself (a catalogue's copy)

    def _open(self) -> BinaryIO:
        if isinstance(self.source, bytes):
            return io.BytesIO(self.source)
        return open(self.source, "rb")

    def iter_records(self) -> Iterator[tuple[bytes, Record]]:
        """Every (path, record), in archive order; :class:`IndexFormatError` if damaged."""
        with (  # one decompression context each: a context serves one stream at a time
            self._open() as f_rows,
            self._open() as f_paths,
            zstandard.ZstdDecompressor().stream_reader(f_rows) as rows,
            zstandard.ZstdDecompressor().stream_reader(f_paths) as paths,
        ):
            try:
                yield from self._records(rows, paths)
            except zstandard.ZstdError as e:
                raise IndexFormatError(f"not a zstd-compressed index: {e}") from None

    @staticmethod
    def _records(rows: BinaryIO, paths: BinaryIO) -> Iterator[tuple[bytes, Record]]:
        head = _read_exact(rows, len(INDEX_MAGIC) + _HEAD.size)
        if not head.startswith(INDEX_MAGIC) or len(head) < len(INDEX_MAGIC) + _HEAD.size:
            raise IndexFormatError(f"bad index magic/version: {head[:24]!r}")
        count, path_bytes, _, _ = _HEAD.unpack_from(head, len(INDEX_MAGIC))
        _skip(paths, len(head) + count * (_ROW.size + 1))
        pending: list[bytes] = []
        tail = b""
        left_paths = path_bytes
        done = 0
        while done < count:
            batch = min(_STREAM_BATCH, count - done)
            data = _read_exact(rows, batch * _ROW.size)
            if len(data) != batch * _ROW.size:
                raise IndexFormatError("truncated index rows")
            while len(pending) < batch:
                chunk = _read_exact(paths, min(left_paths, 1 << 16))
                if not chunk:
                    if tail:  # the last path has no NUL after it
                        pending.append(tail)
                        tail = b""
                        continue
                    raise IndexFormatError("index columns disagree on the entry count")
                left_paths -= len(chunk)
                split = (tail + chunk).split(b"\0")
                tail = split.pop()
                pending.extend(split)
                if not left_paths and tail:
                    pending.append(tail)
                    tail = b""
            yield from zip(pending[:batch], _ROW.iter_unpack(data), strict=True)
            del pending[:batch]
            done += batch
        if pending or tail:
            raise IndexFormatError("index columns disagree on the entry count")


_STREAM_BATCH = 4096


def _read_exact(f: BinaryIO, n: int) -> bytes:
    """``n`` bytes of ``f`` (fewer only at its end)."""
    data = f.read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = f.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _skip(f: BinaryIO, n: int) -> None:
    while n:
        got = len(f.read(min(n, 1 << 20)))
        if not got:
            raise IndexFormatError("index size does not match its header")
        n -= got


@contextlib.contextmanager
def verified_index(reader: VerifyingReader) -> Iterator[StreamedIndex]:
    """The index ``reader`` reads, copied to a private temporary file and verified first (so
    what is streamed afterwards is exactly what was checked), as a :class:`StreamedIndex`."""
    with tempfile.TemporaryDirectory(prefix="glacier-backup-index-") as tmp:
        path = Path(tmp) / "index.zst"
        with open(path, "wb") as out:
            shutil.copyfileobj(reader, out, 1 << 20)
        reader.verify()
        yield StreamedIndex(path)
