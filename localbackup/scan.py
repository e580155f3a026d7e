"""Walk the backup sources and yield every entry with its lstat metadata.

Paths are bytes end to end (no decoding cost, non-UTF-8 names survive). The walk is
depth-first, parents before children, names sorted within a directory, so archive order is
deterministic. Sockets and FIFOs are skipped and counted; excluded paths are counted and
excluded directories are not descended into.
"""

from __future__ import annotations

import operator
import os
import stat
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from localbackup.exclude import ExcludeMatcher

__all__ = [
    "CACHEDIR_SIGNATURE",
    "FILE_TYPE_BITS",
    "ScanEntry",
    "ScanStats",
    "SkipReason",
    "WarningKind",
    "display_path",
    "normalize_sources",
    "scan",
]

CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
#: The file-type bits of ``st_mode``: ``mode & FILE_TYPE_BITS == stat.S_IFMT(mode)``, as one
#: bit operation for the loops that run once per file.
FILE_TYPE_BITS = 0o170000

#: One scanned entry: (absolute path, lstat result). A tuple because it is made per file.
ScanEntry = tuple[bytes, os.stat_result]
#: Why a path was not backed up, or not as it is now: a warning's kind. (``skipped_special``
#: and ``changed_while_reading`` come from the archiver, the others from the scan as well.)
WarningKind = Literal[
    "unreadable", "vanished", "changed_while_reading", "missing_source", "skipped_special"
]
#: What was left out, counted (``excluded``: a pattern, ``cachedir``: a directory with a
#: CACHEDIR.TAG, ``special``: an unsupported file type, ``unreadable``: a path that could not
#: be read, with a warning too).
SkipReason = Literal["socket", "fifo", "excluded", "cachedir", "special", "unreadable"]

_SKIPPED_KINDS: dict[int, SkipReason] = {stat.S_IFSOCK: "socket", stat.S_IFIFO: "fifo"}
_S_IFDIR, _S_IFREG = stat.S_IFDIR, stat.S_IFREG
_CACHEDIR_TAG = b"CACHEDIR.TAG"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def display_path(path: bytes) -> str:
    """Printable form of a byte path: undecodable bytes shown as backslash escapes."""
    return path.decode("utf-8", "backslashreplace")


@dataclass(slots=True)
class ScanStats:
    """Mutable tallies a scan fills in while it runs."""

    skipped: Counter[SkipReason] = field(default_factory=Counter)
    warnings: list[tuple[bytes, WarningKind, str]] = field(default_factory=list)
    #: directories that exist but could not be listed (their old contents are carried over)
    unreadable_dirs: list[bytes] = field(default_factory=list)
    #: source roots that were gone or unreadable (their old entries are carried over)
    missing_sources: list[bytes] = field(default_factory=list)

    def warn(self, path: bytes, kind: WarningKind, message: str) -> None:
        """Note a path that could not be backed up as it is."""
        self.warnings.append((path, kind, message))


def _is_cachedir_tag(path: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(CACHEDIR_SIGNATURE)) == CACHEDIR_SIGNATURE
    except OSError:
        return False


def normalize_sources(sources: tuple[Path, ...]) -> list[bytes]:
    """Absolute byte paths in the given order; duplicates and sources nested in another
    source are dropped (they are archived once, under the outer source)."""
    paths = [os.path.normpath(os.fsencode(s)) for s in sources]
    outer = [p.rstrip(b"/") + b"/" for p in paths]
    kept: list[bytes] = []
    for p in paths:
        if p not in kept and not any(p != o and p.startswith(o) for o in outer):
            kept.append(p)
    return kept


def _classify(entry: ScanEntry, matcher: ExcludeMatcher | None, stats: ScanStats) -> int:
    """0: archive it, 1: a directory to descend into, -1: skip it (counted)."""
    path, st = entry
    is_dir = stat.S_ISDIR(st.st_mode)
    if matcher is not None and matcher.matches(path, is_dir):
        stats.skipped["excluded"] += 1
        return -1
    if is_dir:
        return 1
    kind = _SKIPPED_KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is not None:
        stats.skipped[kind] += 1
        return -1
    return 0


_by_name = operator.attrgetter("name")


def _list_dir(
    dpath: bytes, stats: ScanStats, exclude_caches: bool
) -> list[os.DirEntry[bytes]] | None:
    """Sorted children; [] with a warning if unreadable; None if the directory vanished (with
    a warning) or holds a valid CACHEDIR.TAG (counted)."""
    try:
        with os.scandir(dpath) as it:
            children = sorted(it, key=_by_name)
    except FileNotFoundError:
        stats.warn(dpath, "vanished", "directory vanished during the scan")
        return None
    except OSError as e:
        stats.warn(dpath, "unreadable", f"cannot list directory: {e.strerror}")
        stats.unreadable_dirs.append(dpath)
        return []
    if exclude_caches:
        i = bisect_left(children, _CACHEDIR_TAG, key=_by_name)  # sorted: no loop over names
        if (
            i < len(children)
            and children[i].name == _CACHEDIR_TAG
            and _is_cachedir_tag(os.path.join(dpath, _CACHEDIR_TAG))
        ):
            stats.skipped["cachedir"] += 1
            return None
    return children


def _open_dir(dpath: bytes) -> int | None:
    """A descriptor to stat the children relative to (the kernel then looks up one name, not
    the whole path: about 10 % of a scan); None if that fails (just listed, gone now?)."""
    try:
        return os.open(dpath, _DIR_FLAGS)
    except OSError:
        return None


def _close_dir(dir_fd: int | None) -> None:
    if dir_fd is not None:
        os.close(dir_fd)


def _walk(
    root: ScanEntry,
    matcher: ExcludeMatcher | None,
    stats: ScanStats,
    one_file_system: bool,
    exclude_caches: bool,
) -> Iterator[ScanEntry]:
    root_dev = root[1].st_dev
    lstat = os.lstat
    # Explicit stack of directories still to list: no recursion limit on deep trees.
    stack: list[ScanEntry] = [root]
    while stack:
        dpath, dst = stack.pop()
        if one_file_system and dst.st_dev != root_dev:
            yield dpath, dst  # the mount point itself, empty, like rsync -x
            continue
        children = _list_dir(dpath, stats, exclude_caches)
        if children is None:
            continue
        yield dpath, dst
        subdirs: list[ScanEntry] = []
        dir_fd = _open_dir(dpath) if children else None
        try:
            for child in children:
                try:
                    st = lstat(child.name if dir_fd is not None else child.path, dir_fd=dir_fd)
                except FileNotFoundError:
                    stats.warn(child.path, "vanished", "vanished during the scan")
                    continue
                except OSError as e:
                    stats.warn(child.path, "unreadable", f"cannot stat: {e.strerror}")
                    stats.skipped["unreadable"] += 1
                    continue
                # _classify inlined, stat tests as bit operations: this runs once per file
                fmt = st.st_mode & FILE_TYPE_BITS
                if matcher is not None and matcher.matches(child.path, fmt == _S_IFDIR):
                    stats.skipped["excluded"] += 1
                elif fmt == _S_IFREG:
                    yield child.path, st
                elif fmt == _S_IFDIR:
                    subdirs.append((child.path, st))
                elif (kind := _SKIPPED_KINDS.get(fmt)) is None:
                    yield child.path, st
                else:
                    stats.skipped[kind] += 1
        finally:
            _close_dir(dir_fd)
        # Files of a directory come before its subdirectories, which are popped in name order.
        stack.extend(reversed(subdirs))


def scan(
    sources: tuple[Path, ...],
    matcher: ExcludeMatcher,
    stats: ScanStats,
    *,
    one_file_system: bool = False,
    exclude_caches: bool = True,
    skip: frozenset[bytes] = frozenset(),
) -> Iterator[ScanEntry]:
    """Yield ``(path, lstat)`` for each source and, for directories, everything below it;
    the sources in ``skip`` (normalised absolute paths) are left out."""
    active = matcher if matcher else None
    for src in normalize_sources(sources):
        if src in skip:
            continue
        try:
            entry = (src, os.lstat(src))
        except FileNotFoundError:
            stats.warn(src, "missing_source", "source does not exist")
            stats.missing_sources.append(src)
            continue
        except OSError as e:
            stats.warn(src, "unreadable", f"cannot stat source: {e.strerror}")
            stats.missing_sources.append(src)
            continue
        verdict = _classify(entry, active, stats)
        if verdict == 0:
            yield entry
        elif verdict == 1:
            yield from _walk(entry, active, stats, one_file_system, exclude_caches)
