"""The catalogue: SQLite in the state directory, the local memory of what went where.

The front of the package: :class:`Catalogue` (the connection, uploads and archives), the records
it hands out, and one accessor module per concern, each next to its SQL — archives, events,
findings (foreign archives, flags), indexes, inventory, operations, pruning, retrievals.
Everything the other packages use is importable from here.
"""

from __future__ import annotations

from uploader.catalogue.archives import (
    adopt_archive,
    archive_id_of,
    confirm_archive,
    drop_archive,
    known_archives,
    requeue_unconfirmed,
    set_archive_id,
    set_locked_until,
)
from uploader.catalogue.db import CATALOGUE_FILE, Catalogue
from uploader.catalogue.events import (
    last_event,
    record_event,
)
from uploader.catalogue.findings import (
    flag_archive,
    foreign_archives,
    forget_foreign_except,
    open_flags,
    record_foreign,
)
from uploader.catalogue.indexes import (
    remember_cycle_indexes,
    stored_indexes,
)
from uploader.catalogue.inventory import (
    forget_job,
    inventory_not_ready,
    inventory_state,
    job_requested,
    mark_requested,
    record_inventory,
    save_job,
)
from uploader.catalogue.operations import (
    OperationRecord,
    operations,
    record_operation,
)
from uploader.catalogue.pathversions import PathPrefilter, PathVersion, find_path_versions
from uploader.catalogue.pruning import (
    confirm_deletion,
    pending_deletions,
    prune_inputs,
    pruned_at,
    pruned_cycle_ids,
    record_deletion,
    record_prune_plan,
)
from uploader.catalogue.records import (
    ArchiveRecord,
    Event,
    EventKind,
    Flag,
    FlagKind,
    ForeignArchive,
    InventoryJobState,
    InventoryState,
    JobStatus,
    KnownArchive,
    PendingDeletion,
    PruneArchive,
    RetrievalRecord,
    RetrievalState,
    StoredIndex,
    UploadRecord,
    UploadState,
)
from uploader.catalogue.retrievals import (
    done_ranges,
    drop_retrieval,
    find_retrieval,
    forget_download,
    mark_ready,
    record_range,
    record_request,
    requested_retrievals,
    set_download,
)

__all__ = [
    "CATALOGUE_FILE",
    "ArchiveRecord",
    "Catalogue",
    "Event",
    "EventKind",
    "Flag",
    "FlagKind",
    "ForeignArchive",
    "InventoryJobState",
    "InventoryState",
    "JobStatus",
    "KnownArchive",
    "OperationRecord",
    "PathPrefilter",
    "PathVersion",
    "PendingDeletion",
    "PruneArchive",
    "RetrievalRecord",
    "RetrievalState",
    "StoredIndex",
    "UploadRecord",
    "UploadState",
    "adopt_archive",
    "archive_id_of",
    "confirm_archive",
    "confirm_deletion",
    "done_ranges",
    "drop_archive",
    "drop_retrieval",
    "find_path_versions",
    "find_retrieval",
    "flag_archive",
    "foreign_archives",
    "forget_download",
    "forget_foreign_except",
    "forget_job",
    "inventory_not_ready",
    "inventory_state",
    "job_requested",
    "known_archives",
    "last_event",
    "mark_ready",
    "mark_requested",
    "open_flags",
    "operations",
    "pending_deletions",
    "prune_inputs",
    "pruned_at",
    "pruned_cycle_ids",
    "record_deletion",
    "record_event",
    "record_foreign",
    "record_inventory",
    "record_operation",
    "record_prune_plan",
    "record_range",
    "record_request",
    "remember_cycle_indexes",
    "requested_retrievals",
    "requeue_unconfirmed",
    "save_job",
    "set_archive_id",
    "set_download",
    "set_locked_until",
    "stored_indexes",
]
