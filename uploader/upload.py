"""The upload use case: one sealed cycle -> one encrypted archive in a store, resumable.

The catalogue remembers each upload in progress (store upload id, part size, the encryption
state) and each acknowledged part. After a crash, the next attempt regenerates the same bytes,
confirms the recorded parts with the store, sends only the missing ones and completes: one
object, nothing acknowledged is sent twice, and a cycle already archived is never sent again.

The bundle is not read ahead of the upload. What identifies it up front is the SHA-256 of its
``cycle.json`` (which pins every file's size and SHA-256): that goes into the object metadata,
and an upload in progress keeps it in the catalogue's ``plaintext_sha256`` column as
``cycle-sha256:<hex>``. Each file is checked against ``cycle.json`` while the bundle streams
through the upload (a mismatch aborts before completing; a resumed upload reads, without
sending, the bytes its acknowledged parts hold), and the bundle's own SHA-256, computed on the
way, becomes the archive record's ``plaintext_sha256``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from structlog.contextvars import bound_contextvars

from localbackup import testpoints
from localbackup.formats import CYCLE_JSON, FORMAT_VERSION, SealedCycle, load_sealed_cycle
from uploader.bundle import BundleReader, VerifyingBundle, cycle_sha256
from uploader.catalogue import (
    ArchiveRecord,
    Catalogue,
    UploadRecord,
    drop_archive,
    open_flags,
    pruned_at,
    pruned_cycle_ids,
)
from uploader.config import EncryptionConfig, UploadConfig
from uploader.crypto import (
    EncryptionState,
    Recipient,
    ScryptRecipient,
    new_encryption,
    parse_recipient,
    read_passphrase,
)
from uploader.multipart import (
    EncryptedPayload,
    MultipartOptions,
    PartPlan,
    PayloadSource,
    ProgressCallback,
    choose_part_size,
    upload_multipart,
)
from uploader.stores.base import (
    ObjectInfo,
    ObjectNotFound,
    PartInfo,
    PermanentStoreError,
    Store,
    TransientStoreError,
    UploadNotFound,
)

log = structlog.get_logger("uploader.upload")

ARCHIVE_FORMAT = "glacier-backup-archive"


def object_key(host: str, cycle_id: str, encrypted: bool = True) -> str:
    """Where a cycle's archive lives in a store (the store adds its own prefix)."""
    return f"{host}/{cycle_id}.tar.age" if encrypted else f"{host}/{cycle_id}.tar"


def sealed_cycle_dirs(spool_dir: Path) -> list[Path]:
    """Every sealed cycle in the spool, oldest first."""
    root = spool_dir / "cycles"
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob(f"*/{CYCLE_JSON}"))


def pending_cycle_dirs(spool_dir: Path, catalogue: Catalogue, store: str) -> list[Path]:
    """Sealed cycles that have no archive in ``store`` yet and were never pruned from it."""
    done = {a.cycle_id for a in catalogue.archives(store=store)}
    done |= pruned_cycle_ids(catalogue, store)
    return [d for d in sealed_cycle_dirs(spool_dir) if d.name not in done]


class CyclePruned(PermanentStoreError):
    """The cycle's archive was pruned from the store: uploading it again needs ``force``."""

    def __init__(self, cycle_id: str, store: str, at: datetime) -> None:
        self.cycle_id, self.store, self.pruned_at = cycle_id, store, at
        super().__init__(
            f"cycle {cycle_id} was pruned from {store} on {at:%Y-%m-%d %H:%M} UTC; "
            "it is not uploaded again unless forced"
        )


def recipients_for(cfg: EncryptionConfig) -> list[Recipient]:
    """The age recipients of the configuration (reads the passphrase if that is the key)."""
    cfg.require_key()
    if cfg.recipients:
        return [parse_recipient(r) for r in cfg.recipients]
    if cfg.passphrase_file is not None:
        return [ScryptRecipient(read_passphrase(file=cfg.passphrase_file))]
    return [ScryptRecipient(read_passphrase(env=cfg.passphrase_env))]


def archive_doubt(catalogue: Catalogue, archive: ArchiveRecord) -> str | None:
    """Why an archive record may not stand for an archive in the store, if it may not:
    ``"flagged MISSING"`` (an inventory or listing did not show it) or ``"unconfirmed"`` (a
    completion the store never showed: a Glacier upload that may have expired before it was
    completed). ``upload --force`` uploads such a cycle again."""
    for f in open_flags(catalogue, archive.store):
        # a flag raised about this record, not about an archive the key held before it
        if f.kind == "missing" and f.key == archive.key and f.last_seen >= archive.uploaded_at:
            return "flagged MISSING"
    if archive.confirmed_at is None:
        return "unconfirmed"
    return None


async def _requeue(store: Store, catalogue: Catalogue, archive: ArchiveRecord, why: str) -> None:
    """Forget an archive record that may stand for nothing (``force``), and any upload left."""
    log.warning("upload.requeued", key=archive.key, reason=why)
    await asyncio.to_thread(drop_archive, catalogue, archive.store, archive.key)
    stale = await asyncio.to_thread(catalogue.find_upload, store.name, archive.cycle_id)
    if stale is not None:
        try:
            await store.abort_multipart_upload(stale.key, stale.upload_id)
        except (UploadNotFound, PermanentStoreError, TransientStoreError) as exc:
            log.info("upload.stale_upload_dropped", key=stale.key, error=str(exc))
        await asyncio.to_thread(catalogue.drop_upload, stale.id)


@dataclass(frozen=True, slots=True)
class _Resume:
    record: UploadRecord
    done: list[PartInfo]
    held: dict[int, PartInfo]


async def upload_cycle(  # noqa: PLR0917 - the use case's documented signature
    cycle_dir: Path,
    store: Store,
    catalogue: Catalogue,
    encryption: EncryptionConfig,
    upload_cfg: UploadConfig,
    progress: ProgressCallback | None = None,
    *,
    options: MultipartOptions | None = None,
    force: bool = False,
) -> ArchiveRecord:
    """Upload the sealed cycle in ``cycle_dir`` (resuming an interrupted attempt).

    A cycle whose archive was pruned from the store raises :class:`CyclePruned` unless
    ``force`` is set (pruning decided it should not be there; the spool may still hold it).
    With ``force``, a cycle whose archive is recorded but was never confirmed by the store, or
    is flagged MISSING (see :func:`archive_doubt`), is uploaded again: its archive record (and
    any upload record left) is dropped first. A confirmed archive is never sent twice.
    """
    cycle = await asyncio.to_thread(load_sealed_cycle, cycle_dir)
    with bound_contextvars(cycle=cycle.cycle_id):
        found = await asyncio.to_thread(catalogue.find_archive, store.name, cycle.cycle_id)
        if found is not None and force:
            doubt = await asyncio.to_thread(archive_doubt, catalogue, found)
            if doubt is not None:
                await _requeue(store, catalogue, found, doubt)
                found = None
        if found is not None:
            log.info("upload.skipped", reason="already archived", key=found.key)
            return found
        pruned = await asyncio.to_thread(pruned_at, catalogue, store.name, cycle.cycle_id)
        if pruned is not None and not force:
            log.warning("upload.refused", reason="pruned", pruned_at=pruned.isoformat())
            raise CyclePruned(cycle.cycle_id, store.name, pruned.astimezone(UTC))
        # Files are checked against cycle.json as the parts are made (VerifyingBundle), and
        # whatever the parts do not cover (acknowledged by an earlier attempt) is read before
        # completing.
        with BundleReader(cycle_dir, cycle) as bundle, VerifyingBundle(bundle) as verified:
            key = object_key(cycle.host, cycle.cycle_id, encryption.enabled)
            resume = await _resume(store, catalogue, bundle, key)
            if isinstance(resume, ArchiveRecord):
                return resume
            if resume is None:
                record = await _start(
                    store,
                    catalogue,
                    cycle=cycle,
                    key=key,
                    bundle=bundle,
                    encryption=encryption,
                    upload_cfg=upload_cfg,
                )
                done: list[PartInfo] = []
                held: dict[int, PartInfo] = {}
            else:
                record, done, held = resume.record, resume.done, resume.held
                log.info("upload.resuming", key=key, parts_done=len(done), parts_held=len(held))
            state = EncryptionState.from_json(record.encryption) if record.encryption else None

            async def on_part(part: PartInfo) -> None:
                testpoints.pause("upload.part_acknowledged")
                await asyncio.to_thread(catalogue.record_part, record.id, part)
                testpoints.pause("upload.part_recorded")

            completing = False

            async def on_complete(parts: list[PartInfo]) -> None:
                nonlocal completing
                # Persisted before the store is asked: a crash or a lost answer from here on
                # is resolved by completing again (same Glacier ArchiveId), never a new upload.
                sha256 = verified.sha256
                await asyncio.to_thread(catalogue.begin_completion, record.id, parts, sha256)
                completing = True
                testpoints.pause("upload.before_complete")

            opts = options or MultipartOptions(
                concurrency=upload_cfg.concurrency, retries=upload_cfg.retries
            )
            try:
                info = await upload_multipart(
                    store,
                    key,
                    record.upload_id,
                    _payload(verified, state),
                    PartPlan(record.total_size, record.part_size),
                    done=done,
                    held=held,
                    options=opts,
                    on_part=on_part,
                    progress=progress,
                    before_complete=verified.finish,
                    on_complete=on_complete,
                )
            except TransientStoreError:
                raise  # the upload and its parts are kept: the next attempt resumes them
            except Exception:
                if not completing:
                    await asyncio.to_thread(catalogue.drop_upload, record.id)  # driver aborted
                raise
        testpoints.pause("upload.after_complete")
        return await _finish(catalogue, record, verified.sha256, info.size, info.archive_id)


def _payload(bundle: PayloadSource, state: EncryptionState | None) -> PayloadSource:
    return bundle if state is None else EncryptedPayload(bundle, state)


def _pin(cycle: SealedCycle) -> str:
    """What an upload in progress records in ``plaintext_sha256``: the bundle is not read yet."""
    return f"cycle-sha256:{cycle_sha256(cycle)}"


async def _finish(
    catalogue: Catalogue,
    record: UploadRecord,
    sha256: str,
    size: int,
    archive_id: str | None = None,
    *,
    confirmed: bool = True,
) -> ArchiveRecord:
    """The archive record, with the bundle SHA-256 computed while it was read, and the
    store-side id (a Glacier ArchiveId) that a retrieval needs later, in one transaction."""
    done = dataclasses.replace(record, plaintext_sha256=sha256)
    return await asyncio.to_thread(
        lambda: catalogue.finish_upload(done, size, archive_id, confirmed=confirmed)
    )


async def _start(
    store: Store,
    catalogue: Catalogue,
    *,
    cycle: SealedCycle,
    key: str,
    bundle: BundleReader,
    encryption: EncryptionConfig,
    upload_cfg: UploadConfig,
) -> UploadRecord:
    # An upload the catalogue does not know is left from a crash between create and record.
    for stray in await store.list_multipart_uploads(key):
        if stray.key == key:
            log.warning("upload.stray_aborted", key=key, upload_id=stray.upload_id)
            await store.abort_multipart_upload(key, stray.upload_id)
    state = None
    if encryption.enabled:
        recipients = await asyncio.to_thread(recipients_for, encryption)
        state = await asyncio.to_thread(new_encryption, recipients)
    source = _payload(bundle, state)
    part_size = choose_part_size(source.size, store.capabilities, upload_cfg.part_size)
    metadata = {
        "format": ARCHIVE_FORMAT,
        "format-version": str(FORMAT_VERSION),
        "host": cycle.host,
        "cycle-id": cycle.cycle_id,
        "cycle-sha256": cycle_sha256(cycle),
        "plaintext-size": str(bundle.size),
        "encryption": "age" if state else "none",
    }
    upload_id = await store.create_multipart_upload(key, part_size, metadata)
    return await asyncio.to_thread(
        lambda: catalogue.start_upload(
            store=store.name,
            key=key,
            cycle_id=cycle.cycle_id,
            host=cycle.host,
            upload_id=upload_id,
            part_size=part_size,
            total_size=source.size,
            plaintext_size=bundle.size,
            plaintext_sha256=_pin(cycle),
            encryption=state.to_json() if state else None,
        )
    )


async def _resume(
    store: Store, catalogue: Catalogue, bundle: BundleReader, key: str
) -> _Resume | ArchiveRecord | None:
    """What an earlier attempt left: parts to keep, a finished archive, or nothing usable."""
    cycle = bundle.cycle
    record = await asyncio.to_thread(catalogue.find_upload, store.name, cycle.cycle_id)
    if record is None:
        return None
    if record.completing:
        return await _complete_again(store, catalogue, bundle, record)
    if record.key != key or record.plaintext_sha256 != _pin(cycle):
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
            and info.metadata.get("cycle-sha256") == cycle_sha256(cycle)
        ):
            # Completed only after every file matched; the bundle SHA-256 died with that run.
            sha256 = await asyncio.to_thread(bundle.verify)
            log.info("upload.completed", key=key, bytes=info.size, recovered=True)
            return await _finish(catalogue, record, sha256, info.size, info.archive_id)
        await asyncio.to_thread(catalogue.drop_upload, record.id)
        return None
    recorded = await asyncio.to_thread(catalogue.parts, record.id)
    done = [p for p in recorded if _same(listed.get(p.number), p)]
    numbers = {p.number for p in recorded}
    trees = store.capabilities.tree_hash_etags
    held = {
        n: p for n, p in listed.items() if n not in numbers and (p.checksum or (trees and p.etag))
    }
    return _Resume(record, done, held)


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
        if info.size != record.total_size or info.metadata.get("cycle-sha256") not in (
            None,
            cycle_sha256(cycle),
        ):
            raise PermanentStoreError(
                f"{key}: the store holds {info.size} bytes that are not this cycle's upload "
                f"({record.total_size} bytes); the upload in the catalogue is kept"
            )
        if sha256 is None:
            sha256 = await asyncio.to_thread(bundle.verify)
        log.info("upload.completed", key=key, bytes=info.size, recovered=True)
        return await _finish(catalogue, record, sha256, info.size, info.archive_id)
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
    return await _finish(catalogue, record, sha256, record.total_size, None, confirmed=False)


def _same(listed: PartInfo | None, recorded: PartInfo) -> bool:
    return (
        listed is not None
        and listed.size == recorded.size
        and listed.checksum in ("", recorded.checksum)
    )


__all__: Sequence[str] = [
    "CyclePruned",
    "archive_doubt",
    "object_key",
    "pending_cycle_dirs",
    "recipients_for",
    "sealed_cycle_dirs",
    "upload_cycle",
]
