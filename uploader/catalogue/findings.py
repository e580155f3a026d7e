"""What reconciliation found: foreign archives (never ours to touch) and flags on our archives
(MISSING, MISMATCH, a failed deletion)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from uploader.catalogue.db import Catalogue, db_time, from_db_time, to_db_time
from uploader.catalogue.records import Flag, FlagKind, ForeignArchive

if TYPE_CHECKING:
    from uploader.maintenance import ListedArchive


def record_foreign(
    catalogue: Catalogue, store: str, item: ListedArchive, reason: str, now: datetime
) -> None:
    """Remember an archive in the store that is not ours (first and last seen): never touched."""
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
                None if item.created is None else to_db_time(item.created),
                item.description,
                reason,
                to_db_time(now),
                to_db_time(now),
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


def foreign_archives(catalogue: Catalogue, store: str) -> list[ForeignArchive]:
    """The foreign archives seen in ``store``."""
    rows = catalogue.query(
        "SELECT store_id, key, size, created, reason FROM foreign_archives WHERE store = ?"
        " ORDER BY store_id",
        (store,),
    )
    return [ForeignArchive(i, k, int(s), from_db_time(c), r) for i, k, s, c, r in rows]


def flag_archive(
    catalogue: Catalogue, store: str, key: str, kind: FlagKind, *, detail: str, now: datetime
) -> None:
    """Raise (or renew) a flag of ``kind`` on one of our archives."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO archive_flags (store, key, kind, detail, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store, key, kind) DO UPDATE SET"
            " detail = excluded.detail, last_seen = excluded.last_seen, resolved_at = NULL",
            (store, key, kind, detail, to_db_time(now), to_db_time(now)),
        )


def open_flags(catalogue: Catalogue, store: str) -> list[Flag]:
    """The flags of ``store`` not resolved yet."""
    rows = catalogue.query(
        "SELECT key, kind, detail, first_seen, last_seen FROM archive_flags"
        " WHERE store = ? AND resolved_at IS NULL ORDER BY key, kind",
        (store,),
    )
    return [Flag(k, FlagKind(kind), d, db_time(f), db_time(last)) for k, kind, d, f, last in rows]
