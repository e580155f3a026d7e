"""Maintenance in a bucket with S3 Object Lock (and versioning): what the executor asks it.

- :func:`hidden_by_markers` (pure): archives whose current version is a delete marker while an
  older version still holds their bytes. Someone deleted the key (with the machine's
  credentials, say); Object Lock kept the data. Reconciliation flags such an archive MISSING
  and says how to bring it back: delete the delete marker.
- :func:`hidden_archives`: the same, asked of the store for the archives a listing lacks.
- :func:`lock_now`: an archive's retention as the store reports it right before a delete, so
  that pruning never sends a delete that would fail (a retention may have been extended
  since the catalogue recorded it).
- :func:`vault_locked`: a Glacier vault's Vault Lock policy applied to the prune planner's
  inputs: an archive younger than the age the policy denies deletes for is locked until it
  reaches that age.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from localbackup.logevents import get_logger
from uploader.catalogue import PruneArchive
from uploader.object_lock import vault_lock_days
from uploader.stores import (
    ObjectLocking,
    ObjectNotFound,
    ObjectVersion,
    Store,
    StoreError,
    VaultLocking,
)

log = get_logger(__name__)

_EPOCH = datetime.fromtimestamp(0, UTC)
FOREVER = datetime.max.replace(tzinfo=UTC)  # a lock that never ends


def hidden_by_markers(versions: Iterable[ObjectVersion]) -> dict[str, str]:
    """Key -> what hides it, for every key whose latest version is a delete marker and that
    still has a version with data."""
    by_key: dict[str, list[ObjectVersion]] = {}
    for v in versions:
        by_key.setdefault(v.key, []).append(v)
    hidden = {}
    for key, vs in sorted(by_key.items()):
        latest = next((v for v in vs if v.is_latest), None)
        data = [v for v in vs if not v.delete_marker]
        if latest is None or not latest.delete_marker or not data:
            continue
        kept = max(data, key=lambda v: v.last_modified or _EPOCH)
        when = latest.last_modified.isoformat() if latest.last_modified else "an unknown time"
        hidden[key] = (
            f"hidden by a delete marker placed {when} (version {latest.version_id}); its "
            f"{kept.size} bytes are still stored as version {kept.version_id}: delete that "
            "delete marker to bring the archive back (docs/immutability.md)"
        )
    return hidden


async def hidden_archives(store: Store, absent: Iterable[str]) -> dict[str, str]:
    """For the archives ``absent`` from a listing: those a delete marker hides (see
    :func:`hidden_by_markers`). One version listing per absent key, so a pass where nothing is
    absent asks nothing; a store that keeps no versions has none to show, and one that will not
    say (a missing permission) is logged and the pass goes on."""
    if not isinstance(store, ObjectLocking):
        return {}
    hidden: dict[str, str] = {}
    for key in sorted(absent):
        try:
            versions = await store.list_versions(key)
        except StoreError as exc:
            log.warning("maintenance.versions_unreadable", store=store.name, error=str(exc))
            return hidden
        hidden.update(hidden_by_markers(v for v in versions if v.key == key))
    return hidden


async def lock_now(store: Store, key: str) -> datetime | None:
    """Until when the archive ``key`` is locked now, as the store says (None: not locked, or
    the store has no Object Lock, or the object is gone)."""
    if not isinstance(store, ObjectLocking):
        return None
    try:
        return (await store.head(key)).locked_until
    except ObjectNotFound:
        return None


async def vault_locked(store: Store, inputs: Sequence[PruneArchive]) -> list[PruneArchive]:
    """``inputs`` with the vault's Vault Lock applied (unchanged for other stores, a vault
    without a lock, or one that cannot be asked: its deletes would then be refused and
    reported, never silently dropped)."""
    if not isinstance(store, VaultLocking):
        return list(inputs)
    try:
        lock = await store.vault_lock()
    except StoreError as exc:
        log.warning("maintenance.vault_lock_unreadable", store=store.name, error=str(exc))
        return list(inputs)
    days = None if lock is None else vault_lock_days(lock.policy)
    if days is None:
        return list(inputs)
    log.info("maintenance.vault_lock", store=store.name, deny_below_days=days)
    out = []
    for a in inputs:
        until = FOREVER if math.isinf(days) else a.created + timedelta(days=days)
        later = a.ours and (a.locked_until is None or until > a.locked_until)
        out.append(dataclasses.replace(a, locked_until=until) if later else a)
    return out
