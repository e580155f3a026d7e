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

import zstandard

from localbackup import testpoints
from localbackup.fileio import CHUNK_SIZE, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE
from localbackup.finish import IndexRecords, finish_tree
from localbackup.integrity import IntegrityError
from localbackup.logevents import get_logger
from localbackup.pathmatch import PathSelection
from localbackup.paxreader import (
    BLOCKDEV,
    CHARDEV,
    DIRECTORY,
    FIFO,
    HARDLINK,
    REGULAR,
    SYMLINK,
    Member,
    MemberData,
    PaxReader,
    TarFormatError,
    member_from_tarinfo,
)
from localbackup.readahead import DecompressAhead
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

log = get_logger(__name__)

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_SKIP = (errno.ENOTSUP, errno.EPERM, errno.EACCES, errno.E2BIG, errno.ERANGE, errno.ENOSPC)
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


def _umask() -> int:
    """This process's umask (-1 if unknown: then every file's mode is set after creation).
    Read, not set: os.umask would change it for every thread for a moment."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return -1


def _write_all(fd: int, data: bytes) -> None:
    n = os.write(fd, data)
    if n < len(data):  # a short write (a signal, a full disk): write the rest
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view) :]


class _TarData:
    """A :mod:`tarfile` member's data as :class:`MemberData` (the legacy tars)."""

    def __init__(self, tf: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self._src: Any = tf.fileobj
        self._at = info.offset_data
        sparse: list[tuple[int, int]] | None = info.sparse  # type: ignore[assignment]
        self._left = sum(length for _, length in sparse) if sparse else info.size

    def read_data(self, n: int) -> bytes:
        if self._at >= 0:
            self._src.seek(self._at)
            self._at = -1
        n = min(n, self._left)
        chunk: bytes = self._src.read(n) if n > 0 else b""
        self._left -= len(chunk)
        return chunk


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
        self._ids = (os.geteuid(), os.getegid())  # what a new file gets (else finish fixes it)
        self._umask = _umask()
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
        source: Any = stream if self.options.progress is None else _Counted(stream, self._counted)
        try:
            with DecompressAhead(source) as plain:
                reader = PaxReader(plain)
                for m in reader:
                    self._member(m, reader)
                    if self._read - self._reported >= _REPORT_EVERY:
                        self._report()
        except (TarFormatError, zstandard.ZstdError, EOFError) as exc:
            raise IntegrityError(f"{label}: not a valid increment: {exc}") from None

    def _counted(self, n: int) -> None:
        # on the decompression thread: only counted here, reported by the applying thread
        self._read += n

    def _report(self) -> None:
        if self.options.progress is not None:
            self._reported = self._read
            self.options.progress(self._files_written, self._read)

    def apply_tar(self, tf: tarfile.TarFile) -> None:
        """Apply every member of ``tf``, an open tar of any compression (a stream, ``r|``, is
        enough; open it with ``encoding="utf-8", errors="surrogateescape"``). A damaged archive
        raises the ``tarfile`` or decompressor error as it is: the caller knows the format."""
        # tarfile keeps every member it read, also in stream mode: let go of each one
        read: list[tarfile.TarInfo] = tf.members  # type: ignore[attr-defined]
        for info in tf:
            self._member(member_from_tarinfo(info), _TarData(tf, info))
            read.clear()

    def _member(self, m: Member, data: MemberData) -> None:
        name = m.name
        parts = member_parts(name)
        if not parts:
            if m.type == DIRECTORY:
                return  # "./": the target directory itself
            raise UnsafeMemberError(name, "it names the target directory itself")
        if self.select and not self.select(b"/".join(parts), m.type == DIRECTORY):
            return
        kind = m.type
        if kind == REGULAR:
            self._file(m, name, parts, data)
        elif kind == DIRECTORY:
            if not self.tree.clear(name, parts, keep_dir=True):
                os.mkdir(self.tree.path(parts), PRIVATE_DIR_MODE)
                self.tree.known.add(b"/".join(parts))
            self._directory(m, parts)
        elif kind == SYMLINK:
            self.tree.clear(name, parts)
            full = self.tree.path(parts)
            os.symlink(m.linkname, full)
            if self.owners:
                os.chown(full, m.uid, m.gid, follow_symlinks=False)
            os.utime(full, ns=(m.mtime_ns, m.mtime_ns), follow_symlinks=False)
        elif kind == HARDLINK:
            self._hardlink(m, name, parts)
        elif not self._special(m, name, parts):
            return
        self.stats.members += 1
        testpoints.pause("restore.extracting")

    # Hooks for archive formats with other rules
    # (uploader.restore.legacy: the original tool's tars).
    def _directory(self, m: Member, parts: tuple[bytes, ...]) -> None:
        """A directory member, once it exists: its owner, mode and mtime come from the index,
        in :meth:`finish`; only its extended attributes are set here."""
        if m.xattrs:
            self._xattrs(self.tree.path(parts), m)

    def _special(self, m: Member, name: bytes, parts: tuple[bytes, ...]) -> bool:
        """Any other member type: a device node or FIFO is made (if allowed), anything else
        refused. Returns whether the member counts as written."""
        if m.type not in (CHARDEV, BLOCKDEV, FIFO):
            raise UnsafeMemberError(
                name, f"unsupported member type {m.type.decode(errors='replace')!r}"
            )
        self._device(m, name, parts)
        return True

    def _file(self, m: Member, name: bytes, parts: tuple[bytes, ...], data: MemberData) -> None:
        # Created with its final permissions when the umask lets them through (the work
        # directory is private until the restore is complete): one fchmod less a file. Set-id
        # and sticky bits only after the owner is set (chown clears them).
        mode = m.mode & 0o777
        if m.mode & 0o7000 or mode & self._umask or self._umask < 0:
            mode = PRIVATE_FILE_MODE
        fd = self.tree.create(name, parts, _CREATE, mode)
        try:
            if m.sparse is None:
                left = m.size
                while left:
                    chunk = data.read_data(min(left, CHUNK_SIZE))
                    if not chunk:
                        raise ExtractError(f"increment ends inside the member {show_member(name)}")
                    _write_all(fd, chunk)
                    left -= len(chunk)
                    if self._read - self._reported >= _REPORT_EVERY:
                        self._report()  # inside a large file too
            else:
                self._sparse_file(fd, m, name, data)
            self._metadata(fd, m)
        finally:
            os.close(fd)
        self._files_written += 1

    def _sparse_file(self, fd: int, m: Member, name: bytes, data: MemberData) -> None:
        for offset, length in m.sparse or ():
            if offset + length > m.size:
                raise ExtractError(f"{show_member(name)}: sparse map goes beyond the file size")
            pos, left = offset, length
            while left:
                chunk = data.read_data(min(left, CHUNK_SIZE))
                if not chunk:
                    raise ExtractError(f"increment ends inside the member {show_member(name)}")
                view = memoryview(chunk)
                while view:
                    n = os.pwrite(fd, view, pos)
                    view, pos = view[n:], pos + n
                left -= len(chunk)
        os.ftruncate(fd, m.size)  # a trailing hole

    def _hardlink(self, m: Member, name: bytes, parts: tuple[bytes, ...]) -> None:
        target = m.linkname
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

    def _device(self, m: Member, name: bytes, parts: tuple[bytes, ...]) -> None:
        if not self.options.allow_devices:
            what = "FIFO" if m.type == FIFO else "device node"
            raise UnsafeMemberError(name, f"it is a {what} (restore with --allow-devices)")
        self.tree.clear(name, parts)
        full = self.tree.path(parts)
        try:
            if m.type == FIFO:
                os.mkfifo(full, PRIVATE_FILE_MODE)
            else:
                node = stat.S_IFCHR if m.type == CHARDEV else stat.S_IFBLK
                os.mknod(full, PRIVATE_FILE_MODE | node, os.makedev(m.devmajor, m.devminor))
        except PermissionError as exc:
            self.warn(f"{show_member(name)}: cannot create the device node: {exc.strerror}")
            return
        if self.owners:
            os.chown(full, m.uid, m.gid, follow_symlinks=False)
        os.chmod(full, stat.S_IMODE(m.mode))
        os.utime(full, ns=(m.mtime_ns, m.mtime_ns), follow_symlinks=False)

    def _metadata(self, fd: int, m: Member) -> None:
        if self.owners and (m.uid, m.gid) != self._ids:
            os.fchown(fd, m.uid, m.gid)  # before chmod: chown clears set-id bits
        if m.mode & 0o7777 != m.mode & 0o777 or m.mode & self._umask or self._umask < 0:
            os.fchmod(fd, stat.S_IMODE(m.mode))
        if m.xattrs:
            self._xattrs(fd, m)
        os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))

    def _xattrs(self, target: int | bytes, m: Member) -> None:
        for attr, value in m.xattrs or ():
            if not (attr.startswith("user.") or self.owners):
                continue
            try:
                os.setxattr(target, attr, value)
            except OSError as exc:
                if exc.errno not in _XATTR_SKIP:
                    raise
                self._xattr_failures += 1
                if self._xattr_failures == 1:
                    self.warn(
                        f"{show_member(m.name)}: extended attribute {attr} not restored: "
                        f"{exc.strerror}"
                    )

    # -- the end -----------------------------------------------------------------------------
    def finish(self, index: IndexRecords) -> ExtractStats:
        """Remove what ``index`` does not list and set the index's metadata on the rest
        (:mod:`localbackup.finish`: streamed, directories deepest first); count the restored
        tree. Raises :class:`~localbackup.pathmatch.NoPathMatch` if a ``--path`` pattern
        selects nothing at this point in time (the caller's staged target is then discarded)."""
        self.tree.close()
        if self.select and self.select.unmatched_in(index.iter_records()):
            self.select.require(dict(index.iter_records()))  # raises, with near matches
        if self._xattr_failures > 1:
            self.warn(f"extended attributes could not be restored on {self._xattr_failures} paths")
        counts = finish_tree(self.tree.root, index, owners=self.owners)
        self.stats.deleted += counts.deleted
        self.stats.files += counts.files
        self.stats.bytes += counts.bytes
        self.stats.dirs += counts.dirs
        self.stats.symlinks += counts.symlinks
        return self.stats
