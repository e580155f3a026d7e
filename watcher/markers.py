"""Watching the marker directory: watchdog's thread posts file names into asyncio.

The observer thread never does work itself: it hands each name to the event loop with
``call_soon_threadsafe`` (the watchfiles model). Files already present at start are posted first,
so markers written while the service was stopped are not missed. The same name may arrive many
times (created, closed, moved); consumers must be idempotent, and this class drops a name that is
already waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from localbackup.logevents import get_logger
from localbackup.paths import ensure_private_dir
from watcher.markerfiles import (  # filing markers: here too for callers that watch as well
    DONE,
    FAILED,
    QUARANTINE,
    failed_markers,
    file_away,
    file_done,
    is_candidate,
    reason_of,
    retry_failed,
)

__all__ = [
    "DONE",
    "FAILED",
    "QUARANTINE",
    "MarkerWatcher",
    "failed_markers",
    "file_away",
    "file_done",
    "is_candidate",
    "reason_of",
    "retry_failed",
]

log = get_logger(__name__)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: MarkerWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Act once a writer is done: on close after writing (a plain `touch` too) or on a rename
        # into the directory (atomic writers). "created" would hand over a half-written file.
        if event.is_directory or event.event_type not in ("closed", "moved"):
            return
        raw = getattr(event, "dest_path", "") or event.src_path
        path = Path(raw if isinstance(raw, str) else raw.decode(errors="surrogateescape"))
        self._watcher.post_threadsafe(path)


class MarkerWatcher:
    """Names of files in the marker directory that need handling, as an async stream."""

    def __init__(self, marker_dir: Path, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.marker_dir = marker_dir
        self._loop = loop
        self._queue: asyncio.Queue[Path] = asyncio.Queue()
        self._waiting: set[Path] = set()
        self._observer: BaseObserver | None = None

    def post_threadsafe(self, path: Path) -> None:
        """Post ``path`` from the observer thread (the only call it makes)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closing: we are stopping anyway
            self._loop.call_soon_threadsafe(self.post, path)

    def post(self, path: Path) -> None:
        """Queue ``path`` unless it is not a candidate or already waiting."""
        if not is_candidate(path, self.marker_dir) or path in self._waiting:
            return
        self._waiting.add(path)
        self._queue.put_nowait(path)

    def rescan(self) -> None:
        """Post every file present now (start-up, and after a missed-event suspicion)."""
        for p in sorted(self.marker_dir.iterdir()):
            if p.is_file():
                self.post(p)

    def start(self) -> None:
        """Start watching, and post the files already there."""
        ensure_private_dir(self.marker_dir)
        self._loop = self._loop or asyncio.get_running_loop()
        observer = Observer()
        observer.schedule(_Handler(self), str(self.marker_dir), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self.rescan()
        log.info("watch.markers_watching", marker_dir=str(self.marker_dir))

    def stop(self) -> None:
        """Stop the observer thread."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    async def next(self) -> Path:
        """The next file to handle (waits for one)."""
        path = await self._queue.get()
        self._waiting.discard(path)
        return path

    async def __aiter__(self) -> AsyncIterator[Path]:
        while True:
            yield await self.next()
