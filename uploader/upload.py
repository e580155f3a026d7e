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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from localbackup import testpoints
from localbackup.formats import FormatError, SealedCycle, load_sealed_cycle
from localbackup.logevents import bound_fields, get_logger
from uploader.archive import ArchiveMetadata, object_key
from uploader.bundle import BundleError, BundleReader, VerifyingBundle, cycle_sha256
from uploader.catalogue import (
    ArchiveRecord,
    Catalogue,
    FlagKind,
    UploadRecord,
    drop_archive,
    open_flags,
    pruned_at,
    remember_cycle_indexes,
)
from uploader.config import EncryptionConfig, UploadConfig
from uploader.crypto import AgeError, EncryptionState, new_encryption
from uploader.cycle_lock import CycleBusy, cycle_lock
from uploader.keys import recipients_for
from uploader.multipart import (
    IncompleteUpload,
    MultipartOptions,
    ProgressCallback,
    upload_multipart,
)
from uploader.pacing import Pace, UploadPaused
from uploader.payload import EncryptedPayload, PartPlan, PayloadSource, choose_part_size
from uploader.pending import metadata_pending_dirs, pending_cycle_dirs, sealed_cycle_dirs
from uploader.recovery import ensure_metadata_object
from uploader.stores import (
    ObjectInfo,
    ObjectOptions,
    PartInfo,
    Store,
    StoreError,
    TransientStoreError,
)
from uploader.upload_resume import Resume, find_resume, finish_upload, upload_pin

log = get_logger("uploader.upload")


@dataclass(slots=True)
class UploadReport:
    """What one :func:`upload_cycle` call did, filled in as it goes (for the command's
    summary, also when the upload is interrupted half-way)."""

    archived_already: bool = False  # nothing to send: the archive is recorded
    size: int = 0  # bytes of the archive (the encrypted payload)
    parts: int = 0  # parts of the archive
    parts_resumed: int = 0  # parts an earlier, interrupted attempt had sent already
    bytes_resumed: int = 0  # their bytes


class CyclePruned(Exception):
    """The cycle's archive was pruned from the store: uploading it again needs ``force``.

    A refusal of this program's, not a store failure."""

    def __init__(self, cycle_id: str, store: str, at: datetime) -> None:
        self.cycle_id, self.store, self.pruned_at = cycle_id, store, at
        super().__init__(
            f"cycle {cycle_id} was pruned from {store} on {at:%Y-%m-%d %H:%M} UTC; "
            "it is not uploaded again unless forced"
        )


# The cycle's own bytes, format or encryption are at fault: trying again will not help.
CYCLE_FAULTS: tuple[type[Exception], ...] = (BundleError, FormatError, AgeError)
# Every way the upload of one cycle fails that is not a bug: the store, a refusal of ours
# (CyclePruned, IncompleteUpload), the cycle itself, the operating system.
UPLOAD_FAILURES: tuple[type[Exception], ...] = (
    StoreError,
    CyclePruned,
    IncompleteUpload,
    *CYCLE_FAULTS,
    OSError,
)


FLAGGED_MISSING = "flagged MISSING"
UNCONFIRMED = "unconfirmed"


def archive_doubt(catalogue: Catalogue, archive: ArchiveRecord) -> str | None:
    """Why an archive record may not stand for an archive in the store, if it may not:
    :data:`FLAGGED_MISSING` (an inventory or listing did not show it) or :data:`UNCONFIRMED`
    (a completion the store never showed: a Glacier upload that may have expired before it was
    completed). ``upload CYCLE`` sends a MISSING one again, ``upload --force CYCLE`` either."""
    for f in open_flags(catalogue, archive.store):
        # a flag raised about this record, not about an archive the key held before it
        if (
            f.kind == FlagKind.MISSING
            and f.key == archive.key
            and f.last_seen >= archive.uploaded_at
        ):
            return FLAGGED_MISSING
    if archive.confirmed_at is None:
        return UNCONFIRMED
    return None


async def _requeue(store: Store, catalogue: Catalogue, archive: ArchiveRecord, why: str) -> None:
    """Forget an archive record that may stand for nothing (``force``), and any upload left."""
    log.warning("upload.requeued", key=archive.key, reason=why)
    await asyncio.to_thread(drop_archive, catalogue, archive.store, archive.key)
    stale = await asyncio.to_thread(catalogue.find_upload, store.name, archive.cycle_id)
    if stale is not None:
        try:
            await store.abort_multipart_upload(stale.key, stale.upload_id)
        except StoreError as exc:
            log.info("upload.stale_upload_dropped", key=stale.key, error=str(exc))
        await asyncio.to_thread(catalogue.drop_upload, stale.id)


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
    metadata_options: ObjectOptions | None = None,
    resend_missing: bool = False,
    pace: Pace | None = None,
    report: UploadReport | None = None,
) -> ArchiveRecord:
    """Upload the sealed cycle in ``cycle_dir`` (resuming an interrupted attempt), then its
    metadata object (:func:`uploader.recovery.ensure_metadata_object`, written with
    ``metadata_options``): a cycle is uploaded once both are in the store. The cycle's indexes
    and ``cycle.json`` go into the catalogue first (:func:`remember_cycle_indexes`). An archive
    recorded earlier gets its metadata object now if it has none (an upload of an earlier
    version), unless the archive itself is in doubt (:func:`archive_doubt`). ``report`` is
    filled in with what was done.

    The cycle's lock (:mod:`uploader.cycle_lock`) is held throughout: :class:`CycleBusy` if
    another process is uploading it now. A cycle whose archive was pruned from the store raises
    :class:`CyclePruned` unless ``force`` is set (pruning decided it should not be there; the
    spool may still hold it). With ``force``, a cycle whose archive is recorded but was never
    confirmed by the store, or is flagged MISSING (see :func:`archive_doubt`), is uploaded
    again: its archive record (and any upload record left) is dropped first; with
    ``resend_missing``, one flagged MISSING. A confirmed archive is never sent twice.
    ``pace`` (:func:`uploader.pacing.upload_pace`: ``[upload] max_rate`` and ``window``) is
    awaited before each part; once the window closes the upload stops at a part boundary with
    :class:`UploadPaused`, its parts kept for the next attempt.
    """
    cycle = await asyncio.to_thread(load_sealed_cycle, cycle_dir)
    # One process uploads a cycle at a time (CycleBusy otherwise): two would race each other
    # through the catalogue and the store, and each could abort the other's upload as a stray.
    with bound_fields(cycle=cycle.cycle_id), cycle_lock(catalogue.state_dir, cycle.cycle_id):
        report = report if report is not None else UploadReport()
        again: tuple[str, ...] = (FLAGGED_MISSING, UNCONFIRMED) if force else ()
        if resend_missing and not force:
            again = (FLAGGED_MISSING,)
        record = await _archived(store, catalogue, cycle, force=force, again=again)
        if record is not None:
            report.archived_already, report.size = True, record.size
        else:
            record = await _upload_archive(
                cycle_dir,
                cycle,
                store,
                catalogue,
                encryption,
                upload_cfg,
                progress,
                options=options,
                pace=pace,
                report=report,
            )
        await asyncio.to_thread(remember_cycle_indexes, catalogue, cycle_dir)
        testpoints.pause("upload.before_metadata")
        doubt = await asyncio.to_thread(archive_doubt, catalogue, record)
        if doubt is not None:  # the archive may not be in the store: nothing to describe
            log.warning("metadata.not_sent", key=record.key, reason=f"the archive is {doubt}")
            return record
        await ensure_metadata_object(
            store,
            catalogue,
            host=cycle.host,
            cycle_id=cycle.cycle_id,
            archive_key=record.key,
            encryption=encryption,
            options=metadata_options,
            cycle_dir=cycle_dir,
        )
        return record


async def _upload_archive(  # noqa: PLR0917 - upload_cycle's own arguments, handed on
    cycle_dir: Path,
    cycle: SealedCycle,
    store: Store,
    catalogue: Catalogue,
    encryption: EncryptionConfig,
    upload_cfg: UploadConfig,
    progress: ProgressCallback | None,
    *,
    options: MultipartOptions | None,
    pace: Pace | None,
    report: UploadReport,
) -> ArchiveRecord:
    """Send the cycle's archive (resuming what an earlier attempt left) and record it;
    ``report`` says what was sent."""
    # Files are checked against cycle.json as the parts are made (VerifyingBundle), and
    # whatever the parts do not cover (acknowledged by an earlier attempt) is read before
    # completing.
    with BundleReader(cycle_dir, cycle) as bundle, VerifyingBundle(bundle) as verified:
        key = object_key(cycle.host, cycle.cycle_id, encryption.enabled)
        resume = await find_resume(store, catalogue, bundle, key)
        if isinstance(resume, ArchiveRecord):
            report.archived_already, report.size = True, resume.size
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
            resume = Resume(record, done=[], held={})
        else:
            done, held = len(resume.done), len(resume.held)
            log.info("upload.resuming", key=key, parts_done=done, parts_held=held)
        _fill(report, resume)
        opts = options or MultipartOptions(
            concurrency=upload_cfg.concurrency, retries=upload_cfg.retries, pace=pace
        )
        info = await _send(
            store,
            catalogue,
            resume,
            key=key,
            verified=verified,
            options=opts,
            progress=progress,
        )
    record = resume.record
    testpoints.pause("upload.after_complete")
    return await finish_upload(
        catalogue, record, verified.sha256, info.size, info.archive_id, info=info
    )


def _fill(report: UploadReport, resume: Resume) -> None:
    record = resume.record
    earlier = {p.number: p.size for p in resume.done} | {n: p.size for n, p in resume.held.items()}
    report.size = record.total_size
    report.parts = PartPlan(record.total_size, record.part_size).count
    report.parts_resumed, report.bytes_resumed = len(earlier), sum(earlier.values())


async def _archived(
    store: Store,
    catalogue: Catalogue,
    cycle: SealedCycle,
    *,
    force: bool,
    again: tuple[str, ...],
) -> ArchiveRecord | None:
    """The cycle's archive if it is recorded already (and not in one of the doubts ``again``
    names); :class:`CyclePruned` if it was pruned from the store and ``force`` is not set."""
    found = await asyncio.to_thread(catalogue.find_archive, store.name, cycle.cycle_id)
    if found is not None and again:
        doubt = await asyncio.to_thread(archive_doubt, catalogue, found)
        if doubt in again:
            await _requeue(store, catalogue, found, str(doubt))
            found = None
    if found is not None:
        log.info("upload.skipped", reason="already archived", key=found.key)
        return found
    pruned = await asyncio.to_thread(pruned_at, catalogue, store.name, cycle.cycle_id)
    if pruned is not None and not force:
        log.warning("upload.refused", reason="pruned", pruned_at=pruned.isoformat())
        raise CyclePruned(cycle.cycle_id, store.name, pruned.astimezone(UTC))
    return None


async def _send(
    store: Store,
    catalogue: Catalogue,
    resume: Resume,
    *,
    key: str,
    verified: VerifyingBundle,
    options: MultipartOptions,
    progress: ProgressCallback | None,
) -> ObjectInfo:
    """Upload the parts ``resume`` lacks through the driver, recording each acknowledged part
    and, before completion is asked for, the parts and the bundle SHA-256."""
    record = resume.record
    state = EncryptionState.from_json(record.encryption) if record.encryption else None

    async def on_part(part: PartInfo) -> None:
        testpoints.pause("upload.part_acknowledged")
        await asyncio.to_thread(catalogue.record_part, record.id, part)
        testpoints.pause("upload.part_recorded")

    completing = False

    async def on_complete(parts: list[PartInfo]) -> None:
        nonlocal completing
        # Persisted before the store is asked: a crash or a lost answer from here on is
        # resolved by completing again (same Glacier ArchiveId), never by a new upload.
        sha256 = verified.sha256
        await asyncio.to_thread(catalogue.begin_completion, record.id, parts, sha256)
        completing = True
        testpoints.pause("upload.before_complete")

    try:
        return await upload_multipart(
            store,
            key,
            record.upload_id,
            _payload(verified, state),
            PartPlan(record.total_size, record.part_size),
            done=resume.done,
            held=resume.held,
            options=options,
            on_part=on_part,
            progress=progress,
            before_complete=verified.finish,
            on_complete=on_complete,
        )
    except (TransientStoreError, UploadPaused):
        raise  # the upload and its parts are kept: the next attempt resumes them
    except Exception:
        if not completing:
            await asyncio.to_thread(catalogue.drop_upload, record.id)  # the driver aborted
        raise


def _payload(bundle: PayloadSource, state: EncryptionState | None) -> PayloadSource:
    return bundle if state is None else EncryptedPayload(bundle, state)


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
    metadata = ArchiveMetadata(
        host=cycle.host,
        cycle_id=cycle.cycle_id,
        cycle_sha256=cycle_sha256(cycle),
        plaintext_size=bundle.size,
        encryption="age" if state else "none",
    ).as_metadata()
    upload_id = await store.create_multipart_upload(key, part_size, metadata)
    testpoints.pause("upload.created")
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
            plaintext_sha256=upload_pin(cycle),
            encryption=state.to_json() if state else None,
        )
    )


__all__: Sequence[str] = [
    "CYCLE_FAULTS",
    "FLAGGED_MISSING",
    "UNCONFIRMED",
    "UPLOAD_FAILURES",
    "CycleBusy",
    "CyclePruned",
    "UploadReport",
    "archive_doubt",
    "metadata_pending_dirs",
    "pending_cycle_dirs",
    "recipients_for",
    "sealed_cycle_dirs",
    "upload_cycle",
]
