"""The catalogue schema: SQLite migrations, applied in order, counted in ``PRAGMA user_version``.

Each entry moves the schema from version i to i + 1. Append only; never edit a shipped one. The
tables, by the module that reads and writes them: ``uploads``, ``upload_parts``, ``archives``
(:mod:`.db`, :mod:`.archives`), ``cycle_indexes`` (:mod:`.indexes`), ``events`` (:mod:`.events`),
``inventory_jobs``, ``inventory_state``, ``inventories`` (:mod:`.inventory`), ``foreign_archives``,
``archive_flags`` (:mod:`.findings`), ``prune_decisions``, ``pending_deletions`` (:mod:`.pruning`),
``retrievals``, ``retrieval_ranges`` (:mod:`.retrievals`), ``operations`` (:mod:`.operations`),
``sealed_cycles`` (:mod:`.indexes`), ``restores`` (:mod:`.restores`), ``upload_retries``
(:mod:`.retries`), ``version_cycles``, ``paths``, ``path_versions`` (:mod:`.pathversions`),
``migrations``, ``migration_requests``, ``migration_ranges``, ``migration_parts``
(:mod:`.migrations`), ``metadata_objects`` (:mod:`.metadata_objects`), ``verifications``
(:mod:`.verifications`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _backfill_path_versions(db: sqlite3.Connection) -> None:
    from uploader.catalogue.pathversions import backfill

    backfill(db)


#: A step is an SQL statement, or a function run on the connection (a backfill) in the same
#: transaction.
Step = str | Callable[[sqlite3.Connection], None]

MIGRATIONS: list[tuple[Step, ...]] = [
    (
        """
        CREATE TABLE uploads (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            key TEXT NOT NULL,
            cycle_id TEXT NOT NULL,
            host TEXT NOT NULL,
            upload_id TEXT NOT NULL,
            part_size INTEGER NOT NULL,
            total_size INTEGER NOT NULL,
            plaintext_size INTEGER NOT NULL,
            plaintext_sha256 TEXT NOT NULL,
            encryption TEXT,  -- EncryptionState JSON (holds the file key), NULL: plaintext
            started_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'uploading',
            UNIQUE (store, cycle_id)
        )
        """,
        """
        CREATE TABLE upload_parts (
            upload INTEGER NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            size INTEGER NOT NULL,
            checksum TEXT NOT NULL,
            etag TEXT NOT NULL,
            PRIMARY KEY (upload, number)
        )
        """,
        """
        CREATE TABLE archives (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            key TEXT NOT NULL,
            cycle_id TEXT NOT NULL,
            host TEXT NOT NULL,
            size INTEGER NOT NULL,
            plaintext_sha256 TEXT NOT NULL,
            uploaded_at TEXT NOT NULL,
            confirmed_at TEXT,
            UNIQUE (store, key)
        )
        """,
        """
        CREATE INDEX archives_cycle ON archives (cycle_id)
        """,
    ),
    (
        # The increment indexes of every cycle handed to a store, as written (zstd), so that
        # `files` lists and searches backed-up paths without any retrieval.
        """
        CREATE TABLE cycle_indexes (
            host TEXT NOT NULL,
            cycle_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            kind TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (host, cycle_id, number)
        )
        """,
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            cycle_id TEXT,
            detail TEXT NOT NULL
        )
        """,
    ),
    (
        # Maintenance: inventories, reconciliation and pruning
        # (inventory.py, findings.py, pruning.py).
        # The store-side id of an archive when the key cannot find it (a Glacier ArchiveId).
        """
        ALTER TABLE archives ADD COLUMN archive_id TEXT
        """,
        """
        CREATE TABLE inventory_jobs (
            store TEXT NOT NULL,
            job_id TEXT NOT NULL,
            initiated_at TEXT NOT NULL,
            status TEXT NOT NULL,
            completed_at TEXT,
            checked_at TEXT,
            message TEXT,
            PRIMARY KEY (store, job_id)
        )
        """,
        """
        CREATE TABLE inventory_state (
            store TEXT PRIMARY KEY,
            last_requested_at TEXT,
            not_ready_at TEXT
        )
        """,
        """
        CREATE TABLE inventories (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            inventory_date TEXT NOT NULL,
            fetched_at TEXT NOT NULL,
            job_id TEXT,
            archive_count INTEGER NOT NULL,
            total_size INTEGER NOT NULL,
            archives TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE foreign_archives (
            store TEXT NOT NULL,
            store_id TEXT NOT NULL,
            key TEXT,
            size INTEGER NOT NULL,
            created TEXT,
            description TEXT NOT NULL,
            reason TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (store, store_id)
        )
        """,
        """
        CREATE TABLE archive_flags (
            store TEXT NOT NULL,
            key TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            resolved_at TEXT,
            PRIMARY KEY (store, key, kind)
        )
        """,
        """
        CREATE TABLE prune_decisions (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            planned_at TEXT NOT NULL,
            key TEXT NOT NULL,
            action TEXT NOT NULL,
            rule TEXT NOT NULL,
            reason TEXT NOT NULL,
            size INTEGER NOT NULL,
            fee REAL NOT NULL,
            dry_run INTEGER NOT NULL
        )
        """,
        """
        CREATE TABLE pending_deletions (
            store TEXT NOT NULL,
            key TEXT NOT NULL,
            archive_id TEXT,
            cycle_id TEXT,
            size INTEGER NOT NULL,
            deleted_at TEXT NOT NULL,
            confirmed_at TEXT,
            PRIMARY KEY (store, key)
        )
        """,
    ),
    (
        # Restores from cold storage (retrievals.py): a retrieval request
        # (S3 restore_object or a Glacier archive-retrieval job) and the verified byte ranges
        # of its download, so that `restore --resume` continues where it stopped.
        """
        CREATE TABLE retrievals (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            key TEXT NOT NULL,
            archive_id TEXT,
            size INTEGER NOT NULL,
            storage_class TEXT NOT NULL,
            tier TEXT NOT NULL,
            days INTEGER,
            requested_at TEXT NOT NULL,
            job_id TEXT,
            state TEXT NOT NULL,
            download_path TEXT,
            range_size INTEGER,
            UNIQUE (store, key)
        )
        """,
        """
        CREATE TABLE retrieval_ranges (
            retrieval INTEGER NOT NULL REFERENCES retrievals(id) ON DELETE CASCADE,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            PRIMARY KEY (retrieval, start)
        )
        """,
    ),
    (
        # An upload whose completion was asked of the store (state 'completing'): the parts
        # and the bundle SHA-256 it was completed with, so that a crash or a lost response
        # before the archive is recorded is resolved by completing again, never by a second
        # upload (JSON, see Catalogue.begin_completion).
        """
        ALTER TABLE uploads ADD COLUMN completion TEXT
        """,
    ),
    (
        # Running unattended (operations.py; archives.locked_until in archives.py, pruning.py):
        # the last success and failure of each operation, for the metrics file, and the S3
        # Object Lock retention of each archive, for pruning.
        """
        CREATE TABLE operations (
            operation TEXT PRIMARY KEY,
            last_success_at TEXT,
            last_failure_at TEXT,
            last_bytes INTEGER,
            last_seconds REAL,
            last_error TEXT
        )
        """,
        """
        ALTER TABLE archives ADD COLUMN locked_until TEXT
        """,
    ),
    (
        # The cycle.json of every cycle handed to a store, next to its indexes: what `cycles`
        # shows (increments, their times and sizes) once the cycle has left the spool.
        """
        CREATE TABLE sealed_cycles (
            host TEXT NOT NULL,
            cycle_id TEXT NOT NULL,
            cycle_json BLOB NOT NULL,
            PRIMARY KEY (host, cycle_id)
        )
        """,
    ),
    (
        # Surviving faults (restores.py, retries.py): the restores that finished, newest per
        # target, so that `restore --resume` after a kill at its very end says it is done; and
        # the uploads the service is retrying (since when, why, the next attempt), for status.
        """
        CREATE TABLE restores (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            key TEXT NOT NULL,
            cycle_id TEXT NOT NULL,
            increment INTEGER NOT NULL,
            target TEXT NOT NULL UNIQUE,
            finished_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE upload_retries (
            store TEXT NOT NULL,
            cycle_id TEXT NOT NULL,
            since TEXT NOT NULL,
            reason TEXT NOT NULL,
            next_at TEXT,
            attempts INTEGER NOT NULL,
            PRIMARY KEY (store, cycle_id)
        )
        """,
    ),
    (
        # `files PATTERN` without reading every stored index (pathversions.py): each path once,
        # indexed by itself and by its last component, and one row per version span of a path
        # in a cycle; filled by remember_cycle_indexes, backfilled here from cycle_indexes.
        """
        CREATE TABLE version_cycles (
            id INTEGER PRIMARY KEY,
            host TEXT NOT NULL,
            cycle_id TEXT NOT NULL,
            increments INTEGER NOT NULL,
            UNIQUE (host, cycle_id)
        )
        """,
        """
        CREATE TABLE paths (
            id INTEGER PRIMARY KEY,
            path BLOB NOT NULL UNIQUE,
            name BLOB NOT NULL
        )
        """,
        """
        CREATE INDEX paths_name ON paths (name)
        """,
        """
        CREATE TABLE path_versions (
            path INTEGER NOT NULL,
            cycle INTEGER NOT NULL,
            first INTEGER NOT NULL,
            last INTEGER NOT NULL,
            type INTEGER NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            PRIMARY KEY (path, cycle, first)
        ) WITHOUT ROWID
        """,
        _backfill_path_versions,
    ),
    (
        # Migrations out of a Glacier vault (migrations.py): one row per source archive and
        # destination, with where it stands (retrieval job, destination upload, verification,
        # deletion of the source); the retrieval requests made (for --max-per-day), the verified
        # job-output ranges waiting on disk for their part, and the destination's acknowledged
        # parts with their SHA-256 tree hashes, so that a killed migration loses at most the
        # parts in flight.
        """
        CREATE TABLE migrations (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            archive_id TEXT NOT NULL,
            dest TEXT NOT NULL,
            key TEXT NOT NULL,
            kind TEXT NOT NULL,
            host TEXT NOT NULL,
            cycle_id TEXT,
            size INTEGER NOT NULL,
            created TEXT NOT NULL,
            metadata TEXT NOT NULL,
            plaintext_sha256 TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,
            tier TEXT,
            job_id TEXT,
            tree_hash TEXT,
            upload_id TEXT,
            part_size INTEGER,
            completing INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            copied_at TEXT,
            checksum TEXT,
            source_deleted_at TEXT,
            UNIQUE (source, archive_id, dest),
            UNIQUE (dest, key)
        )
        """,
        """
        CREATE TABLE migration_requests (
            migration INTEGER NOT NULL REFERENCES migrations(id) ON DELETE CASCADE,
            job_id TEXT NOT NULL,
            tier TEXT NOT NULL,
            size INTEGER NOT NULL,
            requested_at TEXT NOT NULL,
            PRIMARY KEY (migration, job_id)
        )
        """,
        """
        CREATE TABLE migration_ranges (
            migration INTEGER NOT NULL REFERENCES migrations(id) ON DELETE CASCADE,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            tree_hash TEXT NOT NULL,
            PRIMARY KEY (migration, start)
        )
        """,
        """
        CREATE TABLE migration_parts (
            migration INTEGER NOT NULL REFERENCES migrations(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            size INTEGER NOT NULL,
            checksum TEXT NOT NULL,
            etag TEXT NOT NULL,
            tree_hash TEXT NOT NULL,
            PRIMARY KEY (migration, number)
        )
        """,
    ),
    (
        # Recovery and verification (metadata_objects.py, verifications.py).
        # What the store should hold for each archive, so that `verify` can compare without a
        # retrieval: its ETag and VersionId, and the part size and every part as acknowledged
        # (JSON [[size, base64 SHA-256, etag], ...]; a Glacier part's etag is its tree hash).
        """
        ALTER TABLE archives ADD COLUMN etag TEXT
        """,
        """
        ALTER TABLE archives ADD COLUMN version_id TEXT
        """,
        """
        ALTER TABLE archives ADD COLUMN part_size INTEGER
        """,
        """
        ALTER TABLE archives ADD COLUMN parts TEXT
        """,
        # Each archive's metadata object (cycle.json and the increment indexes, encrypted),
        # with the same expectations; read_at: when its content went into this catalogue.
        """
        CREATE TABLE metadata_objects (
            store TEXT NOT NULL,
            key TEXT NOT NULL,
            host TEXT NOT NULL,
            cycle_id TEXT NOT NULL,
            archive_key TEXT NOT NULL,
            archive_id TEXT,
            size INTEGER NOT NULL,
            etag TEXT,
            version_id TEXT,
            part_size INTEGER,
            parts TEXT,
            uploaded_at TEXT NOT NULL,
            confirmed_at TEXT,
            read_at TEXT,
            PRIMARY KEY (store, key)
        )
        """,
        # `verify` results, one row per archive and run.
        """
        CREATE TABLE verifications (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            key TEXT NOT NULL,
            cycle_id TEXT,
            at TEXT NOT NULL,
            mode TEXT NOT NULL,
            ok INTEGER NOT NULL,
            detail TEXT NOT NULL
        )
        """,
    ),
]
