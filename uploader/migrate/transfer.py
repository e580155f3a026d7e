"""Copy one retrieved vault archive into the destination: resume or start the multipart upload,
stream the verified job output through the driver, check the whole archive's tree hash before
completing, verify the object, and record it.

What is checked, end to end: every range against the tree hash Glacier sends with it; every
part by the destination against its SHA-256 (S3 ``ChecksumSHA256``); before completion, the
tree hash of all the parts' bytes against Glacier's ``ArchiveSHA256TreeHash`` (the bytes are the
vault's, all of them, in order); after it, the object's size, its ``source-archive-id`` and its
checksum (S3: the checksum of the parts' checksums; a readable store: the tree hash of the
object read back).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import structlog

from localbackup import testpoints
from uploader import catalogue as cm
from uploader.catalogue import Catalogue, MigrationPart, MigrationRecord
from uploader.migrate.plan import SOURCE_ARCHIVE_ID
from uploader.migrate.stream import JobOutputPayload, OutputExpired, RangeSpool, spool_dir
from uploader.multipart import (
    IncompleteUpload,
    MultipartOptions,
    ProgressCallback,
    upload_multipart,
)
from uploader.payload import PartPlan, choose_part_size
from uploader.stores import (
    MiB,
    ObjectChecksums,
    ObjectInfo,
    ObjectNotFound,
    PartInfo,
    PermanentStoreError,
    RetrievalJobs,
    Store,
    StoreError,
    TransientStoreError,
    UploadNotFound,
)
from uploader.stores.glacier import TreeHasher, combine_tree_hashes

log = structlog.get_logger(__name__)


class CopyFailed(Exception):
    """The copy of one archive stopped; the message says why and what happens next. Raised
    after the catalogue says where the copy stands (upload kept or dropped)."""


class RetrievalAgain(Exception):
    """The job output expired during the copy: the archive waits for a new retrieval request
    (the parts already in the destination are kept for it)."""


class ArchiveMismatch(PermanentStoreError):
    """The bytes copied are not the vault's archive (its tree hash or size differs): the
    destination upload is aborted before it makes an object."""


def part_size_for(size: int, dest: Store, configured: int | None) -> int:
    """The destination part size of a copy: 1 MiB x 2^n (each part is then a range Glacier
    sends a tree hash for), within the destination's limits; ``[upload] part_size`` if set."""
    caps = replace(dest.capabilities, power_of_two_parts=True)
    if configured is not None and caps.check_part_size(configured) is not None:
        raise PermanentStoreError(
            f"[upload] part_size {configured // MiB} MiB cannot be used to migrate: a copy's "
            "parts must be 1 MiB x 2^n (Glacier checks ranges of that size) and fit this store "
            f'({caps.check_part_size(configured)}); set part_size to e.g. "16MiB" or "auto"'
        )
    return choose_part_size(size, caps, configured)


@dataclass(frozen=True, slots=True)
class CopyContext:
    """What every copy of one run shares."""

    source: RetrievalJobs
    dest: Store
    catalogue: Catalogue
    spool_root: Path
    options: MultipartOptions
    part_size: int | None  # [upload] part_size, None: auto
    clock: Callable[[], datetime]
    progress: ProgressCallback | None = None


@dataclass(frozen=True, slots=True)
class _Upload:
    upload_id: str
    part_size: int
    kept: list[MigrationPart]
    held: dict[int, PartInfo]


async def copy_archive(ctx: CopyContext, record: MigrationRecord) -> MigrationRecord:
    """Copy a ready archive (state ``ready``, with its tree hash); the record once copied.
    Raises :class:`CopyFailed` after recording the failure (or, for an expired job output,
    after marking the archive for a new request)."""
    try:
        return await _copy(ctx, record)
    except OutputExpired as exc:
        await asyncio.to_thread(cm.mark_migration_planned, ctx.catalogue, record.id, str(exc))
        raise RetrievalAgain(
            f"the retrieved copy of {record.key} expired during the copy ({exc}): a new "
            "retrieval is needed; the parts already in the destination are kept for it"
        ) from exc
    except CopyFailed as exc:
        await asyncio.to_thread(cm.mark_migration_failed, ctx.catalogue, record.id, str(exc))
        raise


async def _copy(ctx: CopyContext, record: MigrationRecord) -> MigrationRecord:
    started = await _resume(ctx, record)
    if isinstance(started, ObjectInfo):
        return await _finish(ctx, record, started)
    plan = PartPlan(record.size, started.part_size)
    spool = RangeSpool(spool_dir(ctx.spool_root, record))
    await asyncio.to_thread(spool.create)
    spooled = await asyncio.to_thread(cm.spooled_ranges, ctx.catalogue, record.id)
    payload = JobOutputPayload(
        ctx.source,
        ctx.catalogue,
        record,
        plan,
        spool,
        skip={m.part.number for m in started.kept},
        spooled=spooled,
        prefetch=ctx.options.concurrency,
    )
    hooks = _Hooks(ctx.catalogue, record, plan, payload, {m.part.number: m for m in started.kept})
    try:
        async with payload:
            done = await upload_multipart(
                ctx.dest,
                record.key,
                started.upload_id,
                payload,
                plan,
                kept=[m.part for m in started.kept],
                held=started.held,
                options=ctx.options,
                on_part=hooks.on_part,
                progress=ctx.progress,
                before_complete=hooks.whole_archive,
                on_complete=hooks.on_complete,
            )
    except OutputExpired:
        raise
    except TransientStoreError as exc:
        raise CopyFailed(_suspended(record, exc)) from exc
    except (StoreError, IncompleteUpload) as exc:
        now = await asyncio.to_thread(cm.get_migration, ctx.catalogue, record.id)
        if not now.completing:
            await asyncio.to_thread(cm.drop_copy, ctx.catalogue, record.id)
            spool.clear()
        raise CopyFailed(_stopped(record, exc, now.completing)) from exc
    testpoints.pause("migrate.after_complete")
    spool.clear()
    return await _finish(ctx, record, done)


@dataclass(frozen=True, slots=True)
class _Hooks:
    """What the driver calls back during one copy: each acknowledged part recorded with the
    tree hash of its bytes, the whole archive's tree hash checked before completion, the
    parts recorded when completion is asked for."""

    catalogue: Catalogue
    record: MigrationRecord
    plan: PartPlan
    payload: JobOutputPayload
    parts: dict[int, MigrationPart]  # acknowledged so far, by number

    async def on_part(self, part: PartInfo) -> None:
        testpoints.pause("migrate.part_acknowledged")
        tree = self.payload.trees[part.number]
        self.parts[part.number] = MigrationPart(part, tree)
        start = self.plan.span(part.number)[0]
        record = functools.partial(cm.record_copied_part, self.catalogue, self.record.id)
        await asyncio.to_thread(record, part, tree, start)
        await self.payload.acknowledged(part.number)

    def whole_archive(self) -> None:
        got = combine_tree_hashes(self.parts[n].tree_hash for n in range(1, self.plan.count + 1))
        if got != self.record.tree_hash:
            raise ArchiveMismatch(
                f"the bytes copied from {self.record.key} have the SHA-256 tree hash {got}, the "
                f"vault's archive {self.record.tree_hash}"
            )

    async def on_complete(self, acked: list[PartInfo]) -> None:
        ordered = [self.parts[p.number] for p in acked]
        await asyncio.to_thread(cm.begin_copy_completion, self.catalogue, self.record.id, ordered)


def _suspended(record: MigrationRecord, exc: Exception) -> str:
    return (
        f"copying {record.key} stopped: {exc}. The parts already in the destination are kept; "
        "nothing unverified was sent and the source archive is untouched: run migrate --resume "
        "to continue"
    )


def _stopped(record: MigrationRecord, exc: Exception, completing: bool) -> str:
    if completing:
        return (
            f"completing the copy of {record.key} failed: {exc}. The next run completes it "
            "again; the source archive is untouched"
        )
    return (
        f"copying {record.key} failed: {exc}. The destination upload was aborted and the source "
        "archive is untouched: run migrate --resume to copy it again"
    )


async def _resume(ctx: CopyContext, record: MigrationRecord) -> _Upload | ObjectInfo:
    """The upload to continue (its kept and held parts), a new one, or the object when an
    earlier run completed it."""
    dest, key = ctx.dest, record.key
    if record.upload_id is None or record.part_size is None:
        return await _start(ctx, record)
    recorded = await asyncio.to_thread(cm.copied_parts, ctx.catalogue, record.id)
    if record.completing:
        # Completed before if the upload is gone: the object says whether it is our copy.
        with contextlib.suppress(UploadNotFound):
            await dest.complete_multipart_upload(key, record.upload_id, [m.part for m in recorded])
        info = await _head(dest, key)
        if info is not None and _is_copy(info, record):
            return info
        raise CopyFailed(f"{key}: completed before, but {dest.name} does not show the copy")
    try:
        listed = {p.number: p for p in await dest.list_parts(key, record.upload_id)}
    except UploadNotFound:
        info = await _head(dest, key)
        if info is not None and _is_copy(info, record):
            return info
        await asyncio.to_thread(cm.drop_copy, ctx.catalogue, record.id)
        return await _start(ctx, replace(record, upload_id=None, part_size=None))
    kept = [m for m in recorded if _same(listed.get(m.part.number), m.part)]
    gone = {m.part.number for m in recorded} - {m.part.number for m in kept}
    if gone:
        await asyncio.to_thread(cm.forget_copied_parts, ctx.catalogue, record.id, gone)
    numbers = {m.part.number for m in kept}
    held = {n: p for n, p in listed.items() if n not in numbers and p.checksum}
    log.info("migrate.resuming", key=key, parts_kept=len(kept), parts_held=len(held))
    return _Upload(record.upload_id, record.part_size, kept, held)


async def _start(ctx: CopyContext, record: MigrationRecord) -> _Upload | ObjectInfo:
    dest, key = ctx.dest, record.key
    info = await _head(dest, key)
    if info is not None:
        if _is_copy(info, record):
            return info  # completed by a run whose record was lost
        raise CopyFailed(
            f"{key} already exists in {dest.name} and is not the copy of vault archive "
            f"{record.archive_id[:16]}...: it is not overwritten (move it away, or leave this "
            "archive in the vault)"
        )
    for stray in await dest.list_multipart_uploads(key):
        if stray.key == key:  # left by a run killed between creating and recording it
            log.warning("migrate.stray_aborted", key=key, upload_id=stray.upload_id)
            await dest.abort_multipart_upload(key, stray.upload_id)
    part_size = part_size_for(record.size, dest, ctx.part_size)
    upload_id = await dest.create_multipart_upload(key, part_size, record.metadata)
    await asyncio.to_thread(cm.start_copy, ctx.catalogue, record.id, upload_id, part_size)
    return _Upload(upload_id, part_size, [], {})


async def _head(dest: Store, key: str) -> ObjectInfo | None:
    try:
        return await dest.head(key)
    except ObjectNotFound:
        return None


def _is_copy(info: ObjectInfo, record: MigrationRecord) -> bool:
    return info.size == record.size and info.metadata.get(SOURCE_ARCHIVE_ID) == record.archive_id


def _same(listed: PartInfo | None, recorded: PartInfo) -> bool:
    return (
        listed is not None
        and listed.size == recorded.size
        and listed.checksum in ("", recorded.checksum)
    )


async def _finish(ctx: CopyContext, record: MigrationRecord, info: ObjectInfo) -> MigrationRecord:
    """Verify the object; record it (and the cycle's archive) as copied. A copy that fails
    verification is deleted from the destination: it is ours and it is wrong."""
    parts = await asyncio.to_thread(cm.copied_parts, ctx.catalogue, record.id)
    try:
        checksum = await _verify(ctx, record, info, [m.part for m in parts])
    except ArchiveMismatch as exc:
        await ctx.dest.delete(record.key)
        await asyncio.to_thread(cm.drop_copy, ctx.catalogue, record.id)
        raise CopyFailed(
            f"the copy of {record.key} failed verification and was deleted from "
            f"{ctx.dest.name}: {exc}; the source archive is untouched"
        ) from exc
    now = ctx.clock()
    copied = functools.partial(cm.mark_copied, locked_until=info.locked_until)
    await asyncio.to_thread(copied, ctx.catalogue, record, checksum, now)
    log.info("migrate.copied", key=record.key, bytes=record.size, checksum=checksum)
    return await asyncio.to_thread(cm.get_migration, ctx.catalogue, record.id)


async def _verify(
    ctx: CopyContext, record: MigrationRecord, info: ObjectInfo, parts: list[PartInfo]
) -> str | None:
    """What the destination says about the object, checked; returned for the record."""
    dest, key = ctx.dest, record.key
    if not _is_copy(info, record):
        raise ArchiveMismatch(f"{key}: {info.size} bytes, metadata {dict(info.metadata)}")
    if isinstance(dest, ObjectChecksums):
        stored = await dest.stored_checksum(key)
        if stored is not None:
            value, _, count = stored.partition("-")  # S3 may add "-<parts>"
            if parts and (value != composite_checksum(parts) or count not in ("", str(len(parts)))):
                raise ArchiveMismatch(
                    f"{key}: checksum {stored}, the {len(parts)} parts give "
                    f"{composite_checksum(parts)}"
                )
            return stored
    if not dest.capabilities.needs_retrieval:
        hasher = TreeHasher()
        async for chunk in dest.read(key):
            hasher.update(chunk)
        got = hasher.hexdigest()
        if hasher.size != record.size or got != record.tree_hash:
            raise ArchiveMismatch(
                f"{key} read back: tree hash {got}, the vault's {record.tree_hash}"
            )
        return f"treehash:{got}"
    return None


def composite_checksum(parts: list[PartInfo]) -> str:
    """S3's checksum of an object made of ``parts``: the base64 SHA-256 of their SHA-256s."""
    digest = hashlib.sha256()
    for p in sorted(parts, key=lambda p: p.number):
        digest.update(base64.b64decode(p.checksum))
    return base64.b64encode(digest.digest()).decode()
