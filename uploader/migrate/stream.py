"""A retrieval job's output as the multipart driver's payload: verified range by range, spooled
only while in flight.

The driver (:mod:`uploader.multipart`) asks for its parts in order, from a worker thread. Each
part is one range of the job output of 1 MiB x 2^n bytes starting at a multiple of its size (the
tail too), so Glacier sends its SHA-256 tree hash and the store checks it
(``require_tree_hash``); a mismatch is fetched again a few times, then fails the copy. A verified
range is written to a 0600 file of a 0700 spool directory and recorded in the catalogue before the
driver gets it; the file goes when the destination has acknowledged the part. Up to ``prefetch``
ranges ahead of the driver are fetched at the same time, so downloads run in parallel too. Disk
use is bounded by the ranges in flight: ``(prefetch + concurrency + 1) x part size``. After a
SIGKILL, a verified range still in the spool is not downloaded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Self

import structlog

from localbackup.paths import ensure_private_dir
from uploader import catalogue as cm
from uploader.catalogue import Catalogue, MigrationRecord
from uploader.payload import PartPlan
from uploader.restore import fetch_verified
from uploader.stores import RetrievalJobs, TransientStoreError
from uploader.stores.glacier import JobOutputExpired, tree_hash

log = structlog.get_logger(__name__)


class OutputExpired(TransientStoreError):
    """The job output expired during the copy: the destination upload is kept (suspended) and
    a new retrieval job continues it."""


class RangeSpool:
    """The verified ranges of one archive waiting for their part: ``<start>.range`` files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, start: int) -> Path:
        """Where the range starting at ``start`` is kept."""
        return self.root / f"{start}.range"

    def create(self) -> None:
        """Make the spool's 0700 directories (once, before ranges are written from several
        threads at a time)."""
        ensure_private_dir(self.root.parent)
        ensure_private_dir(self.root)

    def write(self, start: int, data: bytes) -> None:
        """Keep ``data`` durably (temp file, fsync, rename), 0600 (see :meth:`create`)."""
        tmp = self.root / f"{start}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path(start))

    def read_into(self, start: int, view: memoryview) -> bool:
        """Fill ``view`` from the kept range; False if it is missing or of another size."""
        try:
            with open(self.path(start), "rb") as f:
                if os.fstat(f.fileno()).st_size != len(view):
                    return False
                return f.readinto(view) == len(view)
        except FileNotFoundError:
            return False

    def remove(self, start: int) -> None:
        """Drop a range whose part is acknowledged."""
        self.path(start).unlink(missing_ok=True)

    def clear(self) -> None:
        """Drop the whole spool of this archive."""
        shutil.rmtree(self.root, ignore_errors=True)


class JobOutputPayload:
    """The job output of ``record`` as a :class:`~uploader.payload.PayloadSource`."""

    def __init__(
        self,
        jobs: RetrievalJobs,
        catalogue: Catalogue,
        record: MigrationRecord,
        plan: PartPlan,
        spool: RangeSpool,
        *,
        skip: set[int],
        spooled: dict[int, tuple[int, str]],
        prefetch: int,
    ) -> None:
        assert record.job_id is not None
        self._jobs, self._catalogue, self._record = jobs, catalogue, record
        self._job_id = record.job_id
        self._plan, self._spool = plan, spool
        self._skip = skip  # parts the destination holds already: never fetched
        self._spooled = dict(spooled)  # start -> (end, tree hash): verified, on disk
        self._prefetch = max(0, prefetch)
        self._tasks: dict[int, asyncio.Task[str]] = {}
        self._loop = asyncio.get_running_loop()
        self.trees: dict[int, str] = {}  # part number -> tree hash of the bytes handed out
        self.size = plan.total_size

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the fetches still running (a failed or interrupted copy)."""
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def readinto(self, offset: int, view: memoryview) -> None:
        """Part bytes, from a worker thread: wait for the range, read it from the spool."""
        number = offset // self._plan.part_size + 1
        start, end = self._plan.span(number)
        if (offset, len(view)) != (start, end - start):
            raise ValueError(f"{offset}+{len(view)} is not a part of this payload")
        for again in (False, True):
            expected = asyncio.run_coroutine_threadsafe(self._ready(number, again), self._loop)
            tree = expected.result()
            if self._spool.read_into(start, view) and tree_hash(view) == tree:
                self.trees[number] = tree
                return
            log.warning("migrate.spool_range_bad", key=self._record.key, start=start)
            cm.forget_spooled_range(self._catalogue, self._record.id, start)
        raise TransientStoreError(
            f"the spooled range {start}-{end} of {self._record.key} cannot be read back "
            f"from {self._spool.root}"
        )

    async def acknowledged(self, number: int) -> None:
        """The destination holds part ``number`` (and the catalogue says so): its range leaves
        the spool."""
        start = self._plan.span(number)[0]
        self._spooled.pop(start, None)
        await asyncio.to_thread(self._spool.remove, start)

    async def _ready(self, number: int, again: bool) -> str:
        """The tree hash of part ``number``'s range once it is verified and spooled; the next
        ``prefetch`` ranges are fetched meanwhile."""
        start = self._plan.span(number)[0]
        if again:
            self._spooled.pop(start, None)
            self._tasks.pop(number, None)
        last = min(number + self._prefetch, self._plan.count)
        for n in range(number, last + 1):
            if n in self._skip or n in self._tasks or self._plan.span(n)[0] in self._spooled:
                continue
            self._tasks[n] = self._loop.create_task(self._fetch(n))
        if start in self._spooled:
            return self._spooled[start][1]
        return await self._tasks[number]

    async def _fetch(self, number: int) -> str:
        a, b = self._plan.span(number)
        key, ident = self._record.key, self._record.id
        try:
            data = await fetch_verified(
                lambda: self._jobs.read_job_output(self._job_id, a, b, require_tree_hash=True),
                a,
                b,
                key=key,
            )
        except JobOutputExpired as exc:
            raise OutputExpired(str(exc)) from exc
        tree = await asyncio.to_thread(tree_hash, data)
        await asyncio.to_thread(self._spool.write, a, data)
        await asyncio.to_thread(cm.record_spooled_range, self._catalogue, ident, a, b, tree)
        self._spooled[a] = (b, tree)
        log.info("migrate.range_verified", key=key, start=a, end=b, tree_hash=tree)
        return tree


def spool_dir(root: Path, record: MigrationRecord) -> Path:
    """The spool directory of one archive's ranges under ``root``."""
    return root / str(record.id)


def clear_stale(root: Path, live: set[int]) -> None:
    """Remove the spools of archives that are not being copied any more."""
    if not root.is_dir():
        return
    for d in root.iterdir():
        if d.name.isdigit() and int(d.name) not in live:
            with contextlib.suppress(OSError):
                shutil.rmtree(d)
