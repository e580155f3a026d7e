"""``files [CYCLE] [PATTERN]``: list or search backed-up paths, with no retrieval.

The indexes come from the spool (cycles still on disk) and from the catalogue's hot copies
(cycles already uploaded and pruned locally). Without a pattern, the paths of one point in time
(the newest increment of CYCLE, default the latest cycle) are listed. With a pattern, every
version of every matching path is shown: which cycle and increment hold it, and where it was
deleted. A pattern with ``*``, ``?`` or ``[`` is a glob: over the whole path when it holds a
``/``, over the file name otherwise (like ``find -name``); any other pattern matches the paths
that contain it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from localbackup import formats
from localbackup.configkit import format_size
from localbackup.index import TYPES
from localbackup.spool import Spool
from uploader.catalogue import Catalogue, StoredIndex, find_path_versions, stored_indexes
from watcher.exitcodes import OK, USAGE

if TYPE_CHECKING:
    from watcher.config import AppConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``files``."""
    p = sub.add_parser("files", help="list or search backed-up paths (no retrieval needed)")
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


def catalogued(cat: Catalogue) -> dict[str, dict[int, str]]:
    """The cycles whose indexes the catalogue keeps: cycle -> increment number -> kind."""
    kinds: dict[str, dict[int, str]] = {}
    for cycle_id, number, kind in cat.query(
        "SELECT cycle_id, number, kind FROM cycle_indexes ORDER BY cycle_id, number"
    ):
        kinds.setdefault(cycle_id, {})[int(number)] = kind
    return kinds


def matcher(pattern: str) -> Any:
    """A predicate for displayed paths: a substring, or a glob (on the name alone without ``/``)."""
    if not any(ch in pattern for ch in "*?["):
        return lambda p: pattern in p
    if "/" in pattern:
        return lambda p: fnmatch.fnmatchcase(p, pattern)
    return lambda p: fnmatch.fnmatchcase(p.rsplit("/", 1)[-1], pattern)  # like find -name


@dataclass(frozen=True, slots=True)
class Needs:
    """What a path matching a pattern contains, for the catalogue's prefilter
    (``uploader.catalogue.PathPrefilter``)."""

    name: bytes | None = None
    name_suffix: bytes | None = None
    prefixes: tuple[bytes, ...] = ()


def needs_of(pattern: str) -> Needs | None:
    """The prefilter of :func:`matcher`'s pattern: a name glob ``*.ext`` needs that name
    suffix, a path glob its literal leading directories; other patterns need a scan."""
    globbing = [i for i, ch in enumerate(pattern) if ch in "*?["]
    if not globbing:
        return None
    raw = os.fsencode(pattern)
    if "/" not in pattern:
        rest = raw[1:]
        if raw.startswith(b"*") and rest and not any(ch in rest for ch in b"*?["):
            return Needs(name_suffix=rest)
        return None
    lead = raw[: globbing[0]].rpartition(b"/")[0].lstrip(b"/")
    return Needs(prefixes=(lead + b"/",)) if lead else None


def search(
    spool: dict[str, list[StoredIndex]],
    cat: Catalogue,
    kinds: dict[str, dict[int, str]],
    pattern: str,
    cycle: str | None = None,
) -> Iterator[PathHistory]:
    """The history of every path that matches ``pattern``, cycle by cycle: cycles in the
    catalogue from its path tables, cycles only in the spool from their indexes."""
    match = matcher(pattern)
    histories: dict[str, PathHistory] = {}

    def select(path: bytes, is_dir: bool) -> bool:
        return bool(match(display(path)))

    for v in find_path_versions(cat, needs_of(pattern), select, cycle):
        shown = display(v.path)
        h = histories.setdefault(shown, PathHistory(shown))
        h.versions.append(
            _version(
                v.cycle_id, v.first, kinds[v.cycle_id].get(v.first, ""), v.type, v.size, v.mtime_ns
            )
        )
        if v.deleted_in is not None:
            h.deleted_in.append({"cycle": v.cycle_id, "increment": v.deleted_in})
    for cycle_id, incs in spool.items():
        if cycle_id not in kinds and (cycle is None or cycle == cycle_id):
            _scan(cycle_id, incs, match, histories)
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
    cycle_id: str, incs: list[StoredIndex], match: Any, histories: dict[str, PathHistory]
) -> None:
    """The versions in a cycle's indexes (a cycle not in the catalogue: the open one)."""
    previous: set[str] = set()
    last_version: dict[str, tuple[int, int, int]] = {}
    for inc in incs:
        present: set[str] = set()
        for path, rec in inc.load().records.items():
            shown = display(path)
            if not match(shown):
                continue
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
        kinds = catalogued(cat)
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
                cat, spool, cycle or (known[-1] if known else None), args.json
            )
        histories = list(search(spool, cat, kinds, pattern, cycle))
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
    if not histories:
        print(f"no backed-up path matches {pattern!r}", file=sys.stderr)
    return OK


def _list_point_in_time(
    cat: Catalogue, spool: dict[str, list[StoredIndex]], cycle_id: str | None, as_json: bool
) -> int:
    if cycle_id is None:
        print("no backups yet", file=sys.stderr)
        return OK
    incs = spool.get(cycle_id) or list(stored_indexes(cat, cycle_id))
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
