"""The catalogue: SQLite in the state directory, the local memory of what went where.

:class:`Catalogue` owns the connection (one, shared by threads behind a lock), the migrations
(:mod:`.schema`) and the two tables at its core: uploads in progress (the resume state, including
the encryption state with its file key: the database is 0600 in a 0700 directory) with their
acknowledged parts, and archives. Every other concern has its own module next to this one, with
its SQL, as functions taking the catalogue. Every call is blocking and short; async callers run
them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localbackup.paths import ensure_private_dir
from uploader.catalogue.records import ArchiveRecord, UploadRecord, UploadState
from uploader.catalogue.schema import MIGRATIONS
from uploader.closing import Closing
from uploader.stores import PartInfo

CATALOGUE_FILE = "catalogue.sqlite3"


def to_db_time(t: datetime) -> str:
    """How the catalogue stores a time: ISO 8601 in UTC."""
    return t.astimezone(UTC).isoformat()


def from_db_time(s: str | None) -> datetime | None:
    """A stored time, or None for NULL."""
    return None if s is None else datetime.fromisoformat(s)


def db_time(s: str) -> datetime:
    """A stored time from a NOT NULL column."""
    return datetime.fromisoformat(s)


class Catalogue(Closing):
    """One SQLite connection shared by threads behind a lock (SQLite calls are short)."""

    def __init__(self, path: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self._clock = clock or (lambda: datetime.now(UTC))
        ensure_private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # created 0600 before SQLite opens it
        os.close(fd)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._migrate()

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Catalogue:
        """The catalogue of a state directory (created on first use)."""
        return cls(state_dir / CATALOGUE_FILE)

    @property
    def state_dir(self) -> Path:
        """The state directory the catalogue lives in (its cycle locks live there too)."""
        return self.path.parent

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (for the table modules next to this one)."""
        with self._tx() as db:
            yield db

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction (a consistent snapshot) for queries that stream their rows."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement."""
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}; this program knows "
                    f"{len(MIGRATIONS)}: upgrade glacier-backup"
                )
            for i in range(version, len(MIGRATIONS)):
                for step in MIGRATIONS[i]:
                    if callable(step):
                        step(db)
                    else:
                        db.execute(step)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    @property
    def schema_version(self) -> int:
        """The schema version of the database (its ``user_version``)."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # -- uploads -------------------------------------------------------------------------------

    def start_upload(
        self,
        *,
        store: str,
        key: str,
        cycle_id: str,
        host: str,
        upload_id: str,
        part_size: int,
        total_size: int,
        plaintext_size: int,
        plaintext_sha256: str,
        encryption: str | None,
    ) -> UploadRecord:
        """Record an upload the store has just started; returns its record."""
        values = (
            store,
            key,
            cycle_id,
            host,
            upload_id,
            part_size,
            total_size,
            plaintext_size,
            plaintext_sha256,
            encryption,
            to_db_time(self._clock()),
        )
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO uploads (store, key, cycle_id, host, upload_id, part_size,"
                " total_size, plaintext_size, plaintext_sha256, encryption, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        assert cur.lastrowid is not None
        return _upload_from_row((cur.lastrowid, *values, UploadState.UPLOADING, None))

    def find_upload(self, store: str, cycle_id: str) -> UploadRecord | None:
        """The upload in progress of ``cycle_id`` to ``store``, if any."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE store = ? AND cycle_id = ?",  # noqa: S608
                (store, cycle_id),
            ).fetchone()
        if row is None:
            return None
        return _upload_from_row(row)

    def uploads(self, store: str | None = None) -> list[UploadRecord]:
        """Every upload in progress (to ``store`` only, when given)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE ? IS NULL OR store = ?",  # noqa: S608
                (store, store),
            ).fetchall()
        return [_upload_from_row(r) for r in rows]

    def record_part(self, upload: int, part: PartInfo) -> None:
        """Remember an acknowledged part (its own transaction, committed before returning)."""
        with self._tx() as db:
            db.execute(_INSERT_PART, (upload, part.number, part.size, part.checksum, part.etag))

    def parts(self, upload: int) -> list[PartInfo]:
        """The parts of an upload in progress the store acknowledged, by number."""
        with self._lock:
            rows = self._db.execute(
                "SELECT number, size, checksum, etag FROM upload_parts WHERE upload = ?"
                " ORDER BY number",
                (upload,),
            ).fetchall()
        return [PartInfo(*r) for r in rows]

    def drop_upload(self, upload: int) -> None:
        """Forget an upload (aborted, or found gone from the store) and its parts."""
        with self._tx() as db:
            db.execute("DELETE FROM uploads WHERE id = ?", (upload,))

    def begin_completion(self, upload: int, parts: list[PartInfo], sha256: str) -> None:
        """Before asking the store to complete: every part and the bundle SHA-256, and the
        state 'completing', in one transaction. From here on the upload is never aborted or
        dropped; a resume completes it again (Glacier then returns the same ArchiveId)."""
        completion = json.dumps(
            {"parts": [[p.number, p.size, p.checksum, p.etag] for p in parts], "sha256": sha256}
        )
        with self._tx() as db:
            db.executemany(
                _INSERT_PART, [(upload, p.number, p.size, p.checksum, p.etag) for p in parts]
            )
            db.execute(
                "UPDATE uploads SET state = ?, completion = ? WHERE id = ?",
                (UploadState.COMPLETING, completion, upload),
            )

    def finish_upload(
        self,
        upload: UploadRecord,
        size: int,
        archive_id: str | None = None,
        *,
        confirmed: bool = True,
        locked_until: datetime | None = None,
        etag: str | None = None,
        version_id: str | None = None,
    ) -> ArchiveRecord:
        """Turn a completed (and size-confirmed) upload into an archive, in one transaction,
        with the store-side id (a Glacier ArchiveId) if there is one. ``confirmed=False``: the
        store completed the upload but could not show the archive (a Glacier upload completed
        by a run that died before recording it); the next inventory confirms it by key.
        ``locked_until``: the archive's S3 Object Lock retention, which pruning respects. What
        ``verify`` compares later is kept with it too: the ETag and VersionId the store showed,
        and the part size and acknowledged parts (when they make the whole object)."""
        now = self._clock()
        record = ArchiveRecord(
            upload.store,
            upload.key,
            upload.cycle_id,
            upload.host,
            size,
            upload.plaintext_sha256,
            now,
            now if confirmed else None,
        )
        with self._tx() as db:
            rows = db.execute(
                "SELECT number, size, checksum, etag FROM upload_parts WHERE upload = ?"
                " ORDER BY number",
                (upload.id,),
            ).fetchall()
            parts = _whole(rows, size)
            put_archive(
                db,
                record,
                archive_id,
                locked_until,
                etag=etag,
                version_id=version_id,
                part_size=upload.part_size if parts else None,
                parts=parts,
            )
            db.execute("DELETE FROM uploads WHERE id = ?", (upload.id,))
            # Uploaded: whoever was retrying it (the service) is done (see retries.py).
            db.execute(
                "DELETE FROM upload_retries WHERE store = ? AND cycle_id = ?",
                (record.store, record.cycle_id),
            )
        return record

    # -- archives ------------------------------------------------------------------------------

    def find_archive(self, store: str, cycle_id: str) -> ArchiveRecord | None:
        """The archive of ``cycle_id`` in ``store``, if there is one."""
        found = self.archives(store=store, cycle_id=cycle_id)
        return found[0] if found else None

    def archives(
        self, store: str | None = None, cycle_id: str | None = None
    ) -> list[ArchiveRecord]:
        """The archives known, oldest cycle first (of ``store``, of ``cycle_id``, when given)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT store, key, cycle_id, host, size, plaintext_sha256, uploaded_at,"
                " confirmed_at FROM archives WHERE (? IS NULL OR store = ?)"
                " AND (? IS NULL OR cycle_id = ?) ORDER BY cycle_id",
                (store, store, cycle_id, cycle_id),
            ).fetchall()
        return [_archive_from_row(r) for r in rows]


def put_archive(
    db: sqlite3.Connection,
    record: ArchiveRecord,
    archive_id: str | None,
    locked_until: datetime | None = None,
    *,
    etag: str | None = None,
    version_id: str | None = None,
    part_size: int | None = None,
    parts: str | None = None,
) -> None:
    """Record (or replace) an archive row, inside the caller's transaction: with what
    ``verify`` compares later, when known (the ETag, VersionId, part size and parts JSON)."""
    db.execute(
        "INSERT OR REPLACE INTO archives (store, key, cycle_id, host, size, plaintext_sha256,"
        " uploaded_at, confirmed_at, archive_id, locked_until, etag, version_id, part_size,"
        " parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.store,
            record.key,
            record.cycle_id,
            record.host,
            record.size,
            record.plaintext_sha256,
            to_db_time(record.uploaded_at),
            None if record.confirmed_at is None else to_db_time(record.confirmed_at),
            archive_id or None,
            None if locked_until is None else to_db_time(locked_until),
            etag,
            version_id,
            part_size,
            parts,
        ),
    )


_UPLOAD_COLUMNS = (
    "id, store, key, cycle_id, host, upload_id, part_size, total_size, plaintext_size,"
    " plaintext_sha256, encryption, started_at, state, completion"
)
_INSERT_PART = (
    "INSERT OR REPLACE INTO upload_parts (upload, number, size, checksum, etag)"
    " VALUES (?, ?, ?, ?, ?)"
)


def _whole(rows: list[tuple[Any, ...]], size: int) -> str | None:
    """The acknowledged parts as the archives' ``parts`` JSON, if they make exactly ``size``
    bytes numbered 1..n (a resume after a crash may not have recorded every part)."""
    if [r[0] for r in rows] != list(range(1, len(rows) + 1)) or sum(r[1] for r in rows) != size:
        return None
    return json.dumps([[int(r[1]), str(r[2]), str(r[3])] for r in rows])


def _upload_from_row(r: tuple[Any, ...]) -> UploadRecord:
    started = from_db_time(r[11])
    assert started is not None
    return UploadRecord(
        id=r[0],
        store=r[1],
        key=r[2],
        cycle_id=r[3],
        host=r[4],
        upload_id=r[5],
        part_size=r[6],
        total_size=r[7],
        plaintext_size=r[8],
        plaintext_sha256=r[9],
        encryption=r[10],
        started_at=started,
        state=UploadState(r[12]),
        completion=r[13],
    )


def _archive_from_row(r: tuple[Any, ...]) -> ArchiveRecord:
    uploaded = from_db_time(r[6])
    assert uploaded is not None
    return ArchiveRecord(
        store=r[0],
        key=r[1],
        cycle_id=r[2],
        host=r[3],
        size=r[4],
        plaintext_sha256=r[5],
        uploaded_at=uploaded,
        confirmed_at=from_db_time(r[7]),
    )
