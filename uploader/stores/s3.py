"""An S3 bucket (or any S3-compatible endpoint) as a store, through aiobotocore.

Credentials come from the standard AWS chain (environment, shared profiles, instance roles);
our configuration never holds keys. Request-level retries are botocore's own ("standard" or
"adaptive" mode); the multipart driver adds part-level retries on top.

With ``[store] object_lock``, every archive is created locked (the object-lock headers of
CreateMultipartUpload, :func:`uploader.object_lock.object_lock_for`), and the store offers
:class:`~uploader.stores.base.ObjectLocking`: the bucket's lock state, every version and delete
marker, and deletes of the current version (a plain delete in a versioned bucket only hides).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Self

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from uploader.archive import S3_COLD_CLASSES
from uploader.config import CONNECT_TIMEOUT, READ_TIMEOUT, S3StoreConfig, StorageClass
from uploader.object_lock import LockPolicy, ObjectLock, object_lock_for
from uploader.stores.aws_client import AwsClient, AwsStore, total_attempts
from uploader.stores.base import (
    READ_CHUNK,
    BucketLock,
    Capabilities,
    GiB,
    MiB,
    MultipartUploadInfo,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    ObjectOptions,
    ObjectVersion,
    PartInfo,
    RestoreAlreadyInProgress,
    RestoreOutcome,
    StoredChecksums,
    Tier,
    TransientStoreError,
    UploadNotFound,
)
from uploader.stores.s3_errors import NO_RESTORE_API, ObjectLockUnavailable
from uploader.stores.s3_errors import errors as _errors
from uploader.stores.s3_lock import (
    ensure_retention,
    read_bucket_lock,
    read_versioned,
    read_versions,
)
from uploader.stores.s3_parts import object_parts, part_body_as_view

log = structlog.get_logger("uploader.stores.s3")

S3_CAPABILITIES = Capabilities(min_part_size=5 * MiB, max_part_size=5 * GiB, max_parts=10_000)


class S3Store(AwsStore):
    """A bucket and key prefix; objects are written with ``storage_class``.

    By default: parts of 5 MiB to 5 GiB; reads need a restore in the cold classes."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        storage_class: StorageClass = "DEEP_ARCHIVE",
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        retry_mode: str = "standard",
        max_attempts: int = 5,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = 32,
        capabilities: Capabilities | None = None,
        session: AioSession | None = None,
        object_lock: LockPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.storage_class = storage_class
        self.config: S3StoreConfig = S3StoreConfig(
            bucket,
            prefix,
            storage_class,
            region,
            profile,
            endpoint_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            object_lock=object_lock,
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock_checked = False
        self._versioned: bool | None = None
        self._region = region
        self._endpoint_url = endpoint_url
        self._session = session if session is not None else AioSession(profile=profile)
        self._config = AioConfig(
            # max_attempts counts retries (botocore's legacy name); the user's AWS setting wins.
            retries={
                "mode": retry_mode,
                "total_max_attempts": total_attempts(self._session, max_attempts + 1),
            },
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
            # Every part carries its SHA-256 checksum, which S3 verifies: hashing the body once
            # more for the SigV4 signature (botocore does on plain http) would only cost time.
            s3={"payload_signing_enabled": False},
        )
        self._capabilities = capabilities or Capabilities(
            min_part_size=S3_CAPABILITIES.min_part_size,
            max_part_size=S3_CAPABILITIES.max_part_size,
            max_parts=S3_CAPABILITIES.max_parts,
            needs_retrieval=storage_class in S3_COLD_CLASSES,
        )
        self._aws = AwsClient(
            "s3", self._session, self._config, region=self._region, endpoint_url=self._endpoint_url
        )

    async def __aenter__(self) -> Self:
        with _errors("connecting to S3"):
            client = await self._aws.open()
        client.meta.events.register("before-call.s3.UploadPart", part_body_as_view)
        return self

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _rel(self, full_key: str) -> str:
        return full_key[len(self.prefix) :]

    # -- multipart -----------------------------------------------------------------------------

    async def create_multipart_upload(
        self,
        key: str,
        part_size: int,
        metadata: Mapping[str, str],
        options: ObjectOptions | None = None,
    ) -> str:
        """Start an upload in the store's storage class (or the one ``options`` names), with
        SHA-256 part checksums, and with ``[store] object_lock``, the object's retention
        (:meth:`lock_for_new_object`: an archive and its metadata object alike)."""
        storage_class = (options.storage_class if options else None) or self.storage_class
        extra = await self._lock_params()
        with _errors(f"starting the upload of {key}"):
            r = await self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(key),
                StorageClass=storage_class,
                Metadata=dict(metadata),
                ChecksumAlgorithm="SHA256",
                ContentType="application/octet-stream",
                **extra,
            )
        return str(r["UploadId"])

    def lock_for_new_object(self) -> ObjectLock | None:
        """The retention of an object created now: the same for an archive and its metadata
        object (None without ``[store] object_lock``)."""
        policy = self.config.object_lock
        if policy is None:
            return None
        return object_lock_for(policy, self.storage_class, self._clock())

    async def _lock_params(self) -> dict[str, object]:
        """The object-lock parameters of a new object, once the bucket is known to take them."""
        lock = self.lock_for_new_object()
        if lock is None:
            return {}
        if not self._lock_checked:
            state = await self.bucket_lock()
            if not state.enabled:
                raise ObjectLockUnavailable(
                    f"[store] object_lock is set, but bucket {self.bucket} has no Object Lock "
                    "enabled: enable it (docs/immutability.md) or remove object_lock"
                )
            self._lock_checked = True
        return lock.request_params()

    async def bucket_lock(self) -> BucketLock:
        """Whether the bucket has Object Lock (and a default retention), and its versioning."""
        return await read_bucket_lock(self.client, self.bucket)

    async def list_versions(self, prefix: str = "") -> list[ObjectVersion]:
        """Every version and delete marker under ``prefix``."""
        found = await read_versions(self.client, self.bucket, self._key(prefix))
        return [dataclasses.replace(v, key=self._rel(v.key)) for v in found]

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray, checksum: str
    ) -> PartInfo:
        """Send a part with its SHA-256, which S3 verifies."""
        with _errors(f"uploading part {number} of {key}"):
            r = await self.client.upload_part(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentLength=len(data),
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
        returned = r.get("ChecksumSHA256")
        if returned is not None and returned != checksum:
            raise TransientStoreError(f"part {number} of {key}: the store saw another checksum")
        return PartInfo(number, len(data), checksum, str(r["ETag"]))

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """The parts S3 holds for an upload in progress."""
        out = []
        with _errors(f"listing the parts of {key}"):
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
            )
            async for page in pages:
                for p in page.get("Parts", []):
                    out.append(
                        PartInfo(
                            int(p["PartNumber"]),
                            int(p["Size"]),
                            str(p.get("ChecksumSHA256", "")),
                            str(p["ETag"]),
                        )
                    )
        return sorted(out, key=lambda p: p.number)

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> None:
        """Make the object from the parts."""
        with _errors(f"completing the upload of {key}"):
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": p.checksum}
                        for p in parts
                    ]
                },
            )
        if (lock := self.lock_for_new_object()) is not None:
            # before the archive is recorded: a service may have ignored the upload's headers
            await ensure_retention(self.client, self.bucket, self._key(key), lock)

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Abort an upload; an unknown upload is not an error."""
        try:
            with _errors(f"aborting the upload of {key}"):
                await self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
                )
        except UploadNotFound:
            pass

    async def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUploadInfo]:
        """Uploads in progress under ``prefix``."""
        out = []
        with _errors("listing uploads in progress"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            async for page in pages:
                for u in page.get("Uploads", []):
                    out.append(
                        MultipartUploadInfo(
                            self._rel(str(u["Key"])), str(u["UploadId"]), u.get("Initiated")
                        )
                    )
        return out

    # -- objects -------------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo:
        """Size, user metadata, storage class and date of an object."""
        with _errors(f"reading the metadata of {key}"):
            r = await self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        return ObjectInfo(
            key,
            int(r["ContentLength"]),
            dict(r.get("Metadata", {})),
            str(r.get("StorageClass", "STANDARD")),
            r.get("LastModified"),
            etag=str(r["ETag"]) if r.get("ETag") else None,
            version_id=_version(r.get("VersionId")),
            locked_until=r.get("ObjectLockRetainUntilDate"),
        )

    async def stored_checksums(self, key: str, part_size: int | None = None) -> StoredChecksums:
        """What S3 keeps about the object, archived or not (no restore is needed): HeadObject
        with ``ChecksumMode=ENABLED`` for the size, ETag, version and checksum, then
        GetObjectAttributes for every part's checksum (``parts`` is None where the service
        does not list them). ``part_size`` is not used: S3 reports the parts as uploaded."""
        what = f"reading the checksums of {key}"
        with _errors(what):
            r = await self.client.head_object(
                Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            )
        version = _version(r.get("VersionId"))
        parts, kind = await object_parts(self.client, self.bucket, self._key(key), version, what)
        return StoredChecksums(
            size=int(r["ContentLength"]),
            etag=str(r["ETag"]) if r.get("ETag") else None,
            version_id=version,
            checksum_sha256=r.get("ChecksumSHA256"),
            checksum_type=r.get("ChecksumType") or kind,
            parts=parts,
            storage_class=str(r.get("StorageClass", "STANDARD")),
            metadata=dict(r.get("Metadata", {})),
        )

    # -- retrieval from GLACIER / DEEP_ARCHIVE -------------------------------------------------

    async def restore_state(self, key: str) -> str | None:
        """The ``x-amz-restore`` header of ``key``: None if never restored (or expired),
        ``ongoing-request="true"`` while running, ``ongoing-request="false", expiry-date=...``
        once the temporary copy is readable."""
        with _errors(f"reading the metadata of {key}"):
            r = await self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        restore = r.get("Restore")
        return None if restore is None else str(restore)

    async def restore_object(self, key: str, tier: Tier, days: int) -> RestoreOutcome:
        """Ask S3 for a temporary copy of an archived object: ``"started"`` (202),
        ``"restored"`` (200: a copy exists, its expiry is renewed) or ``"in-progress"``
        (``RestoreAlreadyInProgress``)."""
        request = {"Days": days, "GlacierJobParameters": {"Tier": tier}}
        try:
            with _errors(f"requesting a restore of {key}", NO_RESTORE_API):
                r = await self.client.restore_object(
                    Bucket=self.bucket, Key=self._key(key), RestoreRequest=request
                )
        except RestoreAlreadyInProgress:
            return "in-progress"
        status = int(r.get("ResponseMetadata", {}).get("HTTPStatusCode", 202) or 202)
        return "restored" if status == 200 else "started"

    async def stored_checksum(self, key: str) -> str | None:
        """The ``ChecksumSHA256`` S3 keeps for ``key`` (HeadObject with ``ChecksumMode``):
        for a multipart object, over the parts' checksums. None if it kept none."""
        with _errors(f"reading the checksum of {key}"):
            r = await self.client.head_object(
                Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            )
        value = r.get("ChecksumSHA256")
        return None if value is None else str(value)

    async def object_version(self, key: str) -> tuple[str, str | None]:
        """The ``ETag`` and ``VersionId`` (None in an unversioned bucket) of ``key``: what a
        ranged download passes to :meth:`read` so that every range comes from one object."""
        with _errors(f"reading the metadata of {key}"):
            r = await self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        return str(r["ETag"]), _version(r.get("VersionId"))

    async def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects under ``prefix`` (metadata is not listed: empty)."""
        out = []
        with _errors("listing objects"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            async for page in pages:
                for o in page.get("Contents", []):
                    out.append(
                        ObjectInfo(
                            self._rel(str(o["Key"])),
                            int(o["Size"]),
                            {},
                            str(o.get("StorageClass", "STANDARD")),
                            o.get("LastModified"),
                        )
                    )
        return out

    async def read(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> AsyncIterator[bytes]:
        """``if_match`` (an ETag) and ``version_id`` pin the object read: another one raises
        :class:`ObjectChanged` instead of mixing its bytes in (see :meth:`object_version`)."""
        if end is not None and end <= start:
            return
        extra = {}
        if start > 0 or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if if_match is not None:
            extra["IfMatch"] = if_match
        if version_id is not None:
            extra["VersionId"] = version_id
        try:
            with _errors(f"reading {key}"):
                r = await self.client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)
        except ObjectChanged as exc:
            if if_match is None and version_id is None:
                raise
            raise ObjectChanged(
                f"{key} is no longer the object whose download started "
                f"(ETag {if_match}, version {version_id or '-'}): {exc}"
            ) from exc
        body = r["Body"]
        try:
            while True:
                with _errors(f"reading {key}"):
                    chunk = await body.read(READ_CHUNK)
                if not chunk:
                    break
                yield bytes(chunk)
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        """Delete an object; a missing object is not an error. In a versioned bucket (every
        Object Lock bucket is) the current version itself is deleted: a plain delete would only
        hide it behind a delete marker and leave its bytes billed."""
        version = None
        if self._versioned is None:
            self._versioned = await read_versioned(self.client, self.bucket)
        if self._versioned:
            try:
                version = (await self.object_version(key))[1]
            except ObjectNotFound:
                return
        extra = {} if version is None else {"VersionId": version}
        with _errors(f"deleting {key}" + (f" (version {version})" if version else "")):
            await self.client.delete_object(Bucket=self.bucket, Key=self._key(key), **extra)


def _version(value: object) -> str | None:
    """A VersionId as the store reports it: None in an unversioned bucket (``null``)."""
    return None if value in (None, "null") else str(value)
