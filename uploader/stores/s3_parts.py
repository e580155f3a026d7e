"""S3 parts on the wire: a part body botocore can resend without a copy, and every part's
checksum as S3 lists it (GetObjectAttributes, page by page)."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp.payload import BytesPayload, Payload

from uploader.stores.base import ObjectNotFound, PartChecksum, PermanentStoreError
from uploader.stores.s3_errors import errors as _errors

log = structlog.get_logger("uploader.stores.s3")


class PartBody(BytesPayload):
    """A part's bytes as aiohttp sends them, without a copy, and as botocore sends them again.

    aiohttp copies a bytearray body (it slices it) before sending, a view it does not: 16 MiB
    less to copy per part. botocore rewinds a body before it retries a request (a 503 SlowDown,
    a reset connection) and cannot rewind a bare memoryview, which turned one transient error
    into a failed part. A payload of bytes in memory has nothing to rewind: :meth:`seek` is
    all botocore needs, and aiohttp sends a payload it is given as it is.
    """

    def __init__(self, data: bytearray) -> None:
        # Payload.__init__, not BytesPayload's: that one warns about large bodies in memory,
        # which is what a part is by design (its size is bounded by the driver's tokens).
        Payload.__init__(self, memoryview(data), content_type="application/octet-stream")
        self._size = len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Rewind for a retry: the bytes are in memory, every send starts at the first."""
        return 0


def part_body_as_view(params: dict[str, Any], **_: Any) -> None:
    """Send a part held in a bytearray as a :class:`PartBody` (no copy, can be resent).

    botocore's parameter validation refuses anything but bytes-like and file-like bodies, so
    the swap is made after it, just before the request is built."""
    body = params.get("body")
    if isinstance(body, bytearray):
        params["body"] = PartBody(body)


async def object_parts(
    client: Any, bucket: str, key: str, version: str | None, what: str
) -> tuple[tuple[PartChecksum, ...] | None, str | None]:
    """Every part's checksum (GetObjectAttributes ObjectParts, page by page) and the
    checksum type; (None, type) when the service does not list the parts."""
    parts: list[PartChecksum] = []
    marker: int | None = None
    kind: str | None = None
    extra = {"VersionId": version} if version else {}
    while True:
        page = {"PartNumberMarker": marker} if marker is not None else {}
        try:
            with _errors(what):
                r = await client.get_object_attributes(
                    Bucket=bucket,
                    Key=key,
                    ObjectAttributes=["ObjectParts", "Checksum"],
                    MaxParts=1000,
                    **extra,
                    **page,
                )
        except ObjectNotFound:
            raise
        except PermanentStoreError as exc:
            # Not implemented by this S3-compatible server, or not allowed by the policy
            # (s3:GetObjectAttributes): the other checksums still say a lot.
            log.warning("s3.object_parts_unavailable", key=key, error=str(exc))
            return None, kind
        kind = kind or (r.get("Checksum") or {}).get("ChecksumType")
        listed = r.get("ObjectParts")
        if not listed or "Parts" not in listed:
            return (tuple(parts) or None), kind
        for p in listed["Parts"]:
            # "" when the server lists the part without its checksum (SeaweedFS)
            checksum = str(p.get("ChecksumSHA256") or "")
            parts.append(PartChecksum(int(p["PartNumber"]), int(p["Size"]), checksum))
        if not listed.get("IsTruncated"):
            return tuple(parts), kind
        marker = int(listed["NextPartNumberMarker"])
