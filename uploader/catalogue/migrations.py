"""Migrations out of a Glacier vault: each archive's state, its retrieval requests, the verified
job-output ranges waiting for their part, and the destination's acknowledged parts.

Every step of :mod:`uploader.migrate` is recorded here before the next one starts, so that a
migration killed at any instant continues where it stopped: a job is never requested (and paid)
twice while it is usable, a verified range is not downloaded again, an acknowledged part is not
sent again, and a copy is recorded together with the cycle's archive in the destination.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from uploader.catalogue.db import Catalogue, db_time, from_db_time, put_archive, to_db_time
from uploader.catalogue.records import (
    ArchiveRecord,
    MigrationKind,
    MigrationPart,
    MigrationRecord,
    MigrationState,
    PlannedArchive,
)
from uploader.stores.base import PartInfo

_COLUMNS = (
    "id, source, archive_id, dest, key, kind, host, cycle_id, size, created, metadata,"
    " plaintext_sha256, state, tier, job_id, tree_hash, upload_id, part_size, completing, error,"
    " copied_at, checksum, source_deleted_at"
)


def _record(r: tuple[object, ...]) -> MigrationRecord:
    def opt(v: object) -> str | None:
        return None if v is None else str(v)

    return MigrationRecord(
        id=int(str(r[0])),
        source=str(r[1]),
        archive_id=str(r[2]),
        dest=str(r[3]),
        key=str(r[4]),
        kind=MigrationKind(str(r[5])),
        host=str(r[6]),
        cycle_id=opt(r[7]),
        size=int(str(r[8])),
        created=db_time(str(r[9])),
        metadata={str(k): str(v) for k, v in json.loads(str(r[10])).items()},
        plaintext_sha256=str(r[11]),
        state=MigrationState(str(r[12])),
        tier=opt(r[13]),
        job_id=opt(r[14]),
        tree_hash=opt(r[15]),
        upload_id=opt(r[16]),
        part_size=None if r[17] is None else int(str(r[17])),
        completing=bool(r[18]),
        error=opt(r[19]),
        copied_at=from_db_time(opt(r[20])),
        checksum=opt(r[21]),
        source_deleted_at=from_db_time(opt(r[22])),
    )


def add_migrations(
    catalogue: Catalogue, source: str, dest: str, planned: Iterable[PlannedArchive]
) -> None:
    """Remember archives to migrate; one already known (same archive, same destination) keeps
    its row, key and state."""
    rows = [
        (
            source,
            p.archive_id,
            dest,
            p.key,
            p.kind,
            p.host,
            p.cycle_id,
            p.size,
            to_db_time(p.created),
            json.dumps(p.metadata, sort_keys=True),
            p.plaintext_sha256,
            MigrationState.PLANNED,
        )
        for p in planned
    ]
    with catalogue.transaction() as db:
        db.executemany(
            "INSERT OR IGNORE INTO migrations (source, archive_id, dest, key, kind, host,"
            " cycle_id, size, created, metadata, plaintext_sha256, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def migrations_between(catalogue: Catalogue, source: str, dest: str) -> list[MigrationRecord]:
    """Every archive of a migration from ``source`` to ``dest``, oldest first."""
    rows = catalogue.query(
        f"SELECT {_COLUMNS} FROM migrations WHERE source = ? AND dest = ?"  # noqa: S608
        " ORDER BY created, key",
        (source, dest),
    )
    return [_record(r) for r in rows]


def get_migration(catalogue: Catalogue, migration: int) -> MigrationRecord:
    """One migration row, as it is now."""
    rows = catalogue.query(
        f"SELECT {_COLUMNS} FROM migrations WHERE id = ?",  # noqa: S608
        (migration,),
    )
    return _record(rows[0])


def migration_keys(catalogue: Catalogue, dest: str) -> dict[str, str]:
    """Destination keys already given to archives: key -> source ArchiveId."""
    rows = catalogue.query("SELECT key, archive_id FROM migrations WHERE dest = ?", (dest,))
    return {str(k): str(a) for k, a in rows}


def record_migration_request(
    catalogue: Catalogue, migration: int, job_id: str, *, tier: str, size: int, now: datetime
) -> None:
    """A retrieval job was requested (or an earlier one found running): state ``requested``."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO migration_requests (migration, job_id, tier, size,"
            " requested_at) VALUES (?, ?, ?, ?, ?)",
            (migration, job_id, tier, size, to_db_time(now)),
        )
        db.execute(
            "UPDATE migrations SET state = ?, job_id = ?, tier = ?, error = NULL WHERE id = ?",
            (MigrationState.REQUESTED, job_id, tier, migration),
        )


def migration_requests_since(
    catalogue: Catalogue, source: str, since: datetime
) -> list[tuple[datetime, int]]:
    """``(requested_at, size)`` of every retrieval requested from ``source`` after ``since``."""
    rows = catalogue.query(
        "SELECT r.requested_at, r.size FROM migration_requests r JOIN migrations m"
        " ON m.id = r.migration WHERE m.source = ? AND r.requested_at > ?"
        " ORDER BY r.requested_at",
        (source, to_db_time(since)),
    )
    return [(db_time(t), int(s)) for t, s in rows]


def mark_migration_ready(catalogue: Catalogue, migration: int, tree_hash: str) -> None:
    """The job's output can be read; ``tree_hash`` is Glacier's hash of the whole archive."""
    _update(catalogue, migration, state=MigrationState.READY, tree_hash=tree_hash, error=None)


def mark_migration_planned(catalogue: Catalogue, migration: int, error: str | None = None) -> None:
    """No usable job any more (it expired or failed): a new one is needed. The destination
    upload and its parts are kept: the new job's output continues them."""
    _update(catalogue, migration, state=MigrationState.PLANNED, job_id=None, error=error)


def mark_migration_failed(catalogue: Catalogue, migration: int, error: str) -> None:
    """Stopped with ``error``; the job, upload and parts stay recorded for the next run."""
    _update(catalogue, migration, state=MigrationState.FAILED, error=error)


def retry_failed_migrations(catalogue: Catalogue, source: str, dest: str) -> None:
    """Failed archives go back to where they can continue: their job if they have one (its
    state is checked again), else a new request. The error stays until the next step succeeds."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE migrations SET state = CASE WHEN job_id IS NULL THEN ? ELSE ? END"
            " WHERE source = ? AND dest = ? AND state = ?",
            (
                MigrationState.PLANNED,
                MigrationState.REQUESTED,
                source,
                dest,
                MigrationState.FAILED,
            ),
        )


def start_copy(catalogue: Catalogue, migration: int, upload_id: str, part_size: int) -> None:
    """A destination multipart upload was created for the archive (no part yet)."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM migration_parts WHERE migration = ?", (migration,))
        db.execute(
            "UPDATE migrations SET upload_id = ?, part_size = ?, completing = 0 WHERE id = ?",
            (upload_id, part_size, migration),
        )


def drop_copy(catalogue: Catalogue, migration: int) -> None:
    """Forget the destination upload (aborted, or gone), its parts and any spooled ranges."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM migration_parts WHERE migration = ?", (migration,))
        db.execute("DELETE FROM migration_ranges WHERE migration = ?", (migration,))
        db.execute(
            "UPDATE migrations SET upload_id = NULL, part_size = NULL, completing = 0 WHERE id = ?",
            (migration,),
        )


def record_spooled_range(
    catalogue: Catalogue, migration: int, start: int, end: int, tree_hash: str
) -> None:
    """Bytes ``[start, end)`` of the job output were verified and written to the spool."""
    with catalogue.transaction() as db:
        db.execute(
            'INSERT OR REPLACE INTO migration_ranges (migration, start, "end", tree_hash)'
            " VALUES (?, ?, ?, ?)",
            (migration, start, end, tree_hash),
        )


def forget_spooled_range(catalogue: Catalogue, migration: int, start: int) -> None:
    """A spooled range that can no longer be trusted (its file is gone or differs)."""
    with catalogue.transaction() as db:
        db.execute(
            "DELETE FROM migration_ranges WHERE migration = ? AND start = ?", (migration, start)
        )


def spooled_ranges(catalogue: Catalogue, migration: int) -> dict[int, tuple[int, str]]:
    """Verified ranges waiting on disk: start -> (end, tree hash)."""
    rows = catalogue.query(
        'SELECT start, "end", tree_hash FROM migration_ranges WHERE migration = ?', (migration,)
    )
    return {int(a): (int(b), str(t)) for a, b, t in rows}


def record_copied_part(
    catalogue: Catalogue, migration: int, part: PartInfo, tree_hash: str, start: int
) -> None:
    """The destination acknowledged a part; its spooled range (at ``start``) is no longer
    needed. One transaction."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO migration_parts (migration, number, size, checksum, etag,"
            " tree_hash) VALUES (?, ?, ?, ?, ?, ?)",
            (migration, part.number, part.size, part.checksum, part.etag, tree_hash),
        )
        db.execute(
            "DELETE FROM migration_ranges WHERE migration = ? AND start = ?", (migration, start)
        )


def copied_parts(catalogue: Catalogue, migration: int) -> list[MigrationPart]:
    """The destination parts acknowledged so far, in order."""
    rows = catalogue.query(
        "SELECT number, size, checksum, etag, tree_hash FROM migration_parts"
        " WHERE migration = ? ORDER BY number",
        (migration,),
    )
    return [
        MigrationPart(PartInfo(int(n), int(s), str(c), str(e)), str(t)) for n, s, c, e, t in rows
    ]


def forget_copied_parts(catalogue: Catalogue, migration: int, numbers: Iterable[int]) -> None:
    """Recorded parts the destination no longer holds."""
    with catalogue.transaction() as db:
        db.executemany(
            "DELETE FROM migration_parts WHERE migration = ? AND number = ?",
            [(migration, n) for n in numbers],
        )


def begin_copy_completion(
    catalogue: Catalogue, migration: int, parts: Iterable[MigrationPart]
) -> None:
    """Before the destination is asked to complete: every part, and ``completing``."""
    with catalogue.transaction() as db:
        db.executemany(
            "INSERT OR REPLACE INTO migration_parts (migration, number, size, checksum, etag,"
            " tree_hash) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (migration, p.part.number, p.part.size, p.part.checksum, p.part.etag, p.tree_hash)
                for p in parts
            ],
        )
        db.execute("UPDATE migrations SET completing = 1 WHERE id = ?", (migration,))


def mark_copied(
    catalogue: Catalogue,
    record: MigrationRecord,
    checksum: str | None,
    now: datetime,
    locked_until: datetime | None = None,
) -> None:
    """The destination object is verified: in one transaction, the migration is ``copied`` and
    (for one of our cycles) the archive is recorded as the cycle's archive in the destination,
    uploaded and confirmed now, with its Object Lock retention; the parts and ranges are
    dropped."""
    with catalogue.transaction() as db:
        if record.cycle_id is not None:
            archive = ArchiveRecord(
                record.dest,
                record.key,
                record.cycle_id,
                record.host,
                record.size,
                record.plaintext_sha256,
                now,
                now,
            )
            put_archive(db, archive, None, locked_until)
        db.execute("DELETE FROM migration_parts WHERE migration = ?", (record.id,))
        db.execute("DELETE FROM migration_ranges WHERE migration = ?", (record.id,))
        db.execute(
            "UPDATE migrations SET state = ?, copied_at = ?, checksum = ?, completing = 0,"
            " upload_id = NULL, error = NULL WHERE id = ?",
            (MigrationState.COPIED, to_db_time(now), checksum, record.id),
        )


def mark_source_deleted(catalogue: Catalogue, migration: int, now: datetime) -> None:
    """The vault accepted the deletion of the source archive."""
    _update(
        catalogue,
        migration,
        state=MigrationState.SOURCE_DELETED,
        source_deleted_at=to_db_time(now),
    )


def _update(catalogue: Catalogue, migration: int, **values: object) -> None:
    names = ", ".join(f"{k} = ?" for k in values)
    with catalogue.transaction() as db:
        db.execute(
            f"UPDATE migrations SET {names} WHERE id = ?",  # noqa: S608 - names are ours
            (*values.values(), migration),
        )
