"""Write one backup increment: scan, change detection, the .tar.zst stream and the index.

The caller owns file naming, fsync and renames; this module only writes to the file objects it
is given. See docs/formats.md (``## Increment``, ``## Index``) for the output formats.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from localbackup.exclude import compile_excludes
from localbackup.index import CHANGE_KEY, ROW_SIZE, TYPE_CODE, Index, Record, write_index
from localbackup.paxheader import xattr_records
from localbackup.scan import ScanEntry, ScanStats, display_path, scan
from localbackup.tarwriter import TarWriter, read_xattrs

__all__ = [
    "BackupWarning",
    "IncrementOptions",
    "IncrementResult",
    "Opener",
    "open_for_reading",
    "write_increment",
]

_FILE, _DIR, _SYMLINK = TYPE_CODE["file"], TYPE_CODE["dir"], TYPE_CODE["symlink"]
_HARDLINK, _CHR, _BLK = TYPE_CODE["hardlink"], TYPE_CODE["chardev"], TYPE_CODE["blockdev"]
_STALE = -1  # ctime_ns stored for entries archived inconsistently: never matches next time
_PROGRESS_EVERY = 1024  # files between progress callbacks
_S_IFMT, _S_IFREG = 0o170000, stat.S_IFREG
_END = b"\0"  # after the last base path: no path contains NUL

#: Opens a path for reading and returns a file descriptor (a seam for fault tests).
Opener = Callable[[bytes], int]
#: Called with (entries scanned, content bytes archived) now and then, and at the end.
Progress = Callable[[int, int], None]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NOATIME = getattr(os, "O_NOATIME", 0)


def open_for_reading(path: bytes) -> int:
    """Open without following symlinks or blocking, with O_NOATIME where permitted."""
    if _NOATIME:
        try:
            return os.open(path, _OPEN_FLAGS | _NOATIME)
        except PermissionError:
            pass  # O_NOATIME needs ownership (or CAP_FOWNER)
    return os.open(path, _OPEN_FLAGS)


@dataclass(frozen=True, slots=True)
class IncrementOptions:
    """What to back up and how."""

    sources: tuple[Path, ...]  # absolute, already expanded; directories and single files
    exclude: tuple[str, ...] = ()  # gitignore-like patterns (localbackup.exclude)
    one_file_system: bool = False  # don't cross mount points below a source
    exclude_caches: bool = True  # skip dirs holding a valid CACHEDIR.TAG
    content_hash: bool = False  # files change when their content hash changes
    compression_level: int = 3
    compression_threads: int = 0  # 0 = all cores, 1 = single-threaded, n = n workers


@dataclass(frozen=True, slots=True)
class BackupWarning:
    """A path that could not be backed up as-is; the backup went on."""

    path: str  # display form
    kind: str  # unreadable | vanished | changed_while_reading | missing_source | skipped_special
    message: str


@dataclass(frozen=True, slots=True)
class IncrementResult:
    """Counters of one increment."""

    files_scanned: int  # entries seen (files, dirs, links, devices)
    files_written: int  # members written to the tar
    bytes_in: int  # file content bytes archived (uncompressed)
    bytes_out: int  # compressed bytes written to tar_out
    skipped: Mapping[str, int]  # socket, fifo, excluded, cachedir, special
    warnings: tuple[BackupWarning, ...]
    deleted: int  # paths in the base index absent now


class _CountingSink:
    """Counts the compressed bytes on their way to ``tar_out``."""

    __slots__ = ("count", "f")

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        self.f.write(data)
        return len(data)

    def flush(self) -> None:
        self.f.flush()


def _xattr_records(target: int | bytes) -> bytes:
    try:
        attrs = read_xattrs(target)
    except OSError:
        return b""
    return xattr_records(attrs)


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


def _blake2b() -> _Hasher:
    # Imported on first use: only content_hash mode needs it, and loading OpenSSL's hashlib
    # costs about 3 ms of start-up, 1-2 % of an unchanged incremental.
    import hashlib

    return hashlib.blake2b(digest_size=32)


def _hash_fd(fd: int, buf: memoryview) -> str:
    h = _blake2b()
    while n := os.readv(fd, [buf]):
        h.update(buf[:n])
    return h.hexdigest()


class _Run:
    """State of one increment being written; one method per kind of entry."""

    def __init__(self, options: IncrementOptions, base: Index | None, tar: TarWriter,
                 opener: Opener, stats: ScanStats) -> None:  # fmt: skip
        self.tar = tar
        self.stats = stats
        self.opener = opener
        self.hashing = options.content_hash
        self.hash_buf = memoryview(bytearray(1 << 20 if self.hashing else 0))
        self.base = base if base is not None else Index()
        #: the base by position, in archive order (the order of the scan)
        self.base_rows = self.base.rows()
        self.base_paths = [*self.base_rows.paths, _END]
        self._positions: dict[bytes, int] | None = None
        self.carried_all = False  # the new index is the base's, none deleted
        self.new = Index()
        self.links: dict[tuple[int, int], bytes] = {}  # inode -> its name written now
        self.warnings: list[BackupWarning] = []
        self.written = 0
        self.bytes_in = 0

    def warn(self, path: bytes, kind: str, message: str) -> None:
        self.warnings.append(BackupWarning(display_path(path), kind, message))

    def base_position(self, name: bytes) -> int | None:
        """Where ``name`` is in the base (the map is built on first use)."""
        if self._positions is None:
            paths = self.base_paths
            self._positions = dict(zip(paths, range(len(paths)), strict=True))
        return self._positions.get(name)

    def carry(self, start: int, stop: int) -> None:
        """Carry the unchanged base entries at positions ``start:stop`` over, in bulk."""
        paths = self.base_paths[start:stop]
        self.new.records.update(zip(paths, self.base_rows.records(start, stop), strict=True))
        links, hashes = self.base.links, self.base.hashes
        if links:
            self.new.links.update({p: links[p] for p in links.keys() & paths})
        if hashes:
            self.new.hashes.update({p: hashes[p] for p in hashes.keys() & paths})

    def keep(self, name: bytes, b: Record) -> None:
        """Carry a base entry over: its content stays in an earlier increment."""
        self.new.records[name] = b
        link = self.base.links.get(name)
        if link is not None:
            self.new.links[name] = link
        h = self.base.hashes.get(name)
        if h is not None:
            self.new.hashes[name] = h

    def add(
        self, name: bytes, rec: Record, link: bytes | None = None, h: str | None = None
    ) -> None:
        """Record an entry written to this increment."""
        self.new.records[name] = rec
        self.new.written.add(name)
        if link is not None:
            self.new.links[name] = link
        if h is not None:
            self.new.hashes[name] = h

    def compare(self, entries: Iterator[ScanEntry], progress: Progress | None) -> int:
        """Compare the scanned entries with the base, archive what is new or changed and
        build the new index; returns the number of entries scanned.

        This is the per-file hot path of an unchanged incremental. The scan visits paths in
        the base index's order, so the base entry of a path is usually the one at ``cursor``:
        no dict lookup, and unchanged entries are not copied one by one but carried over in
        runs (:meth:`carry`). An added or deleted path puts the cursor out of step; it resumes
        at the next path found in the base.
        """
        base_paths, carry, record_at = self.base_paths, self.carry, self.base_rows.record
        keys, keys_at, stride = self.base_rows.data, self.base_rows.at, ROW_SIZE
        pack = CHANGE_KEY.pack
        metadata_mode = not self.hashing
        scanned = 0
        cursor = 0  # base position the next scanned path is expected at
        carry_from = 0  # first base position of the current run of unchanged entries
        for path, st in entries:
            scanned += 1
            if progress is not None and scanned % _PROGRESS_EVERY == 0:
                progress(scanned, self.bytes_in)
            name = path[1:]
            mode = st.st_mode
            fmt = mode & _S_IFMT
            pos: int | None = cursor
            if base_paths[cursor] != name:
                if carry_from < cursor:
                    carry(carry_from, cursor)
                pos = self.base_position(name) if name else None  # "/" has no member name
                if pos is not None:
                    cursor = pos
                carry_from = cursor
            if pos is not None and (metadata_mode or fmt != _S_IFREG):
                try:
                    # fmt: off
                    same = keys.startswith(pack(mode, st.st_uid, st.st_gid, st.st_size,
                                                st.st_mtime_ns, st.st_ctime_ns, st.st_ino),
                                           keys_at + pos * stride)
                    # fmt: on
                except struct.error:  # a value no row can hold (an mtime after 2262?)
                    same = False
                if same and (fmt == _S_IFREG or record_at(pos)[9] == _TYPE_OF_FMT.get(fmt)):
                    cursor += 1  # unchanged: its content stays in an earlier increment
                    continue
            if carry_from < cursor:
                carry(carry_from, cursor)
            b = None
            if pos is not None:
                b = record_at(pos)
                cursor += 1
            carry_from = cursor
            self.changed(path, name, st, fmt, b)
        if carry_from == 0 and cursor == len(base_paths) - 1 and not self.new.records:
            self.new = self.base.carried_over()  # nothing new, changed or deleted
            self.carried_all = True
        elif carry_from < cursor:
            carry(carry_from, cursor)
        return scanned

    def deleted(self) -> int:
        """Paths of the base that the new index does not list."""
        if self.carried_all:
            return 0
        present = sum(map(self.new.records.__contains__, self.base_paths[:-1]))
        return len(self.base_paths) - 1 - present

    def changed(
        self, path: bytes, name: bytes, st: os.stat_result, fmt: int, b: Record | None
    ) -> None:
        """An entry that is new (``b`` None), changed, or needs a closer look (content hash);
        ``b`` is its base record."""
        if fmt == _S_IFREG:
            self.file(path, name, st, b)
        elif fmt in _TYPE_OF_FMT:
            if name:  # "/" itself has no member name
                self.other(path, name, st, b)
        else:
            self.stats.skipped["special"] += 1
            self.warn(path, "skipped_special", f"unsupported file type {oct(fmt)}")

    def file(self, path: bytes, name: bytes, st: os.stat_result, b: Record | None) -> None:
        # fmt: off
        rec: Record = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                       st.st_ctime_ns, st.st_ino, st.st_dev, st.st_nlink, _FILE)
        # fmt: on
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            target = self.links[key]
            self.tar.add_hardlink(name, st, target)
            self.written += 1
            self.add(name, (*rec[:9], _HARDLINK), target, self.new.hashes.get(target))
            return
        try:
            fd = self.opener(path)
        except FileNotFoundError:
            self.warn(path, "vanished", "vanished before it could be read")
            return
        except OSError as e:
            self.warn(path, "unreadable", f"cannot open: {e.strerror or e}")
            if b is not None:
                self.keep(name, b)
            return
        try:
            if self.hashing and b is not None and self._same_hash(fd, path, name, rec, b):
                return
            hasher = _blake2b() if self.hashing else None
            update = hasher.update if hasher is not None else None
            copy = self.tar.add_file(name, st, fd, _xattr_records(fd), update)
        finally:
            os.close(fd)
        self.written += 1
        self.bytes_in += st.st_size
        if st.st_nlink > 1:
            self.links[key] = name
        if copy.error is not None:
            self.warn(path, "unreadable", f"read error, rest zero-filled: {copy.error.strerror}")
        elif copy.changed:
            self.warn(path, "changed_while_reading", "changed while being read; archived with "
                      "the size recorded at scan time, will be backed up again")  # fmt: skip
        else:
            self.add(name, rec, None, hasher.hexdigest() if hasher is not None else None)
            return
        self.add(name, (*rec[:5], _STALE, *rec[6:]))  # never matches next time

    def _same_hash(self, fd: int, path: bytes, name: bytes, rec: Record, b: Record) -> bool:
        """Content-hash mode: record ``name`` as unchanged if its content hash matches."""
        old = self.base.hashes.get(name)
        if old is None or b[:4] != rec[:4]:  # mode, owner or size differ: changed anyway
            return False
        try:
            digest = _hash_fd(fd, self.hash_buf)
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError as e:
            self.warn(path, "unreadable", f"cannot read: {e.strerror or e}")
            self.keep(name, (*b[:5], _STALE, *b[6:]))
            self.new.hashes.pop(name, None)
            return True
        if digest != old:
            return False
        self.keep(name, (*rec[:9], b[9]))  # same content: times alone are no change
        return True

    def other(self, path: bytes, name: bytes, st: os.stat_result, b: Record | None) -> None:
        """Directories, symlinks and devices: compared by metadata, no content to read."""
        typ = _TYPE_OF_FMT[stat.S_IFMT(st.st_mode)]
        # fmt: off
        rec: Record = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                       st.st_ctime_ns, st.st_ino, st.st_dev, st.st_nlink, typ)
        # fmt: on
        if b is not None and b[:7] == rec[:7] and b[9] == typ:
            self.keep(name, b)
            return
        link = None
        try:
            if typ == _DIR:
                self.tar.add_dir(name, st, _xattr_records(path))
            elif typ == _SYMLINK:
                link = os.readlink(path)
                self.tar.add_symlink(name, st, link)
            else:
                self.tar.add_device(name, st, _xattr_records(path))
        except OSError as e:
            kind = "vanished" if e.errno == errno.ENOENT else "unreadable"
            self.warn(path, kind, f"cannot read: {e.strerror or e}")
            return
        self.written += 1
        self.add(name, rec, link)

    def keep_below(self, directory: bytes) -> None:
        """A directory that could not be listed: keep what the base knew below it, rather
        than reporting its contents as deleted."""
        prefix = directory[1:] + b"/"
        for p, r in self.base.records.items():
            if p.startswith(prefix) and p not in self.new.records:
                self.keep(p, r)


_TYPE_OF_FMT = {stat.S_IFDIR: _DIR, stat.S_IFLNK: _SYMLINK, stat.S_IFCHR: _CHR, stat.S_IFBLK: _BLK}


def write_increment(
    options: IncrementOptions,
    base: Index | None,
    tar_out: BinaryIO,
    index_out: BinaryIO,
    progress: Progress | None = None,
    *,
    opener: Opener = open_for_reading,
) -> IncrementResult:
    """Archive new and changed entries of ``options.sources`` relative to ``base``.

    ``base`` None means a full backup. ``tar_out`` receives the zstd-compressed pax tar,
    ``index_out`` the index of every path present now (see :mod:`localbackup.index`).
    Problems with single paths become warnings; I/O errors on the outputs propagate.
    ``opener`` opens files for reading (a seam for fault tests).
    """
    stats = ScanStats()
    threads = {0: -1, 1: 0}.get(options.compression_threads, options.compression_threads)
    cctx = zstandard.ZstdCompressor(level=options.compression_level, threads=threads)
    sink = _CountingSink(tar_out)
    zout = cctx.stream_writer(sink, closefd=False, write_size=1 << 20)  # type: ignore[arg-type]
    run = _Run(options, base, TarWriter(zout), opener, stats)
    entries = scan(
        options.sources,
        compile_excludes(options.exclude),
        stats,
        one_file_system=options.one_file_system,
        exclude_caches=options.exclude_caches,
    )
    scanned = run.compare(entries, progress)
    for d in stats.unreadable_dirs:
        run.keep_below(d)
    run.tar.close()
    zout.close()  # type: ignore[no-untyped-call]  # ends the frame; tar_out stays open
    write_index(run.new, index_out)
    if progress is not None:
        progress(scanned, run.bytes_in)
    warnings = [BackupWarning(display_path(p), k, m) for p, k, m in stats.warnings]
    return IncrementResult(
        files_scanned=scanned,
        files_written=run.written,
        bytes_in=run.bytes_in,
        bytes_out=sink.count,
        skipped=dict(stats.skipped),
        warnings=tuple(warnings + run.warnings),
        deleted=run.deleted(),
    )
