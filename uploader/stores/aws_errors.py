"""AWS error codes into the project's error types: the one place that knows them (S3, Glacier).

Each AWS store's error context manager (``s3_errors.errors``, ``glacier.wire.errors``) hands
botocore's ``ClientError`` to :func:`client_error` with what each code means for that call; the
codes that refuse credentials or permissions are the same for every AWS service and are
classified here.
Nothing above a store sees a ``ClientError`` or an AWS error code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from uploader.stores.base import (
    CredentialsMissing,
    CredentialsRejected,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

# Refused credentials, signatures or permissions. S3 names its codes plainly; JSON services such
# as Glacier add "Exception".
CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidSignature",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "UnrecognizedClient",
        "UnrecognizedClientException",
    }
)
NO_CREDENTIALS = "no AWS credentials found"


def code_and_message(exc: ClientError) -> tuple[str, str]:
    """The AWS error code and message of a botocore ``ClientError``."""
    error = exc.response.get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", ""))


def client_error(
    exc: ClientError,
    what: str,
    *,
    transient: frozenset[str],
    by_code: Mapping[str, type[PermanentStoreError]],
) -> StoreError:
    """Our error for a ``ClientError`` met while doing ``what``.

    ``by_code`` says what some codes mean for this call (``NoSuchKey`` is an
    :class:`~uploader.stores.base.ObjectNotFound`...); then the service's ``transient`` codes,
    5xx and 429 are transient; then credential codes are :class:`CredentialsRejected`; anything
    else is a :class:`PermanentStoreError`. The message is ``"<what>: <code>: <AWS message>"``.
    """
    code, message = code_and_message(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    text = f"{what}: {code or status}: {message}"
    kind: type[StoreError] | None = by_code.get(code)
    if kind is None and (code in transient or status >= 500 or status == 429):
        kind = TransientStoreError
    if kind is None:
        kind = CredentialsRejected if code in CREDENTIAL_CODES else PermanentStoreError
    return kind(text)


def credentials_missing(what: str, exc: Exception) -> CredentialsMissing:
    """Our error for botocore's ``NoCredentialsError``: nothing in the AWS credential chain."""
    return CredentialsMissing(f"{what}: {NO_CREDENTIALS} ({exc})")
