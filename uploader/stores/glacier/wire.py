"""The Glacier store's boundary with botocore: error translation and one request hook.

Nothing above :mod:`uploader.stores.glacier.store` sees a botocore or aiohttp exception.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.handlers import add_glacier_checksums

from uploader.stores.aws_errors import client_error, code_and_message, credentials_missing
from uploader.stores.base import (
    READ_CHUNK,
    ContainerNotFound,
    CredentialsRejected,
    ObjectNotFound,
    PermanentStoreError,
    StoreError,
    TransientStoreError,
)
from uploader.stores.glacier.treehash import TreeHasher, tree_hash

_TRANSIENT = frozenset(
    {"ThrottlingException", "RequestTimeoutException", "ServiceUnavailableException"}
)
CONTENT_PARAM = "GlacierBackupContentSHA256"  # ours, removed before botocore validates
_CONTENT_CONTEXT = "glacier_backup_content_sha256"


class VaultNotFound(ContainerNotFound):
    """The vault does not exist in this account and region (the store never creates one)."""


class NoInventoryYet(PermanentStoreError):
    """The vault has no inventory yet: Glacier makes one about daily after the first upload."""


@contextlib.contextmanager
def errors(what: str, not_found: type[PermanentStoreError] = ObjectNotFound) -> Iterator[None]:
    """Translate botocore/aiohttp errors into the store's types (the only place that sees them);
    ``not_found`` is what ResourceNotFoundException means for this call."""
    try:
        yield
    except StoreError:
        raise
    except ClientError as exc:
        # ResourceNotFoundException names a missing vault, or what `not_found` says for this call.
        vault_gone = code_and_message(exc)[1].startswith("Vault not found")
        by_code = {"ResourceNotFoundException": VaultNotFound if vault_gone else not_found}
        raise client_error(exc, what, transient=_TRANSIENT, by_code=by_code) from exc
    except NoCredentialsError as exc:
        raise credentials_missing(what, exc) from exc
    except PartialCredentialsError as exc:
        raise CredentialsRejected(f"{what}: {exc}") from exc
    except NoRegionError as exc:
        raise PermanentStoreError(f"{what}: no AWS region: set [store] region") from exc
    except (BotoConnectionError, HTTPClientError, IncompleteReadError) as exc:
        raise TransientStoreError(f"{what}: {exc}") from exc  # includes cut response bodies
    except BotoCoreError as exc:
        raise PermanentStoreError(f"{what}: {exc}") from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # slipped through botocore
        raise TransientStoreError(f"{what}: {exc!r}") from exc


def vault_args(account_id: str, vault: str, **kwargs: Any) -> dict[str, Any]:
    """The parameters of a call on one vault: its account and name, then ``kwargs``."""
    return {"accountId": account_id, "vaultName": vault, **kwargs}


def install_hooks(events: Any) -> None:
    """On one client's event emitter: part uploads take their linear SHA-256 from us."""
    part = "glacier.UploadMultipartPart"
    events.unregister(f"before-call.{part}", add_glacier_checksums)
    events.register(f"provide-client-params.{part}", take_content_hash)
    events.register(f"before-call.{part}", set_content_hash)


def take_content_hash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Take our linear SHA-256 out of the call's parameters before botocore validates them."""
    context[_CONTENT_CONTEXT] = params.pop(CONTENT_PARAM, None)


def set_content_hash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Stands in for botocore's ``add_glacier_checksums``, which hashes the body again in the
    event loop and needs a ``bytes``/file body (the driver hands us a ``bytearray``)."""
    headers, body = params["headers"], params["body"]
    linear = context.get(_CONTENT_CONTEXT) or hashlib.sha256(body).hexdigest()
    headers["x-amz-content-sha256"] = linear
    if "x-amz-sha256-tree-hash" not in headers:
        headers["x-amz-sha256-tree-hash"] = tree_hash(body)


class MissingTreeHash(PermanentStoreError):
    """Glacier sent a range of job output without its tree hash where one was required (it
    sends one only for tree-hash-aligned ranges of tree-hash-aligned retrievals)."""


async def verified_stream(
    response: Mapping[str, Any], what: str, *, require_tree_hash: bool = False
) -> AsyncIterator[bytes]:
    """The body of a GetJobOutput response, checked at its end: the length against
    ``Content-Length`` and, when Glacier sent one (always, with ``require_tree_hash``), the
    tree hash of the bytes."""
    length = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("content-length")
    expected = int(length) if isinstance(length, str) and length.isdigit() else None
    checksum, body = response.get("checksum"), response["body"]
    if require_tree_hash and not checksum:
        body.close()
        raise MissingTreeHash(
            f"{what}: Glacier sent no SHA-256 tree hash for this range, so it cannot be "
            "verified on its own"
        )
    hasher, got = TreeHasher(), 0
    try:
        while True:
            with errors(what):
                chunk = await body.read(READ_CHUNK)
            if not chunk:
                break
            got += len(chunk)
            if checksum:
                hasher.update(chunk)
            yield bytes(chunk)
    finally:
        body.close()
    if expected is not None and got != expected:
        raise TransientStoreError(f"{what}: received {got} of {expected} bytes")
    if checksum and hasher.hexdigest() != checksum:
        raise TransientStoreError(f"{what}: the bytes do not match their tree hash {checksum}")


async def failing(exc: Exception) -> AsyncIterator[bytes]:
    """An async iterator that raises ``exc`` when first awaited (never yields)."""
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk
    raise exc
