"""``files [CYCLE] [PATTERN]``: list or search backed-up paths, with no retrieval.

The indexes come from the spool (cycles still on disk) and from the catalogue (cycles already
uploaded, also once pruned locally, or recovered from the store's metadata objects), of this
host (``[backup] host``, or ``--host NAME``). Without a pattern, the paths of one point in time (the
newest increment of CYCLE, default the latest cycle) are listed. With a pattern, every version
of every path it selects is shown: which cycle and increment hold it, and where it was deleted.
Patterns are those of ``restore --path`` (:mod:`localbackup.pathmatch`): what ``files`` shows
for a pattern is what ``restore --path`` brings back. A pattern that selects nothing is an error
(exit 1) that names the nearest backed-up paths.

Cycles in the catalogue are searched through its path tables (:mod:`uploader.catalogue.
pathversions`: the pattern's prefilter narrows the paths in SQL, then the pattern decides), not
by reading every stored index; only cycles that are in the spool alone (the open one) are read
index by index.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from localbackup import formats
from localbackup.configkit import format_size
from localbackup.index import TYPE_CODE, TYPES, EntryType
from localbackup.pathmatch import NoPathMatch, PathSelection, roots_of, suggest
from localbackup.spool import Spool
from uploader.catalogue import (
    Catalogue,
    StoredIndex,
    find_path_versions,
    path_roots,
    searchable_cycles,
    stored_indexes,
)
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK, USAGE

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

_DIR = TYPE_CODE[EntryType.DIR]


def add_parser(sub: Subparsers) -> None:
    """Register ``files``."""
    p = add_command(
        sub,
        "files",
        summary="list or search backed-up paths (no retrieval needed)",
        description="Without a pattern, list the paths of the latest point in time (of CYCLE). "
        "With one, show every backed-up version of each path it selects: which cycle and "
        "increment hold it, and where it was deleted. Patterns are gitignore-like and read as "
        "'restore --path' reads them: relative to each source root or the source's own name "
        "(docs/*, Documents/docs), a name anywhere (*.txt, report.txt), an absolute path; "
        "docs/ is the folder and everything below it. A pattern that selects nothing is an "
        "error that names the nearest paths.",
        examples=[
            "glacier-backup files",
            "glacier-backup files 'report*.txt'",
            "glacier-backup files latest 'docs/'",
            "glacier-backup files --json '*.pdf'",
        ],
    )
    p.add_argument(
        "words",
        nargs="*",
        metavar="[CYCLE] [PATTERN]",
        help="a cycle id or 'latest', and/or a path pattern",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


@dataclass(slots=True)
class PathHistory:
    """The versions of one path found by ``files PATTERN``, and where it was deleted."""

    path: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    deleted_in: list[dict[str, Any]] = field(default_factory=list)


def display(path: bytes) -> str:
    """``/`` + the path, undecodable bytes shown as ``\\xNN``."""
    return "/" + path.decode("utf-8", "backslashreplace")


def spool_indexes(config: AppConfig) -> dict[str, list[StoredIndex]]:
    """The increment indexes of the cycles in the spool (sealed or open), by cycle."""
    found: dict[str, list[StoredIndex]] = {}
    for c in Spool(config.backup.spool_dir).cycles():
        for m in c.manifests():
            path = c.path / m.index.name
            if path.is_file():
                found.setdefault(c.cycle_id, []).append(
                    StoredIndex(
                        config.backup.host,
                        c.cycle_id,
                        m.number,
                        m.kind,
                        m.finished_at,
                        path.read_bytes(),
                    )
                )
    return found


def catalogued(cat: Catalogue, host: str | None = None) -> dict[str, dict[int, str]]:
    """The cycles (of ``host``, or of every host) whose indexes the catalogue keeps: cycle ->
    increment number -> kind (a catalogue may also hold another host's, recovered with
    ``--host``)."""
    kinds: dict[str, dict[int, str]] = {}
    for cycle_id, number, kind in cat.query(
        "SELECT cycle_id, number, kind FROM cycle_indexes WHERE ? IS NULL OR host = ?"
        " ORDER BY cycle_id, number",
        (host, host),
    ):
        kinds.setdefault(cycle_id, {})[int(number)] = kind
    return kinds


def _stored(cat: Catalogue, cycle_id: str, host: str) -> list[StoredIndex]:
    return [s for s in stored_indexes(cat, cycle_id) if s.host == host]


def search(
    spool: dict[str, list[StoredIndex]],
    cat: Catalogue,
    kinds: dict[str, dict[int, str]],
    pattern: str,
    cycle: str | None = None,
    *,
    host: str | None = None,
) -> Iterator[PathHistory]:
    """The history of every path ``pattern`` selects, cycle by cycle: cycles in the catalogue
    from its path tables, cycles only in the spool (or whose indexes the tables could not
    take) from their indexes."""
    histories: dict[str, PathHistory] = {}
    select = PathSelection([pattern], path_roots(cat))
    for v in find_path_versions(cat, select.patterns[0].needs, select, cycle):
        if host is not None and v.host != host:
            continue
        shown = display(v.path)
        h = histories.setdefault(shown, PathHistory(shown))
        kind = kinds[v.cycle_id].get(v.first, "")
        h.versions.append(_version(v.cycle_id, v.first, kind, v.type, v.size, v.mtime_ns))
        if v.deleted_in is not None:
            h.deleted_in.append({"cycle": v.cycle_id, "increment": v.deleted_in})
    for cycle_id, incs in spool.items():
        if cycle_id not in kinds and (cycle is None or cycle == cycle_id):
            _scan(cycle_id, incs, pattern, histories)
    for cycle_id in sorted(set(kinds) - searchable_cycles(cat)):  # not in the search tables
        if cycle is None or cycle == cycle_id:
            incs = list(stored_indexes(cat, cycle_id))
            _scan(cycle_id, [s for s in incs if host is None or s.host == host], pattern, histories)
    for h in histories.values():
        h.versions.sort(key=lambda v: (v["cycle"], v["increment"]))
        h.deleted_in.sort(key=lambda d: (d["cycle"], d["increment"]))
    yield from (histories[k] for k in sorted(histories))


def _version(  # noqa: PLR0917 (one JSON object's fields, in their order)
    cycle_id: str, number: int, kind: str, type_code: int, size: int, mtime_ns: int
) -> dict[str, Any]:
    return {
        "cycle": cycle_id,
        "increment": number,
        "kind": kind,
        "type": TYPES[type_code].value,
        "size": size,
        "mtime": datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat(),
    }


def _scan(
    cycle_id: str, incs: list[StoredIndex], pattern: str, histories: dict[str, PathHistory]
) -> None:
    """The versions in a cycle's indexes that ``pattern`` selects, read index by index (a
    cycle not in the catalogue: the open one)."""
    previous: set[str] = set()
    last_version: dict[str, tuple[int, int, int]] = {}
    for inc in incs:
        records = inc.load().records
        select = PathSelection([pattern], roots_of(records))
        present: set[str] = set()
        for path, rec in records.items():
            if not select(path, rec[9] == _DIR):
                continue
            shown = display(path)
            present.add(shown)
            version = (rec[9], rec[3], rec[4])
            if last_version.get(shown) == version:
                continue  # the same version listed again by a later increment
            last_version[shown] = version
            h = histories.setdefault(shown, PathHistory(shown))
            h.versions.append(_version(cycle_id, inc.number, inc.kind, rec[9], rec[3], rec[4]))
        for gone in sorted(previous - present):
            histories[gone].deleted_in.append({"cycle": cycle_id, "increment": inc.number})
            last_version.pop(gone, None)
        previous = present


def newest_index(
    cat: Catalogue, spool: dict[str, list[StoredIndex]], cycle_id: str | None, host: str
) -> StoredIndex | None:
    """The last index of ``cycle_id``, from the spool or the catalogue (None: no cycle)."""
    if cycle_id is None:
        return None
    incs = spool.get(cycle_id) or _stored(cat, cycle_id, host)
    return incs[-1] if incs else None


def no_match(newest: StoredIndex | None, pattern: str) -> NoPathMatch:
    """The error for a pattern that selects nothing, with near matches from the newest index."""
    if newest is None:
        return NoPathMatch([pattern])
    records = newest.load().records
    return NoPathMatch([pattern], suggest(pattern, records, roots_of(records)))


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """List the paths of a point in time, or search every increment for a pattern."""
    words = list(args.words)
    cycle = None
    if words and (words[0] == "latest" or formats.CYCLE_ID.match(words[0])):
        cycle = words.pop(0)
    if len(words) > 1:
        print("glacier-backup: files takes at most one CYCLE and one PATTERN", file=sys.stderr)
        return USAGE
    pattern = words[0] if words else None
    with Catalogue.in_state_dir(config.state_dir) as cat:
        spool = spool_indexes(config)
        kinds = catalogued(cat, config.backup.host)
        known = sorted(set(spool) | set(kinds))
        if cycle == "latest":
            cycle = known[-1] if known else None
        if cycle is not None and cycle not in known:
            print(
                f"glacier-backup: no indexes of cycle {cycle!r} (known: "
                f"{', '.join(known) or 'none'})",
                file=sys.stderr,
            )
            return USAGE
        if pattern is None:
            return _list_point_in_time(
                cat, spool, cycle or (known[-1] if known else None), args.json, config.backup.host
            )
        histories = list(search(spool, cat, kinds, pattern, cycle, host=config.backup.host))
        if not histories:
            point = cycle or (known[-1] if known else None)
            newest = newest_index(cat, spool, point, config.backup.host)
            print(f"glacier-backup: {no_match(newest, pattern)}", file=sys.stderr)
            return FAILURE
    if args.json:
        print(
            json.dumps(
                [
                    {"path": h.path, "versions": h.versions, "deleted_in": h.deleted_in}
                    for h in histories
                ],
                indent=2,
            )
        )
        return OK
    for h in histories:
        print(h.path)
        for v in h.versions:
            size = format_size(v["size"]) if v["type"] == "file" else v["type"]
            print(f"  {v['cycle']} #{v['increment']:<3} {size:>10}  {v['mtime'][:19]}")
        for d in h.deleted_in:
            print(f"  {d['cycle']} #{d['increment']:<3} {'deleted':>10}")
    return OK


def _list_point_in_time(
    cat: Catalogue,
    spool: dict[str, list[StoredIndex]],
    cycle_id: str | None,
    as_json: bool,
    host: str,
) -> int:
    if cycle_id is None:
        print("no backups yet", file=sys.stderr)
        return OK
    incs = spool.get(cycle_id) or _stored(cat, cycle_id, host)
    inc = incs[-1]
    rows: list[dict[str, Any]] = [
        {
            "path": display(e.path),
            "type": e.type,
            "size": e.size,
            "mtime": datetime.fromtimestamp(e.mtime_ns / 1e9, UTC).isoformat(),
        }
        for e in inc.load().entries()
    ]
    if as_json:
        print(json.dumps({"cycle": cycle_id, "increment": inc.number, "entries": rows}, indent=2))
        return OK
    print(f"cycle {cycle_id}, increment {inc.number} ({inc.kind}): {len(rows)} entries")
    for r in rows:
        size = format_size(r["size"]) if r["type"] == "file" else r["type"]
        print(f"{size:>10}  {r['mtime'][:19]}  {r['path']}")
    return OK
