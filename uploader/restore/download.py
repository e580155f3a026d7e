"""Download a retrieved archive in parallel, verified byte ranges; then restore from it.

The ciphertext (never a decrypted copy) goes into a 0600 file inside a 0700 directory next to
the restore target (inside it, ``.glacier-retrieval``, when the target is a mount point: the
download then lands on the disk being restored to, not on its parent's filesystem). Each range
is written with ``pwrite`` at its offset, fsynced, and only then recorded in the catalogue: a
killed download resumes with the ranges not recorded.

What is verified per range:

* Glacier vault: ranges are tree-hash aligned (1 MiB x 2^n blocks and the tail,
  ``glacier_jobs.tree_hash_ranges``), so Glacier sends each range's SHA-256 tree hash and
  ``read_job_output`` checks it and the length; a mismatch is retried.
* S3: the length of each range (``Content-Length``). S3 has no per-range checksum to give (an
  object's full checksum covers the whole object, a multipart one covers parts of the upload's
  part size): the content is authenticated afterwards by age (every 64 KiB chunk carries a
  Poly1305 tag) and by the SHA-256 of every bundle file in ``cycle.json``. Every range is
  pinned to the object seen when the download started: its ETag (and VersionId, in a
  versioned bucket) is kept next to the download (``<name>.part.version``) and sent with each
  ranged GET (``If-Match``), so a replaced object fails the download (which is then discarded)
  instead of mixing two objects' bytes.

When the restore from a finished download fails an integrity check (age authentication, a
SHA-256 or a malformed bundle), :func:`forget_download` drops its recorded ranges and the file:
``restore --resume`` then downloads it again rather than reusing bad bytes forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Unpack

from localbackup import testpoints
from localbackup.logevents import get_logger
from localbackup.paths import ensure_private_dir
from localbackup.staging import RETRIEVAL_NAME, stages_inside
from uploader import catalogue as cr
from uploader.catalogue import Catalogue
from uploader.multipart import first_error, retry_time
from uploader.pacing import RateLimiter
from uploader.restore.retrieval import VAULT, RetrievalError, RetrievalExpired, retrieval_jobs
from uploader.restore.stream import RestoreResult, StreamOptions, restore_stream
from uploader.stores import (
    MiB,
    ObjectChanged,
    PinnedReads,
    Store,
    StoreError,
    TransientStoreError,
)
from uploader.stores.glacier import JobOutputExpired, tree_hash_ranges

log = get_logger(__name__)

DEFAULT_RANGE = 32 * MiB
DEFAULT_PARALLEL = 4
_ATTEMPTS = 4

OnRange = Callable[[int, int, int], None]  # (bytes done, total bytes, ranges left)
Pin = dict[str, str]  # read() keywords pinning one object version: if_match, version_id


class DownloadDiscarded(RetrievalError):
    """The object changed during the download: the partial download was discarded."""


class DownloadStopped(RetrievalError):
    """The download failed part-way (the store, the disk): what is verified is kept."""


def download_path(to: Path, key: str) -> Path:
    """Where a new download of ``key`` for a restore into ``to`` goes.

    ``<to>/.glacier-retrieval/<archive name>.part`` when ``to`` is staged inside itself (a
    mount point: the restore's emptiness check ignores that directory), else
    ``<parent of to>/.<to name>.retrieval/<archive name>.part``.
    """
    return download_paths(to, key)[0]


def download_paths(to: Path, key: str) -> tuple[Path, ...]:
    """Every place a download of ``key`` for ``to`` may be, the one for a new download first."""
    name = f"{Path(key).name}.part"
    beside = to.parent / f".{to.name}.retrieval" / name
    inside = to / RETRIEVAL_NAME / name
    return (inside, beside) if stages_inside(to) else (beside, inside)


def resume_path(to: Path, key: str, recorded: Path | None) -> Path:
    """The download to continue: the recorded one if it is still at one of the places
    :func:`download_paths` names (a download started before the target became a mount
    point, or by an older version, is found where it is), else a new one's place."""
    places = download_paths(to, key)
    if recorded is not None and recorded in places and recorded.is_file():
        return recorded
    return places[0]


def plan_ranges(record: cr.RetrievalRecord, range_size: int) -> list[tuple[int, int]]:
    """The half-open ranges a download of ``record`` fetches (Glacier: tree-hash aligned)."""
    if record.storage_class == VAULT:
        return tree_hash_ranges(record.size, range_size)  # checks range_size is 1 MiB x 2^n
    return [(a, min(a + range_size, record.size)) for a in range(0, record.size, range_size)]


async def download(
    store: Store,
    catalogue: Catalogue,
    record: cr.RetrievalRecord,
    path: Path,
    *,
    range_size: int = DEFAULT_RANGE,
    parallel: int = DEFAULT_PARALLEL,
    on_range: OnRange | None = None,
    max_rate: int | None = None,
) -> int:
    """Fetch every range not yet recorded into ``path``; returns how many were fetched.
    ``max_rate`` (``[restore] max_rate``, bytes per second) is shared by the parallel ranges."""
    limiter = RateLimiter(max_rate) if max_rate else None
    ranges = plan_ranges(record, range_size)
    ensure_private_dir(path.parent)
    pin = await _start_or_resume(store, catalogue, record, path, range_size)
    done = await asyncio.to_thread(cr.done_ranges, catalogue, record.id)
    todo = [r for r in ranges if r not in done]
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, record.size)
        progress = [sum(b - a for a, b in done), len(todo)]
        gate = asyncio.Semaphore(max(1, parallel))

        async def one(a: int, b: int) -> None:
            async with gate:
                if limiter is not None:
                    await limiter.acquire(b - a)
                data = await _fetch(store, record, a, b, pin)
                await asyncio.to_thread(_write, fd, a, data)
                await asyncio.to_thread(cr.record_range, catalogue, record.id, a, b)
                testpoints.pause("retrieval.range_recorded")
            progress[0] += b - a
            progress[1] -= 1
            if on_range is not None:
                on_range(progress[0], record.size, progress[1])

        try:
            async with asyncio.TaskGroup() as tg:
                for a, b in todo:
                    tg.create_task(one(a, b))
        except BaseExceptionGroup as group:  # the first failure, never a TaskGroup's text
            raise first_error(group) from None
    except JobOutputExpired as exc:
        raise RetrievalExpired(
            f"the staged copy of {record.key} expired during the download "
            f"({exc}): run restore --resume again to request it anew"
        ) from exc
    except ObjectChanged as exc:
        await asyncio.to_thread(forget_download, catalogue, record, path)
        raise DownloadDiscarded(
            f"{exc}: the partial download was discarded; check what replaced "
            f"{record.key} in the store, then run restore --resume to download it anew"
        ) from exc
    except (StoreError, OSError) as exc:
        kept = len(ranges) - progress[1]
        why = f"writing {path}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
        raise DownloadStopped(
            f"downloading {record.key} stopped: {why}; the {kept} of {len(ranges)} ranges "
            "downloaded and verified so far are kept: restore --resume continues from there "
            "(the same command with --resume)"
        ) from exc
    finally:
        os.close(fd)
    log.info("retrieval.downloaded", key=record.key, ranges=len(todo), skipped=len(done))
    return len(todo)


async def _start_or_resume(
    store: Store, catalogue: Catalogue, record: cr.RetrievalRecord, path: Path, range_size: int
) -> Pin:
    """The pin every range is read with (S3: the ETag of the object seen when the download
    started); the download starts afresh unless the recorded one can be continued."""
    pinned = store if record.storage_class != VAULT and isinstance(store, PinnedReads) else None
    pin = _read_pin(path) if pinned is not None else {}
    fresh = (
        record.download_path != path
        or record.range_size != range_size
        or not path.is_file()
        or (pinned is not None and not pin)
    )
    if fresh:
        await asyncio.to_thread(cr.set_download, catalogue, record.id, path, range_size)
        path.unlink(missing_ok=True)
        if pinned is not None:
            pin = await _pin_object(pinned, record.key, path)
    return pin


def _write(fd: int, offset: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
    os.fsync(fd)


def _version_path(path: Path) -> Path:
    return path.with_name(path.name + ".version")


def _read_pin(path: Path) -> Pin:
    """The object version a download in ``path`` is pinned to; empty if none is recorded."""
    try:
        raw = json.loads(_version_path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict) or not isinstance(raw.get("if_match"), str):
        return {}
    return {k: v for k, v in raw.items() if k in ("if_match", "version_id") and isinstance(v, str)}


async def _pin_object(store: PinnedReads, key: str, path: Path) -> Pin:
    """Record the ETag and VersionId of ``key`` as it is now, for every ranged GET."""
    etag, version_id = await store.object_version(key)
    pin = {"if_match": etag} | ({"version_id": version_id} if version_id else {})

    def write() -> None:
        tmp = _version_path(path).with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(pin, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, _version_path(path))

    await asyncio.to_thread(write)
    log.info("retrieval.pinned", key=key, **pin)
    return pin


async def _fetch(store: Store, record: cr.RetrievalRecord, a: int, b: int, pin: Pin) -> bytes:
    """One range, whole and verified, retried on transient errors (cut, hash mismatch)."""
    return await fetch_verified(lambda: _reader(store, record, a, b, pin), a, b, key=record.key)


async def fetch_verified(
    read: Callable[[], AsyncIterator[bytes]],
    a: int,
    b: int,
    *,
    key: str,
    attempts: int = _ATTEMPTS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bytes:
    """The bytes ``[a, b)`` that ``read()`` streams, whole and verified (the reader checks
    what it can: length, Glacier's tree hash), read again on a transient error (a cut
    connection, a tree-hash mismatch) up to ``attempts`` times; the last error is raised."""
    for attempt in range(attempts):
        try:
            buf = bytearray()
            async for chunk in read():
                buf += chunk
            if len(buf) != b - a:
                raise TransientStoreError(f"range {a}-{b}: {len(buf)} bytes, expected {b - a}")
            return bytes(buf)
        except TransientStoreError as exc:
            if attempt == attempts - 1:
                raise
            wait = 0.5 * 2**attempt
            log.warning(
                "retrieval.range_retry",
                key=key,
                start=a,
                attempt=attempt + 1,
                retries=attempts - 1,
                wait=wait,
                retry_at=retry_time(wait),
                error=str(exc),
            )
            await sleep(wait)
    raise AssertionError("unreachable")


def _reader(
    store: Store, record: cr.RetrievalRecord, a: int, b: int, pin: Pin
) -> AsyncIterator[bytes]:
    if record.storage_class == VAULT:
        assert record.job_id is not None
        return retrieval_jobs(store).read_job_output(record.job_id, a, b)
    if pin and isinstance(store, PinnedReads):
        return store.read(record.key, a, b, **pin)
    return store.read(record.key, a, b)


async def restore_downloaded(
    path: Path, to: Path, **options: Unpack[StreamOptions]
) -> RestoreResult:
    """Stream the downloaded ciphertext through decrypt -> bundle -> extraction."""

    def run() -> RestoreResult:
        with open(path, "rb", buffering=1 << 20) as src:
            return restore_stream(src, to, **options)

    return await asyncio.to_thread(run)


def remove_download(path: Path) -> None:
    """Delete a finished download, its pinned version and (if empty) its directory."""
    path.unlink(missing_ok=True)
    _version_path(path).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: another download shares it
        path.parent.rmdir()


def forget_download(catalogue: Catalogue, record: cr.RetrievalRecord, path: Path) -> None:
    """Drop a download whose bytes cannot be trusted: its recorded ranges, its file and its
    pinned version. The retrieval itself stays recorded: ``--resume`` downloads it again."""
    cr.forget_download(catalogue, record.id)
    remove_download(path)
    log.warning("retrieval.download_discarded", key=record.key, path=str(path))
