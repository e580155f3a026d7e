"""S3 on the wire, as the fault proxy sees it: error answers and the operation of a request."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True, slots=True)
class S3Error:
    """An error answer as S3 gives it: HTTP status, ``<Code>`` and ``<Message>``."""

    status: int
    code: str
    message: str


SLOW_DOWN = S3Error(503, "SlowDown", "Please reduce your request rate.")
SERVICE_UNAVAILABLE = S3Error(503, "ServiceUnavailable", "Service is unable to handle request.")
INTERNAL_ERROR = S3Error(
    500, "InternalError", "We encountered an internal error. Please try again."
)
REQUEST_TIMEOUT = S3Error(
    400,
    "RequestTimeout",
    "Your socket connection to the server was not read from or written to within the timeout "
    "period. Idle connections will be closed.",
)
INVALID_OBJECT_STATE = S3Error(
    403, "InvalidObjectState", "The operation is not valid for the object's storage class"
)
RESTORE_IN_PROGRESS = S3Error(
    409, "RestoreAlreadyInProgress", "Object restore is already in progress"
)


@dataclass(frozen=True, slots=True)
class Request:
    """What a rule can match on."""

    method: str
    target: str
    operation: str
    bucket: str
    key: str
    ranged: bool
    range: str | None = None  # the Range header, as sent

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string's parameters (``partNumber``, ``uploadId``...)."""
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)


def classify(method: str, target: str, headers: dict[str, str]) -> Request:
    """The S3 operation of a path-style request (headers are lower-cased names)."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    path = unquote(parts.path)
    bucket, _, key = path.lstrip("/").partition("/")
    copy = "x-amz-copy-source" in headers
    op = "Unknown"
    if path.startswith("/moto-api"):
        op = "MotoApi"
    elif not bucket:
        op = "ListBuckets" if method == "GET" else "Unknown"
    elif not key:
        op = {
            "GET": "ListObjectsV2"
            if query.get("list-type") == ["2"]
            else ("ListMultipartUploads" if "uploads" in query else "ListObjects"),
            "PUT": "CreateBucket",
            "HEAD": "HeadBucket",
            "DELETE": "DeleteBucket",
            "POST": "DeleteObjects" if "delete" in query else "Unknown",
        }.get(method, "Unknown")
    elif method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            op = "UploadPartCopy" if copy else "UploadPart"
        else:
            op = "CopyObject" if copy else "PutObject"
    elif method == "POST":
        if "uploads" in query:
            op = "CreateMultipartUpload"
        elif "uploadId" in query:
            op = "CompleteMultipartUpload"
        elif "restore" in query:
            op = "RestoreObject"
    elif method == "GET":
        op = "ListParts" if "uploadId" in query else "GetObject"
    elif method == "HEAD":
        op = "HeadObject"
    elif method == "DELETE":
        op = "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return Request(method, target, op, bucket, key, "range" in headers, headers.get("range"))
