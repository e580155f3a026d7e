"""Restore: bring a point in time back, from the spool, a store, cold storage or a legacy archive.

The front of the package: everything other packages use is importable from here.

* What to restore: :class:`RestoreRequest` (with :class:`RetrievalOptions` for cold storage).
* How the restore talks with its user: :class:`RestoreUI` (say, warn, status, progress,
  confirm); a step that needs consent and did not get it raises :class:`RestoreDeclined`.
* The use cases: :func:`check_target_first` (before anything is paid for),
  :func:`restore_from_spool`, :func:`restore_from_store` (which retrieves a cold archive first),
  :func:`restore_legacy` / :func:`list_legacy` (the original tool's archives).

Inside: :mod:`.stream` decrypts and extracts an archive's byte stream (any store);
:mod:`.retrieval` asks cold storage for an archive and prices it; :mod:`.download` fetches a
ready retrieval range by range, verified and resumable; :mod:`.cold` runs a cold restore
(request, wait, download, restore); :mod:`.from_store` and :mod:`.from_spool` choose what to
restore; :mod:`.target` checks the target; :mod:`.ui` holds the user-facing protocol and texts;
:mod:`.legacy` restores the original glacierclient tool's archives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localbackup.lazyfront import lazy_front

if TYPE_CHECKING:
    from uploader.restore.download import fetch_verified
    from uploader.restore.from_spool import restore_from_spool
    from uploader.restore.from_store import choose_archive, restore_from_store
    from uploader.restore.legacy import (
        LEGACY_PASSPHRASE_ENV,
        LegacyArchiveError,
        LegacyPlan,
        legacy_archive_name,
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
    from uploader.restore.retrieval import TIER_CHOICES, ready_since_requested
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
    from uploader.restore.target import already_restored, check_target_first, confirm_replace
    from uploader.restore.ui import RestoreDeclined, RestoreUI, RetrievalDeclined, consent
else:
    __getattr__ = lazy_front(
        __name__,
        {
            ".download": ("fetch_verified",),
            ".from_spool": ("restore_from_spool",),
            ".from_store": (
                "choose_archive",
                "restore_from_store",
            ),
            ".legacy": (
                "LEGACY_PASSPHRASE_ENV",
                "LegacyArchiveError",
                "LegacyPlan",
                "legacy_archive_name",
                "list_legacy",
                "parse_legacy_at",
                "plan_restore",
                "restore_legacy",
            ),
            ".request": (
                "DEFAULT_DAYS",
                "DEFAULT_PARALLEL",
                "DEFAULT_RANGE",
                "POLL_FIRST",
                "POLL_MAX",
                "RestoreRequest",
                "RetrievalOptions",
            ),
            ".retrieval": (
                "TIER_CHOICES",
                "ready_since_requested",
            ),
            ".stream": (
                "ArchiveRef",
                "CorruptArchive",
                "OnPlan",
                "RestoreError",
                "RestoreResult",
                "RetrievalRequired",
                "find_archives",
                "identities_for",
                "restore_archive",
                "restore_stream",
            ),
            ".target": (
                "already_restored",
                "check_target_first",
                "confirm_replace",
            ),
            ".ui": (
                "RestoreDeclined",
                "RestoreUI",
                "RetrievalDeclined",
                "consent",
            ),
        },
    )

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_PARALLEL",
    "DEFAULT_RANGE",
    "LEGACY_PASSPHRASE_ENV",
    "POLL_FIRST",
    "POLL_MAX",
    "TIER_CHOICES",
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
    "already_restored",
    "check_target_first",
    "choose_archive",
    "confirm_replace",
    "consent",
    "fetch_verified",
    "find_archives",
    "identities_for",
    "legacy_archive_name",
    "list_legacy",
    "parse_legacy_at",
    "plan_restore",
    "ready_since_requested",
    "restore_archive",
    "restore_from_spool",
    "restore_from_store",
    "restore_legacy",
    "restore_stream",
]
