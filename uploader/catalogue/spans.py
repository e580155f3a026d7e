"""Version spans: a cycle's increment indexes as "this path had this version in increments a..b".

``files PATTERN`` shows, for each path, every version a cycle holds and where it was deleted.
Stored per increment that is one row per path per increment (8 per file per cycle, most of
them repeating the previous one); stored as spans it is one row per version. This module turns
a cycle's indexes (streams of ``(path, record)`` in archive order, increment 0 first) into
:class:`Opened` and :class:`Closed` events, with memory bounded by a few entries:

- increment 0 opens a span for every path;
- increment k compared with k-1, entry by entry in step: an equal version continues its span, a
  new version closes the old span at k-1 and opens one at k, a path gone closes its span at
  k-1 (the catalogue shows it deleted in k), a new path opens one.

Both indexes list their paths in archive order (docs/formats.md ``## Increment``: sources in the
configured order, then depth first, within a directory the files before the subdirectories,
names sorted bytewise), so two differing heads are ordered by :class:`ArchiveOrder` and the
earlier one is the odd one out. Indexes not in that order (sources reordered within a cycle)
are detected (:class:`OutOfOrder`) and the caller falls back to :func:`spans_by_dict`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from localbackup.index import TYPE_CODE, EntryType, Record

__all__ = [
    "ArchiveOrder",
    "Closed",
    "Opened",
    "Opener",
    "OutOfOrder",
    "Version",
    "span_events",
    "spans_by_dict",
]

_DIR = TYPE_CODE[EntryType.DIR]

#: What makes a new version of a path: (type code, size, mtime_ns)
Version = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Opened:
    """``path`` has ``version`` from increment ``first`` (until a :class:`Closed`, or the end)."""

    path: bytes
    first: int
    version: Version


@dataclass(frozen=True, slots=True)
class Closed:
    """The open span of ``path`` ends at increment ``last``."""

    path: bytes
    last: int


class OutOfOrder(Exception):
    """An index does not list its paths in archive order."""


def _version(rec: Record) -> Version:
    return (rec[9], rec[3], rec[4])


class ArchiveOrder:
    """The order of archive paths: source roots in the order they were first seen, then depth
    first with a directory's files before its subdirectories, names bytewise."""

    def __init__(self) -> None:
        self._roots: list[bytes] = []  # longest first, for the lookup
        self._rank: dict[bytes, int] = {}
        self._dirs: set[bytes] = set()  # directories seen: a path whose parent is not one is a root

    def see(self, path: bytes, rec: Record) -> None:
        """Learn from one entry of a stream (roots and directories)."""
        if rec[9] == _DIR:
            self._dirs.add(path)
        parent = path.rpartition(b"/")[0]
        if parent not in self._dirs and path not in self._rank and self._root_of(path) is None:
            self._rank[path] = len(self._rank)
            self._roots = sorted(self._rank, key=len, reverse=True)

    def _root_of(self, path: bytes) -> bytes | None:
        for r in self._roots:
            if path == r or (path.startswith(r) and path[len(r) : len(r) + 1] == b"/"):
                return r
        return None

    def key(self, path: bytes, is_dir: bool) -> tuple[int, tuple[tuple[int, bytes], ...]]:
        """A sort key: (root rank, each component below the root as (is a directory, name))."""
        root = self._root_of(path)
        if root is None:
            return (len(self._rank), ((0, path),))
        below = path[len(root) + 1 :].split(b"/") if path != root else []
        last = len(below) - 1
        return (
            self._rank[root],
            tuple((1 if i < last or is_dir else 0, name) for i, name in enumerate(below)),
        )


class _Stream:
    """One index's entries with a one-entry look-ahead, checked to be in archive order."""

    def __init__(self, records: Iterable[tuple[bytes, Record]], order: ArchiveOrder) -> None:
        self._it = iter(records)
        self._order = order
        self.path: bytes | None = None
        self.rec: Record | None = None
        self.advance()

    def advance(self) -> None:
        item = next(self._it, None)
        if item is None:
            self.path = self.rec = None
            return
        self.path, self.rec = item
        self._order.see(self.path, self.rec)

    def key(self) -> tuple[int, tuple[tuple[int, bytes], ...]]:
        assert self.path is not None and self.rec is not None
        return self._order.key(self.path, self.rec[9] == _DIR)


#: Each increment's index as a fresh stream of (path, record) when called (read up to twice).
Opener = Callable[[], Iterable[tuple[bytes, Record]]]


def span_events(increments: Sequence[Opener]) -> Iterator[Opened | Closed]:
    """The version spans of one cycle's indexes (see the module); :class:`OutOfOrder` if an
    index is not in archive order (events already yielded must then be discarded)."""
    order = ArchiveOrder()
    if not increments:
        return
    for path, rec in increments[0]():
        order.see(path, rec)
        yield Opened(path, 0, _version(rec))
    for k in range(1, len(increments)):
        prev = _Stream(increments[k - 1](), order)
        cur = _Stream(increments[k](), order)
        yield from _diff(prev, cur, k)


def _diff(prev: _Stream, cur: _Stream, k: int) -> Iterator[Opened | Closed]:
    last_key: tuple[int, tuple[tuple[int, bytes], ...]] | None = None
    while prev.path is not None or cur.path is not None:
        if prev.path is not None and prev.path == cur.path:
            assert prev.rec is not None and cur.rec is not None
            if _version(prev.rec) != _version(cur.rec):
                yield Closed(prev.path, k - 1)
                yield Opened(cur.path, k, _version(cur.rec))
            prev.advance()
            cur.advance()
            last_key = None
            continue
        if cur.path is None or (prev.path is not None and prev.key() < cur.key()):
            assert prev.path is not None
            step = prev.key()
            yield Closed(prev.path, k - 1)  # gone in k
            prev.advance()
        else:
            assert cur.rec is not None
            step = cur.key()
            yield Opened(cur.path, k, _version(cur.rec))  # new in k
            cur.advance()
        if last_key is not None and step < last_key:
            raise OutOfOrder(f"increment {k}: paths are not in archive order")
        last_key = step


def spans_by_dict(increments: Sequence[Opener]) -> Iterator[Opened | Closed]:
    """The same events as :func:`span_events` for indexes in any order: the previous
    increment's versions are held in a dictionary (memory grows with the paths)."""
    previous: dict[bytes, Version] = {}
    for k, open_records in enumerate(increments):
        current: dict[bytes, Version] = {}
        for path, rec in open_records():
            version = _version(rec)
            current[path] = version
            old = previous.pop(path, None)
            if old == version:
                continue
            if old is not None:
                yield Closed(path, k - 1)
            yield Opened(path, k, version)
        for gone in previous:
            yield Closed(gone, k - 1)
        previous = current
