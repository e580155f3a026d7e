"""Recovery from the store alone: each archive's metadata object, and the rebuild.

:mod:`.content` is the metadata object's format (a small tar of ``metadata.json``,
``cycle.json`` and the increment indexes); :mod:`.publish` makes and uploads it, the one place
that does; :mod:`.fetch` reads one back (at once, or through a Glacier retrieval job) and puts
its content into the catalogue; :mod:`.rebuild` is the recovery of a lost host's catalogue.
"""

from __future__ import annotations

from uploader.recovery.content import ArchiveFacts, MetadataContent, MetadataError
from uploader.recovery.fetch import (
    MetadataDamaged,
    Unlock,
    WrongKey,
    ingest,
    read_metadata_object,
    unlock_for,
)
from uploader.recovery.publish import (
    MetadataUnavailable,
    ensure_metadata_object,
    upload_metadata_object,
)
from uploader.recovery.rebuild import RecoveryReport, recover_metadata

__all__ = [
    "ArchiveFacts",
    "MetadataContent",
    "MetadataDamaged",
    "MetadataError",
    "MetadataUnavailable",
    "RecoveryReport",
    "Unlock",
    "WrongKey",
    "ensure_metadata_object",
    "ingest",
    "read_metadata_object",
    "recover_metadata",
    "unlock_for",
    "upload_metadata_object",
]
