"""What a store reports about its objects beyond :class:`~uploader.stores.base.ObjectInfo`:
the checksums it keeps (read without reading or retrieving the bytes), Object Lock and Vault
Lock state, and the versions of a key. Re-exported by :mod:`uploader.stores.base`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PartChecksum:
    """One part of a stored object as the store reports it: its size and base64 SHA-256 ("" if
    the store lists the part but not its checksum)."""

    number: int
    size: int
    checksum: str


@dataclass(frozen=True, slots=True)
class StoredChecksums:
    """What a store keeps about an object's bytes, read without reading (or retrieving) them.

    S3 keeps these for archived objects too: the size, ETag and VersionId, the object's
    SHA-256 checksum (``checksum_type`` ``COMPOSITE``: the SHA-256 of the parts' SHA-256s,
    written ``<base64>-<parts>``; ``FULL_OBJECT``: of the bytes) and, where the service lists
    them, every part's checksum. A local store computes them from its file (``parts`` cut at
    the ``part_size`` asked for).
    """

    size: int
    etag: str | None = None
    version_id: str | None = None
    checksum_sha256: str | None = None
    checksum_type: str | None = None
    parts: tuple[PartChecksum, ...] | None = None  # None: the store does not say
    storage_class: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BucketLock:
    """What a bucket says about Object Lock and versioning (an Object Lock bucket is always
    versioned: a plain delete then only hides the object behind a delete marker)."""

    enabled: bool  # Object Lock is enabled on the bucket
    versioning: str | None  # "Enabled", "Suspended", None (never enabled)
    default_mode: str | None = None  # the bucket's default retention, if it has one
    default_days: int | None = None

    @property
    def versioned(self) -> bool:
        """Whether deletes leave versions behind (versioning on, now or in the past)."""
        return self.versioning is not None


@dataclass(frozen=True, slots=True)
class VaultLockPolicy:
    """A Glacier vault's Vault Lock: its policy document (JSON text) and its state
    (``InProgress``: in effect, can still be aborted; ``Locked``: in effect for good)."""

    state: str
    policy: str


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of a key in a versioned bucket: an object, or a delete marker."""

    key: str
    version_id: str
    is_latest: bool
    delete_marker: bool
    size: int = 0
    last_modified: datetime | None = None
