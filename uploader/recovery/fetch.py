"""Reading a metadata object back into the catalogue (a recovery, ``verify``).

The ciphertext is copied into a 0600 file of a private temporary directory of the state
directory (it is small), from the store at once or from a finished Glacier retrieval job, then
decrypted and unpacked (:func:`.content.read_metadata_tar`, which checks every index against
``cycle.json``). What it says must agree with what the store says about its archive (host,
cycle, key, size) before anything goes into the catalogue: the cycle's ``cycle.json`` and
indexes (:func:`remember_cycle_indexes`, the one way they are stored) and what ``verify``
compares the archive with.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from uploader.catalogue import (
    Catalogue,
    MetadataRecord,
    learn_archive_expectation,
    mark_metadata_read,
    remember_cycle_indexes,
)
from uploader.config import EncryptionConfig
from uploader.crypto import (
    AgeError,
    Decryptor,
    Identity,
    NoIdentityMatchError,
    ScryptIdentity,
    load_identities,
    read_passphrase,
)
from uploader.recovery.content import MetadataContent, MetadataError, read_metadata_tar

log = structlog.get_logger(__name__)

__all__ = [
    "MetadataDamaged",
    "Unlock",
    "WrongKey",
    "ingest",
    "read_metadata_object",
    "unlock_for",
]


@dataclass(frozen=True, slots=True)
class Unlock:
    """The identities to decrypt with, and where they come from (for the messages)."""

    identities: tuple[Identity, ...]
    source: str  # "the identity file /x/key.txt", "the passphrase in /x/pass", ...


def unlock_for(encryption: EncryptionConfig, identity_file: Path | None = None) -> Unlock | None:
    """The key a recovery decrypts with: ``identity_file`` (``--identity``), else the
    configured identity file or passphrase; None when there is none."""
    path = identity_file or encryption.identity_file
    if path is not None:
        return Unlock(tuple(load_identities(path)), f"the identity file {path}")
    if encryption.passphrase_file is not None:
        secret = read_passphrase(file=encryption.passphrase_file)
        return Unlock((ScryptIdentity(secret),), f"the passphrase in {encryption.passphrase_file}")
    if encryption.passphrase_env is not None:
        secret = read_passphrase(env=encryption.passphrase_env)
        return Unlock((ScryptIdentity(secret),), f"the passphrase in ${encryption.passphrase_env}")
    return None


class WrongKey(Exception):
    """The key cannot open a metadata object: no identity matches its recipients."""


class MetadataDamaged(MetadataError):
    """A metadata object failed authentication, or its content does not add up: it is not
    trusted (its archive is still restorable in full)."""


async def read_metadata_object(
    record: MetadataRecord,
    chunks: AsyncIterator[bytes],
    unlock: Unlock | None,
    *,
    work: Path,
    archive_size: int | None = None,
) -> tuple[MetadataContent, Path]:
    """Read ``record``'s ciphertext from ``chunks`` and unpack it into a new directory under
    ``work`` (returned with the content): ``cycle.json`` and the index files. Raises
    :class:`WrongKey` (the key is not this store's) or :class:`MetadataDamaged`."""
    into = Path(tempfile.mkdtemp(dir=work, prefix="meta-"))
    raw = into / "object"
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        async for chunk in chunks:
            await asyncio.to_thread(os.write, fd, chunk)
    finally:
        os.close(fd)
    content = await asyncio.to_thread(_unpack, record, raw, unlock, into)
    raw.unlink()
    _check(record, content, archive_size)
    return content, into


def _unpack(
    record: MetadataRecord, raw: Path, unlock: Unlock | None, into: Path
) -> MetadataContent:
    encrypted = record.key.endswith(".age")
    if encrypted and unlock is None:
        raise WrongKey(f"{record.key} is encrypted and no identity was given")
    with open(raw, "rb") as f:
        try:
            src = Decryptor(list(unlock.identities)).open(f) if encrypted and unlock else f
            return read_metadata_tar(src, into)  # type: ignore[arg-type]
        except NoIdentityMatchError:
            source = unlock.source if unlock else "no key"
            raise WrongKey(
                f"{source} cannot open the metadata object {record.key} of archive "
                f"{record.archive_key}: none of its identities is a recipient of this store's "
                "archives (is it the identity whose recipient is in [encryption] recipients?)"
            ) from None
        except (AgeError, MetadataError) as exc:
            raise MetadataDamaged(
                f"the metadata object {record.key} failed its checks and is not trusted: {exc} "
                f"(archive {record.archive_key} is still restorable in full)"
            ) from None


def _check(record: MetadataRecord, content: MetadataContent, archive_size: int | None) -> None:
    """What the metadata object says must be what the store says about its archive."""
    problems = []
    if (content.host, content.cycle_id) != (record.host, record.cycle_id):
        problems.append(f"it describes {content.host}/{content.cycle_id}")
    if content.archive.key != record.archive_key:
        problems.append(f"it names the archive {content.archive.key}")
    if archive_size is not None and content.archive.size != archive_size:
        problems.append(f"it says {content.archive.size} bytes, the store {archive_size}")
    if problems:
        raise MetadataDamaged(
            f"the metadata object {record.key} does not describe archive "
            f"{record.archive_key}: {'; '.join(problems)} (the archive is still restorable "
            "in full)"
        )


def ingest(
    catalogue: Catalogue, record: MetadataRecord, content: MetadataContent, into: Path
) -> None:
    """Put a metadata object's content into the catalogue: the cycle's ``cycle.json`` and
    indexes, and what ``verify`` compares its archive with (blocking)."""
    remember_cycle_indexes(catalogue, into)
    learn_archive_expectation(
        catalogue, record.store, content.archive.expected, content.archive.plaintext_sha256
    )
    mark_metadata_read(catalogue, record.store, record.key, datetime.now(UTC))
    log.info(
        "recovery.metadata_read",
        key=record.key,
        cycle=record.cycle_id,
        increments=len(content.cycle.increments),
    )
