"""Restore: bring a point in time back from one archive.

:mod:`.stream` decrypts and extracts an archive's byte stream (any store); :mod:`.retrieval`
asks cold storage for an archive (S3 restore_object, a Glacier retrieval job) and prices it;
:mod:`.download` fetches a ready retrieval range by range, verified and resumable;
:mod:`.cold` runs a restore from cold storage (request, wait, download, restore), taking a
:class:`RestoreRequest` and talking with the user through a :class:`RestoreUI`;
:mod:`.legacy` restores the original glacierclient tool's archives.
"""

from __future__ import annotations

from uploader.restore import download, retrieval
from uploader.restore.cold import cold_class, restore_cold
from uploader.restore.legacy import (
    LEGACY_PASSPHRASE_ENV,
    LegacyArchiveError,
    LegacyPlan,
    list_legacy,
    parse_legacy_at,
    plan_restore,
    restore_legacy,
)
from uploader.restore.request import (
    DEFAULT_DAYS,
    DEFAULT_PARALLEL,
    DEFAULT_RANGE,
    POLL_FIRST,
    POLL_MAX,
    RestoreRequest,
    RetrievalOptions,
)
from uploader.restore.stream import (
    ArchiveRef,
    CorruptArchive,
    OnPlan,
    RestoreError,
    RestoreResult,
    RetrievalRequired,
    find_archives,
    identities_for,
    restore_archive,
    restore_stream,
)
from uploader.restore.ui import RestoreDeclined, RestoreUI, RetrievalDeclined

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_PARALLEL",
    "DEFAULT_RANGE",
    "LEGACY_PASSPHRASE_ENV",
    "POLL_FIRST",
    "POLL_MAX",
    "ArchiveRef",
    "CorruptArchive",
    "LegacyArchiveError",
    "LegacyPlan",
    "OnPlan",
    "RestoreDeclined",
    "RestoreError",
    "RestoreRequest",
    "RestoreResult",
    "RestoreUI",
    "RetrievalDeclined",
    "RetrievalOptions",
    "RetrievalRequired",
    "cold_class",
    "download",
    "find_archives",
    "identities_for",
    "list_legacy",
    "parse_legacy_at",
    "plan_restore",
    "restore_archive",
    "restore_cold",
    "restore_legacy",
    "restore_stream",
    "retrieval",
]
