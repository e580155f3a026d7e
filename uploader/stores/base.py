"""The storage contract: one small :class:`Store` protocol, capabilities as data, our error types.

Every store translates its provider's errors (``OSError``, botocore ``ClientError``) into the
types below at its boundary; nothing above a store looks at provider errors. Retry decisions are
made from the type alone: :class:`TransientStoreError` may succeed if tried again, anything else
will not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol, Self, get_args, runtime_checkable

from uploader.stores.reports import BucketLock as BucketLock  # noqa: PLC0414 - re-exported
from uploader.stores.reports import ObjectVersion as ObjectVersion  # noqa: PLC0414 - re-exported
from uploader.stores.reports import PartChecksum as PartChecksum  # noqa: PLC0414 - re-exported
from uploader.stores.reports import StoredChecksums as StoredChecksums  # noqa: PLC0414 - re-exported
from uploader.stores.reports import VaultLockPolicy as VaultLockPolicy  # noqa: PLC0414 - re-exported

if TYPE_CHECKING:
    from uploader.config import StoreConfig
    from uploader.stores.glacier.jobs import Inventory, JobInfo

MiB = 1024 * 1024
GiB = 1024 * MiB
READ_CHUNK = MiB  # the size of the chunks a store's read() yields

# A retrieval tier (S3 restores and Glacier retrieval jobs alike), cheapest first: which ones a
# storage class offers, their waits and fees are uploader.restore.retrieval's TIERS table.
Tier = Literal["Bulk", "Standard", "Expedited"]
TIER_NAMES: tuple[Tier, ...] = get_args(Tier)
# What asking for a temporary readable copy of a cold object found (ObjectRestore).
RestoreOutcome = Literal["started", "restored", "in-progress"]


class StoreError(Exception):
    """Something went wrong talking to a store."""


class TransientStoreError(StoreError):
    """A failure that may go away if the same request is tried again (network, throttling, 5xx)."""


class PermanentStoreError(StoreError):
    """A failure that retrying will not fix (permissions, bad request, missing bucket)."""


class ObjectNotFound(PermanentStoreError):
    """The object does not exist (or is not visible yet)."""


class UploadNotFound(PermanentStoreError):
    """The multipart upload does not exist any more (completed, aborted or expired)."""


class ContainerNotFound(PermanentStoreError):
    """The bucket or vault the store is configured for does not exist (no store creates one)."""


class CredentialsRejected(PermanentStoreError):
    """The store refused the credentials or their permissions, or no credentials were found."""


class CredentialsMissing(CredentialsRejected):
    """No credentials were found at all (nothing in the provider's credential chain)."""


class ObjectChanged(PermanentStoreError):
    """A pinned read (``if_match`` / ``version_id``) found another object under the key."""


class RestoreAlreadyInProgress(PermanentStoreError):
    """A restore of the object was requested before and is still running."""


class RestoreNotSupported(PermanentStoreError):
    """The store refuses restore requests as an operation it does not offer (an S3-compatible
    server without the restore API: ``MethodNotAllowed``, ``NotImplemented``)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a store can do, declared as data so that the generic driver can plan around it."""

    min_part_size: int  # every part but the last must be at least this big
    max_part_size: int
    max_parts: int
    power_of_two_parts: bool = False  # part size must be 1 MiB x 2^n (Glacier vaults)
    immediate_listing: bool = True  # a completed object shows up in list_objects at once
    needs_retrieval: bool = False  # reading an object first needs a (slow, paid) restore request
    # PartInfo.etag is the part's SHA-256 tree hash (Glacier): a listed part whose plain
    # SHA-256 is unknown can still be matched by it.
    tree_hash_etags: bool = False

    def check_part_size(self, part_size: int) -> str | None:
        """Why ``part_size`` is not acceptable for this store, or None if it is."""
        if not self.min_part_size <= part_size <= self.max_part_size:
            return f"part size {part_size} is outside {self.min_part_size}..{self.max_part_size}"
        if self.power_of_two_parts and not _is_power_of_two_mib(part_size):
            return f"part size {part_size} is not 1 MiB times a power of two"
        return None


def _is_power_of_two_mib(n: int) -> bool:
    return n % MiB == 0 and (n // MiB) & (n // MiB - 1) == 0


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One uploaded part as the store acknowledged it."""

    number: int  # 1-based, as S3 numbers them
    size: int
    checksum: str  # base64 of the part's SHA-256, what S3 calls ChecksumSHA256
    etag: str


@dataclass(frozen=True, slots=True)
class MultipartUploadInfo:
    """A multipart upload in progress, as the store lists it."""

    key: str
    upload_id: str
    initiated: datetime | None = None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object as the store describes it (head, listing)."""

    key: str
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    storage_class: str | None = None
    last_modified: datetime | None = None
    # Where the store put the object when the key alone cannot find it again (a Glacier
    # ArchiveId); None for keyed stores. The catalogue should record it.
    archive_id: str | None = None
    # Until when the object cannot be deleted (S3 Object Lock retention); None: not locked.
    locked_until: datetime | None = None
    # What S3 calls the object's ETag and VersionId (None where the store has no such thing,
    # or the bucket is not versioned): a later object under the same key has others.
    etag: str | None = None
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectOptions:
    """How a store writes one object, beyond its bytes and metadata.

    ``storage_class``: the S3 storage class (None: the store's configured class; stores
    without storage classes ignore it). Object headers a store learns to set later (retention)
    belong here, so that every caller that writes an object passes them the same way.
    """

    storage_class: str | None = None


class Store(Protocol):
    """A place that keeps archives. Keys are relative (``<host>/<cycle_id>.tar.age``)."""

    @property
    def name(self) -> str:
        """A stable identity for the catalogue, e.g. ``s3://bucket/prefix`` or ``local:/path``."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What the store can do (part sizes, listing, retrieval), as data."""
        ...

    async def __aenter__(self) -> Self:
        """Open the store's clients."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def create_multipart_upload(
        self,
        key: str,
        part_size: int,
        metadata: Mapping[str, str],
        options: ObjectOptions | None = None,
    ) -> str:
        """Start an upload; ``part_size`` is the size of every part but the last. Returns its
        id. ``options`` (storage class, ...) apply to the object it makes."""
        ...

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray, checksum: str
    ) -> PartInfo:
        """Send part ``number`` (1-based); the store verifies ``checksum`` (base64 SHA-256)."""
        ...

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """Parts the store holds for an upload in progress (raises :class:`UploadNotFound`)."""
        ...

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> None:
        """Make the object from ``parts``; completing again with the same parts is harmless."""
        ...

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Drop an upload and its parts; aborting an unknown upload is not an error."""
        ...

    async def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUploadInfo]:
        """Uploads in progress whose key starts with ``prefix``."""
        ...

    async def head(self, key: str) -> ObjectInfo:
        """Size and metadata of an object (raises :class:`ObjectNotFound`)."""
        ...

    async def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (metadata may be left empty)."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of an object as a stream of chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; deleting a missing object is not an error."""
        ...


class StoreBase:
    """What every store shares: its name is its configuration's, its capabilities are data, and
    leaving ``async with`` awaits :meth:`close`. Each store opens itself in ``__aenter__``."""

    config: StoreConfig
    _capabilities: Capabilities

    @property
    def name(self) -> str:
        """The configuration's name: the store's stable identity in the catalogue."""
        return self.config.name

    @property
    def capabilities(self) -> Capabilities:
        """What the store can do (part sizes, listing, retrieval), as data."""
        return self._capabilities

    async def close(self) -> None:
        """Release what ``__aenter__`` opened (nothing, unless the store says otherwise)."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# -- optional abilities: small protocols, checked with isinstance -------------------------------


@runtime_checkable
class InventoryJobs(Protocol):
    """A store that lists its archives only through inventory jobs (a Glacier vault)."""

    async def initiate_inventory_job(self) -> str:
        """Ask for the vault's last inventory; returns the job id."""
        ...

    async def describe_job(self, job_id: str) -> JobInfo:
        """The state of a job (raises ``JobOutputExpired`` once it is gone)."""
        ...

    async def list_jobs(self) -> list[JobInfo]:
        """Jobs in progress and recently finished."""
        ...

    async def get_inventory(self, job_id: str) -> Inventory:
        """The output of a succeeded inventory job."""
        ...


@runtime_checkable
class RetrievalJobs(Protocol):
    """A store whose archives are read through retrieval jobs (a Glacier vault)."""

    async def initiate_retrieval_job(
        self,
        archive_id: str,
        tier: Tier = "Bulk",
        byte_range: tuple[int, int] | None = None,
        *,
        archive_size: int | None = None,
    ) -> str:
        """Stage an archive (or a byte range of it) for download; returns the job id."""
        ...

    async def describe_job(self, job_id: str) -> JobInfo:
        """The state of a job (raises ``JobOutputExpired`` once it is gone)."""
        ...

    def read_job_output(
        self,
        job_id: str,
        start: int = 0,
        end: int | None = None,
        *,
        require_tree_hash: bool = False,
    ) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of a succeeded job's output, verified; with
        ``require_tree_hash``, a range the service sends no tree hash for is refused."""
        ...


@runtime_checkable
class ObjectRestore(Protocol):
    """A store whose cold objects are restored to a temporary readable copy (S3 ``GLACIER``,
    ``DEEP_ARCHIVE``)."""

    async def restore_object(self, key: str, tier: Tier, days: int) -> RestoreOutcome:
        """Request a temporary copy for ``days``: ``"started"``, ``"restored"`` or
        ``"in-progress"``."""
        ...

    async def restore_state(self, key: str) -> str | None:
        """The object's restore status (S3's ``x-amz-restore``), None if none was requested."""
        ...


@runtime_checkable
class ObjectChecksums(Protocol):
    """A store that keeps a SHA-256 checksum of each object it made from checksummed parts
    (S3's ``ChecksumSHA256``), readable without reading the object."""

    async def stored_checksum(self, key: str) -> str | None:
        """The object's SHA-256 checksum as the store keeps it: for an object made from
        parts, the base64 SHA-256 of the parts' SHA-256 digests (S3 may add ``-<parts>``);
        None if the store kept none."""
        ...


@runtime_checkable
class PinnedReads(Protocol):
    """A store that pins ranged reads to one version of an object (S3's ETag and VersionId)."""

    async def object_version(self, key: str) -> tuple[str, str | None]:
        """The ETag and version id (None when unversioned) of the object under ``key`` now."""
        ...

    def read(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> AsyncIterator[bytes]:
        """Like :meth:`Store.read`; another object under the key raises ``ObjectChanged``."""
        ...


@runtime_checkable
class ChecksumReports(Protocol):
    """A store that reports what it keeps about an object's bytes without a retrieval
    (S3: HeadObject with ChecksumMode, GetObjectAttributes; the local store: its file)."""

    async def stored_checksums(self, key: str, part_size: int | None = None) -> StoredChecksums:
        """The object's size, ETag, version and checksums (raises :class:`ObjectNotFound`).
        ``part_size``: where the store computes part checksums itself, cut the parts so."""
        ...


@runtime_checkable
class ObjectLocking(Protocol):
    """A store that keeps objects undeletable until a date (S3 Object Lock) and keeps versions.

    Its :meth:`Store.create_multipart_upload` sets the configured retention on every archive it
    creates, its :meth:`Store.head` reports ``locked_until``, and its :meth:`Store.delete`
    removes the object's current version (in a versioned bucket a plain delete only hides it)."""

    async def bucket_lock(self) -> BucketLock:
        """The bucket's Object Lock and versioning state."""
        ...

    async def list_versions(self, prefix: str = "") -> list[ObjectVersion]:
        """Every version and delete marker under ``prefix``."""
        ...


@runtime_checkable
class VaultLocking(Protocol):
    """A store whose container may carry a lock policy that denies deletes (Glacier Vault Lock):
    pruning reads it and plans around it (:func:`uploader.object_lock.vault_lock_days`)."""

    async def vault_lock(self) -> VaultLockPolicy | None:
        """The vault's lock policy, None when it has none."""
        ...
