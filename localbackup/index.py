"""The increment index: every path present when the increment was taken, with its metadata.

On-disk format (version 1, documented in docs/formats.md ``## Index``): one zstd frame whose
content is the magic line ``GLACIER-BACKUP-INDEX 1\\n``, a count, then columns: fixed-size
packed rows, a flags byte per entry, and NUL-separated paths, link targets and hashes (paths
never contain NUL). Columns make reading a 50k-entry index a handful of C-level calls.

An index read from a file stays in its encoded columns until something asks for its records:
change detection compares each scanned file with the row's leading bytes (its *change key*,
:data:`CHANGE_KEY`) by position, so an unchanged incremental never builds a tuple per entry,
and its index is written by copying the base's columns with new flags.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, KeysView, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import compress, starmap
from typing import BinaryIO

import zstandard

__all__ = [
    "CHANGE_KEY",
    "INDEX_MAGIC",
    "ROW_SIZE",
    "TYPES",
    "TYPE_CODE",
    "EntryType",
    "Index",
    "IndexEntry",
    "IndexFormatError",
    "Record",
    "Rows",
    "read_index",
    "write_index",
]

INDEX_MAGIC = b"GLACIER-BACKUP-INDEX 1\n"


class EntryType(StrEnum):
    """What an index entry is. The order is the format: a row stores the position (its code)."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"  # a later name of a file's inode: ``links`` holds the first name
    CHARDEV = "chardev"
    BLOCKDEV = "blockdev"


#: The entry types by code, and the code of each type.
TYPES = tuple(EntryType)
TYPE_CODE = {t: code for code, t in enumerate(TYPES)}

FLAG_IN_INCREMENT = 1
_IN_INCREMENT_BIT = bytes(b & FLAG_IN_INCREMENT for b in range(256))  # bytes.translate table

#: count, then the byte lengths of the paths, link targets and content hashes columns
_HEAD = struct.Struct("<QQQQ")
#: one fixed-size row per entry: mode, uid, gid, size, mtime_ns, ctime_ns, ino, dev, nlink, type
_ROW = struct.Struct("<IIIQqqQQIB")
#: The leading bytes of a row: mode, uid, gid, size, mtime_ns, ctime_ns, ino — exactly what
#: metadata change detection compares. ``CHANGE_KEY.pack(...)`` of a file's current lstat
#: equals its row's first ``CHANGE_KEY.size`` bytes iff the file is unchanged.
CHANGE_KEY = struct.Struct("<IIIQqqQ")

#: (mode, uid, gid, size, mtime_ns, ctime_ns, ino, dev, nlink, type_code). The first seven
#: fields are what metadata change detection compares.
Record = tuple[int, int, int, int, int, int, int, int, int, int]


class IndexFormatError(ValueError):
    """The stream is not an index this version can read."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One path of an increment. ``mode`` is the full ``st_mode`` (type bits included)."""

    path: bytes
    type: EntryType
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


@dataclass(frozen=True, slots=True)
class Rows:
    """An index's entries by position (archive order) as encoded rows: what change detection
    walks. The change key (:data:`CHANGE_KEY`) of entry ``i`` is the ``CHANGE_KEY.size``
    bytes of ``data`` at ``at + i * ROW_SIZE``."""

    paths: list[bytes]
    data: bytes
    at: int

    def record(self, i: int) -> Record:
        """The record of entry ``i``."""
        return _ROW.unpack_from(self.data, self.at + i * _ROW.size)

    def records(self, start: int, stop: int) -> list[Record]:
        """The records of entries ``start`` to ``stop - 1``."""
        view = memoryview(self.data)[self.at + start * _ROW.size : self.at + stop * _ROW.size]
        return list(_ROW.iter_unpack(view))


ROW_SIZE = _ROW.size


@dataclass(frozen=True, slots=True)
class _Columns:
    """A decompressed index stream (already validated) and where its columns are."""

    data: bytes
    count: int
    rows_at: int  # offset of row 0; the flags column follows the rows
    paths: list[bytes]  # archive order
    links_at: int  # offsets of the links and hashes columns
    hashes_at: int

    @property
    def flags_at(self) -> int:
        return self.rows_at + self.count * _ROW.size

    def rows(self) -> Rows:
        return Rows(self.paths, self.data, self.rows_at)

    def records(self) -> dict[bytes, Record]:
        return dict(zip(self.paths, self.rows().records(0, self.count), strict=True))

    def written(self) -> set[bytes]:
        flags = self.data[self.flags_at : self.flags_at + self.count]
        if flags.count(0) == self.count:
            return set()
        return set(compress(self.paths, flags.translate(_IN_INCREMENT_BIT)))

    def links(self) -> dict[bytes, bytes]:
        col = self.data[self.links_at : self.hashes_at]
        if len(col) < self.count:  # all empty (count - 1 separators): the common case
            return {}
        return {p: t for p, t in zip(self.paths, col.split(b"\0"), strict=True) if t}

    def hashes(self) -> dict[bytes, str]:
        col = self.data[self.hashes_at :]
        if len(col) < self.count:
            return {}
        return {
            p: h.decode("ascii") for p, h in zip(self.paths, col.split(b"\0"), strict=True) if h
        }


class Index(Mapping[bytes, IndexEntry]):
    """Archive path (bytes) -> :class:`IndexEntry`, iterating in archive order.

    Stored as columns rather than objects, so 50k+ entries read, compare and write fast:
    ``records`` (path -> :data:`Record`), ``written`` (paths whose content is in this
    increment), ``links`` (symlink/hardlink targets) and ``hashes`` (content hashes). An index
    read by :func:`read_index` decodes each of these on first use.
    """

    __slots__ = ("_columns", "_hashes", "_links", "_records", "_written")

    def __init__(
        self,
        records: dict[bytes, Record] | None = None,
        written: set[bytes] | None = None,
        links: dict[bytes, bytes] | None = None,
        hashes: dict[bytes, str] | None = None,
    ) -> None:
        self._columns: _Columns | None = None
        self._records: dict[bytes, Record] | None = records if records is not None else {}
        self._written: set[bytes] | None = written if written is not None else set()
        self._links: dict[bytes, bytes] | None = links if links is not None else {}
        self._hashes: dict[bytes, str] | None = hashes if hashes is not None else {}

    @classmethod
    def _encoded(cls, columns: _Columns, written: set[bytes] | None) -> Index:
        """An index backed by ``columns``; ``written`` None: as the flags column says."""
        index = cls()
        index._columns = columns
        index._records = index._links = index._hashes = None
        index._written = written
        return index

    def _cols(self) -> _Columns:
        assert self._columns is not None  # only called while a column is still encoded
        return self._columns

    @property
    def records(self) -> dict[bytes, Record]:
        """Path -> :data:`Record`, in archive order."""
        if self._records is None:
            self._records = self._cols().records()
        return self._records

    @property
    def written(self) -> set[bytes]:
        """The paths whose content is in this increment's tar."""
        if self._written is None:
            self._written = self._cols().written()
        return self._written

    @property
    def links(self) -> dict[bytes, bytes]:
        """Path -> symlink target, or for a hardlink the member name it links to."""
        if self._links is None:
            self._links = self._cols().links()
        return self._links

    @property
    def hashes(self) -> dict[bytes, str]:
        """Path -> content hash (only with ``content_hash = true``)."""
        if self._hashes is None:
            self._hashes = self._cols().hashes()
        return self._hashes

    @classmethod
    def from_entries(cls, entries: Iterable[IndexEntry]) -> Index:
        """An index holding ``entries``, in their order."""
        index = cls()
        for e in entries:
            index.add(e)
        return index

    def rows(self) -> Rows:
        """A snapshot of the entries by position, for change detection. Cheap for an index
        as read (its own columns); an index changed since is encoded for it."""
        cols = self._as_read()
        if cols is not None:
            return cols.rows()
        records = self.records
        return Rows(list(records), b"".join(starmap(_ROW.pack, records.values())), 0)

    def _as_read(self) -> _Columns | None:
        """The columns, if records, links and hashes were never decoded (so never changed)."""
        if self._records is None and self._links is None and self._hashes is None:
            return self._columns
        return None

    def carried_over(self) -> Index:
        """A copy with no entry in the increment: the index of an increment that found
        nothing new, changed or deleted since this one."""
        cols = self._as_read()
        if cols is not None:
            return Index._encoded(cols, set())
        return Index(dict(self.records), None, dict(self.links), dict(self.hashes))

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
        return len(self._records) if self._records is not None else self._cols().count

    def record_of(self, path: bytes) -> Record | None:
        """The record of ``path`` (None if not listed), without decoding every record of an
        index as read (which would also make :meth:`rows` re-encode it): a list search."""
        if self._as_read() is None:
            return self.records.get(path)
        rows = self.rows()
        try:
            return rows.record(rows.paths.index(path))
        except ValueError:
            return None

    def lists_below(self, path: bytes) -> bool:
        """Whether any entry is below the directory ``path``."""
        prefix = path + b"/"
        paths = self.rows().paths if self._as_read() is not None else self.records
        return any(p.startswith(prefix) for p in paths)

    def iter_records(self) -> Iterator[tuple[bytes, Record]]:
        """Every (path, record), in archive order (as :class:`StreamedIndex` gives them)."""
        return iter(self.records.items())

    def paths(self) -> KeysView[bytes]:
        """All archive paths, in archive order."""
        return self.records.keys()

    def entries(self) -> Iterator[IndexEntry]:
        """All entries, in archive order."""
        for path in self.records:
            yield self[path]

    def __repr__(self) -> str:
        return f"Index({len(self)} entries, {len(self.written)} in this increment)"


def write_index(index: Index, f: BinaryIO, *, level: int = 1) -> None:
    """Write ``index`` to ``f`` as one zstd frame (``f`` is left open)."""
    cols = index._as_read()
    parts: list[bytes | memoryview]
    if cols is not None:  # copy the encoded columns, only the flags are new
        data = memoryview(cols.data)
        flags_at, flags_end = cols.flags_at, cols.flags_at + cols.count
        parts = [data[:flags_at], _flags(cols.paths, index.written), data[flags_end:]]
    else:
        parts = _encode(index)
    # Streamed part by part: no joined copy of the whole (megabytes for 50k entries). The
    # size goes in the frame header, so a reader decompresses in one call.
    size = sum(map(len, parts))
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    with cctx.stream_writer(f, size=size, closefd=False) as out:
        for part in parts:
            out.write(part)


def _flags(paths: list[bytes], written: set[bytes]) -> bytes:
    if not written:
        return bytes(len(paths))
    return bytes([FLAG_IN_INCREMENT if p in written else 0 for p in paths])


def _encode(index: Index) -> list[bytes | memoryview]:
    records = index.records
    paths = list(records)
    links, hashes = index.links, index.hashes
    path_col = b"\0".join(paths)
    if path_col.count(b"\0") != max(len(paths) - 1, 0):
        raise ValueError("NUL byte in a path")
    link_col = b"\0".join([links.get(p, b"") for p in paths]) if links else b"\0" * (len(paths) - 1)
    hash_col = (
        "\0".join([hashes.get(p, "") for p in paths]).encode("ascii")
        if hashes
        else b"\0" * (len(paths) - 1)
    )
    rows = b"".join(starmap(_ROW.pack, records.values()))
    return [INDEX_MAGIC, _HEAD.pack(len(paths), len(path_col), len(link_col), len(hash_col)),
            rows, _flags(paths, index.written), path_col, link_col, hash_col]  # fmt: skip


def read_index(f: BinaryIO) -> Index:
    """Read an index written by :func:`write_index`."""
    raw = f.read()
    try:
        dctx = zstandard.ZstdDecompressor()
        if zstandard.frame_content_size(raw) >= 0:  # one call, no growing buffer
            data = dctx.decompress(raw)
        else:
            data = dctx.decompressobj().decompress(raw)
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
    rows_at = pos
    paths_at = rows_at + count * _ROW.size + count
    if paths_at + lp + ll + lh != len(data):
        raise IndexFormatError("index size does not match its header")
    if count == 0:
        return Index()
    paths = data[paths_at : paths_at + lp].split(b"\0")
    links_at = paths_at + lp
    hashes_at = links_at + ll
    if not (
        len(paths) == count
        and data.count(0, links_at, hashes_at) == count - 1
        and data.count(0, hashes_at) == count - 1
    ):
        raise IndexFormatError("index columns disagree on the entry count")
    return Index._encoded(_Columns(data, count, rows_at, paths, links_at, hashes_at), None)
