"""Restore: bring a point in time back from one archive.

:mod:`.stream` decrypts and extracts an archive's byte stream (any store); :mod:`.retrieval`
asks cold storage for an archive (S3 restore_object, a Glacier retrieval job) and prices it;
:mod:`.download` fetches a ready retrieval range by range, verified and resumable;
:mod:`.legacy` restores the original glacierclient tool's archives.
"""

from __future__ import annotations

from uploader.restore import download, retrieval
from uploader.restore.legacy import (
    LEGACY_PASSPHRASE_ENV,
    LegacyArchiveError,
    LegacyPlan,
    list_legacy,
    parse_legacy_at,
    plan_restore,
    restore_legacy,
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

__all__ = [
    "LEGACY_PASSPHRASE_ENV",
    "ArchiveRef",
    "CorruptArchive",
    "LegacyArchiveError",
    "LegacyPlan",
    "OnPlan",
    "RestoreError",
    "RestoreResult",
    "RetrievalRequired",
    "download",
    "find_archives",
    "identities_for",
    "list_legacy",
    "parse_legacy_at",
    "plan_restore",
    "restore_archive",
    "restore_legacy",
    "restore_stream",
    "retrieval",
]
