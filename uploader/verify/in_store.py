"""``verify`` without a retrieval: every archive against what its store reports.

- S3: HeadObject (``ChecksumMode=ENABLED``) and GetObjectAttributes, which answer for archived
  objects too: size, ETag and VersionId, the object's composite SHA-256 and, where the service
  lists them, every part's SHA-256 — against what the upload recorded;
- a local store: the file's size and the SHA-256 of each part of it;
- a Glacier vault: size and SHA-256 tree hash in the latest inventory the catalogue fetched (an
  archive uploaded after it is *unverified*, not failed);
- each archive's metadata object the same way, and, where it can be read at once and a key is
  at hand, decrypted and compared with the catalogue's ``cycle.json``.

Nothing in the store or the catalogue is changed (the results are recorded by the caller).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from uploader import catalogue as cm
from uploader.archive import ObjectKind
from uploader.catalogue import ArchiveRecord, Catalogue, ExpectedObject, MetadataRecord
from uploader.recovery.fetch import MetadataDamaged, Unlock, WrongKey, read_metadata_object
from uploader.restore import retrieval as rt
from uploader.stores.base import ChecksumReports, ObjectNotFound, Store
from uploader.verify.checks import Check, check_inventory, check_stored

__all__ = ["verify_in_store"]


@dataclass(frozen=True, slots=True)
class _Context:
    store: Store
    catalogue: Catalogue
    unlock: Unlock | None
    inventory: cm.LatestInventory | None
    work: Path


async def verify_in_store(
    store: Store,
    catalogue: Catalogue,
    archives: list[ArchiveRecord],
    *,
    unlock: Unlock | None,
) -> dict[str, Check]:
    """The check of each archive in ``archives`` (by key), without any retrieval."""
    inventory = None
    if rt.is_vault(store):
        inventory = await asyncio.to_thread(cm.latest_inventory_entries, catalogue, store.name)
    out = {}
    with tempfile.TemporaryDirectory(dir=catalogue.path.parent, prefix=".verify-") as tmp:
        ctx = _Context(store, catalogue, unlock, inventory, Path(tmp))
        for a in archives:
            out[a.key] = await _archive(ctx, a)
    return out


async def _archive(ctx: _Context, a: ArchiveRecord) -> Check:
    name = ctx.store.name
    expected = await asyncio.to_thread(cm.archive_expectation, ctx.catalogue, name, a.key)
    assert expected is not None
    cycle = await asyncio.to_thread(cm.stored_cycle, ctx.catalogue, a.host, a.cycle_id)
    cycle_sha = None if cycle is None else hashlib.sha256(cycle.render()).hexdigest()
    check = await _object(ctx, expected, a.uploaded_at, ObjectKind.ARCHIVE, cycle_sha)
    meta = await asyncio.to_thread(cm.metadata_object_of, ctx.catalogue, name, a.key)
    if meta is None:
        if cycle is not None:
            check.problems.append(
                "it has no metadata object (the next maintenance pass or 'glacier-backup "
                "inventory' sends it)"
            )
        else:
            check.checked.append("no metadata object (an archive of an earlier version)")
        return check
    meta_check = await _object(ctx, meta.expected, meta.uploaded_at, ObjectKind.METADATA, cycle_sha)
    if not meta_check.problems and not meta_check.unverified:
        await _decrypt(ctx, meta, a, cycle_sha, meta_check)
    check.add(meta_check, f"metadata object {meta.key}")
    return check


async def _object(
    ctx: _Context,
    expected: ExpectedObject,
    uploaded_at: datetime,
    kind: ObjectKind,
    cycle_sha: str | None,
) -> Check:
    """One object (the archive or its metadata object) against the store's report."""
    if rt.is_vault(ctx.store):
        return _in_inventory(ctx.inventory, expected, uploaded_at)
    if not isinstance(ctx.store, ChecksumReports):
        return Check(unverified=f"{ctx.store.name} reports no checksums")
    try:
        stored = await ctx.store.stored_checksums(expected.key, expected.part_size)
    except ObjectNotFound:
        return Check(problems=["missing from the store"])
    return check_stored(expected, stored, kind=kind, cycle_sha256=cycle_sha)


def _in_inventory(
    inventory: cm.LatestInventory | None, expected: ExpectedObject, uploaded_at: datetime
) -> Check:
    if inventory is None:
        return Check(
            unverified="no vault inventory yet: run 'glacier-backup inventory --request', "
            "then verify once it has arrived"
        )
    when = inventory.date.isoformat(timespec="minutes")
    if uploaded_at > inventory.date:
        return Check(unverified=f"uploaded after the latest vault inventory ({when})")
    item = inventory.archives.get(expected.archive_id or "")
    return check_inventory(expected, item, when)


async def _decrypt(
    ctx: _Context, meta: MetadataRecord, a: ArchiveRecord, cycle_sha: str | None, check: Check
) -> None:
    """Read the metadata object (free where it is hot) and compare it with the catalogue."""
    if rt.is_vault(ctx.store):
        check.checked.append("not decrypted (a vault archive: reading it needs a retrieval job)")
        return
    if ctx.unlock is None and meta.key.endswith(".age"):
        check.checked.append("not decrypted (no identity given)")
        return
    try:
        content, _ = await read_metadata_object(
            meta, ctx.store.read(meta.key), ctx.unlock, work=ctx.work, archive_size=a.size
        )
    except (WrongKey, MetadataDamaged) as exc:
        check.problems.append(str(exc))
        return
    check.checked.append("decrypted and authenticated")
    if cycle_sha is not None and content.archive.cycle_sha256 != cycle_sha:
        check.problems.append("its cycle.json is not the one the catalogue has")
    elif cycle_sha is not None:
        check.checked.append("matches cycle.json")
