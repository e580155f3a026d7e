"""Archive accessors beyond the core table operations of :class:`~uploader.catalogue.db.Catalogue`:
what reconciliation knows, store-side ids, Object Lock retention, adoption, confirmation and
re-queueing."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from uploader.catalogue.db import Catalogue, db_time, to_db_time
from uploader.catalogue.records import KnownArchive

if TYPE_CHECKING:
    from uploader.maintenance import ListedArchive


def known_archives(catalogue: Catalogue, store: str) -> list[KnownArchive]:
    """Every archive of ``store`` as reconciliation compares it with a listing."""
    rows = catalogue.query(
        "SELECT key, size, uploaded_at, plaintext_sha256, archive_id FROM archives"
        " WHERE store = ? ORDER BY key",
        (store,),
    )
    return [KnownArchive(k, int(s), db_time(u), p or None, a) for k, s, u, p, a in rows]


def archive_id_of(catalogue: Catalogue, store: str, key: str) -> str | None:
    """The Glacier ArchiveId recorded for ``key`` in ``store``, if any."""
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
            " uploaded_at, confirmed_at, archive_id, locked_until)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                store,
                item.key,
                cycle_id,
                host,
                item.size,
                item.plaintext_sha256 or "",
                to_db_time(item.created or as_of),
                to_db_time(as_of),
                archive_id,
                None if item.locked_until is None else to_db_time(item.locked_until),
            ),
        )


def set_locked_until(catalogue: Catalogue, store: str, key: str, until: datetime | None) -> None:
    """Remember an archive's S3 Object Lock retention as the store reports it now."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE archives SET locked_until = ? WHERE store = ? AND key = ?",
            (None if until is None else to_db_time(until), store, key),
        )


def confirm_archive(catalogue: Catalogue, store: str, key: str, at: datetime) -> None:
    """The store was seen holding the archive (as of ``at``): confirmed; MISSING flags resolved."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE archives SET confirmed_at = ? WHERE store = ? AND key = ?"
            " AND (confirmed_at IS NULL OR confirmed_at < ?)",
            (to_db_time(at), store, key, to_db_time(at)),
        )
        db.execute(
            "UPDATE archive_flags SET resolved_at = ? WHERE store = ? AND key = ?"
            " AND resolved_at IS NULL",
            (to_db_time(at), store, key),
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
