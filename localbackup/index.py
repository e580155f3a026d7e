"""The increment index: every path present when the increment was taken, with its metadata.

On-disk format (version 1, documented in docs/formats.md ``## Index``): one zstd frame whose
content is the magic line ``GLACIER-BACKUP-INDEX 1\\n``, a count, then columns: fixed-size
packed rows, a flags byte per entry, and NUL-separated paths, link targets and hashes (paths
never contain NUL). Columns make reading a 50k-entry index a handful of C-level calls.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, KeysView, Mapping
from dataclasses import dataclass
from itertools import starmap
from typing import BinaryIO

import zstandard

__all__ = [
    "INDEX_MAGIC",
    "Index",
    "IndexEntry",
    "IndexFormatError",
    "Record",
    "read_index",
    "write_index",
]

INDEX_MAGIC = b"GLACIER-BACKUP-INDEX 1\n"

TYPES = ("file", "dir", "symlink", "hardlink", "chardev", "blockdev")
TYPE_CODE = {name: code for code, name in enumerate(TYPES)}

FLAG_IN_INCREMENT = 1

#: count, then the byte lengths of the paths, link targets and content hashes columns
_HEAD = struct.Struct("<QQQQ")
#: one fixed-size row per entry: mode, uid, gid, size, mtime_ns, ctime_ns, ino, dev, nlink, type
_ROW = struct.Struct("<IIIQqqQQIB")

#: (mode, uid, gid, size, mtime_ns, ctime_ns, ino, dev, nlink, type_code). The first seven
#: fields are what metadata change detection compares.
Record = tuple[int, int, int, int, int, int, int, int, int, int]


class IndexFormatError(ValueError):
    """The stream is not an index this version can read."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One path of an increment. ``mode`` is the full ``st_mode`` (type bits included)."""

    path: bytes
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int
    nlink: int
    link_target: bytes | None
    content_hash: str | None
    in_increment: bool


class Index(Mapping[bytes, IndexEntry]):
    """Archive path (bytes) -> :class:`IndexEntry`, iterating in archive order.

    Stored as columns rather than objects, so 50k+ entries read, compare and write fast:
    ``records`` (path -> :data:`Record`), ``written`` (paths whose content is in this
    increment), ``links`` (symlink/hardlink targets) and ``hashes`` (content hashes).
    """

    __slots__ = ("hashes", "links", "records", "written")

    def __init__(
        self,
        records: dict[bytes, Record] | None = None,
        written: set[bytes] | None = None,
        links: dict[bytes, bytes] | None = None,
        hashes: dict[bytes, str] | None = None,
    ) -> None:
        self.records: dict[bytes, Record] = records if records is not None else {}
        self.written: set[bytes] = written if written is not None else set()
        self.links: dict[bytes, bytes] = links if links is not None else {}
        self.hashes: dict[bytes, str] = hashes if hashes is not None else {}

    @classmethod
    def from_entries(cls, entries: Iterable[IndexEntry]) -> Index:
        index = cls()
        for e in entries:
            index.add(e)
        return index

    def add(self, e: IndexEntry) -> None:
        """Append (or replace) one entry."""
        p = e.path
        # fmt: off
        self.records[p] = (e.mode, e.uid, e.gid, e.size, e.mtime_ns, e.ctime_ns, e.ino, e.dev,
                           e.nlink, TYPE_CODE[e.type])
        # fmt: on
        self.links.pop(p, None)
        self.hashes.pop(p, None)
        if e.link_target is not None:
            self.links[p] = e.link_target
        if e.content_hash is not None:
            self.hashes[p] = e.content_hash
        if e.in_increment:
            self.written.add(p)
        else:
            self.written.discard(p)

    def __getitem__(self, path: bytes) -> IndexEntry:
        r = self.records[path]
        return IndexEntry(
            path=path,
            type=TYPES[r[9]],
            mode=r[0],
            uid=r[1],
            gid=r[2],
            size=r[3],
            mtime_ns=r[4],
            ctime_ns=r[5],
            ino=r[6],
            dev=r[7],
            nlink=r[8],
            link_target=self.links.get(path),
            content_hash=self.hashes.get(path),
            in_increment=path in self.written,
        )

    def __contains__(self, path: object) -> bool:
        return path in self.records

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def paths(self) -> KeysView[bytes]:
        """All archive paths, in archive order."""
        return self.records.keys()

    def entries(self) -> Iterator[IndexEntry]:
        """All entries, in archive order."""
        for path in self.records:
            yield self[path]

    def __repr__(self) -> str:
        return f"Index({len(self.records)} entries, {len(self.written)} in this increment)"


def write_index(index: Index, f: BinaryIO, *, level: int = 1) -> None:
    """Write ``index`` to ``f`` as one zstd frame (``f`` is left open)."""
    paths = list(index.records)
    links, hashes, written = index.links, index.hashes, index.written
    path_col = b"\0".join(paths)
    if path_col.count(b"\0") != max(len(paths) - 1, 0):
        raise ValueError("NUL byte in a path")
    link_col = b"\0".join([links.get(p, b"") for p in paths]) if links else b"\0" * (len(paths) - 1)
    hash_col = (
        "\0".join([hashes.get(p, "") for p in paths]).encode("ascii")
        if hashes
        else b"\0" * (len(paths) - 1)
    )
    flags = bytes([FLAG_IN_INCREMENT if p in written else 0 for p in paths])
    rows = b"".join(starmap(_ROW.pack, index.records.values()))
    out = b"".join(
        (INDEX_MAGIC, _HEAD.pack(len(paths), len(path_col), len(link_col), len(hash_col)),
         rows, flags, path_col, link_col, hash_col)
    )  # fmt: skip
    f.write(zstandard.ZstdCompressor(level=level, write_content_size=True).compress(out))


def read_index(f: BinaryIO) -> Index:
    """Read an index written by :func:`write_index`."""
    try:
        data = zstandard.ZstdDecompressor().decompressobj().decompress(f.read())
    except zstandard.ZstdError as e:
        raise IndexFormatError(f"not a zstd-compressed index: {e}") from None
    if not data.startswith(INDEX_MAGIC):
        head = data[: len(INDEX_MAGIC)].split(b"\n")[0]
        raise IndexFormatError(f"bad index magic/version: {head!r}")
    pos = len(INDEX_MAGIC)
    try:
        count, lp, ll, lh = _HEAD.unpack_from(data, pos)
    except struct.error:
        raise IndexFormatError("truncated index header") from None
    pos += _HEAD.size
    rows_end = pos + count * _ROW.size
    if rows_end + count + lp + ll + lh != len(data):
        raise IndexFormatError("index size does not match its header")
    if count == 0:
        return Index()
    rows = list(_ROW.iter_unpack(data[pos:rows_end]))
    flags = data[rows_end : rows_end + count]
    pos = rows_end + count
    paths = data[pos : pos + lp].split(b"\0")
    link_col = data[pos + lp : pos + lp + ll]
    hash_col = data[pos + lp + ll :]
    links = link_col.split(b"\0")
    hashes = hash_col.split(b"\0")
    if not len(paths) == len(links) == len(hashes) == count:
        raise IndexFormatError("index columns disagree on the entry count")
    records: dict[bytes, Record] = dict(zip(paths, rows, strict=True))
    # Skip the per-entry loops for columns that are all empty (the common case).
    written = (
        {p for p, fl in zip(paths, flags, strict=True) if fl & FLAG_IN_INCREMENT}
        if flags.count(0) != count
        else set()
    )
    link_map = {p: t for p, t in zip(paths, links, strict=True) if t} if ll >= count else {}
    hash_map = (
        {p: h.decode("ascii") for p, h in zip(paths, hashes, strict=True) if h}
        if lh >= count
        else {}
    )
    return Index(records, written, link_map, hash_map)
