"""Pruning's tables: the decisions of every plan (with reasons and fees) and the deletions the
store accepted, which wait for a listing or inventory to confirm them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from localbackup.formats import cycle_id_time
from uploader.catalogue.db import Catalogue, db_time, from_db_time, to_db_time
from uploader.catalogue.findings import foreign_archives, open_flags
from uploader.catalogue.records import FlagKind, PendingDeletion, PruneArchive

if TYPE_CHECKING:
    from uploader.maintenance import PrunePlan


def prune_inputs(catalogue: Catalogue, store: str) -> list[PruneArchive]:
    """The catalogue's archives (confirmed unless flagged MISSING or MISMATCH) plus foreign
    ones. A MISMATCH is not the archive we uploaded: it is kept for investigation, and it does
    not count as the newest confirmed archive (that would let the good ones be pruned)."""
    flagged = {
        f.key
        for f in open_flags(catalogue, store)
        if f.kind in (FlagKind.MISSING, FlagKind.MISMATCH)
    }
    rows = catalogue.query(
        "SELECT key, size, uploaded_at, confirmed_at, cycle_id, locked_until FROM archives"
        " WHERE store = ?",
        (store,),
    )
    out = [
        PruneArchive(
            k,
            int(s),
            db_time(u),
            confirmed=c is not None and k not in flagged,
            taken_at=cycle_id_time(cid),
            locked_until=from_db_time(lock),
        )
        for k, s, u, c, cid, lock in rows
    ]
    for f in foreign_archives(catalogue, store):
        created = f.created or datetime.fromtimestamp(0, UTC)
        out.append(PruneArchive(f"foreign:{f.store_id}", f.size, created, True, ours=False))
    return out


def record_prune_plan(
    catalogue: Catalogue, store: str, plan: PrunePlan, now: datetime, dry_run: bool
) -> None:
    """Keep every decision of a prune plan (of dry runs too), with when it was planned."""
    with catalogue.transaction() as db:
        db.executemany(
            "INSERT INTO prune_decisions (store, planned_at, key, action, rule, reason, size,"
            " fee, dry_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    store,
                    to_db_time(now),
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
            (store, key, archive_id, cycle_id, size, to_db_time(now)),
        )
        db.execute("DELETE FROM archives WHERE store = ? AND key = ?", (store, key))


def pending_deletions(catalogue: Catalogue, store: str) -> list[PendingDeletion]:
    """Deletions the store accepted that no listing or inventory has confirmed yet."""
    rows = catalogue.query(
        "SELECT key, deleted_at, archive_id FROM pending_deletions"
        " WHERE store = ? AND confirmed_at IS NULL ORDER BY key",
        (store,),
    )
    return [PendingDeletion(k, db_time(d), a) for k, d, a in rows]


def confirm_deletion(catalogue: Catalogue, store: str, key: str, now: datetime) -> None:
    """A listing or inventory no longer shows ``key``: its deletion is done."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE pending_deletions SET confirmed_at = ? WHERE store = ? AND key = ?",
            (to_db_time(now), store, key),
        )


def pruned_at(catalogue: Catalogue, store: str, cycle_id: str) -> datetime | None:
    """When the archive of ``cycle_id`` was pruned from ``store`` (the latest time), or None."""
    rows = catalogue.query(
        "SELECT MAX(deleted_at) FROM pending_deletions WHERE store = ? AND cycle_id = ?",
        (store, cycle_id),
    )
    return from_db_time(rows[0][0]) if rows else None


def pruned_cycle_ids(catalogue: Catalogue, store: str) -> set[str]:
    """Cycles whose archive was pruned from ``store``: never upload them again."""
    rows = catalogue.query(
        "SELECT cycle_id FROM pending_deletions WHERE store = ? AND cycle_id IS NOT NULL",
        (store,),
    )
    return {r[0] for r in rows}


def pruned_cycles(catalogue: Catalogue, store: str) -> dict[str, datetime]:
    """Cycle id -> when its archive was pruned from ``store`` (the latest time)."""
    rows = catalogue.query(
        "SELECT cycle_id, MAX(deleted_at) FROM pending_deletions"
        " WHERE store = ? AND cycle_id IS NOT NULL GROUP BY cycle_id",
        (store,),
    )
    return {cid: db_time(at) for cid, at in rows}
