"""``files [CYCLE] [PATTERN]``: list or search backed-up paths, with no retrieval.

The indexes come from the spool (cycles still on disk) and from the catalogue's hot copies
(cycles already uploaded and pruned locally). Without a pattern, the paths of one point in time
(the newest increment of CYCLE, default the latest cycle) are listed. With a pattern, every
version of every path it selects is shown: which cycle and increment hold it, and where it was
deleted. Patterns are those of ``restore --path`` (:mod:`localbackup.pathmatch`): what ``files``
shows for a pattern is what ``restore --path`` brings back. A pattern that selects nothing is
an error (exit 1) that names the nearest backed-up paths.
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
from localbackup.index import TYPES
from localbackup.pathmatch import NoPathMatch, PathSelection, roots_of, suggest
from localbackup.spool import Spool
from uploader.catalogue import Catalogue, StoredIndex, stored_indexes
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK, USAGE

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig


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


def search(cycles: dict[str, list[StoredIndex]], pattern: str) -> Iterator[PathHistory]:
    """Every version of every path ``pattern`` selects, by path: the increments that hold a
    new version of it, and those where it was gone (deleted)."""
    histories: dict[str, PathHistory] = {}
    for cycle_id, incs in cycles.items():
        previous: set[str] = set()
        last_version: dict[str, tuple[int, int]] = {}
        for inc in incs:
            records = inc.load().records
            select = PathSelection([pattern], roots_of(records))
            present: set[str] = set()
            for path, rec in records.items():
                kind = TYPES[rec[9]]
                if not select(path, kind == "dir"):
                    continue
                shown = display(path)
                present.add(shown)
                version = (rec[3], rec[4])
                if last_version.get(shown) == version:
                    continue  # the same version listed again by a later increment
                last_version[shown] = version
                h = histories.setdefault(shown, PathHistory(shown))
                h.versions.append(
                    {
                        "cycle": cycle_id,
                        "increment": inc.number,
                        "kind": inc.kind,
                        "type": kind.value,
                        "size": rec[3],
                        "mtime": datetime.fromtimestamp(rec[4] / 1e9, UTC).isoformat(),
                    }
                )
            for gone in sorted(previous - present):
                histories[gone].deleted_in.append({"cycle": cycle_id, "increment": inc.number})
                last_version.pop(gone, None)
            previous = present
    yield from (histories[k] for k in sorted(histories))


def no_match(cycles: dict[str, list[StoredIndex]], pattern: str) -> NoPathMatch:
    """The error for a pattern that selects nothing, with near matches from the newest index."""
    if not cycles:
        return NoPathMatch([pattern])
    records = cycles[max(cycles)][-1].load().records
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
    if not histories:
        print(f"glacier-backup: {no_match(cycles, pattern)}", file=sys.stderr)
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
