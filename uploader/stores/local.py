"""A store in a plain directory (a NAS mount, a USB disk, a test folder).

Layout under the root::

    <key>                          completed objects (``host/cycle.tar.age``)
    .meta/<key>.json               their metadata
    .uploads/<upload_id>/data      the object being uploaded, parts written at their offsets
    .uploads/<upload_id>/upload.json, parts/<n>.json   what this store needs to resume

An object appears under its key only once complete: the data is fsynced and renamed into place.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Self

from localbackup import testpoints
from localbackup.atomic import atomic_write_bytes, fsync_dir
from uploader.config import LocalStoreConfig
from uploader.stores.base import (
    READ_CHUNK,
    Capabilities,
    ContainerNotFound,
    GiB,
    MultipartUploadInfo,
    ObjectInfo,
    ObjectNotFound,
    ObjectOptions,
    PartChecksum,
    PartInfo,
    PermanentStoreError,
    StoreBase,
    StoredChecksums,
    StoreError,
    TransientStoreError,
    UploadNotFound,
)

LOCAL_CAPABILITIES = Capabilities(min_part_size=1, max_part_size=5 * GiB, max_parts=10_000)
_UPLOADS = ".uploads"
_META = ".meta"


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    """Translate ``OSError`` into the store's error types: a missing file is
    :class:`ObjectNotFound`, a refused permission or a wrong kind of file a
    :class:`PermanentStoreError`, any other I/O error transient."""
    try:
        yield
    except StoreError:
        raise
    except FileNotFoundError as exc:
        raise ObjectNotFound(f"{what}: not found ({exc.filename})") from exc
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        raise PermanentStoreError(f"{what}: {exc}") from exc
    except OSError as exc:
        # Full disks and I/O errors on a removable drive may clear up; let the driver retry.
        raise TransientStoreError(f"{what}: {exc}") from exc


class LocalStore(StoreBase):
    """A directory as a store. All blocking file work runs in threads.

    By default: parts of 1 B to 5 GiB, immediate listing, direct reads."""

    def __init__(self, root: Path, capabilities: Capabilities = LOCAL_CAPABILITIES) -> None:
        self.root = root
        self.config = LocalStoreConfig(root)
        self._capabilities = capabilities

    async def __aenter__(self) -> Self:
        # The folder is made by the first upload, never on opening: a store on a disk that is
        # not mounted must not read as an empty store (every archive would look MISSING).
        return self

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise ContainerNotFound(
                f"the store folder {self.root} does not exist: is its disk mounted? "
                "(the first upload creates it)"
            )

    # -- paths ---------------------------------------------------------------------------------

    def _object_path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
            raise PermanentStoreError(f"invalid object key {key!r}")
        if parts[0] in (_UPLOADS, _META):
            raise PermanentStoreError(f"object key {key!r} uses a reserved name")
        return self.root.joinpath(*parts)

    def _meta_path(self, key: str) -> Path:
        return self.root / _META / (key + ".json")

    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise UploadNotFound(f"invalid upload id {upload_id!r}")
        return self.root / _UPLOADS / upload_id

    def _load_upload(self, key: str, upload_id: str) -> dict[str, Any]:
        d = self._upload_dir(upload_id)
        try:
            state: dict[str, Any] = json.loads((d / "upload.json").read_bytes())
        except FileNotFoundError:
            raise UploadNotFound(f"no upload {upload_id} in {self.root}") from None
        if state["key"] != key:
            raise UploadNotFound(f"upload {upload_id} is for {state['key']!r}, not {key!r}")
        return state

    # -- multipart -----------------------------------------------------------------------------

    async def create_multipart_upload(
        self,
        key: str,
        part_size: int,
        metadata: Mapping[str, str],
        options: ObjectOptions | None = None,
    ) -> str:
        """Start an upload under ``.uploads/``; returns its id (a directory has no storage
        classes: ``options`` change nothing)."""
        self._object_path(key)  # validate early
        upload_id = secrets.token_hex(16)

        def create() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            d = self._upload_dir(upload_id)
            (d / "parts").mkdir(parents=True)
            with open(d / "data", "wb"):
                pass
            state = {
                "key": key,
                "part_size": part_size,
                "metadata": dict(metadata),
                "initiated": datetime.now(UTC).isoformat(),
            }
            atomic_write_bytes(d / "upload.json", json.dumps(state).encode())
            fsync_dir(d.parent)

        with _errors(f"creating an upload for {key}"):
            await asyncio.to_thread(create)
        return upload_id

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray, checksum: str
    ) -> PartInfo:
        """Write part ``number`` at its offset, fdatasync it, then record it."""

        def write() -> PartInfo:
            state = self._load_upload(key, upload_id)
            part_size = int(state["part_size"])
            if len(data) > part_size or number < 1:
                raise PermanentStoreError(f"part {number} ({len(data)} bytes) does not fit")
            digest = hashlib.sha256(data).digest()
            if base64.b64encode(digest).decode() != checksum:
                raise PermanentStoreError(f"part {number}: SHA-256 checksum mismatch")
            d = self._upload_dir(upload_id)
            fd = os.open(d / "data", os.O_WRONLY)
            try:
                os.pwrite(fd, data, (number - 1) * part_size)
                os.fdatasync(fd)
            finally:
                os.close(fd)
            part = PartInfo(number, len(data), checksum, digest.hex())
            record = {"size": part.size, "checksum": part.checksum, "etag": part.etag}
            atomic_write_bytes(d / "parts" / f"{number}.json", json.dumps(record).encode())
            return part

        with _errors(f"uploading part {number} of {key}"):
            return await asyncio.to_thread(write)

    def _parts(self, key: str, upload_id: str) -> list[PartInfo]:
        self._load_upload(key, upload_id)
        out = []
        for p in (self._upload_dir(upload_id) / "parts").glob("*.json"):
            r = json.loads(p.read_bytes())
            out.append(PartInfo(int(p.stem), int(r["size"]), str(r["checksum"]), str(r["etag"])))
        return sorted(out, key=lambda p: p.number)

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """The parts recorded for an upload in progress."""
        with _errors(f"listing the parts of {key}"):
            return await asyncio.to_thread(self._parts, key, upload_id)

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> None:
        """Truncate the data to the parts, fsync it and rename it to its key (idempotent)."""

        def complete() -> None:
            state = self._load_upload(key, upload_id)
            held = {p.number: p for p in self._parts(key, upload_id)}
            numbers = [p.number for p in parts]
            if numbers != list(range(1, len(parts) + 1)):
                raise PermanentStoreError(f"parts must be numbered 1..n in order, got {numbers}")
            for p in parts:
                if held.get(p.number) != p:
                    raise PermanentStoreError(f"part {p.number} does not match the uploaded part")
            part_size = int(state["part_size"])
            if any(p.size != part_size for p in parts[:-1]):
                raise PermanentStoreError("every part but the last must have the part size")
            size = sum(p.size for p in parts)
            d = self._upload_dir(upload_id)
            target = self._object_path(key)
            if not (d / "data").exists():
                # An earlier complete moved the data into place and died before cleaning up:
                # done, if the object is the one this upload made.
                if self._is_done(key, size, state["metadata"]):
                    shutil.rmtree(d)
                    return
                raise PermanentStoreError(f"upload {upload_id} of {key} lost its data")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(d / "data", "r+b") as f:
                f.truncate(size)
                f.flush()
                os.fsync(f.fileno())
            meta = self._meta_path(key)
            meta.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(meta, json.dumps(state["metadata"]).encode(), mode=0o644)
            os.replace(d / "data", target)
            fsync_dir(target.parent)
            testpoints.pause("store.local.after_replace")
            shutil.rmtree(d)

        with _errors(f"completing the upload of {key}"):
            await asyncio.to_thread(complete)

    def _is_done(self, key: str, size: int, metadata: Mapping[str, str]) -> bool:
        """Whether the object under ``key`` has ``size`` bytes and ``metadata``."""
        try:
            st = self._object_path(key).stat()
            meta = json.loads(self._meta_path(key).read_bytes())
        except FileNotFoundError:
            return False
        return st.st_size == size and meta == dict(metadata)

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Remove an upload's directory; an unknown upload is not an error."""

        def abort() -> None:
            try:
                self._load_upload(key, upload_id)
            except UploadNotFound:
                return
            shutil.rmtree(self._upload_dir(upload_id))

        with _errors(f"aborting the upload of {key}"):
            await asyncio.to_thread(abort)

    async def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUploadInfo]:
        """Uploads in progress whose key starts with ``prefix``."""

        def scan() -> list[MultipartUploadInfo]:
            out = []
            base = self.root / _UPLOADS
            for f in sorted(base.glob("*/upload.json")) if base.is_dir() else []:
                with contextlib.suppress(FileNotFoundError):
                    s = json.loads(f.read_bytes())
                    if s["key"].startswith(prefix):
                        when = datetime.fromisoformat(s["initiated"])
                        out.append(MultipartUploadInfo(s["key"], f.parent.name, when))
            return out

        with _errors("listing uploads in progress"):
            return await asyncio.to_thread(scan)

    # -- objects -------------------------------------------------------------------------------

    def _info(self, key: str) -> ObjectInfo:
        st = self._object_path(key).stat()
        try:
            metadata = json.loads(self._meta_path(key).read_bytes())
        except FileNotFoundError:
            metadata = {}
        when = datetime.fromtimestamp(st.st_mtime, UTC)
        return ObjectInfo(key, st.st_size, metadata, None, when)

    async def head(self, key: str) -> ObjectInfo:
        """Size, metadata and modification time of an object."""
        with _errors(f"reading the metadata of {key}"):
            return await asyncio.to_thread(self._info, key)

    async def stored_checksums(self, key: str, part_size: int | None = None) -> StoredChecksums:
        """Size, metadata and SHA-256 of the file (``checksum_sha256``, base64) and of each
        ``part_size`` slice of it (``parts``; one part when ``part_size`` is None): the file is
        read whole, in a thread."""

        def digest() -> StoredChecksums:
            info = self._info(key)
            cut = part_size if part_size and part_size > 0 else max(info.size, 1)
            whole = hashlib.sha256()
            parts: list[PartChecksum] = []
            with open(self._object_path(key), "rb") as f:
                number = 0
                while True:
                    piece = hashlib.sha256()
                    size = 0
                    while size < cut and (chunk := f.read(min(READ_CHUNK, cut - size))):
                        piece.update(chunk)
                        whole.update(chunk)
                        size += len(chunk)
                    if not size and number:
                        break
                    number += 1
                    parts.append(PartChecksum(number, size, _b64(piece.digest())))
                    if size < cut:
                        break
            return StoredChecksums(
                size=info.size,
                checksum_sha256=_b64(whole.digest()),
                checksum_type="FULL_OBJECT",
                parts=tuple(parts),
                metadata=info.metadata,
            )

        with _errors(f"reading the checksums of {key}"):
            return await asyncio.to_thread(digest)

    async def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix``, with their metadata."""

        def scan() -> list[ObjectInfo]:
            self._require_root()
            out = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    rel = Path(dirpath, name).relative_to(self.root).as_posix()
                    if rel.startswith(prefix) and not name.startswith("."):
                        with contextlib.suppress(FileNotFoundError):
                            out.append(self._info(rel))
            return out

        with _errors("listing objects"):
            return await asyncio.to_thread(scan)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` of an object, in chunks of 1 MiB."""
        path = self._object_path(key)
        with _errors(f"reading {key}"):
            f = await asyncio.to_thread(open, path, "rb")
        try:
            pos = start
            while end is None or pos < end:
                n = READ_CHUNK if end is None else min(READ_CHUNK, end - pos)
                with _errors(f"reading {key}"):
                    chunk = await asyncio.to_thread(os.pread, f.fileno(), n, pos)
                if not chunk:
                    break
                pos += len(chunk)
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        """Remove an object and its metadata; a missing object is not an error."""

        def delete() -> None:
            for p in (self._object_path(key), self._meta_path(key)):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

        with _errors(f"deleting {key}"):
            await asyncio.to_thread(delete)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()
