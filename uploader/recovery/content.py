"""The metadata object's content: a small tar holding what ``files``, ``cycles`` and ``restore
--path`` need, and what ``verify`` compares the archive with.

Members, in this order, all under ``<cycle_id>/``:

- ``metadata.json``: ``{"format": "glacier-backup-metadata", "version": 1, "host", "cycle_id",
  "archive": {key, size, archive_id, etag, version_id, part_size, parts: [[size, base64 SHA-256,
  etag], ...], plaintext_size, plaintext_sha256, cycle_sha256, encryption}}`` — the archive as
  the store acknowledged it (a Glacier part's etag is its SHA-256 tree hash);
- ``cycle.json``: the cycle's manifest as rendered (its SHA-256 is the archive's
  ``cycle-sha256``);
- ``inc-NNNN.index.zst``: every increment's index, byte for byte as in the bundle.

A plain (pax) tar, encrypted with age like the archive: ``age -d -i key.txt < x.meta.age | tar
-t`` lists it. :func:`write_metadata_tar` writes it, :func:`read_metadata_tar` reads one back,
checking every member against ``cycle.json`` before it is trusted.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from localbackup.formats import CYCLE_JSON, FORMAT_VERSION, FormatError, SealedCycle
from localbackup.integrity import IntegrityError, VerifyingReader
from uploader.archive import METADATA_FORMAT
from uploader.catalogue.records import ExpectedObject, StoredPart, parts_from_json

METADATA_JSON = "metadata.json"
_MAX_JSON = 64 << 20  # metadata.json and cycle.json are small; refuse absurd sizes


class MetadataError(ValueError):
    """A metadata object's content is not what this version writes, or does not add up."""


@dataclass(frozen=True, slots=True)
class ArchiveFacts:
    """What a metadata object says about its archive."""

    key: str
    size: int
    plaintext_size: int
    plaintext_sha256: str  # the bundle's SHA-256
    cycle_sha256: str
    encryption: str  # "age" | "none"
    archive_id: str | None = None
    etag: str | None = None
    version_id: str | None = None
    part_size: int | None = None
    parts: tuple[StoredPart, ...] = ()

    @property
    def expected(self) -> ExpectedObject:
        """What the store should hold under the archive's key."""
        return ExpectedObject(
            self.key,
            self.size,
            self.archive_id,
            self.etag,
            self.version_id,
            self.part_size,
            self.parts,
        )

    def to_json(self) -> dict[str, Any]:
        """The ``archive`` object of ``metadata.json``."""
        return {
            "key": self.key,
            "size": self.size,
            "archive_id": self.archive_id,
            "etag": self.etag,
            "version_id": self.version_id,
            "part_size": self.part_size,
            "parts": [[p.size, p.checksum, p.etag] for p in self.parts],
            "plaintext_size": self.plaintext_size,
            "plaintext_sha256": self.plaintext_sha256,
            "cycle_sha256": self.cycle_sha256,
            "encryption": self.encryption,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> ArchiveFacts:
        """The reverse of :meth:`to_json` (:class:`MetadataError` if malformed)."""
        try:
            part_size = d.get("part_size")
            return ArchiveFacts(
                key=str(d["key"]),
                size=int(d["size"]),
                plaintext_size=int(d["plaintext_size"]),
                plaintext_sha256=str(d["plaintext_sha256"]),
                cycle_sha256=str(d["cycle_sha256"]),
                encryption=str(d["encryption"]),
                archive_id=_optional(d.get("archive_id")),
                etag=_optional(d.get("etag")),
                version_id=_optional(d.get("version_id")),
                part_size=None if part_size is None else int(part_size),
                parts=parts_from_json(json.dumps(d.get("parts") or [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MetadataError(f"{METADATA_JSON}: malformed archive record: {exc!r}") from None


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class MetadataContent:
    """A metadata object, read and checked: its archive and its cycle's manifest (the index
    files are written where :func:`read_metadata_tar` was told)."""

    host: str
    cycle_id: str
    archive: ArchiveFacts
    cycle: SealedCycle


def metadata_json(host: str, cycle_id: str, archive: ArchiveFacts) -> bytes:
    """The bytes of ``metadata.json``."""
    doc = {
        "format": METADATA_FORMAT,
        "version": FORMAT_VERSION,
        "host": host,
        "cycle_id": cycle_id,
        "archive": archive.to_json(),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


IndexOpener = Callable[[str], IO[bytes]]  # an index file's bytes, by name


def write_metadata_tar(
    dst: BinaryIO, archive: ArchiveFacts, cycle: SealedCycle, open_index: IndexOpener
) -> None:
    """Write the metadata object's tar for ``cycle`` into ``dst``; the indexes come from
    ``open_index`` and must match ``cycle.json`` (:class:`MetadataError` if one does not)."""
    rendered = cycle.render()
    if hashlib.sha256(rendered).hexdigest() != archive.cycle_sha256:
        raise MetadataError(f"cycle {cycle.cycle_id}: cycle.json is not the archive's")
    mtime = int(cycle.sealed_at.timestamp())
    with tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            (METADATA_JSON, metadata_json(cycle.host, cycle.cycle_id, archive)),
            (CYCLE_JSON, rendered),
        ):
            _add(tar, f"{cycle.cycle_id}/{name}", len(data), mtime, _Bytes(data))
        for inc in cycle.increments:
            with open_index(inc.index.name) as f:
                reader = VerifyingReader(f, inc.index.size, inc.index.sha256, inc.index.name)
                _add(tar, f"{cycle.cycle_id}/{inc.index.name}", inc.index.size, mtime, reader)
                try:
                    reader.verify()
                except IntegrityError as exc:
                    raise MetadataError(f"cycle {cycle.cycle_id}: {exc}") from None


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        out = self._data[self._pos : end]
        self._pos += len(out)
        return out


def _add(tar: tarfile.TarFile, path: str, size: int, mtime: int, src: Any) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mtime, info.mode = size, mtime, 0o600
    info.uname = info.gname = ""
    tar.addfile(info, src)


def read_metadata_tar(src: BinaryIO, into: Path) -> MetadataContent:
    """Read a metadata object's tar from ``src`` (a stream), writing ``cycle.json`` and the
    index files into the directory ``into``; every index is checked against ``cycle.json``
    and ``cycle.json`` against the archive's ``cycle_sha256``. Raises :class:`MetadataError`
    (or an ``IntegrityError``) for anything else."""
    try:
        with tarfile.open(fileobj=src, mode="r|") as tar:
            members = _members(tar)
            first = next(members, None)
            host, cycle_id, archive = _parse_doc(json.loads(_small(tar, first, METADATA_JSON)))
            if first is None or first.name != f"{cycle_id}/{METADATA_JSON}":
                raise MetadataError(f"{METADATA_JSON} is not under its cycle's directory")
            rendered = _small(tar, next(members, None), CYCLE_JSON, cycle_id)
            if hashlib.sha256(rendered).hexdigest() != archive.cycle_sha256:
                raise MetadataError("cycle.json does not match the archive's cycle-sha256")
            cycle = SealedCycle.from_json(json.loads(rendered))
            if (cycle.host, cycle.cycle_id) != (host, cycle_id):
                raise MetadataError("cycle.json names another cycle")
            (into / CYCLE_JSON).write_bytes(rendered)
            for inc in cycle.increments:
                m = next(members, None)
                if m is None or m.name != f"{cycle_id}/{inc.index.name}" or not m.isreg():
                    raise MetadataError(f"expected {inc.index.name}, found {_name(m)}")
                f = tar.extractfile(m)
                assert f is not None
                reader = VerifyingReader(f, inc.index.size, inc.index.sha256, inc.index.name)
                with open(into / inc.index.name, "wb") as out:
                    while chunk := reader.read(1 << 20):
                        out.write(chunk)
                reader.verify()
            extra = next(members, None)
            if extra is not None:
                raise MetadataError(f"unexpected member {extra.name!r}")
    except tarfile.TarError as exc:
        raise MetadataError(f"not a metadata object: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MetadataError(f"malformed JSON: {exc}") from None
    except (FormatError, IntegrityError) as exc:
        raise MetadataError(str(exc)) from None
    return MetadataContent(host, cycle_id, archive, cycle)


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (m := tar.next()) is not None:
        yield m


def _name(m: tarfile.TarInfo | None) -> str:
    return "the end" if m is None else repr(m.name)


def _small(
    tar: tarfile.TarFile, m: tarfile.TarInfo | None, name: str, cycle_id: str | None = None
) -> bytes:
    ok = m is not None and m.isreg() and m.size <= _MAX_JSON
    if cycle_id is not None:
        ok = ok and m is not None and m.name == f"{cycle_id}/{name}"
    if not ok or m is None or not m.name.endswith(f"/{name}"):
        raise MetadataError(f"expected {name}, found {_name(m)}")
    f = tar.extractfile(m)
    assert f is not None
    return f.read()


def _parse_doc(doc: object) -> tuple[str, str, ArchiveFacts]:
    if not isinstance(doc, dict) or doc.get("format") != METADATA_FORMAT:
        raise MetadataError(f"{METADATA_JSON}: not a {METADATA_FORMAT} document")
    if doc.get("version") != FORMAT_VERSION:
        raise MetadataError(f"{METADATA_JSON}: version {doc.get('version')!r} is not supported")
    archive = doc.get("archive")
    if not isinstance(archive, dict):
        raise MetadataError(f"{METADATA_JSON}: no archive record")
    return str(doc.get("host")), str(doc.get("cycle_id")), ArchiveFacts.from_json(archive)
