"""The end of a restore: the tree made to match the target increment's index, in one pass.

After every increment of the chain is applied, the work directory holds every path any of them
wrote. The index of the target increment is the truth for that point in time: what it does not
list is removed (deletions, the old names of renames), and what it lists gets the index's owner,
mode and mtime (with content-hash change detection a file only touched keeps its older member).

The index is read as a stream (:class:`localbackup.indexstream.StreamedIndex`) in archive
order, which is a depth-first walk: every directory before its contents, and a directory's
subtree contiguous. So each directory is finished when the stream leaves it: its entries are
listed once (``scandir`` on a descriptor of the directory), compared with the index entries
collected for it, removed or given their metadata where they differ, and then the directory
gets its own metadata (deepest first, as the walk closes them). Only the directories being
walked and their children's records are in memory, not the index. Every directory is opened
relative to its parent's descriptor with ``O_NOFOLLOW``: a symlink is never followed, whatever
the archive put where.

Directories above the sources (``home`` of ``home/u/Docs``) are not in the index: they are kept,
with mode 0755, finished at the very end. An index whose directories are not contiguous (not
written by this program's scan) is checked for first, and finished from a dictionary of all
its records instead (memory grows with it, the result is the same).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from localbackup.index import TYPE_CODE, EntryType, Record

__all__ = ["FinishCounts", "IndexRecords", "finish_tree"]

_DIR = TYPE_CODE[EntryType.DIR]
_FILES = frozenset({TYPE_CODE[EntryType.FILE], TYPE_CODE[EntryType.HARDLINK]})
_SYMLINK = TYPE_CODE[EntryType.SYMLINK]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_A_DIR_HERE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
_DEFAULT_DIR_MODE = 0o755  # directories above the backed-up roots (not in the archive)
_ABOVE = (-1, -1, -1, 0, 0, 0, 0, 0, 0, _DIR)  # the "record" of a directory above the roots


class IndexRecords(Protocol):
    """An index as a stream of (path, record) in archive order, readable more than once."""

    def iter_records(self) -> Iterator[tuple[bytes, Record]]:
        """Every (path, record), in archive order."""
        ...


@dataclass(slots=True)
class FinishCounts:
    """The restored tree as finished: what it holds, and how many paths were removed."""

    deleted: int = 0  # written by an increment, not listed by the index: removed
    files: int = 0  # regular files (hardlinks count as files)
    bytes: int = 0  # their content size
    dirs: int = 0
    symlinks: int = 0


class _Dir:
    """A directory being walked: its descriptor (None: absent or not a real directory here),
    its own record, and the records of the children the index lists in it."""

    __slots__ = ("children", "fd", "rec", "rel")

    def __init__(self, rel: bytes, rec: Record, fd: int | None) -> None:
        self.rel = rel
        self.rec = rec
        self.fd = fd
        self.children: dict[bytes, Record] = {}


class _Finisher:
    def __init__(self, root: bytes, owners: bool) -> None:
        self.root = root
        self.owners = owners
        self.counts = FinishCounts()

    # -- the walk ----------------------------------------------------------------------------
    def run(self, records: Iterator[tuple[bytes, Record]]) -> None:
        top = _Dir(b"", _ABOVE, os.open(self.root, _DIR_FLAGS))
        stack = [top]
        above: dict[bytes, _Dir] = {}  # directories above the sources, finished last
        try:
            for path, rec in records:
                parent, _, name = path.rpartition(b"/")
                while parent != top.rel and not parent.startswith(top.rel + b"/") and top.rel:
                    self._leave(stack.pop(), above)
                    top = stack[-1]
                while parent != top.rel:  # a directory above the sources
                    nxt = parent[: _next_slash(parent, len(top.rel) + 1 if top.rel else 0)]
                    top.children[nxt.rpartition(b"/")[2]] = _ABOVE
                    known = above.get(nxt)
                    top = known if known is not None else self._enter(top, nxt, _ABOVE)
                    above[nxt] = top
                    stack.append(top)
                top.children[name] = rec
                if rec[9] == _DIR:
                    top = self._enter(top, path, rec)
                    stack.append(top)
            while len(stack) > 1:
                self._leave(stack.pop(), above)
            for rel in sorted(above, key=lambda r: r.count(b"/"), reverse=True):
                self._settle(above[rel])
            self._settle(stack[0])
        finally:
            for d in (*stack, *above.values()):
                if d.fd is not None:
                    os.close(d.fd)
                    d.fd = None

    def _enter(self, parent: _Dir, rel: bytes, rec: Record) -> _Dir:
        fd = None
        if parent.fd is not None:
            try:
                fd = os.open(rel.rpartition(b"/")[2], _DIR_FLAGS, dir_fd=parent.fd)
            except OSError as exc:
                if exc.errno not in _NOT_A_DIR_HERE:
                    raise
                # not restored (--path), or not a real directory: its parent removes it
        return _Dir(rel, rec, fd)

    def _leave(self, d: _Dir, above: dict[bytes, _Dir]) -> None:
        if d.rec is _ABOVE:
            return  # more sources may come below it: finished at the end
        try:
            self._settle(d)
        finally:
            if d.fd is not None:
                os.close(d.fd)
                d.fd = None

    # -- one directory -----------------------------------------------------------------------
    def _settle(self, d: _Dir) -> None:
        """Remove what ``d``'s index entries do not list, set their metadata, then ``d``'s."""
        fd = d.fd
        if fd is None:
            return
        children = d.children
        with os.scandir(fd) as it:
            entries = list(it)
        for e in entries:
            rec = children.get(os.fsencode(e.name))
            is_dir = e.is_dir(follow_symlinks=False)
            if rec is None or (rec[9] == _DIR) != is_dir:
                self._remove(fd, e.name, is_dir)
            elif not is_dir:
                self._set(fd, e.name, rec, e.stat(follow_symlinks=False), e.is_symlink())
                self._count(rec)
        if not d.rel:
            return  # the target itself: staging gives it its mode
        if d.rec is _ABOVE:
            os.chmod(fd, _DEFAULT_DIR_MODE)
        else:
            self._set(fd, None, d.rec, os.stat(fd), False)
            self.counts.dirs += 1

    def _count(self, rec: Record) -> None:
        if rec[9] in _FILES:
            self.counts.files += 1
            self.counts.bytes += rec[3]
        elif rec[9] == _SYMLINK:
            self.counts.symlinks += 1

    def _remove(self, fd: int, name: str, is_dir: bool) -> None:
        if is_dir:
            shutil.rmtree(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)
        self.counts.deleted += 1

    def _set(
        self, fd: int, name: str | None, rec: Record, st: os.stat_result, symlink: bool
    ) -> None:
        """Owner (before the mode: chown clears set-id bits), mode and mtime of ``rec`` where
        they differ; a symlink's own owner and mtime, never its target's (it has no mode)."""
        # the directory itself by its descriptor; an entry by name relative to it, never followed
        target: int | str = fd if name is None else name
        at = None if name is None else fd
        follow = name is None
        chowned = False
        if self.owners and (st.st_uid, st.st_gid) != (rec[1], rec[2]):
            os.chown(target, rec[1], rec[2], dir_fd=at, follow_symlinks=follow)
            chowned = True
        if not symlink and (chowned or stat.S_IMODE(st.st_mode) != stat.S_IMODE(rec[0])):
            os.chmod(target, stat.S_IMODE(rec[0]), dir_fd=at)
        if st.st_mtime_ns != rec[4]:
            os.utime(target, ns=(rec[4], rec[4]), dir_fd=at, follow_symlinks=follow)


def _next_slash(path: bytes, start: int) -> int | None:
    cut = path.find(b"/", start)
    return None if cut < 0 else cut


def contiguous(records: Iterator[tuple[bytes, Record]]) -> bool:
    """Whether every directory's subtree is contiguous in ``records`` (archive order)."""
    open_dirs: list[bytes] = []
    closed: set[bytes] = set()
    for path, rec in records:
        parent = path.rpartition(b"/")[0]
        while open_dirs and parent != open_dirs[-1] and not parent.startswith(open_dirs[-1] + b"/"):
            closed.add(open_dirs.pop())
        if parent in closed or path in closed:
            return False
        if rec[9] == _DIR:
            open_dirs.append(path)
    return True


def finish_tree(root: bytes, index: IndexRecords, *, owners: bool) -> FinishCounts:
    """Make the restored tree at ``root`` match ``index`` (see the module); returns what it
    holds and how many paths were removed."""
    if not contiguous(index.iter_records()):
        return _finish_from_dict(root, dict(index.iter_records()), owners=owners)
    f = _Finisher(root, owners)
    f.run(index.iter_records())
    return f.counts


class _DictRecords:
    def __init__(self, records: dict[bytes, Record]) -> None:
        self.records = records

    def iter_records(self) -> Iterator[tuple[bytes, Record]]:
        # sorted so that every directory's subtree is contiguous: a depth-first order
        return iter(sorted(self.records.items(), key=lambda item: item[0].split(b"/")))


def _finish_from_dict(root: bytes, records: dict[bytes, Record], *, owners: bool) -> FinishCounts:
    f = _Finisher(root, owners)
    f.run(_DictRecords(records).iter_records())
    return f.counts
