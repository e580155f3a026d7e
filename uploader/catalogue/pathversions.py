"""Backed-up paths and their versions, indexed for search: what ``files PATTERN`` reads.

Three tables (added by a schema migration): ``version_cycles`` (a small id per host and cycle),
``paths`` (every path once, with its last component, both indexed) and ``path_versions`` (one
row per version span: a path, a cycle, the first and last increment holding that version, its
type, size and mtime; see :mod:`.spans`). An unchanged file is one row per cycle, not one per
increment; docs/formats.md (``## Catalogue``) gives the bytes per stored file version.

They are filled from a cycle's indexes by :func:`remember_path_versions`, which
:func:`uploader.catalogue.indexes.remember_cycle_indexes` calls (the one entry point), and
backfilled from the stored index copies when the migration runs (:func:`backfill`).

:func:`find_path_versions` answers a search in two steps: a prefilter that SQL can use (a
component's exact name or suffix, or path prefixes: what a compiled pattern says a matching
path must contain) narrows the paths, then the pattern's own predicate decides, first per
path, then per version (a directory-only pattern needs the version's type).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from localbackup.index import TYPE_CODE, EntryType, IndexFormatError, Record
from localbackup.logevents import get_logger
from uploader.catalogue.db import Catalogue
from uploader.catalogue.spans import Closed, Opened, OutOfOrder, span_events, spans_by_dict

__all__ = [
    "PathPrefilter",
    "PathVersion",
    "backfill",
    "find_path_versions",
    "path_roots",
    "remember_path_versions",
    "searchable_cycles",
]

log = get_logger(__name__)

_DIR = TYPE_CODE[EntryType.DIR]
_BATCH = 4096
_IN_CHUNK = 500  # ids per IN (...) list


class PathPrefilter(Protocol):
    """What every path a pattern selects contains (``localbackup.pathmatch.PatternNeeds``
    provides it): ``name``, one component exactly; ``name_suffix``, one component ends with
    it; ``prefixes``, the path starts with one of them. Unset fields say nothing."""

    @property
    def name(self) -> bytes | None:
        """One component of the path is exactly this."""
        ...

    @property
    def name_suffix(self) -> bytes | None:
        """One component of the path ends with this."""
        ...

    @property
    def prefixes(self) -> tuple[bytes, ...]:
        """The path starts with one of these."""
        ...


@dataclass(frozen=True, slots=True)
class PathVersion:
    """One version of a path in one cycle: present with it from increment ``first`` to
    ``last``; ``deleted_in``: the increment where the path was gone next (None: it was still
    there, or changed, at the end of the span)."""

    path: bytes
    host: str
    cycle_id: str
    first: int
    last: int
    type: int
    size: int
    mtime_ns: int
    deleted_in: int | None


# -- filling -------------------------------------------------------------------------------------


def remember_path_versions(
    db: sqlite3.Connection,
    host: str,
    cycle_id: str,
    increments: Sequence[Callable[[], Iterable[tuple[bytes, Record]]]],
) -> None:
    """Store the version spans of one cycle (replacing what was stored for it), inside the
    caller's transaction. ``increments``: each increment's index as a fresh stream, in order.

    An index that cannot be read leaves the cycle out of the tables (with a warning) rather
    than fail what called this (an upload that has succeeded, a migration): ``files`` then
    reads that cycle's stored indexes itself (:func:`searchable_cycles`)."""
    n = len(increments)
    db.execute(
        "INSERT INTO version_cycles (host, cycle_id, increments) VALUES (?, ?, ?)"
        " ON CONFLICT (host, cycle_id) DO UPDATE SET increments = excluded.increments",
        (host, cycle_id, n),
    )
    (cycle,) = db.execute(
        "SELECT id FROM version_cycles WHERE host = ? AND cycle_id = ?", (host, cycle_id)
    ).fetchone()
    try:
        try:
            _store(db, cycle, n, span_events(increments))
        except OutOfOrder:
            _store(db, cycle, n, spans_by_dict(increments))
    except IndexFormatError as exc:
        db.execute("DELETE FROM path_versions WHERE cycle = ?", (cycle,))
        db.execute("DELETE FROM version_cycles WHERE id = ?", (cycle,))
        log.warning(
            "catalogue.path_search_skipped",
            host=host,
            cycle=cycle_id,
            error=str(exc),
            message=f"cycle {cycle_id}: an index cannot be read ({exc}); "
            "'files' reads this cycle's stored indexes instead of the search tables",
        )


def searchable_cycles(catalogue: Catalogue) -> set[str]:
    """The cycles whose versions the search tables hold."""
    return {cid for (cid,) in catalogue.query("SELECT DISTINCT cycle_id FROM version_cycles")}


def _store(db: sqlite3.Connection, cycle: int, n: int, events: Iterator[Opened | Closed]) -> None:
    db.execute("DELETE FROM path_versions WHERE cycle = ?", (cycle,))
    opened: list[Opened] = []

    def flush() -> None:
        db.executemany(
            "INSERT OR IGNORE INTO paths (path, name) VALUES (?, ?)",
            [(o.path, o.path.rpartition(b"/")[2]) for o in opened],
        )
        db.executemany(
            "INSERT INTO path_versions (path, cycle, first, last, type, size, mtime_ns)"
            " SELECT id, ?, ?, ?, ?, ?, ? FROM paths WHERE path = ?",
            [(cycle, o.first, n - 1, *o.version, o.path) for o in opened],
        )
        opened.clear()

    for e in events:
        if isinstance(e, Opened):
            opened.append(e)
            if len(opened) >= _BATCH:
                flush()
            continue
        flush()  # the span it closes may still be in the batch
        db.execute(
            "UPDATE path_versions SET last = ? WHERE cycle = ? AND last = ? AND first <= ?"
            " AND path = (SELECT id FROM paths WHERE path = ?)",  # not a span opened at last + 1
            (e.last, cycle, n - 1, e.last, e.path),
        )
    flush()


def backfill(db: sqlite3.Connection) -> None:
    """Fill the path tables from the index copies already in the catalogue (the migration)."""
    from localbackup.indexstream import StreamedIndex

    cycles = db.execute("SELECT DISTINCT host, cycle_id FROM cycle_indexes").fetchall()
    for host, cycle_id in cycles:
        numbers = [
            number
            for (number,) in db.execute(
                "SELECT number FROM cycle_indexes WHERE host = ? AND cycle_id = ? ORDER BY number",
                (host, cycle_id),
            )
        ]

        def opener(
            number: int, host: str = host, cycle_id: str = cycle_id
        ) -> Callable[[], Iterable[tuple[bytes, Record]]]:
            def open_() -> Iterable[tuple[bytes, Record]]:
                (data,) = db.execute(
                    "SELECT data FROM cycle_indexes WHERE host = ? AND cycle_id = ? AND number = ?",
                    (host, cycle_id, number),
                ).fetchone()
                return StreamedIndex(bytes(data)).iter_records()

            return open_

        remember_path_versions(db, host, cycle_id, [opener(n) for n in numbers])


# -- searching -----------------------------------------------------------------------------------


def _candidates(db: sqlite3.Connection, pre: PathPrefilter | None) -> Iterator[tuple[int, bytes]]:
    """(id, path) of the paths that may match: all of them without a usable prefilter."""
    if pre is not None and pre.prefixes:
        for prefix in pre.prefixes:
            yield from db.execute(
                "SELECT id, path FROM paths WHERE path >= ? AND path < ?",
                (prefix, _after(prefix)),
            )
        return
    if pre is not None and (pre.name is not None or pre.name_suffix is not None):
        if pre.name is not None:
            rows = db.execute("SELECT id, path FROM paths WHERE name = ?", (pre.name,))
        else:
            suffix = pre.name_suffix or b""
            rows = db.execute(
                "SELECT id, path FROM paths WHERE substr(name, -?) = ?", (len(suffix), suffix)
            )
        named = list(rows)
        yield from named
        for _, path in named:  # the component may be a directory: everything below it too
            below = path + b"/"
            yield from db.execute(
                "SELECT id, path FROM paths WHERE path >= ? AND path < ?", (below, _after(below))
            )
        return
    yield from db.execute("SELECT id, path FROM paths")


def _after(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string that starts with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else b"\xff" * (len(prefix) + 1)


def path_roots(catalogue: Catalogue) -> tuple[bytes, ...]:
    """The source roots among every stored path: the paths whose parent is not stored (the
    folders above a source are never archived), as ``localbackup.pathmatch.roots_of`` finds
    them in one index. A root sorts before everything below it, so the sorted path index is
    read root by root, each subtree skipped by one range query: a few queries per source."""
    roots: list[bytes] = []
    with catalogue.reading() as db:
        cursor = b""
        while True:
            row = db.execute(
                "SELECT path FROM paths WHERE path >= ? ORDER BY path LIMIT 1", (cursor,)
            ).fetchone()
            if row is None:
                return tuple(roots)
            path = bytes(row[0])
            under = next((r for r in reversed(roots) if path.startswith(r + b"/")), None)
            if under is not None:  # below a root found already: skip that root's subtree
                cursor = _after(under + b"/")
                continue
            roots.append(path)
            cursor = path + b"\0"


def find_path_versions(
    catalogue: Catalogue,
    prefilter: PathPrefilter | None,
    select: Callable[[bytes, bool], bool],
    cycle_id: str | None = None,
) -> list[PathVersion]:
    """Every stored version of every path ``select(path, is_dir)`` takes, by path then cycle
    and increment; ``prefilter`` narrows the paths first (see the module)."""
    with catalogue.reading() as db:
        return list(_find(db, prefilter, select, cycle_id))


def _find(
    db: sqlite3.Connection,
    prefilter: PathPrefilter | None,
    select: Callable[[bytes, bool], bool],
    cycle_id: str | None,
) -> Iterator[PathVersion]:
    ids: dict[int, bytes] = {}
    for pid, raw in _candidates(db, prefilter):
        path = bytes(raw)
        if pid not in ids and (select(path, False) or select(path, True)):
            ids[pid] = path
    order = sorted(ids, key=ids.__getitem__)
    for start in range(0, len(order), _IN_CHUNK):
        chunk = json.dumps(order[start : start + _IN_CHUNK])
        rows = db.execute(
            "SELECT v.path, c.host, c.cycle_id, v.first, v.last, v.type, v.size, v.mtime_ns,"
            " c.increments FROM path_versions v JOIN version_cycles c ON c.id = v.cycle"
            " WHERE v.path IN (SELECT value FROM json_each(?)) AND (? IS NULL OR c.cycle_id = ?)",
            (chunk, cycle_id, cycle_id),
        ).fetchall()
        rows.sort(key=lambda r: (ids[r[0]], r[2], r[3]))
        for i, (pid, host, cid, first, last, kind, size, mtime_ns, count) in enumerate(rows):
            path = ids[pid]
            if not select(path, kind == _DIR):
                continue
            after = rows[i + 1] if i + 1 < len(rows) else None
            followed = after is not None and after[0] == pid and after[2] == cid
            changed = followed and after is not None and after[3] == last + 1
            gone = last + 1 if last + 1 < count and not changed else None
            yield PathVersion(path, host, cid, first, last, kind, size, mtime_ns, gone)
