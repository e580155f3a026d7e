"""Metadata objects (a cycle's ``cycle.json`` and indexes, encrypted, next to its archive) and
what the store should hold for each archive and metadata object (``verify`` compares it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from uploader.catalogue.archives import confirm_archive
from uploader.catalogue.db import Catalogue, db_time, from_db_time, to_db_time
from uploader.catalogue.records import ExpectedObject, MetadataRecord, parts_from_json

_COLUMNS = (
    "store, key, host, cycle_id, archive_key, archive_id, size, etag, version_id, part_size,"
    " parts, uploaded_at, confirmed_at, read_at"
)


def _record(r: tuple[Any, ...]) -> MetadataRecord:
    expected = ExpectedObject(
        key=r[1],
        size=int(r[6]),
        archive_id=r[5],
        etag=r[7],
        version_id=r[8],
        part_size=r[9],
        parts=parts_from_json(r[10]),
    )
    return MetadataRecord(
        store=r[0],
        host=r[2],
        cycle_id=r[3],
        archive_key=r[4],
        expected=expected,
        uploaded_at=db_time(r[11]),
        confirmed_at=from_db_time(r[12]),
        read_at=from_db_time(r[13]),
    )


def record_metadata_object(
    catalogue: Catalogue,
    *,
    store: str,
    host: str,
    cycle_id: str,
    archive_key: str,
    expected: ExpectedObject,
    at: datetime,
    confirmed: bool = True,
    read: bool = False,
) -> None:
    """A metadata object the store holds (uploaded, or found by a listing or inventory)."""
    with catalogue.transaction() as db:
        db.execute(
            f"INSERT OR REPLACE INTO metadata_objects ({_COLUMNS})"  # noqa: S608
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                store,
                expected.key,
                host,
                cycle_id,
                archive_key,
                expected.archive_id,
                expected.size,
                expected.etag,
                expected.version_id,
                expected.part_size,
                expected.parts_json(),
                to_db_time(at),
                to_db_time(at) if confirmed else None,
                to_db_time(at) if read else None,
            ),
        )


def metadata_objects(catalogue: Catalogue, store: str) -> list[MetadataRecord]:
    """Every metadata object of ``store`` the catalogue knows, by key."""
    rows = catalogue.query(
        f"SELECT {_COLUMNS} FROM metadata_objects WHERE store = ? ORDER BY key",  # noqa: S608
        (store,),
    )
    return [_record(r) for r in rows]


def metadata_object_of(catalogue: Catalogue, store: str, archive_key: str) -> MetadataRecord | None:
    """The metadata object of the archive ``archive_key``, if the catalogue knows one."""
    rows = catalogue.query(
        f"SELECT {_COLUMNS} FROM metadata_objects WHERE store = ? AND archive_key = ?"  # noqa: S608
        " ORDER BY uploaded_at DESC LIMIT 1",
        (store, archive_key),
    )
    return _record(rows[0]) if rows else None


def mark_metadata_read(catalogue: Catalogue, store: str, key: str, at: datetime) -> None:
    """The metadata object's content went into the catalogue (a recovery read it)."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE metadata_objects SET read_at = ? WHERE store = ? AND key = ?",
            (to_db_time(at), store, key),
        )


def confirm_metadata_object(catalogue: Catalogue, store: str, key: str, at: datetime) -> None:
    """A listing or inventory showed the metadata object: confirmed, its flags resolved."""
    confirm_archive(catalogue, store, key, at, table="metadata_objects")


def drop_metadata_object(catalogue: Catalogue, store: str, key: str) -> None:
    """Forget a metadata object (deleted with its archive, or about to be sent again)."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM metadata_objects WHERE store = ? AND key = ?", (store, key))


def archive_expectation(catalogue: Catalogue, store: str, key: str) -> ExpectedObject | None:
    """What the store should hold under the archive ``key`` (None: no such archive)."""
    rows = catalogue.query(
        "SELECT key, size, archive_id, etag, version_id, part_size, parts FROM archives"
        " WHERE store = ? AND key = ?",
        (store, key),
    )
    if not rows:
        return None
    k, size, archive_id, etag, version_id, part_size, parts = rows[0]
    return ExpectedObject(
        k, int(size), archive_id, etag, version_id, part_size, parts_from_json(parts)
    )


def learn_archive_expectation(
    catalogue: Catalogue, store: str, expected: ExpectedObject, plaintext_sha256: str | None
) -> None:
    """Fill in what the catalogue does not know yet about an archive (one adopted from a
    listing or inventory) from its metadata object: parts, ETag, version, bundle SHA-256.
    What the catalogue recorded itself is kept."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE archives SET etag = COALESCE(etag, ?), version_id = COALESCE(version_id, ?),"
            " part_size = COALESCE(part_size, ?), parts = COALESCE(parts, ?),"
            " plaintext_sha256 = CASE WHEN plaintext_sha256 = '' THEN COALESCE(?, '')"
            " ELSE plaintext_sha256 END WHERE store = ? AND key = ? AND size = ?",
            (
                expected.etag,
                expected.version_id,
                expected.part_size,
                expected.parts_json(),
                plaintext_sha256,
                store,
                expected.key,
                expected.size,
            ),
        )
