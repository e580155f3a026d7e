"""One maintenance pass: learn what the store holds, reconcile the catalogue, prune.

A thin executor: the decisions are the pure planners' (``plan_inventory``, ``reconcile``,
``plan_prune``); this module only talks to the store and the catalogue. It never raises for the
store's sake: expired job output, failed or vanished jobs, a vault without an inventory yet and
store errors end up in the report and the log, and the next pass carries on.

- stores with immediate listing (S3, local): list, head the unknown objects for their metadata,
  reconcile;
- Glacier vaults: advance the inventory job state machine (initiate / describe / fetch output),
  reconcile when an inventory arrives;
- abort this host's orphaned multipart uploads (unknown to the catalogue, older than
  ``orphan_grace``: see :mod:`uploader.maintenance.orphans`), whose parts would be billed forever;
- keep each archive's metadata object in step (:mod:`.metadata_upkeep`): send a missing one
  again, delete the one of an archive pruned earlier;
- then plan the prune and, unless ``dry_run``, delete (an archive, then its metadata object);
  each deletion is recorded first (the archive leaves the catalogue's archives and waits,
  pending, until a later listing or inventory confirms it), then asked of the store. A pending
  deletion that a later listing still shows (a kill between the two steps, a delete the store
  did not carry out) is asked again, and flagged only if that fails: the catalogue and the
  store converge, and an archive we meant to delete is never reported MISSING. In a bucket
  with S3 Object Lock, an archive's retention is asked of the store right before its delete
  (:mod:`.locks`): a delete that would fail is never sent.

A cycle being uploaded by another process (its lock, :mod:`uploader.cycle_lock`) is left alone:
its object is not adopted, its multipart upload not aborted, its archive not deleted in this
pass; the next pass looks again.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from functools import partial

from localbackup import testpoints
from localbackup.logevents import get_logger
from uploader import catalogue as cm
from uploader.archive import ArchiveMetadata, ObjectKind, parse_object_key
from uploader.catalogue import Catalogue, FlagKind
from uploader.cycle_lock import CycleBusy, cycle_lock
from uploader.maintenance.inventory_pass import advance_inventory
from uploader.maintenance.locks import hidden_archives, lock_now, vault_locked
from uploader.maintenance.metadata_upkeep import (
    apply_metadata_action,
    delete_metadata_of,
    keep_metadata,
)
from uploader.maintenance.orphans import KnownUpload, host_prefix, plan_orphan_aborts
from uploader.maintenance.pass_types import MaintenanceConfig, MaintenanceReport
from uploader.maintenance.prune import PrunePolicy, may_upload, plan_prune
from uploader.maintenance.reconcile import ListedArchive, Listing, Reconciliation, reconcile
from uploader.object_lock import locked_at
from uploader.stores import InventoryJobs, ObjectInfo, ObjectNotFound, Store, StoreError

log = get_logger("uploader.maintenance.executor")


async def run_maintenance(
    store: Store, catalogue: Catalogue, config: MaintenanceConfig, now: datetime
) -> MaintenanceReport:
    """One pass over an open store (see the module docstring). Never raises a store error."""
    report = MaintenanceReport(store.name)
    listing: Listing | None = None
    try:
        if store.capabilities.immediate_listing:
            listing = await _list(store, catalogue, now, config.host)
            report.inventory_status = "listed"
        elif isinstance(store, InventoryJobs):
            outcome = await advance_inventory(
                store,
                report.store,
                catalogue,
                config.inventory,
                now,
                request=config.request_inventory,
                grace=config.grace,
            )
            listing = outcome.listing
            report.inventory_status = outcome.status
            report.jobs_in_flight = outcome.jobs_in_flight
        else:
            report.inventory_status = "this store can neither list nor take inventory jobs"
        if listing is not None:
            report.reconciliation = await _reconcile(store.name, catalogue, config, listing, now)
            await _delete_again(store, catalogue, config, report, now)
            await keep_metadata(
                store,
                catalogue,
                config.metadata,
                report.reconciliation,
                host=config.host,
                now=now,
                grace=config.orphan_grace,
                report=report,
            )
    except StoreError as exc:
        report.failure = exc
        report.problems.append(f"inventory/listing: {exc}")
        log.warning("maintenance.listing_failed", store=store.name, error=str(exc))
    if config.sweep_orphans:
        await _sweep_orphans(store, catalogue, config, now, report)
    if config.prune:
        await _prune(store, catalogue, config, now, report)
    return report


def _cycle_lock(catalogue: Catalogue, key: str | None) -> contextlib.AbstractContextManager[None]:
    """The lock of the cycle whose archive ``key`` names (nothing to lock for other keys)."""
    parsed = None if key is None else parse_object_key(key)
    if parsed is None:
        return contextlib.nullcontext()
    return cycle_lock(catalogue.state_dir, parsed.cycle_id)


# -- listing and inventories ---------------------------------------------------------------------


def listed_from_metadata(info: ObjectInfo) -> ListedArchive:
    """An object of an S3/local store as the reconciler sees it (ours by its metadata: an
    archive, or a cycle's metadata object)."""
    ours = ArchiveMetadata.parse(info.metadata)  # None: not an object of ours
    return ListedArchive(
        store_id=info.key,
        size=info.size,
        key=None if ours is None else info.key,
        host=None if ours is None else ours.host,
        cycle_id=None if ours is None else ours.cycle_id,
        plaintext_sha256=None if ours is None else ours.plaintext_sha256,
        created=info.last_modified,
        description=",".join(f"{k}={v}" for k, v in sorted(info.metadata.items()))[:1024],
        kind=ObjectKind.ARCHIVE if ours is None else ours.kind,
        locked_until=info.locked_until,
    )


async def _list(store: Store, catalogue: Catalogue, now: datetime, host: str) -> Listing:
    objects = await store.list_objects()
    known = {a.key: a for a in await asyncio.to_thread(cm.known_archives, catalogue, store.name)}
    companions = {
        m.key for m in await asyncio.to_thread(cm.metadata_objects, catalogue, store.name)
    }
    foreign = {
        f.store_id: f for f in await asyncio.to_thread(cm.foreign_archives, catalogue, store.name)
    }
    items = []
    for info in objects:
        if info.key in known:  # the size is compared; no need to read the metadata again
            items.append(
                ListedArchive(info.key, info.size, info.key, None, None, None, info.last_modified)
            )
            continue
        if info.key in companions:  # a metadata object the catalogue knows
            items.append(
                ListedArchive(
                    info.key,
                    info.size,
                    info.key,
                    created=info.last_modified,
                    kind=ObjectKind.METADATA,
                )
            )
            continue
        f = foreign.get(info.key)
        if f is not None and f.size == info.size and not info.key.startswith(host_prefix(host)):
            # Known to be foreign: it stays foreign (no key, so nothing can adopt or prune it).
            items.append(ListedArchive(info.key, info.size, None, created=info.last_modified))
            continue
        full = info
        if not info.metadata:
            try:
                full = await store.head(info.key)
            except ObjectNotFound:
                continue  # deleted while we listed
        items.append(listed_from_metadata(full))
    absent = set(known) - {info.key for info in objects}
    return Listing(tuple(items), now, 0.0, hidden=await hidden_archives(store, absent))


# -- reconciliation ------------------------------------------------------------------------------


async def _reconcile(
    name: str, catalogue: Catalogue, config: MaintenanceConfig, listing: Listing, now: datetime
) -> Reconciliation:
    # Only this host's records are judged: a catalogue may also hold another host's archives
    # (recovered with --host), and that host's listing is its own business.
    mine = host_prefix(config.host)
    known = [
        k
        for k in await asyncio.to_thread(cm.known_archives, catalogue, name)
        if k.key.startswith(mine)
    ]
    pending = [
        d
        for d in await asyncio.to_thread(cm.pending_deletions, catalogue, name)
        if d.key.startswith(mine)
    ]
    companions = [
        m
        for m in await asyncio.to_thread(cm.metadata_objects, catalogue, name)
        if m.host == config.host
    ]
    result = reconcile(known, listing, config.host, pending, companions)
    await asyncio.to_thread(
        lambda: _apply(catalogue, name, config.host, listing.as_of, result, now=now)
    )
    counts = result.counts()
    log.info("maintenance.reconciled", store=name, as_of=listing.as_of.isoformat(), **counts)
    return result


def _apply(
    catalogue: Catalogue,
    name: str,
    host: str,
    as_of: datetime,
    result: Reconciliation,
    *,
    now: datetime,
) -> None:
    for a in result.actions:
        if a.kind.startswith("metadata_"):
            apply_metadata_action(catalogue, name, a, as_of, now)
        elif a.kind == "confirmed" and a.key is not None:
            cm.confirm_archive(catalogue, name, a.key, as_of)
            if (
                a.listed is not None
                and a.listed.store_id != a.key
                and a.known
                and not a.known.store_id
            ):
                cm.set_archive_id(catalogue, name, a.key, a.listed.store_id)
        elif a.kind == "adopt" and a.listed is not None:
            try:
                with _cycle_lock(catalogue, a.key):
                    cm.adopt_archive(catalogue, name, a.listed, host, as_of)
            except CycleBusy as exc:  # its upload records it when it is done
                log.info("maintenance.left_to_upload", key=a.key, reason=str(exc))
                continue
            log.info("maintenance.adopted", key=a.key, size=a.listed.size)
        elif a.kind == "foreign" and a.listed is not None:
            cm.record_foreign(catalogue, name, a.listed, a.detail, now)
        elif a.kind in ("missing", "mismatch") and a.key is not None:
            cm.flag_archive(catalogue, name, a.key, FlagKind(a.kind), detail=a.detail, now=now)
            log.error(f"maintenance.archive_{a.kind}", key=a.key, detail=a.detail)
            if a.kind == "missing" and (cycle := cm.requeue_unconfirmed(catalogue, name, a.key)):
                # Recorded as completed but never seen: the upload may have expired before it
                # was completed. Pending again (the spool keeps unconfirmed cycles).
                log.warning("maintenance.unconfirmed_requeued", key=a.key, cycle=cycle)
        elif a.kind == "deletion_confirmed" and a.key is not None:
            cm.confirm_deletion(catalogue, name, a.key, now)
            log.info("maintenance.deletion_confirmed", key=a.key)
    cm.forget_foreign_except(
        catalogue, name, [a.listed.store_id for a in result.of("foreign") if a.listed]
    )


async def _delete_again(
    store: Store,
    catalogue: Catalogue,
    config: MaintenanceConfig,
    report: MaintenanceReport,
    now: datetime,
) -> None:
    """Ask again for deletions the listing shows were not carried out (see the module
    docstring); one that fails again (or a dry run) is flagged as ``deletion_failed``."""
    result = report.reconciliation
    for a in result.of("deletion_failed") if result is not None else []:
        key = a.key
        if key is None or a.listed is None:
            continue
        problem = "dry run: not asked again" if config.dry_run else None
        if problem is None:
            try:
                with _cycle_lock(catalogue, key):
                    await store.delete(a.listed.store_id)
            except CycleBusy as exc:
                problem = str(exc)
            except StoreError as exc:
                problem = f"deleting it again failed: {exc}"
                report.problems.append(f"deleting {key} again: {exc}")
        if problem is None:
            report.deleted_again.append(key)
            log.info("maintenance.deleted_again", key=key, detail=a.detail)
            continue
        detail = f"{a.detail}; {problem}"
        await asyncio.to_thread(
            partial(cm.flag_archive, detail=detail, now=now),
            catalogue,
            store.name,
            key,
            FlagKind.DELETION_FAILED,
        )
        log.error("maintenance.archive_deletion_failed", key=key, detail=detail)


# -- orphaned multipart uploads ------------------------------------------------------------------


async def _sweep_orphans(
    store: Store,
    catalogue: Catalogue,
    config: MaintenanceConfig,
    now: datetime,
    report: MaintenanceReport,
) -> None:
    try:
        # The store first, then the catalogue: an upload recorded in between is seen as known.
        listed = await store.list_multipart_uploads(host_prefix(config.host))
    except StoreError as exc:
        report.problems.append(f"listing uploads in progress: {exc}")
        log.warning("maintenance.list_uploads_failed", store=store.name, error=str(exc))
        return
    records = await asyncio.to_thread(catalogue.uploads, store.name)
    known = [KnownUpload(r.key, r.upload_id, r.state) for r in records]
    for orphan in plan_orphan_aborts(listed, known, config.host, now, config.orphan_grace):
        u = orphan.upload
        if config.dry_run:
            log.info(
                "maintenance.orphan_found", key=u.key, upload_id=u.upload_id, reason=orphan.reason
            )
            continue
        try:
            with _cycle_lock(catalogue, u.key):
                await store.abort_multipart_upload(u.key, u.upload_id)
        except CycleBusy as exc:  # a live upload, not an orphan
            log.info("maintenance.left_to_upload", key=u.key, reason=str(exc))
            continue
        except StoreError as exc:
            report.problems.append(f"aborting the upload {u.upload_id} of {u.key}: {exc}")
            log.warning(
                "maintenance.orphan_abort_failed", key=u.key, upload_id=u.upload_id, error=str(exc)
            )
            continue
        report.orphans_aborted.append(f"{u.key} {u.upload_id}")
        log.info(
            "maintenance.orphan_aborted", key=u.key, upload_id=u.upload_id, reason=orphan.reason
        )


# -- pruning -------------------------------------------------------------------------------------


async def _prune(
    store: Store,
    catalogue: Catalogue,
    config: MaintenanceConfig,
    now: datetime,
    report: MaintenanceReport,
) -> None:
    inputs = await vault_locked(
        store, await asyncio.to_thread(cm.prune_inputs, catalogue, store.name, config.host)
    )
    policy = PrunePolicy.from_config(config.retention, config.storage_class)
    plan = plan_prune(inputs, policy, now, config.next_upload_size)
    report.plan = plan
    await asyncio.to_thread(cm.record_prune_plan, catalogue, store.name, plan, now, config.dry_run)
    if config.on_plan is not None:
        config.on_plan(plan)
    if plan.over_budget:
        log.warning(
            "maintenance.over_budget",
            shortfall=plan.shortfall,
            blocked_by=plan.blocked_by,
            uploads="go ahead" if may_upload(plan, config.retention) else "wait",
        )
    for d in plan.deletions:
        log.info(
            "maintenance.prune_decision",
            key=d.key,
            rule=d.rule,
            reason=d.reason,
            estimated_fee_usd=round(d.fee_if_deleted, 4),
            dry_run=config.dry_run,
        )
        if d.fee_if_deleted > 0:
            log.warning(
                "maintenance.early_deletion_fee", key=d.key, estimated_fee_usd=d.fee_if_deleted
            )
        if config.dry_run:
            continue
        if locked_at(until := await lock_now(store, d.key), now):
            # A retention extended since the catalogue recorded it: S3 would refuse the delete.
            assert until is not None  # locked_at holds only for a date
            await asyncio.to_thread(cm.set_locked_until, catalogue, store.name, d.key, until)
            report.problems.append(
                f"kept {d.key}: locked until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
                "(S3 Object Lock)"
            )
            log.warning("maintenance.delete_skipped_locked", key=d.key, locked_until=str(until))
            continue
        archive_id = await asyncio.to_thread(cm.archive_id_of, catalogue, store.name, d.key)
        try:
            with _cycle_lock(catalogue, d.key):
                # Recorded first: after a kill between the two steps the next pass finds a
                # pending deletion still listed and deletes it, never a MISSING archive.
                await asyncio.to_thread(
                    cm.record_deletion, catalogue, store.name, d.key, archive_id, now
                )
                testpoints.pause("prune.deletion_recorded")
                await store.delete(archive_id or d.key)
                testpoints.pause("prune.deleted")
        except CycleBusy as exc:
            log.info("maintenance.left_to_upload", key=d.key, reason=str(exc))
            continue
        except StoreError as exc:
            report.problems.append(f"deleting {d.key}: {exc} (the next pass asks again)")
            log.warning("maintenance.delete_failed", key=d.key, error=str(exc))
            continue
        report.deleted.append(d.key)
        log.info("maintenance.deleted", key=d.key, bytes=d.size)
        # After the archive (a metadata object without its archive is finished off by the next
        # pass; an archive without its metadata object would have it sent again).
        await delete_metadata_of(store, catalogue, d.key, now=now, report=report)
