"""The catalogue's maintenance tables: inventory jobs and inventories, foreign archives, flags
(MISSING, mismatch), prune decisions and deletions waiting for confirmation.

Every function is blocking and short (async callers use ``asyncio.to_thread``). Reads build the
values the pure planners take (:mod:`uploader.inventory_plan`, :mod:`uploader.reconcile`,
:mod:`uploader.prune`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from uploader.catalogue import Catalogue
from uploader.inventory_plan import InventoryJobState, InventoryState
from uploader.prune import PruneArchive, PrunePlan
from uploader.reconcile import KnownArchive, ListedArchive, PendingDeletion


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def _req(s: str) -> datetime:
    return datetime.fromisoformat(s)


# -- archives ------------------------------------------------------------------------------------


def known_archives(catalogue: Catalogue, store: str) -> list[KnownArchive]:
    rows = catalogue.query(
        "SELECT key, size, uploaded_at, plaintext_sha256, archive_id FROM archives"
        " WHERE store = ? ORDER BY key",
        (store,),
    )
    return [KnownArchive(k, int(s), _req(u), p or None, a) for k, s, u, p, a in rows]


def archive_id_of(catalogue: Catalogue, store: str, key: str) -> str | None:
    rows = catalogue.query(
        "SELECT archive_id FROM archives WHERE store = ? AND key = ?", (store, key)
    )
    return rows[0][0] if rows else None


def set_archive_id(catalogue: Catalogue, store: str, key: str, archive_id: str) -> None:
    """Remember the store-side id (Glacier ArchiveId) of an archive."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE archives SET archive_id = ? WHERE store = ? AND key = ?",
            (archive_id, store, key),
        )


def adopt_archive(
    catalogue: Catalogue, store: str, item: ListedArchive, host: str, as_of: datetime
) -> None:
    """Record an archive of ours found in the store but not in the catalogue."""
    if item.key is None or (item.host or item.key.split("/", 1)[0]) != host:
        raise ValueError(f"refusing to adopt {item.store_id}: it is not this host's archive")
    cycle_id = item.cycle_id or item.key.rsplit("/", 1)[-1].split(".", 1)[0]
    archive_id = item.store_id if item.store_id != item.key else None
    with catalogue.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO archives (store, key, cycle_id, host, size, plaintext_sha256,"
            " uploaded_at, confirmed_at, archive_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                store,
                item.key,
                cycle_id,
                host,
                item.size,
                item.plaintext_sha256 or "",
                _ts(item.created or as_of),
                _ts(as_of),
                archive_id,
            ),
        )


def confirm_archive(catalogue: Catalogue, store: str, key: str, at: datetime) -> None:
    """The store was seen holding the archive (as of ``at``): confirmed; MISSING flags resolved."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE archives SET confirmed_at = ? WHERE store = ? AND key = ?"
            " AND (confirmed_at IS NULL OR confirmed_at < ?)",
            (_ts(at), store, key, _ts(at)),
        )
        db.execute(
            "UPDATE archive_flags SET resolved_at = ? WHERE store = ? AND key = ?"
            " AND resolved_at IS NULL",
            (_ts(at), store, key),
        )


def drop_archive(catalogue: Catalogue, store: str, key: str) -> None:
    """Forget an archive record (one that stands for nothing: ``upload --force``)."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM archives WHERE store = ? AND key = ?", (store, key))


def requeue_unconfirmed(catalogue: Catalogue, store: str, key: str) -> str | None:
    """Drop the archive record of ``key`` if the store never confirmed it (a Glacier upload
    recorded as completed that an inventory taken well after it does not show: it may never
    have been completed), so that its cycle is pending again. The cycle id, if dropped."""
    with catalogue.transaction() as db:
        row = db.execute(
            "DELETE FROM archives WHERE store = ? AND key = ? AND confirmed_at IS NULL"
            " RETURNING cycle_id",
            (store, key),
        ).fetchone()
    return None if row is None else str(row[0])


# -- foreign archives and flags ------------------------------------------------------------------


def record_foreign(
    catalogue: Catalogue, store: str, item: ListedArchive, reason: str, now: datetime
) -> None:
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO foreign_archives (store, store_id, key, size, created, description,"
            " reason, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (store, store_id) DO UPDATE SET last_seen = excluded.last_seen,"
            " size = excluded.size, reason = excluded.reason",
            (
                store,
                item.store_id,
                item.key,
                item.size,
                None if item.created is None else _ts(item.created),
                item.description,
                reason,
                _ts(now),
                _ts(now),
            ),
        )


def forget_foreign_except(catalogue: Catalogue, store: str, present: Iterable[str]) -> None:
    """Drop foreign archives the latest listing no longer shows."""
    keep = set(present)
    rows = catalogue.query("SELECT store_id FROM foreign_archives WHERE store = ?", (store,))
    gone = [(store, r[0]) for r in rows if r[0] not in keep]
    if gone:
        with catalogue.transaction() as db:
            db.executemany("DELETE FROM foreign_archives WHERE store = ? AND store_id = ?", gone)


@dataclass(frozen=True, slots=True)
class ForeignArchive:
    store_id: str
    key: str | None
    size: int
    created: datetime | None
    reason: str


def foreign_archives(catalogue: Catalogue, store: str) -> list[ForeignArchive]:
    rows = catalogue.query(
        "SELECT store_id, key, size, created, reason FROM foreign_archives WHERE store = ?"
        " ORDER BY store_id",
        (store,),
    )
    return [ForeignArchive(i, k, int(s), _dt(c), r) for i, k, s, c, r in rows]


@dataclass(frozen=True, slots=True)
class Flag:
    key: str
    kind: str  # "missing" | "mismatch" | "deletion_failed"
    detail: str
    first_seen: datetime
    last_seen: datetime


def flag_archive(
    catalogue: Catalogue, store: str, key: str, kind: str, *, detail: str, now: datetime
) -> None:
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO archive_flags (store, key, kind, detail, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store, key, kind) DO UPDATE SET"
            " detail = excluded.detail, last_seen = excluded.last_seen, resolved_at = NULL",
            (store, key, kind, detail, _ts(now), _ts(now)),
        )


def open_flags(catalogue: Catalogue, store: str) -> list[Flag]:
    rows = catalogue.query(
        "SELECT key, kind, detail, first_seen, last_seen FROM archive_flags"
        " WHERE store = ? AND resolved_at IS NULL ORDER BY key, kind",
        (store,),
    )
    return [Flag(k, kind, d, _req(f), _req(last)) for k, kind, d, f, last in rows]


# -- pruning -------------------------------------------------------------------------------------


def cycle_time(cycle_id: str) -> datetime | None:
    """The start time encoded in a cycle id (``20261126T040000Z``, maybe ``-2``), if it is one."""
    try:
        return datetime.strptime(cycle_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def prune_inputs(catalogue: Catalogue, store: str) -> list[PruneArchive]:
    """The catalogue's archives (confirmed unless flagged MISSING or MISMATCH) plus foreign
    ones. A MISMATCH is not the archive we uploaded: it is kept for investigation, and it does
    not count as the newest confirmed archive (that would let the good ones be pruned)."""
    flagged = {f.key for f in open_flags(catalogue, store) if f.kind in ("missing", "mismatch")}
    rows = catalogue.query(
        "SELECT key, size, uploaded_at, confirmed_at, cycle_id FROM archives WHERE store = ?",
        (store,),
    )
    out = [
        PruneArchive(
            k,
            int(s),
            _req(u),
            confirmed=c is not None and k not in flagged,
            taken_at=cycle_time(cid),
        )
        for k, s, u, c, cid in rows
    ]
    for f in foreign_archives(catalogue, store):
        created = f.created or datetime.fromtimestamp(0, UTC)
        out.append(PruneArchive(f"foreign:{f.store_id}", f.size, created, True, ours=False))
    return out


def record_prune_plan(
    catalogue: Catalogue, store: str, plan: PrunePlan, now: datetime, dry_run: bool
) -> None:
    with catalogue.transaction() as db:
        db.executemany(
            "INSERT INTO prune_decisions (store, planned_at, key, action, rule, reason, size,"
            " fee, dry_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    store,
                    _ts(now),
                    d.key,
                    d.action,
                    d.rule,
                    d.reason,
                    d.size,
                    d.fee_if_deleted,
                    int(dry_run),
                )
                for d in plan.decisions
                if d.rule != "foreign"
            ],
        )


def record_deletion(
    catalogue: Catalogue, store: str, key: str, archive_id: str | None, now: datetime
) -> None:
    """The store accepted a delete: the archive leaves ``archives`` and waits for confirmation."""
    with catalogue.transaction() as db:
        row = db.execute(
            "SELECT cycle_id, size FROM archives WHERE store = ? AND key = ?", (store, key)
        ).fetchone()
        cycle_id, size = row if row is not None else (None, 0)
        db.execute(
            "INSERT OR REPLACE INTO pending_deletions (store, key, archive_id, cycle_id, size,"
            " deleted_at) VALUES (?, ?, ?, ?, ?, ?)",
            (store, key, archive_id, cycle_id, size, _ts(now)),
        )
        db.execute("DELETE FROM archives WHERE store = ? AND key = ?", (store, key))


def pending_deletions(catalogue: Catalogue, store: str) -> list[PendingDeletion]:
    rows = catalogue.query(
        "SELECT key, deleted_at, archive_id FROM pending_deletions"
        " WHERE store = ? AND confirmed_at IS NULL ORDER BY key",
        (store,),
    )
    return [PendingDeletion(k, _req(d), a) for k, d, a in rows]


def confirm_deletion(catalogue: Catalogue, store: str, key: str, now: datetime) -> None:
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE pending_deletions SET confirmed_at = ? WHERE store = ? AND key = ?",
            (_ts(now), store, key),
        )


def pruned_at(catalogue: Catalogue, store: str, cycle_id: str) -> datetime | None:
    """When the archive of ``cycle_id`` was pruned from ``store`` (the latest time), or None."""
    rows = catalogue.query(
        "SELECT MAX(deleted_at) FROM pending_deletions WHERE store = ? AND cycle_id = ?",
        (store, cycle_id),
    )
    return _dt(rows[0][0]) if rows else None


def pruned_cycle_ids(catalogue: Catalogue, store: str) -> set[str]:
    """Cycles whose archive was pruned from ``store``: never upload them again."""
    rows = catalogue.query(
        "SELECT cycle_id FROM pending_deletions WHERE store = ? AND cycle_id IS NOT NULL",
        (store,),
    )
    return {r[0] for r in rows}


# -- inventory jobs ------------------------------------------------------------------------------


def inventory_state(catalogue: Catalogue, store: str) -> InventoryState:
    jobs = tuple(
        InventoryJobState(j, _req(i), s, _dt(c), _dt(ch), m)
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
    return InventoryState(jobs, _dt(requested), _dt(inv), _dt(changes), _dt(not_ready))


def save_job(catalogue: Catalogue, store: str, job: InventoryJobState) -> None:
    with catalogue.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO inventory_jobs (store, job_id, initiated_at, status,"
            " completed_at, checked_at, message) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                store,
                job.job_id,
                _ts(job.initiated_at),
                job.status,
                None if job.completed_at is None else _ts(job.completed_at),
                None if job.checked_at is None else _ts(job.checked_at),
                job.message,
            ),
        )


def job_requested(catalogue: Catalogue, store: str, job_id: str, now: datetime) -> None:
    save_job(catalogue, store, InventoryJobState(job_id, now))
    mark_requested(catalogue, store, now)


def mark_requested(catalogue: Catalogue, store: str, at: datetime) -> None:
    """An inventory was requested at ``at`` (kept if a later request is already recorded)."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO inventory_state (store, last_requested_at) VALUES (?, ?)"
            " ON CONFLICT (store) DO UPDATE SET last_requested_at ="
            " MAX(COALESCE(last_requested_at, ''), excluded.last_requested_at)",
            (store, _ts(at)),
        )


def inventory_not_ready(catalogue: Catalogue, store: str, now: datetime) -> None:
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO inventory_state (store, not_ready_at) VALUES (?, ?)"
            " ON CONFLICT (store) DO UPDATE SET not_ready_at = excluded.not_ready_at",
            (store, _ts(now)),
        )


def forget_job(catalogue: Catalogue, store: str, job_id: str) -> None:
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
                _ts(inventory_date),
                _ts(now),
                job_id,
                len(items),
                sum(a.size for a in items),
                raw,
            ),
        )
        if job_id is not None:
            db.execute("DELETE FROM inventory_jobs WHERE store = ? AND job_id = ?", (store, job_id))
