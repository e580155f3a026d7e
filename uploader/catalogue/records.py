"""The records the catalogue keeps and hands out: frozen values, no I/O.

Some are the inputs of the pure planners in :mod:`uploader.maintenance` (what the catalogue knows
of archives, deletions and inventory jobs); they live here, next to the tables they come from, so
that the catalogue never depends on the package that plans with them.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from uploader.stores import PartInfo, Tier

if TYPE_CHECKING:
    from localbackup.index import Index


class UploadState(StrEnum):
    """Where an upload in progress stands."""

    UPLOADING = "uploading"
    # Completion was asked of the store: never abort or drop the upload; a resume completes it
    # again (Glacier then returns the same ArchiveId).
    COMPLETING = "completing"


class RetrievalState(StrEnum):
    """A retrieval request: asked for and not yet seen ready | ready (downloading or about to)."""

    REQUESTED = "requested"
    READY = "ready"


class FlagKind(StrEnum):
    """Why an archive is flagged by reconciliation or pruning."""

    MISSING = "missing"
    MISMATCH = "mismatch"
    DELETION_FAILED = "deletion_failed"


class MigrationState(StrEnum):
    """Where the migration of one vault archive stands (:mod:`uploader.migrate`)."""

    PLANNED = "planned"  # known; no retrieval job runs (none requested yet, or it expired)
    REQUESTED = "requested"  # a retrieval job was requested and is not yet seen ready
    READY = "ready"  # the job's output can be read: copying into the destination
    COPIED = "copied"  # the destination object is verified and recorded; the source is kept
    SOURCE_DELETED = "source_deleted"  # copied, then the vault archive was deleted
    FAILED = "failed"  # stopped with an error (``error``); the next run tries again


class MigrationKind(StrEnum):
    """What a migrated vault archive is: one of ours (a cycle), or the original tool's."""

    OURS = "ours"
    LEGACY = "legacy"


class JobStatus(StrEnum):
    """A Glacier inventory job as the catalogue remembers it (Expired: gone from the service)."""

    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    EXPIRED = "Expired"


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An upload in progress, as much as is needed to resume it after a crash."""

    id: int
    store: str
    key: str
    cycle_id: str
    host: str
    upload_id: str
    part_size: int
    total_size: int
    plaintext_size: int
    plaintext_sha256: str
    encryption: str | None
    started_at: datetime
    state: UploadState
    completion: str | None = None  # JSON while state == "completing" (begin_completion)

    @property
    def completing(self) -> bool:
        """Completion was asked of the store: never abort or drop this upload."""
        return self.state is UploadState.COMPLETING

    def completion_parts(self) -> list[PartInfo]:
        """The parts the completion was asked with (state 'completing' only)."""
        data = json.loads(self.completion or "{}")
        return [PartInfo(int(n), int(s), str(c), str(e)) for n, s, c, e in data.get("parts", [])]

    def completion_sha256(self) -> str | None:
        """The bundle SHA-256 computed by the run that asked for completion."""
        value = json.loads(self.completion or "{}").get("sha256")
        return str(value) if value else None


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One archive known to be in a store."""

    store: str
    key: str
    cycle_id: str
    host: str
    size: int
    plaintext_sha256: str
    uploaded_at: datetime
    confirmed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RetrievalRecord:
    """A retrieval request (S3 restore or Glacier archive-retrieval job) and its download."""

    id: int
    store: str
    key: str
    archive_id: str | None
    size: int
    storage_class: str  # S3 class, or GLACIER_VAULT
    tier: Tier
    days: int | None
    requested_at: datetime
    job_id: str | None
    state: RetrievalState
    download_path: Path | None
    range_size: int | None


@dataclass(frozen=True, slots=True)
class PlannedArchive:
    """A vault archive chosen for migration, before the catalogue numbers it."""

    archive_id: str
    key: str  # the object key in the destination
    kind: MigrationKind
    host: str
    cycle_id: str | None
    size: int
    created: datetime
    metadata: dict[str, str]
    plaintext_sha256: str = ""


@dataclass(frozen=True, slots=True)
class MigrationRecord:
    """One vault archive being moved to another store, as the catalogue remembers it."""

    id: int
    source: str  # the vault's store name
    archive_id: str
    dest: str  # the destination's store name
    key: str  # the object key in the destination
    kind: MigrationKind
    host: str
    cycle_id: str | None  # None for the original tool's archives
    size: int
    created: datetime  # the archive's CreationDate in the vault (its minimum storage clock)
    metadata: dict[str, str]  # the destination object's metadata
    plaintext_sha256: str
    state: MigrationState
    tier: str | None = None
    job_id: str | None = None
    tree_hash: str | None = None  # Glacier's SHA-256 tree hash of the whole archive
    upload_id: str | None = None  # the destination's multipart upload
    part_size: int | None = None
    completing: bool = False  # completion was asked of the destination
    error: str | None = None
    copied_at: datetime | None = None
    checksum: str | None = None  # what the destination reported for the object
    source_deleted_at: datetime | None = None

    @property
    def done(self) -> bool:
        """Whether the destination holds the verified copy."""
        return self.state in (MigrationState.COPIED, MigrationState.SOURCE_DELETED)


@dataclass(frozen=True, slots=True)
class MigrationPart:
    """A destination part acknowledged during a migration, with the tree hash of its bytes."""

    part: PartInfo
    tree_hash: str


@dataclass(frozen=True, slots=True)
class StoredIndex:
    """The hot copy of one increment's index (zstd, as written)."""

    host: str
    cycle_id: str
    number: int
    kind: str
    finished_at: datetime
    data: bytes

    def load(self) -> Index:
        """The index, parsed."""
        from localbackup.index import read_index  # zstandard only where an index is read

        return read_index(io.BytesIO(self.data))


# What the event log records: an archive uploaded, an upload failed (any command, or the
# service filing a marker under failed/), a marker quarantined. over_budget / within_budget:
# the budget's state as the last maintenance pass found it (watcher.maintenance_notices
# announces the change).
EventKind = Literal[
    "uploaded", "upload_failed", "marker_quarantined", "over_budget", "within_budget"
]
#: The kinds that are failures: ``status`` shows them until a later success of the same cycle.
FAILURE_KINDS: tuple[EventKind, ...] = ("upload_failed", "marker_quarantined")


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the event log (last success, last failure, ...)."""

    at: datetime
    kind: EventKind
    cycle_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class ForeignArchive:
    """An archive in the store that is not ours (another tool or host): never touched."""

    store_id: str
    key: str | None
    size: int
    created: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class Flag:
    """An open finding about one of our archives."""

    key: str
    kind: FlagKind
    detail: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class KnownArchive:
    """An archive as the catalogue knows it (reconciliation's input)."""

    key: str
    size: int
    uploaded_at: datetime
    plaintext_sha256: str | None = None
    store_id: str | None = None  # Glacier ArchiveId; the key for S3/local


@dataclass(frozen=True, slots=True)
class PendingDeletion:
    """A delete the store accepted, waiting to be confirmed by a listing or inventory."""

    key: str
    deleted_at: datetime
    store_id: str | None = None


@dataclass(frozen=True, slots=True)
class PruneArchive:
    """One archive as the prune planner sees it."""

    key: str
    size: int
    created: datetime  # upload time (S3/local) or the inventory's CreationDate (Glacier)
    confirmed: bool = True  # seen in the store (listing, inventory, or our own completed upload)
    ours: bool = True  # False: foreign (another tool or host): never a candidate
    taken_at: datetime | None = None  # when the backup was taken (its cycle's start)
    locked_until: datetime | None = None  # S3 Object Lock: no delete can succeed before this

    @property
    def point_in_time(self) -> datetime:
        """What "newest" and the calendar rules go by: the backup's time, not the upload's
        (a cycle uploaded late is not newer than the ones taken after it)."""
        return self.taken_at or self.created


@dataclass(frozen=True, slots=True)
class InventoryJobState:
    """An inventory job as remembered between maintenance passes."""

    job_id: str
    initiated_at: datetime
    status: JobStatus = JobStatus.IN_PROGRESS
    completed_at: datetime | None = None
    checked_at: datetime | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class InventoryState:
    """Everything the inventory planner needs to know about one store."""

    jobs: tuple[InventoryJobState, ...] = ()
    last_requested_at: datetime | None = None
    last_inventory_date: datetime | None = None  # InventoryDate of the newest fetched inventory
    last_change_at: datetime | None = None  # newest upload or deletion in this store
    not_ready_at: datetime | None = None  # when the service last said "no inventory yet"


class VerifyMode(StrEnum):
    """How an archive was verified: against what the store reports, or by reading its data."""

    STORE = "store"  # size, ETag/version, checksums, tree hash: no retrieval
    DATA = "data"  # downloaded, every age chunk authenticated, every file checked


@dataclass(frozen=True, slots=True)
class StoredPart:
    """One part of an object as the store acknowledged it at upload."""

    number: int
    size: int
    checksum: str  # base64 SHA-256 ("" when unknown)
    etag: str  # S3's part ETag; a Glacier part's SHA-256 tree hash


@dataclass(frozen=True, slots=True)
class ExpectedObject:
    """What the store should hold under ``key``: recorded when it was uploaded (or read from
    its metadata object after a recovery). Empty ``parts``: not known (an older upload)."""

    key: str
    size: int
    archive_id: str | None = None
    etag: str | None = None
    version_id: str | None = None
    part_size: int | None = None
    parts: tuple[StoredPart, ...] = ()

    def parts_json(self) -> str | None:
        """The ``parts`` column: JSON ``[[size, checksum, etag], ...]`` (None when unknown)."""
        if not self.parts:
            return None
        return json.dumps([[p.size, p.checksum, p.etag] for p in self.parts])


def parts_from_json(text: str | None) -> tuple[StoredPart, ...]:
    """The reverse of :meth:`ExpectedObject.parts_json`."""
    if not text:
        return ()
    return tuple(
        StoredPart(n, int(size), str(checksum), str(etag))
        for n, (size, checksum, etag) in enumerate(json.loads(text), start=1)
    )


@dataclass(frozen=True, slots=True)
class MetadataRecord:
    """A cycle's metadata object in a store (``read_at``: when its content was read into the
    catalogue, after a recovery)."""

    store: str
    host: str
    cycle_id: str
    archive_key: str
    expected: ExpectedObject
    uploaded_at: datetime
    confirmed_at: datetime | None = None
    read_at: datetime | None = None

    @property
    def key(self) -> str:
        """Where it is in the store."""
        return self.expected.key


@dataclass(frozen=True, slots=True)
class Verification:
    """One archive's ``verify`` result."""

    store: str
    key: str
    cycle_id: str | None
    at: datetime
    mode: VerifyMode
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One archive of the latest vault inventory the catalogue fetched."""

    store_id: str  # the ArchiveId
    size: int
    key: str | None  # ours: the key in its description
    tree_hash: str | None


@dataclass(frozen=True, slots=True)
class LatestInventory:
    """The newest vault inventory the catalogue fetched, by ArchiveId."""

    date: datetime
    archives: dict[str, InventoryEntry]
