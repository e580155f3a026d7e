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
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from localbackup import formats
from localbackup.configkit import format_size
from localbackup.spool import Spool
from uploader.catalogue import Catalogue, StoredIndex, stored_indexes
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


def all_indexes(config: AppConfig) -> dict[str, list[StoredIndex]]:
    """Every known increment index, by cycle (oldest first), spool and catalogue merged."""
    found: dict[tuple[str, int], StoredIndex] = {}
    with Catalogue.in_state_dir(config.state_dir) as cat:
        for s in stored_indexes(cat):
            found[(s.cycle_id, s.number)] = s
    for c in Spool(config.backup.spool_dir).cycles():
        for m in c.manifests():
            path = c.path / m.index.name
            if path.is_file():
                found[(c.cycle_id, m.number)] = StoredIndex(
                    config.backup.host,
                    c.cycle_id,
                    m.number,
                    m.kind,
                    m.finished_at,
                    path.read_bytes(),
                )
    by_cycle: dict[str, list[StoredIndex]] = {}
    for key in sorted(found):
        by_cycle.setdefault(key[0], []).append(found[key])
    return by_cycle


def matcher(pattern: str) -> Any:
    """A predicate for displayed paths: a substring, or a glob (on the name alone without ``/``)."""
    if not any(ch in pattern for ch in "*?["):
        return lambda p: pattern in p
    if "/" in pattern:
        return lambda p: fnmatch.fnmatchcase(p, pattern)
    return lambda p: fnmatch.fnmatchcase(p.rsplit("/", 1)[-1], pattern)  # like find -name


def search(cycles: dict[str, list[StoredIndex]], pattern: str) -> Iterator[PathHistory]:
    """The history of every path that matches ``pattern``, cycle by cycle."""
    match = matcher(pattern)
    histories: dict[str, PathHistory] = {}
    for cycle_id, incs in cycles.items():
        previous: set[str] = set()
        last_version: dict[str, tuple[int, int]] = {}
        for inc in incs:
            present: set[str] = set()
            for entry in inc.load().entries():
                shown = display(entry.path)
                if not match(shown):
                    continue
                present.add(shown)
                version = (entry.size, entry.mtime_ns)
                if last_version.get(shown) == version:
                    continue  # the same version listed again by a later increment
                last_version[shown] = version
                h = histories.setdefault(shown, PathHistory(shown))
                h.versions.append(
                    {
                        "cycle": cycle_id,
                        "increment": inc.number,
                        "kind": inc.kind,
                        "type": entry.type,
                        "size": entry.size,
                        "mtime": datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC).isoformat(),
                    }
                )
            for gone in sorted(previous - present):
                histories[gone].deleted_in.append({"cycle": cycle_id, "increment": inc.number})
                last_version.pop(gone, None)
            previous = present
    yield from (histories[k] for k in sorted(histories))


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
    cycles = all_indexes(config)
    if cycle == "latest":
        cycle = max(cycles, default=None)
    if cycle is not None:
        if cycle not in cycles:
            print(
                f"glacier-backup: no indexes of cycle {cycle!r} (known: "
                f"{', '.join(cycles) or 'none'})",
                file=sys.stderr,
            )
            return USAGE
        cycles = {cycle: cycles[cycle]}
    if pattern is None:
        return _list_point_in_time(cycles, args.json)
    histories = list(search(cycles, pattern))
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


def _list_point_in_time(cycles: dict[str, list[StoredIndex]], as_json: bool) -> int:
    if not cycles:
        print("no backups yet", file=sys.stderr)
        return OK
    cycle_id = max(cycles)
    inc = cycles[cycle_id][-1]
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
