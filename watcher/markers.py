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
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from localbackup import formats
from localbackup.atomic import atomic_write_bytes
from localbackup.formats import HANDLED_MARKER_DIRS
from localbackup.paths import ensure_private_dir

log = structlog.get_logger(__name__)

DONE, FAILED, QUARANTINE = HANDLED_MARKER_DIRS


def is_candidate(path: Path, marker_dir: Path) -> bool:
    """Files directly in the marker directory, except hidden ones (temp files being written)."""
    return path.parent == marker_dir and not path.name.startswith(".")


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


def file_away(path: Path, marker_dir: Path, where: str, reason: str | None = None) -> Path:
    """Move a handled marker to done/, failed/ or quarantine/ (with the reason next to it)."""
    dest_dir = ensure_private_dir(marker_dir / where)
    dest = dest_dir / path.name
    if reason is not None:
        atomic_write_bytes(dest_dir / f"{path.name}.reason", (reason.rstrip() + "\n").encode())
    shutil.move(str(path), dest)
    return dest


def reason_of(marker: Path) -> str:
    """Why a marker under ``failed/`` or ``quarantine/`` was filed there ("" if not said)."""
    try:
        return marker.with_name(f"{marker.name}.reason").read_text().strip()
    except OSError:
        return ""


def failed_markers(marker_dir: Path) -> dict[str, Path]:
    """The markers under ``failed/``, by cycle id."""
    folder = marker_dir / FAILED
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.iterdir():
        m = formats.MARKER_NAME.match(p.name)
        if m is not None and p.is_file():
            found[m["cycle"]] = p
    return found


def retry_failed(marker_dir: Path, host: str, cycle_id: str) -> Path | None:
    """Put the marker of a cycle whose upload failed back into the marker directory (the
    service picks it up from there too); its reason goes. None if it was not under failed/."""
    name = formats.marker_file_name(host, cycle_id)
    failed = marker_dir / FAILED / name
    if not failed.is_file():
        return None
    back = marker_dir / name
    os.replace(failed, back)
    failed.with_name(f"{name}.reason").unlink(missing_ok=True)
    log.info("upload.marker_retried", marker=name)
    return back


def file_done(marker_dir: Path, host: str, cycle_id: str) -> Path | None:
    """File the marker of an uploaded cycle under ``done/``, wherever it is (pending or
    failed, whose reason goes); None if there is no such marker."""
    name = formats.marker_file_name(host, cycle_id)
    for where in (marker_dir, marker_dir / FAILED):
        if (where / name).is_file():
            (where / f"{name}.reason").unlink(missing_ok=True)
            return file_away(where / name, marker_dir, DONE)
    return None
