"""The restore engine: rebuild one point in time of a cycle from its increments.

Increments (``.tar.zst`` streams, see docs/formats.md) are applied in order into a fresh
directory: later members replace earlier ones (removed first, never written through). Then
:meth:`Extractor.finish` takes the index of the target increment and removes every path it does
not list (deletions and the old names of renames), and applies the index's owners, modes and
mtimes to every entry it keeps (the index is the truth for the point in time: with content-hash
change detection a file only touched keeps its older tar member), directories last, deepest
first. Path safety rules live in :mod:`localbackup.safepath`.

The engine neither reads nor places files by itself: its callers verify what they feed it
(:mod:`localbackup.integrity`) and give it a staged work directory
(:func:`localbackup.staging.staged_target`) that takes the target's place on success.
:func:`localbackup.spoolrestore.restore_from_cycle_dir` does all of it for a spool cycle,
:mod:`uploader.restore` for an archive in a store.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import structlog
import zstandard

from localbackup import testpoints
from localbackup.fileio import CHUNK_SIZE, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE
from localbackup.index import TYPE_CODE, EntryType, Index, Record
from localbackup.integrity import IntegrityError
from localbackup.pathmatch import PathSelection
from localbackup.paxheader import XATTR_PREFIX, member_mtime_ns
from localbackup.safepath import (
    ExtractError,
    SafeTree,
    UnsafeMemberError,
    member_parts,
    show_member,
)

__all__ = [
    "ExtractError",
    "ExtractOptions",
    "ExtractProgress",
    "ExtractStats",
    "Extractor",
    "IntegrityError",
    "UnsafeMemberError",
]

log = structlog.get_logger(__name__)

_DIR = TYPE_CODE[EntryType.DIR]
_FILES = frozenset({TYPE_CODE[EntryType.FILE], TYPE_CODE[EntryType.HARDLINK]})
_SYMLINK = TYPE_CODE[EntryType.SYMLINK]
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_SKIP = (errno.ENOTSUP, errno.EPERM, errno.EACCES, errno.E2BIG, errno.ERANGE, errno.ENOSPC)
_DEFAULT_DIR_MODE = 0o755  # directories above the backed-up roots (not in the archive)
_MAX_WARNINGS = 100
_REPORT_EVERY = 1 << 20  # compressed bytes read between progress reports

#: Progress of a restore: (files written, compressed increment bytes read), now and then.
ExtractProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    """What a restore brings back and how: ``--path``, ``--allow-devices``, owners."""

    patterns: tuple[str, ...] = ()  # --path (localbackup.pathmatch): paths and their subtrees
    roots: tuple[bytes, ...] = ()  # the source roots the patterns are relative to
    allow_devices: bool = False  # create device nodes and FIFOs (otherwise refused)
    owners: bool | None = None  # restore uid/gid; None: when running as root
    progress: ExtractProgress | None = field(default=None, compare=False)


@dataclass(slots=True)
class ExtractStats:
    """What a restore did: the restored tree (counted by :meth:`Extractor.finish`), what was
    written to make it, and the warnings (the first hundred) it gave."""

    members: int = 0  # members written, all increments together
    files: int = 0  # regular files in the restored tree (hardlinks count as files)
    bytes: int = 0  # their content size
    dirs: int = 0  # directories in the restored tree
    symlinks: int = 0
    deleted: int = 0  # written by an increment, then removed: deleted at the point in time
    warnings: list[str] = field(default_factory=list)


class _Counted:
    """A stream that tells ``count`` how many bytes each read returned."""

    def __init__(self, stream: BinaryIO, count: Callable[[int], None]) -> None:
        self._stream, self._count = stream, count

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._count(len(data))
        return data


class Extractor:
    """Applies increments into ``root`` (a fresh directory), then :meth:`finish` once."""

    def __init__(self, root: Path, options: ExtractOptions | None = None) -> None:
        self.options = options or ExtractOptions()
        self.tree = SafeTree(os.fsencode(root))
        self.select = PathSelection(self.options.patterns, self.options.roots)
        self.owners = self.options.owners if self.options.owners is not None else os.geteuid() == 0
        self.stats = ExtractStats()
        self._xattr_failures = 0
        self._read = 0  # compressed bytes of increments read so far
        self._files_written = 0  # regular file members written so far (progress)
        self._reported = -_REPORT_EVERY

    def warn(self, message: str) -> None:
        """Record (the first hundred) and log a warning; the restore goes on."""
        if len(self.stats.warnings) < _MAX_WARNINGS:
            self.stats.warnings.append(message)
        log.warning("restore.warning", message=message)

    # -- increments --------------------------------------------------------------------------
    def apply(self, stream: BinaryIO, label: str = "increment") -> None:
        """Apply one zstd-compressed tar read from ``stream`` (streamed, memory bounded)."""
        dctx = zstandard.ZstdDecompressor()
        source: Any = stream if self.options.progress is None else _Counted(stream, self._counted)
        with dctx.stream_reader(source, read_across_frames=True, closefd=False) as zin:
            try:
                with tarfile.open(
                    fileobj=zin, mode="r|", encoding="utf-8", errors="surrogateescape"
                ) as tf:
                    self.apply_tar(tf)
            except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
                raise IntegrityError(f"{label}: not a valid increment: {exc}") from None

    def _counted(self, n: int) -> None:
        self._read += n
        if self._read - self._reported >= _REPORT_EVERY and self.options.progress is not None:
            self._reported = self._read
            self.options.progress(self._files_written, self._read)

    def apply_tar(self, tf: tarfile.TarFile) -> None:
        """Apply every member of ``tf``, an open tar of any compression (a stream, ``r|``, is
        enough; open it with ``encoding="utf-8", errors="surrogateescape"``). A damaged archive
        raises the ``tarfile`` or decompressor error as it is: the caller knows the format."""
        for m in tf:
            self._member(tf, m)

    def _member(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        name = m.name.encode("utf-8", "surrogateescape")
        parts = member_parts(name)
        if not parts:
            if m.isdir():
                return  # "./": the target directory itself
            raise UnsafeMemberError(name, "it names the target directory itself")
        if not self.select(b"/".join(parts), m.isdir()):
            return
        if m.isreg():
            self._file(tf, m, name, parts)
        elif m.isdir():
            if not self.tree.clear(name, parts, keep_dir=True):
                os.mkdir(self.tree.path(parts), PRIVATE_DIR_MODE)
                self.tree.known.add(b"/".join(parts))
            self._directory(m, parts)
        elif m.issym():
            self.tree.clear(name, parts)
            full = self.tree.path(parts)
            os.symlink(m.linkname.encode("utf-8", "surrogateescape"), full)
            if self.owners:
                os.chown(full, m.uid, m.gid, follow_symlinks=False)
            mt = member_mtime_ns(m)
            os.utime(full, ns=(mt, mt), follow_symlinks=False)
        elif m.islnk():
            self._hardlink(m, name, parts)
        elif not self._special(m, name, parts):
            return
        self.stats.members += 1
        testpoints.pause("restore.extracting")

    # Hooks for archive formats with other rules
    # (uploader.restore.legacy: the original tool's tars).
    def _directory(self, m: tarfile.TarInfo, parts: tuple[bytes, ...]) -> None:
        """A directory member, once it exists: its owner, mode and mtime come from the index,
        in :meth:`finish`; only its extended attributes are set here."""
        self._xattrs(self.tree.path(parts), m)

    def _special(self, m: tarfile.TarInfo, name: bytes, parts: tuple[bytes, ...]) -> bool:
        """Any other member type: a device node or FIFO is made (if allowed), anything else
        refused. Returns whether the member counts as written."""
        if not (m.ischr() or m.isblk() or m.isfifo()):
            raise UnsafeMemberError(name, f"unsupported member type {m.type!r}")
        self._device(m, name, parts)
        return True

    def _file(
        self, tf: tarfile.TarFile, m: tarfile.TarInfo, name: bytes, parts: tuple[bytes, ...]
    ) -> None:
        self.tree.clear(name, parts)
        src: Any = tf.fileobj
        src.seek(m.offset_data)
        sparse: list[tuple[int, int]] | None = m.sparse  # type: ignore[assignment]
        regions = sparse if sparse is not None else [(0, m.size)]
        fd = os.open(self.tree.path(parts), _CREATE, PRIVATE_FILE_MODE)
        try:
            for offset, length in regions:
                if offset + length > m.size:
                    raise ExtractError(f"{m.name!r}: sparse map goes beyond the file size")
                pos, left = offset, length
                while left:
                    chunk = src.read(min(left, CHUNK_SIZE))
                    if not chunk:
                        raise ExtractError(f"increment ends inside the member {m.name!r}")
                    view = memoryview(chunk)
                    while view:
                        n = os.pwrite(fd, view, pos)
                        view, pos = view[n:], pos + n
                    left -= len(chunk)
            if sparse is not None:
                os.ftruncate(fd, m.size)  # a trailing hole
            self._metadata(fd, m)
        finally:
            os.close(fd)
        self._files_written += 1

    def _hardlink(self, m: tarfile.TarInfo, name: bytes, parts: tuple[bytes, ...]) -> None:
        target = m.linkname.encode("utf-8", "surrogateescape")
        source = self.tree.hardlink_source(name, target)
        if source == self.tree.path(parts):
            raise UnsafeMemberError(name, "hardlink points at itself")
        if source is None:
            shown = show_member(name)
            if self.select:
                self.warn(f"{shown}: not restored, its hardlink target is not selected")
                return
            raise ExtractError(f"hardlink {shown}: target {show_member(target)} not in the archive")
        self.tree.clear(name, parts)
        os.link(source, self.tree.path(parts), follow_symlinks=False)

    def _device(self, m: tarfile.TarInfo, name: bytes, parts: tuple[bytes, ...]) -> None:
        if not self.options.allow_devices:
            what = "FIFO" if m.isfifo() else "device node"
            raise UnsafeMemberError(name, f"it is a {what} (restore with --allow-devices)")
        self.tree.clear(name, parts)
        full = self.tree.path(parts)
        try:
            if m.isfifo():
                os.mkfifo(full, PRIVATE_FILE_MODE)
            else:
                node = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                os.mknod(full, PRIVATE_FILE_MODE | node, os.makedev(m.devmajor, m.devminor))
        except PermissionError as exc:
            self.warn(f"{show_member(name)}: cannot create the device node: {exc.strerror}")
            return
        if self.owners:
            os.chown(full, m.uid, m.gid, follow_symlinks=False)
        os.chmod(full, stat.S_IMODE(m.mode))
        mt = member_mtime_ns(m)
        os.utime(full, ns=(mt, mt), follow_symlinks=False)

    def _metadata(self, fd: int, m: tarfile.TarInfo) -> None:
        if self.owners:
            os.fchown(fd, m.uid, m.gid)  # before chmod: chown clears set-id bits
        os.fchmod(fd, stat.S_IMODE(m.mode))
        self._xattrs(fd, m)
        mt = member_mtime_ns(m)
        os.utime(fd, ns=(mt, mt))

    def _xattrs(self, target: int | bytes, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith(XATTR_PREFIX):
                continue
            attr = key[len(XATTR_PREFIX) :]
            if not (attr.startswith("user.") or self.owners):
                continue
            try:
                os.setxattr(target, attr, value.encode("utf-8", "surrogateescape"))
            except OSError as exc:
                if exc.errno not in _XATTR_SKIP:
                    raise
                self._xattr_failures += 1
                if self._xattr_failures == 1:
                    self.warn(f"{m.name!r}: extended attribute {attr} not restored: {exc.strerror}")

    # -- the end -----------------------------------------------------------------------------
    def finish(self, index: Index) -> ExtractStats:
        """Remove what ``index`` does not list and set the index's metadata on the rest:
        files, symlinks and device nodes as they are seen, directories last, deepest first.
        Raises :class:`~localbackup.pathmatch.NoPathMatch` if a ``--path`` pattern selects
        nothing at this point in time (the caller's staged target is then discarded)."""
        if self.select:
            self.select.require(index.records)
        if self._xattr_failures > 1:
            self.warn(f"extended attributes could not be restored on {self._xattr_failures} paths")
        records = index.records
        ancestors: set[bytes] = set()
        for p in records:
            parent = p.rpartition(b"/")[0]
            while parent and parent not in records and parent not in ancestors:
                ancestors.add(parent)
                parent = parent.rpartition(b"/")[0]
        dirs: list[bytes] = []
        stack = [b""]
        while stack:
            rel = stack.pop()
            with os.scandir(self.tree.path(tuple(rel.split(b"/")) if rel else ())) as it:
                entries = list(it)
            for e in entries:
                child = rel + b"/" + e.name if rel else e.name
                is_dir = e.is_dir(follow_symlinks=False)
                rec = records.get(child)
                if (rec is not None and (rec[9] == _DIR) == is_dir) or (
                    is_dir and child in ancestors
                ):
                    if is_dir:
                        stack.append(child)
                        dirs.append(child)
                    elif rec is not None:
                        self._set_metadata(os.fsencode(e.path), rec, e.is_symlink())
                        self._count(rec)
                    continue
                self.tree.remove(tuple(child.split(b"/")))
                self.stats.deleted += 1
        dirs.sort(key=lambda d: d.count(b"/"), reverse=True)
        self.stats.dirs += sum(1 for d in dirs if d in records)
        for d in dirs:
            full = os.path.join(self.tree.root, d)
            rec = records.get(d)
            if rec is None:
                os.chmod(full, _DEFAULT_DIR_MODE)
                continue
            self._set_metadata(full, rec, False)
        return self.stats

    def _count(self, rec: Record) -> None:
        """Count one non-directory entry of the restored tree."""
        if rec[9] in _FILES:
            self.stats.files += 1
            self.stats.bytes += rec[3]
        elif rec[9] == _SYMLINK:
            self.stats.symlinks += 1

    def _set_metadata(self, full: bytes, rec: Record, symlink: bool) -> None:
        """Owner (before the mode: chown clears set-id bits), mode and mtime of ``rec``; a
        symlink's own owner and mtime, never its target's (it has no mode of its own)."""
        if self.owners:
            os.chown(full, rec[1], rec[2], follow_symlinks=False)
        if not symlink:
            os.chmod(full, stat.S_IMODE(rec[0]))
        os.utime(full, ns=(rec[4], rec[4]), follow_symlinks=False)
