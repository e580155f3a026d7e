"""S3's errors into the project's error types: the S3 store's boundary.

:func:`errors` wraps every S3 call of :mod:`uploader.stores.s3`: botocore's ``ClientError`` goes
to :func:`uploader.stores.aws_errors.client_error` with what S3's codes mean (:data:`_BY_CODE`,
:data:`_TRANSIENT`); missing credentials, connection errors and anything else botocore or the
socket raises become our types too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from uploader.stores.aws_errors import client_error, credentials_missing
from uploader.stores.base import (
    ContainerNotFound,
    CredentialsRejected,
    ObjectChanged,
    ObjectNotFound,
    PermanentStoreError,
    RestoreAlreadyInProgress,
    RestoreNotSupported,
    StoreError,
    TransientStoreError,
    UploadNotFound,
)


class ObjectLockUnavailable(PermanentStoreError):
    """``[store] object_lock`` is set, but the bucket has no Object Lock: nothing is uploaded
    unlocked."""


class NoLockConfiguration(PermanentStoreError):
    """The bucket has no Object Lock configuration (read as "not enabled")."""


# What an S3 error code means, before the generic rules of aws_errors.client_error apply.
_BY_CODE: dict[str, type[PermanentStoreError]] = {
    "ObjectLockConfigurationNotFoundError": NoLockConfiguration,
    "NoSuchKey": ObjectNotFound,
    "404": ObjectNotFound,  # a HEAD request's answer has no body, hence no code
    "NotFound": ObjectNotFound,
    "NoSuchUpload": UploadNotFound,
    "NoSuchBucket": ContainerNotFound,
    "RestoreAlreadyInProgress": RestoreAlreadyInProgress,
    "PreconditionFailed": ObjectChanged,  # If-Match: the ETag is another one now
    "NoSuchVersion": ObjectChanged,
}
_TRANSIENT = frozenset(
    {
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "ServiceUnavailable",
    }
)


# RestoreObject refused as an operation the server does not have (SeaweedFS and other
# S3-compatible servers); elsewhere these codes mean a refused request like any other.
NO_RESTORE_API: Mapping[str, type[PermanentStoreError]] = {
    "MethodNotAllowed": RestoreNotSupported,
    "NotImplemented": RestoreNotSupported,
}


@contextlib.contextmanager
def errors(
    what: str, codes: Mapping[str, type[PermanentStoreError]] | None = None
) -> Iterator[None]:
    """Translate botocore errors into the store's error types (the only place that sees them);
    ``codes`` says what some error codes mean for this call, before the store-wide ones."""
    try:
        yield
    except StoreError:
        raise
    except ClientError as exc:
        by_code = _BY_CODE if codes is None else {**_BY_CODE, **codes}
        raise client_error(exc, what, transient=_TRANSIENT, by_code=by_code) from exc
    except NoCredentialsError as exc:
        raise credentials_missing(what, exc) from exc
    except PartialCredentialsError as exc:
        raise CredentialsRejected(f"{what}: {exc}") from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise TransientStoreError(f"{what}: {exc}") from exc
    except BotoCoreError as exc:
        raise PermanentStoreError(f"{what}: {exc}") from exc
    except OSError as exc:  # aiohttp and socket errors that slipped through botocore
        raise TransientStoreError(f"{what}: {exc}") from exc
