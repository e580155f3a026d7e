"""``cycles [--json]``: every cycle, local and stored (restic's ``snapshots``).

For each cycle of this host: its state — ``open`` (still taking increments), ``sealed``
(waiting for upload), ``uploading``, ``stored``, ``MISSING`` (the store's listing or inventory
did not show its archive), ``pruned`` (deleted from the store by the retention policy) — where
it is (the spool, the store, both, or nowhere any more), its increments with their times and
sizes, and its archive's size and storage class. From local state only (spool, marker
directory, catalogue): no store request, instant and free.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from localbackup import formats
from localbackup.formats import cycle_id_time, cycle_order
from localbackup.spool import CycleDir, Spool
from uploader.catalogue import (
    ArchiveRecord,
    Catalogue,
    open_flags,
    pruned_cycles,
    stored_cycles,
    stored_points,
)
from uploader.maintenance import storage_class_for
from watcher.commands.parsers import add_command
from watcher.exitcodes import OK
from watcher.humanize import count, iso, size, when
from watcher.markerfiles import failed_markers, reason_of

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

CycleState = Literal["open", "sealed", "uploading", "stored", "MISSING", "pruned"]
Location = Literal["spool", "store", "both", "nowhere"]


def add_parser(sub: Subparsers) -> None:
    """Register ``cycles``."""
    p = add_command(
        sub,
        "cycles",
        summary="every cycle, local and stored: state, increments, sizes, where it is",
        description="List every cycle of this host, oldest first: its state (open, sealed, "
        "uploading, stored, MISSING, pruned), where it is (spool, store, both), each increment "
        "with the time it finished and its compressed size, and the archive's size and storage "
        "class. Reads local state only: no store request.",
        examples=["glacier-backup cycles", "glacier-backup cycles --json"],
    )
    p.add_argument("--json", action="store_true", help="machine-readable output (ISO times, bytes)")
    p.set_defaults(run=run)


@dataclass(frozen=True, slots=True)
class _Known:
    """What the catalogue and the marker directory know, for every cycle at once."""

    archives: dict[str, ArchiveRecord]
    uploading: dict[str, dict[str, Any]]
    missing: set[str]  # keys flagged MISSING
    pruned: dict[str, datetime]
    cycle_json: dict[str, formats.SealedCycle]
    points: dict[str, list[tuple[int, str, datetime]]]
    failed: dict[str, str]  # cycle id -> why its upload failed


def _known(config: AppConfig) -> _Known:
    store, host = config.store.name, config.backup.host
    with Catalogue.in_state_dir(config.state_dir) as cat:
        uploading = {
            u.cycle_id: {
                "total_size": u.total_size,
                "bytes_done": sum(p.size for p in parts),
                "parts_done": len(parts),
                "started_at": iso(u.started_at),
            }
            for u in cat.uploads(store)
            if u.host == host
            for parts in [cat.parts(u.id)]
        }
        return _Known(
            archives={a.cycle_id: a for a in cat.archives(store=store) if a.host == host},
            uploading=uploading,
            missing={f.key for f in open_flags(cat, store) if f.kind == "missing"},
            pruned=pruned_cycles(cat, store),
            cycle_json=stored_cycles(cat, host),
            points=stored_points(cat, host),
            failed={
                cid: reason_of(p) for cid, p in failed_markers(config.watch.marker_dir).items()
            },
        )


def _increments(
    local: CycleDir | None, known: _Known, cycle_id: str
) -> tuple[list[dict[str, Any]], datetime | None]:
    """The increments of a cycle (from the spool, else the catalogue) and when it was sealed."""
    sealed: formats.SealedCycle | None = None
    manifests: list[formats.IncrementManifest] = []
    if local is not None and local.sealed:
        sealed = formats.load_sealed_cycle(local.path)
    elif local is not None:
        manifests = local.manifests()
    else:
        sealed = known.cycle_json.get(cycle_id)
    if sealed is not None:
        manifests = list(sealed.increments)
    if manifests:
        return [
            {
                "number": m.number,
                "kind": m.kind.value,
                "finished_at": iso(m.finished_at),
                "size": m.tar.size,
                "index_size": m.index.size,
            }
            for m in manifests
        ], sealed.sealed_at if sealed is not None else None
    points = known.points.get(cycle_id, [])
    return [
        {"number": n, "kind": k, "finished_at": iso(t), "size": None, "index_size": None}
        for n, k, t in points
    ], None


def _state(cycle_id: str, local: CycleDir | None, known: _Known) -> CycleState:
    archive = known.archives.get(cycle_id)
    if archive is not None:
        return "MISSING" if archive.key in known.missing else "stored"
    if cycle_id in known.uploading:
        return "uploading"
    if cycle_id in known.pruned:
        return "pruned"
    return "sealed" if local is not None and local.sealed else "open"


def _location(local: CycleDir | None, archive: ArchiveRecord | None, known: _Known) -> Location:
    if archive is not None and archive.key in known.missing:
        archive = None  # flagged MISSING: the store does not have it
    if local is not None:
        return "both" if archive is not None else "spool"
    return "store" if archive is not None else "nowhere"


def collect_cycles(config: AppConfig) -> list[dict[str, Any]]:
    """Every cycle of this host, oldest first (the ``--json`` document): in the spool, or with
    an archive, an upload or a pruning recorded for the configured store."""
    known = _known(config)
    local = {c.cycle_id: c for c in Spool(config.backup.spool_dir).cycles()}
    ids = set(local) | set(known.archives) | set(known.uploading) | set(known.pruned)
    storage_class = storage_class_for(config.store)
    out = []
    for cycle_id in sorted(ids, key=cycle_order):
        c = local.get(cycle_id)
        archive = known.archives.get(cycle_id)
        increments, sealed_at = _increments(c, known, cycle_id)
        sizes = [i["size"] for i in increments]
        out.append(
            {
                "cycle_id": cycle_id,
                "state": _state(cycle_id, c, known),
                "location": _location(c, archive, known),
                "started_at": iso(c.created_at() if c is not None else cycle_id_time(cycle_id)),
                "sealed_at": iso(sealed_at),
                "increments": increments,
                "size": sum(sizes) if sizes and None not in sizes else None,
                "archive": None
                if archive is None
                else {
                    "key": archive.key,
                    "size": archive.size,
                    "storage_class": storage_class,
                    "uploaded_at": iso(archive.uploaded_at),
                    "confirmed_at": iso(archive.confirmed_at),
                },
                "upload": known.uploading.get(cycle_id),
                "upload_failed": known.failed.get(cycle_id),
                "pruned_at": iso(known.pruned.get(cycle_id)),
            }
        )
    return out


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Print every cycle (or their JSON)."""
    cycles = collect_cycles(config)
    if args.json:
        print(json.dumps({"store": config.store.name, "cycles": cycles}, indent=2))
        return OK
    if not cycles:
        print("no cycles yet: 'glacier-backup backup' takes the first")
        return OK
    print(f"{count(len(cycles), 'cycle')} of host {config.backup.host}, store {config.store.name}")
    for c in cycles:
        print(_headline(c))
        for i in c["increments"]:
            done = when(datetime.fromisoformat(i["finished_at"]))
            shown = size(i["size"]) if i["size"] is not None else "size not kept"
            print(f"    #{i['number']:<3} {i['kind']:<12} {done:<22} {shown:>10}")
    return OK


def _headline(c: dict[str, Any]) -> str:
    where = {
        "spool": "in the spool",
        "store": "in the store",
        "both": "in the spool and the store",
        "nowhere": "in neither the spool nor the store",
    }[c["location"]]
    parts = [where, count(len(c["increments"]), "increment")]
    if c["size"] is not None:
        parts.append(f"{size(c['size'])} of increments")
    a = c["archive"]
    if a is not None:
        parts.append(f"archive {size(a['size'])} ({a['storage_class']})")
    if c["upload"] is not None:
        u = c["upload"]
        parts.append(f"uploading: {size(u['bytes_done'])} of {size(u['total_size'])}")
    if c["pruned_at"] is not None and a is None:
        parts.append(f"pruned {when(datetime.fromisoformat(c['pruned_at']))}")
    if c["upload_failed"]:
        parts.append(f"upload FAILED: {c['upload_failed']}")
    return f"{c['cycle_id']}  {c['state']}: " + ", ".join(parts)
