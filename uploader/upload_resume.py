"""Picking up an interrupted upload: what an earlier attempt left, and how it is finished.

The catalogue remembers each upload in progress and each acknowledged part. :func:`find_resume`
confirms them with the store: the parts it still holds are kept (and those it holds that nobody
recorded, a crash right after the acknowledgement, are matched by checksum); an upload that was
completed before the crash becomes its archive record; an upload whose completion was asked for
is completed again (Glacier answers with the same ArchiveId), never started afresh.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from localbackup.formats import SealedCycle
from localbackup.logevents import get_logger
from uploader.archive import ArchiveMetadata
from uploader.bundle import BundleReader, cycle_sha256
from uploader.catalogue import ArchiveRecord, Catalogue, UploadRecord
from uploader.stores import (
    ObjectInfo,
    ObjectNotFound,
    PartInfo,
    PermanentStoreError,
    Store,
    UploadNotFound,
)

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Resume:
    """An upload to go on with: its record, the parts it has done, those the store holds."""

    record: UploadRecord
    done: list[PartInfo]
    held: dict[int, PartInfo]


def upload_pin(cycle: SealedCycle) -> str:
    """What an upload in progress records in ``plaintext_sha256``: the bundle is not read yet."""
    return f"cycle-sha256:{cycle_sha256(cycle)}"


async def finish_upload(
    catalogue: Catalogue,
    record: UploadRecord,
    sha256: str,
    size: int,
    archive_id: str | None = None,
    *,
    confirmed: bool = True,
    info: ObjectInfo | None = None,
) -> ArchiveRecord:
    """The archive record, with the bundle SHA-256 computed while it was read, the store-side
    id (a Glacier ArchiveId) that a retrieval needs later, and what the store showed of it
    (``info``): the ETag and version ``verify`` compares later, and the S3 Object Lock
    retention pruning respects; in one transaction."""
    done = dataclasses.replace(record, plaintext_sha256=sha256)
    etag = info.etag if info else None
    version_id = info.version_id if info else None
    return await asyncio.to_thread(
        lambda: catalogue.finish_upload(
            done,
            size,
            archive_id,
            confirmed=confirmed,
            etag=etag,
            version_id=version_id,
            locked_until=info.locked_until if info else None,
        )
    )


async def find_resume(
    store: Store, catalogue: Catalogue, bundle: BundleReader, key: str
) -> Resume | ArchiveRecord | None:
    """What an earlier attempt left: parts to keep, a finished archive, or nothing usable."""
    cycle = bundle.cycle
    record = await asyncio.to_thread(catalogue.find_upload, store.name, cycle.cycle_id)
    if record is None:
        return None
    if record.completing:
        return await _complete_again(store, catalogue, bundle, record)
    if record.key != key or record.plaintext_sha256 != upload_pin(cycle):
        log.warning("upload.restarting", key=key, reason="the bundle changed since the last try")
        await store.abort_multipart_upload(record.key, record.upload_id)
        await asyncio.to_thread(catalogue.drop_upload, record.id)
        return None
    try:
        listed = {p.number: p for p in await store.list_parts(key, record.upload_id)}
    except UploadNotFound:
        # Completed just before a crash (or expired): keep the object if it is ours and whole.
        try:
            info = await store.head(key)
        except ObjectNotFound:
            info = None
        if (
            info is not None
            and info.size == record.total_size
            and ArchiveMetadata.read(info.metadata).cycle_sha256 == cycle_sha256(cycle)
        ):
            # Completed only after every file matched; the bundle SHA-256 died with that run.
            sha256 = await asyncio.to_thread(bundle.verify)
            log.info("upload.completed", key=key, bytes=info.size, recovered=True)
            return await finish_upload(
                catalogue, record, sha256, info.size, info.archive_id, info=info
            )
        await asyncio.to_thread(catalogue.drop_upload, record.id)
        return None
    recorded = await asyncio.to_thread(catalogue.parts, record.id)
    done = [p for p in recorded if _same(listed.get(p.number), p)]
    numbers = {p.number for p in recorded}
    trees = store.capabilities.tree_hash_etags
    held = {
        n: p for n, p in listed.items() if n not in numbers and (p.checksum or (trees and p.etag))
    }
    return Resume(record, done, held)


async def _complete_again(
    store: Store, catalogue: Catalogue, bundle: BundleReader, record: UploadRecord
) -> ArchiveRecord | None:
    """An upload whose completion was asked for before the last run ended: complete it again
    (a repeat returns the same Glacier ArchiveId) and record it. Where the store cannot show
    the object and the upload is gone (Glacier, a while later), the archive is recorded as
    completed but unconfirmed: the next inventory confirms it by key, nothing uploads it again.
    """
    key, cycle = record.key, bundle.cycle
    parts = record.completion_parts()
    sha256 = record.completion_sha256()
    gone = False
    try:
        await store.complete_multipart_upload(key, record.upload_id, parts)
    except UploadNotFound:
        gone = True
    info: ObjectInfo | None
    try:
        info = await store.head(key)
    except ObjectNotFound:
        info = None
    if info is not None:
        pinned = ArchiveMetadata.read(info.metadata).cycle_sha256
        if info.size != record.total_size or pinned not in (None, cycle_sha256(cycle)):
            raise PermanentStoreError(
                f"{key}: the store holds {info.size} bytes that are not this cycle's upload "
                f"({record.total_size} bytes); the upload in the catalogue is kept"
            )
        if sha256 is None:
            sha256 = await asyncio.to_thread(bundle.verify)
        log.info("upload.completed", key=key, bytes=info.size, recovered=True)
        return await finish_upload(catalogue, record, sha256, info.size, info.archive_id, info=info)
    if not gone:
        raise PermanentStoreError(f"{key}: completed, but the store does not show it")
    if store.capabilities.immediate_listing:
        # S3 / local: neither the upload nor the object exists, so nothing was made; a new
        # upload writes the same key (no duplicate can come of it).
        log.warning("upload.restarting", key=key, reason="completed upload not in the store")
        await asyncio.to_thread(catalogue.drop_upload, record.id)
        return None
    if sha256 is None:
        sha256 = await asyncio.to_thread(bundle.verify)
    log.warning(
        "upload.completed_unconfirmed",
        key=key,
        bytes=record.total_size,
        reason="the upload was completed before; the next inventory confirms the archive",
    )
    return await finish_upload(catalogue, record, sha256, record.total_size, None, confirmed=False)


def _same(listed: PartInfo | None, recorded: PartInfo) -> bool:
    return (
        listed is not None
        and listed.size == recorded.size
        and listed.checksum in ("", recorded.checksum)
    )
