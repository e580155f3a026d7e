"""Object Lock and versions of an S3 bucket, for the S3 store's
:class:`~uploader.stores.base.ObjectLocking` ability: the bucket's lock and versioning state,
every version and delete marker, and the check that a new object carries its retention (keys
here are the bucket's, prefix included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localbackup.logevents import get_logger
from uploader.object_lock import ObjectLock
from uploader.stores.base import BucketLock, ObjectVersion, PermanentStoreError
from uploader.stores.s3_errors import NoLockConfiguration, errors

log = get_logger(__name__)


async def read_versioning(client: Any, bucket: str) -> str | None:
    """``bucket``'s versioning: "Enabled", "Suspended" or None (never enabled)."""
    with errors(f"reading the versioning of bucket {bucket}"):
        v = await client.get_bucket_versioning(Bucket=bucket)
    status = v.get("Status")
    return str(status) if status else None


async def read_versioned(client: Any, bucket: str) -> bool:
    """Whether deletes in ``bucket`` leave versions behind. A bucket that will not say (no
    permission for GetBucketVersioning, a service without it) is taken as unversioned: plain
    deletes, as ever."""
    try:
        return await read_versioning(client, bucket) is not None
    except PermanentStoreError as exc:
        log.warning("s3.versioning_unknown", bucket=bucket, error=str(exc))
        return False


async def read_bucket_lock(client: Any, bucket: str) -> BucketLock:
    """Whether ``bucket`` has Object Lock (and a default retention), and its versioning."""
    versioning = await read_versioning(client, bucket)
    try:
        with errors(f"reading the Object Lock configuration of bucket {bucket}"):
            r = await client.get_object_lock_configuration(Bucket=bucket)
    except NoLockConfiguration:
        return BucketLock(False, versioning)
    conf = r.get("ObjectLockConfiguration", {})
    rule = conf.get("Rule", {}).get("DefaultRetention", {})
    return BucketLock(
        conf.get("ObjectLockEnabled") == "Enabled", versioning, rule.get("Mode"), rule.get("Days")
    )


async def read_versions(client: Any, bucket: str, prefix: str) -> list[ObjectVersion]:
    """Every version and delete marker of ``bucket`` under ``prefix``."""
    out = []
    with errors("listing object versions"):
        pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        async for page in pages:
            for v in page.get("Versions", []):
                out.append(_version(v, marker=False))
            for m in page.get("DeleteMarkers", []):
                out.append(_version(m, marker=True))
    return out


def _version(v: Mapping[str, Any], *, marker: bool) -> ObjectVersion:
    return ObjectVersion(
        str(v["Key"]),
        str(v.get("VersionId", "null")),
        bool(v.get("IsLatest")),
        marker,
        int(v.get("Size", 0)),
        v.get("LastModified"),
    )


async def ensure_retention(client: Any, bucket: str, key: str, lock: ObjectLock) -> None:
    """Check that the object ``key`` carries a retention; a service that ignored the object-lock
    headers of its upload (moto does; S3 does not) gets ``lock`` set now."""
    with errors(f"reading the retention of {key}"):
        r = await client.head_object(Bucket=bucket, Key=key)
    if r.get("ObjectLockRetainUntilDate") is not None:
        return
    log.warning("s3.retention_set_after_creation", key=key, retention=lock.describe())
    with errors(f"setting the retention of {key}"):
        await client.put_object_retention(
            Bucket=bucket,
            Key=key,
            Retention={"Mode": lock.mode.value.upper(), "RetainUntilDate": lock.retain_until},
        )
