"""Inventory jobs (Glacier vaults), their persisted state, and the inventories fetched."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

from uploader.catalogue.db import Catalogue, db_time, from_db_time, to_db_time
from uploader.catalogue.records import (
    InventoryEntry,
    InventoryJobState,
    InventoryState,
    JobStatus,
    LatestInventory,
)

if TYPE_CHECKING:
    from uploader.maintenance import ListedArchive


def inventory_state(catalogue: Catalogue, store: str) -> InventoryState:
    """What the inventory planner needs to know about ``store``: its jobs and dates."""
    jobs = tuple(
        InventoryJobState(j, db_time(i), JobStatus(s), from_db_time(c), from_db_time(ch), m)
        for j, i, s, c, ch, m in catalogue.query(
            "SELECT job_id, initiated_at, status, completed_at, checked_at, message"
            " FROM inventory_jobs WHERE store = ? ORDER BY initiated_at, job_id",
            (store,),
        )
    )
    st = catalogue.query(
        "SELECT last_requested_at, not_ready_at FROM inventory_state WHERE store = ?", (store,)
    )
    requested, not_ready = st[0] if st else (None, None)
    inv = catalogue.query("SELECT MAX(inventory_date) FROM inventories WHERE store = ?", (store,))[
        0
    ][0]
    changes = catalogue.query(
        "SELECT MAX(t) FROM (SELECT MAX(uploaded_at) AS t FROM archives WHERE store = ?"
        " UNION ALL SELECT MAX(deleted_at) FROM pending_deletions WHERE store = ?)",
        (store, store),
    )[0][0]
    return InventoryState(
        jobs,
        from_db_time(requested),
        from_db_time(inv),
        from_db_time(changes),
        from_db_time(not_ready),
    )


def save_job(catalogue: Catalogue, store: str, job: InventoryJobState) -> None:
    """Record an inventory job as it stands now."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO inventory_jobs (store, job_id, initiated_at, status,"
            " completed_at, checked_at, message) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                store,
                job.job_id,
                to_db_time(job.initiated_at),
                job.status,
                None if job.completed_at is None else to_db_time(job.completed_at),
                None if job.checked_at is None else to_db_time(job.checked_at),
                job.message,
            ),
        )


def job_requested(catalogue: Catalogue, store: str, job_id: str, now: datetime) -> None:
    """Record a job just requested, and when."""
    save_job(catalogue, store, InventoryJobState(job_id, now))
    mark_requested(catalogue, store, now)


def mark_requested(catalogue: Catalogue, store: str, at: datetime) -> None:
    """An inventory was requested at ``at`` (kept if a later request is already recorded)."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO inventory_state (store, last_requested_at) VALUES (?, ?)"
            " ON CONFLICT (store) DO UPDATE SET last_requested_at ="
            " MAX(COALESCE(last_requested_at, ''), excluded.last_requested_at)",
            (store, to_db_time(at)),
        )


def inventory_not_ready(catalogue: Catalogue, store: str, now: datetime) -> None:
    """Remember that the service said the vault has no inventory yet."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO inventory_state (store, not_ready_at) VALUES (?, ?)"
            " ON CONFLICT (store) DO UPDATE SET not_ready_at = excluded.not_ready_at",
            (store, to_db_time(now)),
        )


def forget_job(catalogue: Catalogue, store: str, job_id: str) -> None:
    """Drop an inventory job (fetched, failed, expired or superseded)."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM inventory_jobs WHERE store = ? AND job_id = ?", (store, job_id))


def record_inventory(
    catalogue: Catalogue,
    store: str,
    inventory_date: datetime,
    archives: Iterable[ListedArchive],
    *,
    now: datetime,
    job_id: str | None = None,
) -> None:
    """Keep the inventory (its archive list as JSON) and drop the job it came from."""
    items = list(archives)
    raw = json.dumps(
        [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(a).items()}
            for a in items
        ]
    )
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO inventories (store, inventory_date, fetched_at, job_id, archive_count,"
            " total_size, archives) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                store,
                to_db_time(inventory_date),
                to_db_time(now),
                job_id,
                len(items),
                sum(a.size for a in items),
                raw,
            ),
        )
        if job_id is not None:
            db.execute("DELETE FROM inventory_jobs WHERE store = ? AND job_id = ?", (store, job_id))


def latest_inventory(
    catalogue: Catalogue, store: str
) -> tuple[datetime, list[dict[str, object]]] | None:
    """The newest inventory fetched for ``store``: its InventoryDate and its archives, as
    recorded (the fields of :class:`~uploader.maintenance.reconcile.ListedArchive`, times as
    ISO 8601 text); None if none was ever fetched."""
    rows = catalogue.query(
        "SELECT inventory_date, archives FROM inventories WHERE store = ?"
        " ORDER BY inventory_date DESC, id DESC LIMIT 1",
        (store,),
    )
    if not rows:
        return None
    date, raw = rows[0]
    items = json.loads(raw)
    return db_time(date), [dict(a) for a in items]


def latest_inventory_entries(catalogue: Catalogue, store: str) -> LatestInventory | None:
    """The newest inventory fetched for ``store`` by store id (what ``verify`` compares vault
    archives with), or None if none was."""
    latest = latest_inventory(catalogue, store)
    if latest is None:
        return None
    entries = {}
    for a in latest[1]:
        store_id, key, tree = str(a["store_id"]), a.get("key"), a.get("tree_hash")
        entries[store_id] = InventoryEntry(
            store_id,
            int(str(a["size"])),
            None if key is None else str(key),
            None if tree is None else str(tree),
        )
    return LatestInventory(latest[0], entries)
