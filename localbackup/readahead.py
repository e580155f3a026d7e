"""Decompression on a thread of its own, ahead of the reader (for a restore's increments).

A restore reads, verifies (SHA-256), decompresses and then parses and writes every member.
The first three release the GIL; done on a second thread they overlap with the Python work on
the first, as ``tar | zstd -d`` overlaps in two processes. A few chunks are queued (bounded
memory); an error on the thread is raised in the reader; leaving the block stops the thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from types import TracebackType
from typing import BinaryIO

import zstandard

__all__ = ["DecompressAhead"]

_CHUNK = 1 << 20
_AHEAD = 4  # chunks queued: 4 MiB


class _Stop(Exception):
    """The reader went away: the thread ends."""


class DecompressAhead:
    """``with DecompressAhead(compressed) as plain:`` ``plain.read(n)`` gives the decompressed
    stream in chunks (of any size up to ~1 MiB; ``b""`` at the end)."""

    def __init__(self, compressed: BinaryIO) -> None:
        self._src = compressed
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decompress-ahead", daemon=True)
        self._done = False

    def __enter__(self) -> DecompressAhead:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):  # room for a put() under way: it then stops
            while True:
                self._queue.get_nowait()
        self._thread.join()

    def _put(self, item: bytes | BaseException) -> None:
        while True:
            if self._stop.is_set():
                raise _Stop
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            dctx = zstandard.ZstdDecompressor()
            with dctx.stream_reader(self._src, read_across_frames=True, closefd=False) as zin:
                while True:
                    chunk = zin.read(_CHUNK)
                    self._put(chunk)
                    if not chunk:
                        return
        except _Stop:
            return
        except BaseException as exc:  # handed to the reader, raised there
            try:
                self._put(exc)
            except _Stop:
                return

    def read(self, n: int = -1) -> bytes:
        """The next decompressed chunk (``n`` is a hint); ``b""`` at the end."""
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        return item
