"""``verify --read-data``: read archives whole, authenticate them, check every file; extract
nothing.

An archive that can be read at once is streamed from the store. One in cold storage is
retrieved first exactly as a restore does it (:class:`~uploader.restore.cold.ColdRetrieval`:
the quote and consent, ``--tier``, the request recorded in the catalogue, ``--wait`` or a
later ``--resume``), then downloaded range by range into a private directory of the state
directory (a killed download resumes with the ranges not yet recorded), checked, and deleted.
A store that refuses restore requests as an operation it does not have (S3-compatible servers
such as SeaweedFS) is probed with a small ranged read, as a restore does: if the object reads
directly, it is streamed like a readable one.

The check (:func:`check_bundle`): every age chunk is authenticated (the whole ciphertext is
read, to its final chunk), ``cycle.json`` must be the one the archive's metadata pins, and
every file of the bundle must have the size and SHA-256 ``cycle.json`` lists, in order, with
nothing after them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

from localbackup.integrity import IntegrityError, VerifyingReader
from uploader.catalogue import ArchiveRecord, Catalogue, drop_retrieval
from uploader.crypto import AgeError, Decryptor, Identity
from uploader.restore import download as dl
from uploader.restore.cold import ColdRetrieval, Sleep, cold_class
from uploader.restore.request import RestoreRequest, RetrievalOptions
from uploader.restore.retrieval import RetrievalError, reads_directly
from uploader.restore.stream import (
    ArchiveRef,
    ChunkStreamReader,
    CorruptArchive,
    RestoreError,
    read_cycle_json,
)
from uploader.restore.ui import RestoreUI
from uploader.stores.base import RestoreNotSupported, Store, StoreError
from uploader.verify.checks import Check

log = structlog.get_logger(__name__)

__all__ = ["BundleChecked", "check_bundle", "read_archive"]

_BAD_DATA = (AgeError, IntegrityError, CorruptArchive, RestoreError)


@dataclass(frozen=True, slots=True)
class BundleChecked:
    """What :func:`check_bundle` read: the cycle, its files and the plaintext bytes."""

    cycle_id: str
    files: int
    bytes: int


def check_bundle(
    raw: BinaryIO, identities: list[Identity] | None, cycle_sha256: str | None
) -> BundleChecked:
    """Read an archive's bytes to their end, checking everything (see the module docstring);
    raises an ``AgeError``, ``IntegrityError`` or :class:`CorruptArchive` on the first fault."""
    src: BinaryIO = Decryptor(identities).open(raw) if identities else raw  # type: ignore[assignment]
    files = total = 0
    try:
        with tarfile.open(fileobj=src, mode="r|") as bundle:
            cycle = read_cycle_json(bundle)
            rendered = cycle.render()
            if cycle_sha256 is not None and hashlib.sha256(rendered).hexdigest() != cycle_sha256:
                raise CorruptArchive("its cycle.json is not the one the archive's metadata pins")
            for f in cycle.files:
                m = bundle.next()
                if m is None or m.name != f"{cycle.cycle_id}/{f.name}" or not m.isreg():
                    got = "the end" if m is None else repr(m.name)
                    raise CorruptArchive(f"expected {f.name}, found {got}")
                member = bundle.extractfile(m)
                assert member is not None
                reader = VerifyingReader(member, f.size, f.sha256, f.name)
                while reader.read(1 << 20):
                    pass
                reader.verify()
                files, total = files + 1, total + f.size
            extra = bundle.next()
            if extra is not None:
                raise CorruptArchive(f"an unexpected member {extra.name!r} after the last file")
        while src.read(1 << 20):  # to the end: the final age chunk is authenticated too
            pass
    except tarfile.TarError as exc:
        raise CorruptArchive(f"not a valid bundle: {exc}") from None
    return BundleChecked(cycle.cycle_id, files, total)


async def read_archive(
    store: Store,
    catalogue: Catalogue,
    archive: ArchiveRecord,
    *,
    identities: list[Identity] | None,
    cycle_sha256: str | None,
    ui: RestoreUI,
    options: RetrievalOptions,
    assume_yes: bool,
    work: Path,
    sleep: Sleep = asyncio.sleep,
) -> Check | None:
    """Read and check one archive; None while its retrieval is not ready (the UI said when)."""
    ref = ArchiveRef(archive.cycle_id, archive.key, archive.size)
    storage_class = await cold_class(store, archive.key)
    check = Check(checked=["read whole"])
    try:
        if storage_class is None:
            done = await _stream(store, archive.key, identities, cycle_sha256)
        else:
            request = RestoreRequest(
                to=work / archive.cycle_id, assume_yes=assume_yes, retrieval=options
            )
            cold = ColdRetrieval(store, catalogue, ref, storage_class, request, ui, sleep)
            checked = await _retrieved(cold, identities, cycle_sha256)
            if checked is None:
                return None
            done = checked
    except _BAD_DATA as exc:
        check.problems.append(f"{type(exc).__name__}: {exc}")
        return check
    except StoreError as exc:
        check.problems.append(f"the store: {exc}")
        return check
    check.checked.append(f"every age chunk authenticated, {done.files} files checked")
    return check


async def _retrieved(
    cold: ColdRetrieval, identities: list[Identity] | None, sha: str | None
) -> BundleChecked | None:
    """Retrieve, download and check a cold archive (None while its retrieval is not ready);
    streamed instead when the store has no restore requests but the object reads directly."""
    store, catalogue, key = cold.store, cold.catalogue, cold.archive.key
    try:
        record = await cold.ready_retrieval()
    except RestoreNotSupported as exc:
        if not await reads_directly(store, key):
            raise RetrievalError(
                f"{exc}: the store has no restore requests, and {key} cannot be read directly "
                "either"
            ) from exc
        cold.ui.say(
            f"{store.name} takes no restore requests ({exc}), but {key} reads directly: "
            "verifying it without a retrieval"
        )
        return await _stream(store, key, identities, sha)
    if record is None:
        return None
    path = await cold.download(record)
    try:
        done = await asyncio.to_thread(_check_file, path, identities, sha)
    except _BAD_DATA:
        # Not trusted, not kept: a new run downloads the staged copy again.
        await asyncio.to_thread(dl.forget_download, catalogue, record, path)
        raise
    dl.remove_download(path)
    await asyncio.to_thread(drop_retrieval, catalogue, record.id)
    return done


async def _stream(
    store: Store, key: str, identities: list[Identity] | None, sha: str | None
) -> BundleChecked:
    """Check an archive as it streams from the store (nothing is written to disk)."""
    chunks = store.read(key)
    try:
        src = io.BufferedReader(ChunkStreamReader(chunks, asyncio.get_running_loop()), 1 << 20)
        return await asyncio.to_thread(check_bundle, src, identities, sha)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _check_file(path: Path, identities: list[Identity] | None, sha: str | None) -> BundleChecked:
    with open(path, "rb", buffering=1 << 20) as f:
        return check_bundle(f, identities, sha)
