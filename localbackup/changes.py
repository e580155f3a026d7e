"""Change detection: which scanned entries differ from the base index, and the new index.

The rule (docs/formats.md, ``## Index``): a path is new or changed when it is not in the base,
or when its mode, owner, size, times or inode differ (with content hashes, a regular file's
content decides instead of its times; that closer look is the archiver's). Everything else is
unchanged: its content stays in an earlier increment and its base entry is carried over.

:class:`ChangeDetector` walks the scan against the base and hands each new or changed entry to
a callback, the increment's archiver (:mod:`localbackup.increment`), which records in the new
index what it wrote (:meth:`ChangeDetector.add`) or kept (:meth:`ChangeDetector.keep`).
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from localbackup.index import (
    CHANGE_KEY,
    ROW_SIZE,
    TYPE_CODE,
    EntryType,
    Index,
    Record,
    write_index,
)
from localbackup.indexbuilder import IndexBuilder
from localbackup.scan import FILE_TYPE_BITS, ScanEntry

__all__ = ["TYPE_OF_FMT", "ChangeDetector", "Changed"]

#: The index type code of every file type compared by metadata alone (no content to read), by
#: its ``st_mode`` file-type bits. Regular files (and hardlinks) are not in it.
TYPE_OF_FMT = {
    stat.S_IFDIR: TYPE_CODE[EntryType.DIR],
    stat.S_IFLNK: TYPE_CODE[EntryType.SYMLINK],
    stat.S_IFCHR: TYPE_CODE[EntryType.CHARDEV],
    stat.S_IFBLK: TYPE_CODE[EntryType.BLOCKDEV],
}

#: Called for a new or changed entry: (path, member name, lstat, file-type bits, base record
#: or None when the path is new).
Changed = Callable[[bytes, bytes, os.stat_result, int, Record | None], None]

_PROGRESS_EVERY = 1024  # entries between progress callbacks
_S_IFREG = stat.S_IFREG
_END = b"\0"  # after the last base path: no path contains NUL


class ChangeDetector:
    """Compares one scan with its base index and builds the new index."""

    def __init__(
        self, base: Index | None, *, content_hash: bool, tmp_dir: Path | None = None
    ) -> None:
        self.base = base if base is not None else Index()
        #: regular files are compared by content hash: each always gets the archiver's look
        self.content_hash = content_hash
        #: the base by position, in archive order (the order of the scan)
        self.base_rows = self.base.rows()
        self.base_paths = [*self.base_rows.paths, _END]
        self._positions: dict[bytes, int] | None = None
        self.carried_all = False  # the new index is the base's, none deleted
        #: the new index, its columns on disk (:mod:`localbackup.indexbuilder`)
        self.new = IndexBuilder(tmp_dir)
        self._from_base = 0  # entries of the new index that the base lists

    def base_position(self, name: bytes) -> int | None:
        """Where ``name`` is in the base (the map is built on first use)."""
        if self._positions is None:
            paths = self.base_paths
            self._positions = dict(zip(paths, range(len(paths)), strict=True))
        return self._positions.get(name)

    def carry(self, start: int, stop: int) -> None:
        """Carry the unchanged base entries at positions ``start:stop`` over, in bulk."""
        paths = self.base_paths[start:stop]
        rows = self.base_rows
        view = memoryview(rows.data)[rows.at + start * ROW_SIZE : rows.at + stop * ROW_SIZE]
        links, hashes = self.base.links, self.base.hashes
        self.new.extend(
            paths,
            view,
            [links.get(p, b"") for p in paths] if links else None,
            [hashes.get(p, "") for p in paths] if hashes else None,
        )
        self._from_base += stop - start

    def keep(self, name: bytes, b: Record, *, with_hash: bool = True) -> None:
        """Carry a base entry over: its content stays in an earlier increment
        (``with_hash`` False: without its content hash, which no longer holds)."""
        h = self.base.hashes.get(name) if with_hash else None
        self.new.append(name, b, False, self.base.links.get(name), h)
        self._from_base += 1

    def add(
        self,
        name: bytes,
        rec: Record,
        link: bytes | None = None,
        h: str | None = None,
        *,
        in_base: bool,
    ) -> None:
        """Record an entry written to this increment (``in_base``: the base lists its path)."""
        self.new.append(name, rec, True, link, h)
        self._from_base += in_base

    def compare(
        self,
        entries: Iterator[ScanEntry],
        changed: Changed,
        progress: Callable[[int], object] | None,
    ) -> int:
        """Hand every new or changed scanned entry to ``changed`` and carry the unchanged ones
        over; returns the number of entries scanned (``progress`` sees it now and then).

        This is the per-file hot path of an unchanged incremental. The scan visits paths in
        the base index's order, so the base entry of a path is usually the one at ``cursor``:
        no dict lookup, and unchanged entries are not copied one by one but carried over in
        runs (:meth:`carry`). An added or deleted path puts the cursor out of step; it resumes
        at the next path found in the base.
        """
        base_paths, carry, record_at = self.base_paths, self.carry, self.base_rows.record
        keys, keys_at, stride = self.base_rows.data, self.base_rows.at, ROW_SIZE
        pack = CHANGE_KEY.pack
        metadata_only = not self.content_hash
        scanned = 0
        cursor = 0  # base position the next scanned path is expected at
        carry_from = 0  # first base position of the current run of unchanged entries
        for path, st in entries:
            scanned += 1
            if progress is not None and scanned % _PROGRESS_EVERY == 0:
                progress(scanned)
            name = path[1:]
            mode = st.st_mode
            fmt = mode & FILE_TYPE_BITS
            pos: int | None = cursor
            if base_paths[cursor] != name:
                if carry_from < cursor:
                    carry(carry_from, cursor)
                pos = self.base_position(name) if name else None  # "/" has no member name
                if pos is not None:
                    cursor = pos
                carry_from = cursor
            if pos is not None and (metadata_only or fmt != _S_IFREG):
                try:
                    # fmt: off
                    same = keys.startswith(pack(mode, st.st_uid, st.st_gid, st.st_size,
                                                st.st_mtime_ns, st.st_ctime_ns, st.st_ino),
                                           keys_at + pos * stride)
                    # fmt: on
                except struct.error:  # a value no row can hold (an mtime after 2262?)
                    same = False
                if same and (fmt == _S_IFREG or record_at(pos)[9] == TYPE_OF_FMT.get(fmt)):
                    cursor += 1  # unchanged: its content stays in an earlier increment
                    continue
            if carry_from < cursor:
                carry(carry_from, cursor)
            b = None
            if pos is not None:
                b = record_at(pos)
                cursor += 1
            carry_from = cursor
            changed(path, name, st, fmt, b)
        if carry_from == 0 and cursor == len(base_paths) - 1 and not self.new.count:
            self.carried_all = True  # nothing new, changed or deleted
        elif carry_from < cursor:
            carry(carry_from, cursor)
        return scanned

    def deleted(self) -> int:
        """Paths of the base that the new index does not list."""
        if self.carried_all:
            return 0
        return len(self.base_paths) - 1 - self._from_base

    def keep_source(self, root: bytes) -> int:
        """A source root that is missing now: keep what the base knew of it (the root and
        everything below), rather than report it deleted; returns how many entries."""
        name = root[1:]  # the scan left it out: it is not in the new index yet
        before = self.new.count
        record = self.base.record_of(name)
        if record is not None:
            self.keep(name, record)
        self.keep_below(root)
        return self.new.count - before

    def keep_below(self, directory: bytes) -> None:
        """A directory that could not be listed: keep what the base knew below it, rather
        than reporting its contents as deleted (nothing below it was scanned)."""
        prefix = directory[1:] + b"/"
        for p, r in self.base.records.items():
            if p.startswith(prefix):
                self.keep(p, r)

    def write_index(self, out: BinaryIO) -> None:
        """Write the new index to ``out`` (then the column files are gone)."""
        with self.new:
            if self.carried_all:
                write_index(self.base.carried_over(), out)
            else:
                self.new.write(out)
