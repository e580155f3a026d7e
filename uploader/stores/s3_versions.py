"""Object Lock and versions of an S3 bucket: what the S3 store's
:class:`~uploader.stores.base.ObjectLocking` ability reads (keys are the bucket's, prefix
included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uploader.stores.base import BucketLock, ObjectVersion
from uploader.stores.s3_errors import NoLockConfiguration, errors


async def read_versioning(client: Any, bucket: str) -> str | None:
    """``bucket``'s versioning: "Enabled", "Suspended" or None (never enabled)."""
    with errors(f"reading the versioning of bucket {bucket}"):
        v = await client.get_bucket_versioning(Bucket=bucket)
    status = v.get("Status")
    return str(status) if status else None


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
