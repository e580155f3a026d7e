"""Restore from an archive: store stream -> age decryption -> bundle tar -> restore engine.

One pass, nothing buffered whole: the bundle is read as a stream; ``cycle.json`` must come
first, then every data file in the order it lists. Each file the restore needs is hashed while
the engine consumes it and checked (size and SHA-256) when it ends; a mismatch fails the
restore, whose half-built tree is then deleted (:func:`localbackup.staging.staged_target`).
With age, tampering is caught earlier still: no plaintext leaves the decryptor before its
chunk authenticated. Reading stops after the index of the chosen increment.

Cold objects (S3 GLACIER / DEEP_ARCHIVE, Glacier vaults) need a retrieval first: this module
refuses them with :class:`RetrievalRequired`; :mod:`uploader.restore.retrieval` requests it and
:mod:`uploader.restore.download` downloads the ciphertext, then feeds it to :func:`restore_stream`.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Required, TypedDict, Unpack

from localbackup.extract import ExtractOptions, Extractor, ExtractStats
from localbackup.formats import CYCLE_JSON, FormatError, IncrementManifest, SealedCycle
from localbackup.indexstream import verified_index
from localbackup.integrity import VerifyingReader
from localbackup.logevents import get_logger
from localbackup.pointintime import choose_increment, increment_chain
from localbackup.staging import staged_target
from uploader.archive import S3_COLD_CLASSES as COLD_STORAGE_CLASSES
from uploader.archive import parse_object_key
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig
from uploader.crypto import Decryptor, Identity, ScryptIdentity, load_identities, read_passphrase
from uploader.pacing import RateLimiter, paced
from uploader.stores import Store

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = [
    "COLD_STORAGE_CLASSES",
    "ArchiveRef",
    "ChunkStreamReader",
    "CorruptArchive",
    "RestoreError",
    "RestoreResult",
    "RetrievalRequired",
    "StreamOptions",
    "find_archives",
    "identities_for",
    "identity_source",
    "read_cycle_json",
    "restore_archive",
    "restore_stream",
]

log = get_logger(__name__)

_MAX_CYCLE_JSON = 64 << 20

OnPlan = Callable[[SealedCycle, IncrementManifest], None]


class StreamOptions(TypedDict, total=False):
    """How an archive's bytes are restored: the keyword arguments of :func:`restore_stream`,
    which every restore of an archive (from a store, from a download) passes on."""

    identities: Required[list[Identity] | None]  # None: the archive is not encrypted
    at: int | datetime | None  # increment number or time; None: the last increment
    force: bool  # replace a non-empty target
    options: ExtractOptions | None
    on_plan: OnPlan | None  # told the cycle and the chosen increment before extraction


class RestoreError(Exception):
    """The archive cannot be restored (malformed bundle, no key to decrypt it, ...)."""


class CorruptArchive(RestoreError):
    """The archive's bytes do not make a valid bundle (cut, damaged, or not a bundle)."""


class RetrievalRequired(RestoreError):
    """The object sits in a cold storage class; it must be retrieved before it can be read."""


@dataclass(frozen=True, slots=True)
class ArchiveRef:
    """One archive in a store: the cycle it holds, its key and its size in bytes."""

    cycle_id: str
    key: str
    size: int


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What a restore brought back: the cycle, the increment chosen, what was written."""

    cycle: SealedCycle
    increment: IncrementManifest
    stats: ExtractStats


def identity_source(cfg: EncryptionConfig, identity_file: Path | None = None) -> str:
    """Where the keys of :func:`identities_for` come from, for messages."""
    if identity_file is not None:
        return f"the identity file {identity_file} (--identity)"
    if cfg.identity_file is not None:
        return f"the identity file {cfg.identity_file} ([encryption] identity_file)"
    if cfg.passphrase_file is not None:
        return f"the passphrase in {cfg.passphrase_file}"
    return "the passphrase"


def identities_for(cfg: EncryptionConfig, identity_file: Path | None = None) -> list[Identity]:
    """The age identities to decrypt with: ``identity_file`` (the CLI's), the configured
    identity file, or the configured passphrase."""
    path = identity_file or cfg.identity_file
    if path is not None:
        if not path.exists():
            raise RestoreError(
                f"{identity_source(cfg, identity_file)} does not exist: pass --identity FILE "
                "with the age identity (private key) the archives were encrypted to"
            )
        return load_identities(path)
    if cfg.passphrase_file is not None:
        return [ScryptIdentity(read_passphrase(file=cfg.passphrase_file))]
    if cfg.passphrase_env is not None:
        return [ScryptIdentity(read_passphrase(env=cfg.passphrase_env))]
    raise RestoreError(
        "no key to decrypt with: set [encryption] identity_file (or passphrase_file), "
        "or pass --identity FILE"
    )


async def find_archives(store: Store, catalogue: Catalogue, host: str) -> list[ArchiveRef]:
    """This host's archives, oldest first: from the catalogue, else from the store's listing."""
    known = [
        ArchiveRef(a.cycle_id, a.key, a.size)
        for a in await asyncio.to_thread(catalogue.archives, store.name)
        if a.host == host
    ]
    if known:
        return known
    if not store.capabilities.immediate_listing:  # a vault: only an inventory job lists it
        raise RestoreError(
            f"the catalogue knows no archive of host {host!r} in {store.name}, and a Glacier "
            "vault cannot be listed at once: run 'glacier-backup inventory --request --wait' "
            "(an inventory job takes hours), then restore again"
        )
    found = []
    for obj in await store.list_objects(f"{host}/"):
        parsed = parse_object_key(obj.key)
        if parsed is not None and parsed.host == host:
            found.append(ArchiveRef(parsed.cycle_id, obj.key, obj.size))
    return sorted(found, key=lambda a: a.cycle_id)


async def restore_archive(
    store: Store,
    key: str,
    to: Path,
    *,
    probed: bool = False,
    max_rate: int | None = None,
    **options: Unpack[StreamOptions],
) -> RestoreResult:
    """Restore the point in time ``at`` of the archive ``key`` into ``to`` (see
    :class:`StreamOptions`), reading at most ``max_rate`` bytes per second
    (``[restore] max_rate``) from the store. An object in a cold class is refused with
    :class:`RetrievalRequired` unless ``probed`` (a ranged read showed it reads directly)."""
    info = await store.head(key)
    cold = info.storage_class in COLD_STORAGE_CLASSES or (
        info.storage_class is None and store.capabilities.needs_retrieval
    )
    if cold and not probed:
        raise RetrievalRequired(
            f"{key} is in the {info.storage_class or 'cold'} storage class: it needs a retrieval "
            "request before it can be read (the restore command requests one, waits or resumes, "
            "and downloads it: glacier-backup restore, with --yes to request the retrieval and "
            "--wait, or --resume once it is ready)"
        )
    encrypted = key.endswith(".age")
    if encrypted and not options["identities"]:
        raise RestoreError(f"{key} is encrypted and no identity was given")
    if not encrypted:
        options["identities"] = None
    chunks = store.read(key)
    if max_rate:
        chunks = paced(chunks, RateLimiter(max_rate))
    loop = asyncio.get_running_loop()
    try:
        src = io.BufferedReader(ChunkStreamReader(chunks, loop), buffer_size=1 << 20)
        return await asyncio.to_thread(lambda: restore_stream(src, to, **options))
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def restore_stream(
    raw: BinaryIO,
    to: Path,
    *,
    identities: list[Identity] | None,
    at: int | datetime | None = None,
    force: bool = False,
    options: ExtractOptions | None = None,
    on_plan: OnPlan | None = None,
) -> RestoreResult:
    """The blocking pipeline over an archive's bytes (decrypted when ``identities`` is given)."""
    src: BinaryIO = Decryptor(identities).open(raw) if identities else raw  # type: ignore[assignment]
    try:
        with tarfile.open(fileobj=src, mode="r|") as bundle:
            cycle = read_cycle_json(bundle)
            inc = choose_increment(cycle.increments, at)
            by_number = {m.number: m for m in cycle.increments}
            chain = {by_number[n].tar.name for n in increment_chain(cycle.increments, inc.number)}
            if on_plan is not None:
                on_plan(cycle, inc)
            log.info("restore.started", cycle=cycle.cycle_id, increment=inc.number, to=str(to))
            with staged_target(to, force=force) as work:
                extractor = Extractor(work, options)
                for f in cycle.files:
                    m = bundle.next()
                    if m is None or m.name != f"{cycle.cycle_id}/{f.name}" or not m.isreg():
                        got = "the end" if m is None else repr(m.name)
                        raise CorruptArchive(f"bundle: expected {f.name}, found {got}")
                    if m.size != f.size:
                        raise CorruptArchive(
                            f"bundle: {f.name} has {m.size} bytes, cycle.json says {f.size}"
                        )
                    if f.name not in chain and f.name != inc.index.name:
                        continue  # not needed for this point in time: skipped unread
                    member = bundle.extractfile(m)
                    assert member is not None
                    reader: Any = VerifyingReader(member, f.size, f.sha256, f.name)
                    if f.name == inc.index.name:
                        with verified_index(reader) as index:
                            return RestoreResult(cycle, inc, extractor.finish(index))
                    extractor.apply(reader, f.name)
                    reader.verify()
                raise CorruptArchive(f"bundle: no index {inc.index.name}")
    except tarfile.TarError as exc:
        raise CorruptArchive(f"the archive is not a valid bundle: {exc}") from None


def read_cycle_json(bundle: tarfile.TarFile) -> SealedCycle:
    """The bundle's first member, ``cycle.json``, parsed (:class:`CorruptArchive` if it is
    not there or malformed)."""
    first = bundle.next()
    if first is None or not first.isreg() or not first.name.endswith(f"/{CYCLE_JSON}"):
        raise CorruptArchive("the bundle does not start with cycle.json")
    if first.size > _MAX_CYCLE_JSON:
        raise CorruptArchive(f"cycle.json is implausibly large ({first.size} bytes)")
    f = bundle.extractfile(first)
    assert f is not None
    try:
        cycle = SealedCycle.from_json(json.loads(f.read()))
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, FormatError):
            raise RestoreError(f"cycle.json: {exc}") from None
        raise CorruptArchive(f"cycle.json is malformed: {exc!r}") from None
    if first.name != f"{cycle.cycle_id}/{CYCLE_JSON}":
        raise CorruptArchive(f"the bundle's first member {first.name!r} does not match its cycle")
    return cycle


class ChunkStreamReader(io.RawIOBase):
    """A blocking reader (for a worker thread) over an async chunk stream on ``loop``."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._chunks = chunks
        self._loop = loop
        self._buf = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        """Always: a reader."""
        return True

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the stream (waiting, in this thread, for the next chunk)."""
        if not self._buf and not self._eof:
            coro: Coroutine[Any, Any, bytes | None] = self._next()
            chunk = asyncio.run_coroutine_threadsafe(coro, self._loop).result()
            if chunk is None:
                self._eof = True
            else:
                self._buf = memoryview(chunk)
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
