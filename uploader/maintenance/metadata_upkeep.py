"""Each archive's metadata object, kept in step by the maintenance pass.

Reconciliation (:mod:`.reconcile`) judges metadata objects beside their archives; this module
carries out what is particular to them: record what a listing showed, send a missing one
again (it is made from the catalogue's copy of ``cycle.json`` and the indexes), finish a
prune that deleted an archive but not yet its metadata object, and delete the metadata object
whenever pruning deletes its archive.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from uploader import catalogue as cm
from uploader.archive import parse_metadata_key
from uploader.catalogue import Catalogue, ExpectedObject, FlagKind
from uploader.config import EncryptionConfig
from uploader.maintenance.locks import lock_now
from uploader.maintenance.reconcile import ReconcileAction, Reconciliation
from uploader.object_lock import locked_at
from uploader.stores.base import ObjectOptions, Store, StoreError

if TYPE_CHECKING:
    from uploader.maintenance.pass_types import MaintenanceReport

log = structlog.get_logger("uploader.maintenance.metadata_upkeep")


@dataclass(frozen=True, slots=True)
class MetadataUpkeep:
    """How a maintenance pass sends metadata objects again: the encryption (its recipients:
    no identity is needed) and the object options (storage class, ...)."""

    encryption: EncryptionConfig
    options: ObjectOptions = field(default_factory=ObjectOptions)


def apply_metadata_action(
    catalogue: Catalogue, name: str, action: ReconcileAction, as_of: datetime, now: datetime
) -> None:
    """Record what reconciliation found about one metadata object."""
    key, item = action.key, action.listed
    if key is None:
        return
    if action.kind == "metadata_confirmed":
        cm.confirm_metadata_object(catalogue, name, key, as_of)
    elif action.kind == "metadata_adopt" and item is not None:
        parsed = parse_metadata_key(key)
        if parsed is None:
            return
        archive_id = item.store_id if item.store_id != key else None
        cm.record_metadata_object(
            catalogue,
            store=name,
            host=parsed.host,
            cycle_id=parsed.cycle_id,
            archive_key=_archive_key(key),
            expected=ExpectedObject(key, item.size, archive_id),
            at=item.created or as_of,
        )
        log.info("maintenance.metadata_adopted", key=key, size=item.size)
    elif action.kind in ("metadata_missing", "metadata_mismatch"):
        kind = FlagKind(action.kind.removeprefix("metadata_"))
        cm.flag_archive(catalogue, name, key, kind, detail=action.detail, now=now)
        log.error(f"maintenance.metadata_{kind}", key=key, detail=action.detail)
    elif action.kind == "metadata_orphan":
        log.warning("maintenance.metadata_orphan", key=key, detail=action.detail)
    elif action.kind == "metadata_pruned":
        log.info("maintenance.metadata_pruned", key=key, detail=action.detail)
        if item is None:  # deleted already (a pass killed before recording it): forget it
            cm.drop_metadata_object(catalogue, name, key)


def _archive_key(metadata_key: str) -> str:
    parsed = parse_metadata_key(metadata_key)
    assert parsed is not None
    suffix = ".tar.age" if parsed.encrypted else ".tar"
    return f"{parsed.host}/{parsed.cycle_id}{suffix}"


async def keep_metadata(
    store: Store,
    catalogue: Catalogue,
    upkeep: MetadataUpkeep | None,
    result: Reconciliation,
    *,
    host: str,
    now: datetime,
    grace: float,
    report: MaintenanceReport,
) -> None:
    """After reconciliation: delete the metadata objects of archives we pruned, and (with
    ``upkeep``) send again every metadata object of this host's archives that is missing —
    or was never sent, for an archive uploaded more than ``grace`` seconds ago (a run killed
    in between; a younger one is left to the upload that is sending it)."""
    for a in result.of("metadata_pruned"):
        if a.key is not None and a.listed is not None:
            await _delete(store, catalogue, a.key, a.listed.store_id, report=report, now=now)
    if upkeep is None:
        return
    missing = {a.key for a in result.of("metadata_missing") if a.key}
    for archive in await asyncio.to_thread(catalogue.archives, store.name):
        if archive.host != host:
            continue
        known = await asyncio.to_thread(cm.metadata_object_of, catalogue, store.name, archive.key)
        if known is not None and known.key not in missing:
            continue
        if known is None and archive.uploaded_at > now - timedelta(seconds=grace):
            continue  # never sent: the upload that made the archive sends it (or is doing so)
        if await asyncio.to_thread(cm.stored_cycle, catalogue, host, archive.cycle_id) is None:
            continue  # an archive of an earlier version: nothing to make one from
        await _resend(store, catalogue, upkeep, archive.cycle_id, known, host=host, report=report)


async def _resend(
    store: Store,
    catalogue: Catalogue,
    upkeep: MetadataUpkeep,
    cycle_id: str,
    known: cm.MetadataRecord | None,
    *,
    host: str,
    report: MaintenanceReport,
) -> None:
    from uploader.recovery import MetadataError, upload_metadata_object

    try:
        sent = await upload_metadata_object(
            store,
            catalogue,
            host=host,
            cycle_id=cycle_id,
            encryption=upkeep.encryption,
            options=upkeep.options,
        )
    except (StoreError, MetadataError, OSError) as exc:
        report.problems.append(f"sending the metadata object of cycle {cycle_id}: {exc}")
        log.warning("maintenance.metadata_resend_failed", cycle=cycle_id, error=str(exc))
        return
    report.metadata_sent.append(sent.key)
    log.info("maintenance.metadata_resent", key=sent.key, missing=known is not None)


async def delete_metadata_of(
    store: Store,
    catalogue: Catalogue,
    archive_key: str,
    *,
    now: datetime,
    report: MaintenanceReport,
) -> None:
    """Delete the metadata object of the archive ``archive_key`` (just pruned), if any."""
    record = await asyncio.to_thread(cm.metadata_object_of, catalogue, store.name, archive_key)
    if record is not None:
        target = record.expected.archive_id or record.key
        await _delete(store, catalogue, record.key, target, report=report, now=now)


async def _delete(
    store: Store,
    catalogue: Catalogue,
    key: str,
    target: str,
    *,
    report: MaintenanceReport,
    now: datetime,
) -> None:
    """Delete a metadata object (``target``: its key, or its Glacier ArchiveId); the deletion
    waits in the catalogue for a listing to confirm it, like an archive's. Under S3 Object Lock
    it is retained as long as its archive (seconds longer: it was made after it): a delete the
    store would refuse is not sent, the next pass deletes it."""
    if locked_at(until := await lock_now(store, key), now):
        log.info("maintenance.metadata_delete_waits", key=key, locked_until=str(until))
        return
    try:
        await store.delete(target)
    except StoreError as exc:
        report.problems.append(f"deleting {key}: {exc}")
        log.warning("maintenance.metadata_delete_failed", key=key, error=str(exc))
        return
    archive_id = target if target != key else None
    name = store.name
    await asyncio.to_thread(cm.record_metadata_deletion, catalogue, name, key, archive_id, now)
    report.metadata_deleted.append(key)
    log.info("maintenance.metadata_deleted", key=key)
