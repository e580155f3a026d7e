"""Write one backup increment: the scan, through change detection, to the .tar.zst stream and
the index.

:func:`write_increment` wires the parts: :func:`localbackup.scan.scan` walks the sources,
:class:`localbackup.changes.ChangeDetector` compares each entry with the base index, and this
module's archiver writes what is new or changed with :class:`localbackup.tarwriter.TarWriter`
into a zstd stream. The caller owns file naming, fsync and renames; this module only writes to
the file objects it is given. See docs/formats.md (``## Increment``, ``## Index``) for the
output formats.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from localbackup.changes import TYPE_OF_FMT, ChangeDetector
from localbackup.exclude import compile_excludes
from localbackup.fileio import CHUNK_SIZE, Opener, open_for_reading, read_xattrs
from localbackup.index import TYPE_CODE, EntryType, Index, Record
from localbackup.paxheader import xattr_records
from localbackup.scan import ScanStats, SkipReason, WarningKind, display_path, scan
from localbackup.sources import MissingSource, find_missing_sources
from localbackup.tarwriter import TarWriter

__all__ = [
    "BackupWarning",
    "IncrementOptions",
    "IncrementResult",
    "Opener",
    "open_for_reading",
    "write_increment",
]

_FILE, _HARDLINK = TYPE_CODE[EntryType.FILE], TYPE_CODE[EntryType.HARDLINK]
_DIR, _SYMLINK = TYPE_CODE[EntryType.DIR], TYPE_CODE[EntryType.SYMLINK]
_STALE = -1  # ctime_ns stored for entries archived inconsistently: never matches next time
_S_IFREG = stat.S_IFREG

#: Called with (entries scanned, content bytes archived) now and then (every few MiB inside a
#: large file too), and at the end.
Progress = Callable[[int, int], None]


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
    kind: WarningKind
    message: str


@dataclass(frozen=True, slots=True)
class IncrementResult:
    """Counters of one increment."""

    files_scanned: int  # entries seen (files, dirs, links, devices)
    files_written: int  # members written to the tar
    bytes_in: int  # file content bytes archived (uncompressed)
    bytes_out: int  # compressed bytes written to tar_out
    skipped: Mapping[SkipReason, int]
    warnings: tuple[BackupWarning, ...]
    deleted: int  # paths in the base index absent now


def _carried(m: MissingSource, kept: int, base: Index | None) -> str:
    """The warning for a missing source: what became of its entries."""
    if kept:
        return (
            f"source {m.reason}: its {kept:,} entries of the previous backup are kept as they "
            "were, not recorded as deleted; if it is gone for good, remove it from "
            "[backup] sources"
        )
    if base is None:
        return (
            f"source {m.reason}: not in this full backup (a full holds only what is there "
            "now); its last backup stays in the earlier cycles"
        )
    return f"source {m.reason}: not backed up (it was not in the previous backup either)"


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


class _Archiver:
    """Writes the new and changed entries of one increment to its tar, and records in the new
    index (:class:`ChangeDetector`) what it wrote or kept; one method per kind of entry."""

    def __init__(
        self, tar: TarWriter, opener: Opener, stats: ScanStats, changes: ChangeDetector
    ) -> None:
        self.tar = tar
        self.stats = stats
        self.opener = opener
        self.changes = changes
        self.hashing = changes.content_hash
        self.hash_buf = memoryview(bytearray(CHUNK_SIZE if self.hashing else 0))
        self.links: dict[tuple[int, int], bytes] = {}  # inode -> its name written now
        self.warnings: list[BackupWarning] = []
        self.written = 0
        self.bytes_in = 0

    def warn(self, path: bytes, kind: WarningKind, message: str) -> None:
        self.warnings.append(BackupWarning(display_path(path), kind, message))

    def changed(
        self, path: bytes, name: bytes, st: os.stat_result, fmt: int, b: Record | None
    ) -> None:
        """An entry that is new (``b`` None), changed, or needs a closer look (content hash);
        ``b`` is its base record."""
        if fmt == _S_IFREG:
            self.file(path, name, st, b)
        elif fmt in TYPE_OF_FMT:
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
            self.changes.add(
                name,
                (*rec[:9], _HARDLINK),
                target,
                self.changes.new.link_hashes.get(target),
                in_base=b is not None,
            )
            return
        try:
            fd = self.opener(path)
        except FileNotFoundError:
            self.warn(path, "vanished", "vanished before it could be read")
            return
        except OSError as e:
            self.warn(path, "unreadable", f"cannot open: {e.strerror or e}")
            self.stats.skipped["unreadable"] += 1
            if b is not None:
                self.changes.keep(name, b)
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
            digest = hasher.hexdigest() if hasher is not None else None
            self.changes.add(name, rec, None, digest, in_base=b is not None)
            return
        stale = (*rec[:5], _STALE, *rec[6:])  # never matches next time
        self.changes.add(name, stale, in_base=b is not None)

    def _same_hash(self, fd: int, path: bytes, name: bytes, rec: Record, b: Record) -> bool:
        """Content-hash mode: record ``name`` as unchanged if its content hash matches."""
        old = self.changes.base.hashes.get(name)
        if old is None or b[:4] != rec[:4]:  # mode, owner or size differ: changed anyway
            return False
        try:
            digest = _hash_fd(fd, self.hash_buf)
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError as e:
            self.warn(path, "unreadable", f"cannot read: {e.strerror or e}")
            self.changes.keep(name, (*b[:5], _STALE, *b[6:]), with_hash=False)
            return True
        if digest != old:
            return False
        self.changes.keep(name, (*rec[:9], b[9]))  # same content: times alone are no change
        return True

    def other(self, path: bytes, name: bytes, st: os.stat_result, b: Record | None) -> None:
        """Directories, symlinks and devices: compared by metadata, no content to read."""
        typ = TYPE_OF_FMT[stat.S_IFMT(st.st_mode)]
        # fmt: off
        rec: Record = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                       st.st_ctime_ns, st.st_ino, st.st_dev, st.st_nlink, typ)
        # fmt: on
        if b is not None and b[:7] == rec[:7] and b[9] == typ:
            self.changes.keep(name, b)
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
            kind: WarningKind = "vanished" if e.errno == errno.ENOENT else "unreadable"
            self.warn(path, kind, f"cannot read: {e.strerror or e}")
            if kind == "unreadable":
                self.stats.skipped["unreadable"] += 1
            return
        self.written += 1
        self.changes.add(name, rec, link, in_base=b is not None)


def write_increment(
    options: IncrementOptions,
    base: Index | None,
    tar_out: BinaryIO,
    index_out: BinaryIO,
    progress: Progress | None = None,
    *,
    opener: Opener = open_for_reading,
    missing: tuple[MissingSource, ...] | None = None,
) -> IncrementResult:
    """Archive new and changed entries of ``options.sources`` relative to ``base``.

    ``base`` None means a full backup. ``tar_out`` receives the zstd-compressed pax tar,
    ``index_out`` the index of every path present now (see :mod:`localbackup.index`).
    Problems with single paths become warnings; I/O errors on the outputs propagate.
    ``opener`` opens files for reading (a seam for fault tests). ``missing``: the sources that
    are missing now (default: :func:`~localbackup.sources.find_missing_sources` against
    ``base``); each keeps its entries of ``base`` unchanged, with a warning.
    """
    if missing is None:
        missing = find_missing_sources(options.sources, base)
    stats = ScanStats()
    threads = {0: -1, 1: 0}.get(options.compression_threads, options.compression_threads)
    cctx = zstandard.ZstdCompressor(level=options.compression_level, threads=threads)
    sink = _CountingSink(tar_out)
    zout = cctx.stream_writer(sink, closefd=False, write_size=CHUNK_SIZE)  # type: ignore[arg-type]
    out_name = getattr(index_out, "name", None)
    tmp_dir = Path(out_name).parent if isinstance(out_name, str) else None
    changes = ChangeDetector(base, content_hash=options.content_hash, tmp_dir=tmp_dir)
    scanned_so_far = [0]

    def tick(n: int) -> None:
        scanned_so_far[0] = n
        if progress is not None:
            progress(n, tar.content)

    def flushed(_: int) -> None:
        if progress is not None:
            progress(scanned_so_far[0], tar.content)

    tar = TarWriter(zout, on_flush=flushed if progress is not None else None)
    run = _Archiver(tar, opener, stats, changes)
    entries = scan(
        options.sources,
        compile_excludes(options.exclude),
        stats,
        one_file_system=options.one_file_system,
        exclude_caches=options.exclude_caches,
        skip=frozenset(m.path for m in missing),
    )
    scanned = changes.compare(entries, run.changed, tick if progress is not None else None)
    for d in stats.unreadable_dirs:
        changes.keep_below(d)
    for m in missing:
        run.warn(m.path, "missing_source", _carried(m, changes.keep_source(m.path), base))
    for root in stats.missing_sources:  # gone between the check above and the scan
        changes.keep_source(root)
    run.tar.close()
    zout.close()  # type: ignore[no-untyped-call]  # ends the frame; tar_out stays open
    changes.write_index(index_out)
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
        deleted=changes.deleted(),
    )
