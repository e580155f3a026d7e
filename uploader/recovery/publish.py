"""Sending a cycle's metadata object: the one place it is made and uploaded.

The metadata object (:mod:`.content`) is encrypted to the archive's recipients and written
next to the archive (``<host>/<cycle_id>.meta.age``) with :class:`ObjectOptions` (the S3
``[store] metadata_storage_class``, STANDARD by default, so that it is read without a
retrieval; in a Glacier vault it is a small archive of its own). It is made from the
catalogue's copy of ``cycle.json`` and the indexes (or from the spool's cycle directory when
there is one), after the archive is recorded: what it says about the archive (parts, ETag,
Glacier tree hashes) is then known. Its plaintext tar is written to a 0600 file in a private
temporary directory of the state directory (the indexes name every backed-up path) and
encrypted as it streams through the multipart driver.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import structlog

from localbackup.formats import CYCLE_JSON, SealedCycle, index_name, load_sealed_cycle
from uploader.archive import ArchiveMetadata, ObjectKind, metadata_key
from uploader.bundle import bundle_size, cycle_sha256
from uploader.catalogue import (
    Catalogue,
    ExpectedObject,
    MetadataRecord,
    StoredPart,
    archive_expectation,
    metadata_object_of,
    record_metadata_object,
    stored_cycle,
    stored_indexes,
)
from uploader.config import EncryptionConfig
from uploader.crypto import new_encryption
from uploader.keys import recipients_for
from uploader.multipart import MultipartOptions, upload_multipart
from uploader.payload import (
    EncryptedPayload,
    FilePayload,
    PartPlan,
    PayloadSource,
    choose_part_size,
)
from uploader.recovery.content import ArchiveFacts, MetadataError, write_metadata_tar
from uploader.stores.base import ObjectOptions, PartInfo, Store

log = structlog.get_logger(__name__)

__all__ = ["MetadataUnavailable", "ensure_metadata_object", "upload_metadata_object"]


class MetadataUnavailable(MetadataError):
    """The metadata object cannot be made: the catalogue lacks the cycle's archive, its
    ``cycle.json`` or an index (and the spool no longer has the cycle)."""


async def upload_metadata_object(
    store: Store,
    catalogue: Catalogue,
    *,
    host: str,
    cycle_id: str,
    encryption: EncryptionConfig,
    options: ObjectOptions | None = None,
    cycle_dir: Path | None = None,
) -> MetadataRecord:
    """Make, upload and record the metadata object of ``host``'s cycle ``cycle_id``, whose
    archive the catalogue records in ``store`` (see the module docstring). ``options`` are
    the object's (its storage class, ...); ``cycle_dir``: the sealed cycle in the spool, if it
    is still there. Raises :class:`MetadataUnavailable`, or what the upload raises."""
    archive = await asyncio.to_thread(catalogue.find_archive, store.name, cycle_id)
    expected = await asyncio.to_thread(
        archive_expectation, catalogue, store.name, archive.key if archive else ""
    )
    if archive is None or expected is None:
        raise MetadataUnavailable(f"cycle {cycle_id}: no archive of it in {store.name}")
    cycle = await asyncio.to_thread(_cycle, catalogue, host, cycle_id, cycle_dir)
    facts = ArchiveFacts(
        key=archive.key,
        size=archive.size,
        plaintext_size=bundle_size(cycle),
        plaintext_sha256=archive.plaintext_sha256,
        cycle_sha256=cycle_sha256(cycle),
        encryption="age" if encryption.enabled else "none",
        archive_id=expected.archive_id,
        etag=expected.etag,
        version_id=expected.version_id,
        part_size=expected.part_size,
        parts=expected.parts,
    )
    key = metadata_key(host, cycle_id, encryption.enabled)
    with tempfile.TemporaryDirectory(dir=catalogue.path.parent, prefix=".metadata-") as tmp:
        plain = Path(tmp) / "metadata.tar"
        opener = _opener(catalogue, cycle_id, cycle_dir)
        await asyncio.to_thread(_write, plain, facts, cycle, opener)
        uploaded = await _upload(store, key, plain, facts, encryption=encryption, options=options)
    record = MetadataRecord(
        store=store.name,
        host=host,
        cycle_id=cycle_id,
        archive_key=archive.key,
        expected=uploaded,
        uploaded_at=datetime.now(UTC),
    )
    await asyncio.to_thread(
        lambda: record_metadata_object(
            catalogue,
            store=store.name,
            host=host,
            cycle_id=cycle_id,
            archive_key=archive.key,
            expected=uploaded,
            at=record.uploaded_at,
            read=True,
        )
    )
    log.info("metadata.uploaded", key=key, bytes=uploaded.size, archive=archive.key)
    return record


async def ensure_metadata_object(
    store: Store,
    catalogue: Catalogue,
    *,
    host: str,
    cycle_id: str,
    archive_key: str,
    encryption: EncryptionConfig,
    options: ObjectOptions | None = None,
    cycle_dir: Path | None = None,
) -> MetadataRecord:
    """The archive's metadata object: the recorded one, else uploaded now."""
    found = await asyncio.to_thread(metadata_object_of, catalogue, store.name, archive_key)
    if found is not None:
        return found
    return await upload_metadata_object(
        store,
        catalogue,
        host=host,
        cycle_id=cycle_id,
        encryption=encryption,
        options=options,
        cycle_dir=cycle_dir,
    )


def _cycle(catalogue: Catalogue, host: str, cycle_id: str, cycle_dir: Path | None) -> SealedCycle:
    if cycle_dir is not None and (cycle_dir / CYCLE_JSON).is_file():
        return load_sealed_cycle(cycle_dir)
    cycle = stored_cycle(catalogue, host, cycle_id)
    if cycle is None:
        raise MetadataUnavailable(
            f"cycle {cycle_id}: the catalogue has no cycle.json of it and the spool no longer "
            "has the cycle"
        )
    return cycle


def _opener(
    catalogue: Catalogue, cycle_id: str, cycle_dir: Path | None
) -> Callable[[str], IO[bytes]]:
    """Where each index comes from: the spool's cycle directory, else the catalogue."""

    def open_index(name: str) -> IO[bytes]:
        if cycle_dir is not None and (cycle_dir / name).is_file():
            return open(cycle_dir / name, "rb")
        for s in stored_indexes(catalogue, cycle_id):
            if index_name(s.number) == name:
                return io.BytesIO(s.data)
        raise MetadataUnavailable(f"cycle {cycle_id}: the catalogue has no index {name}")

    return open_index


def _write(
    path: Path, facts: ArchiveFacts, cycle: SealedCycle, opener: Callable[[str], IO[bytes]]
) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        write_metadata_tar(f, facts, cycle, opener)


async def _upload(
    store: Store,
    key: str,
    plain: Path,
    facts: ArchiveFacts,
    *,
    encryption: EncryptionConfig,
    options: ObjectOptions | None,
) -> ExpectedObject:
    """Upload ``plain`` (encrypted unless encryption is off) under ``key``; what it became."""
    fd = os.open(plain, os.O_RDONLY)
    try:
        source: PayloadSource = FilePayload(fd, os.fstat(fd).st_size)
        if encryption.enabled:
            recipients = await asyncio.to_thread(recipients_for, encryption)
            state = await asyncio.to_thread(new_encryption, recipients)
            source = EncryptedPayload(source, state)
        part_size = choose_part_size(source.size, store.capabilities)
        metadata = ArchiveMetadata(
            host=facts.key.split("/", 1)[0],
            cycle_id=key.rsplit("/", 1)[-1].split(".", 1)[0],
            cycle_sha256=facts.cycle_sha256,
            plaintext_size=os.fstat(fd).st_size,
            encryption=facts.encryption,
            kind=ObjectKind.METADATA,
        ).as_metadata()
        for stray in await store.list_multipart_uploads(key):
            if stray.key == key:  # left by a run that died while sending it
                await store.abort_multipart_upload(key, stray.upload_id)
        upload_id = await store.create_multipart_upload(key, part_size, metadata, options)
        parts: list[PartInfo] = []

        async def on_complete(done: list[PartInfo]) -> None:
            parts.extend(done)

        info = await upload_multipart(
            store,
            key,
            upload_id,
            source,
            PartPlan(source.size, part_size),
            options=MultipartOptions(concurrency=1),
            on_complete=on_complete,
        )
    finally:
        os.close(fd)
    return ExpectedObject(
        key=key,
        size=info.size,
        archive_id=info.archive_id,
        etag=info.etag,
        version_id=info.version_id,
        part_size=part_size,
        parts=tuple(StoredPart(p.number, p.size, p.checksum, p.etag) for p in parts),
    )
