"""``status [--json]``: cycles, uploads, store usage, last success and failure.

Everything comes from local state (spool, marker directory, catalogue): no store request, so it
is instant and free, and it works while the service runs (the catalogue is SQLite in WAL mode).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localbackup import formats
from localbackup.configkit import format_size
from localbackup.spool import CycleDir, Spool
from uploader.catalogue import (
    ArchiveRecord,
    Catalogue,
    Event,
    InventoryJobState,
    UploadRecord,
    inventory_state,
    last_event,
    open_flags,
    prune_inputs,
)
from uploader.maintenance import pending_jobs
from uploader.stores import PartInfo
from uploader.window import local_now
from watcher.exitcodes import OK, WARNINGS
from watcher.lock_check import check_object_lock
from watcher.markers import FAILED, QUARANTINE

if TYPE_CHECKING:
    from watcher.config import AppConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``status``."""
    p = sub.add_parser("status", help="cycles, uploads, store usage, last success/failure")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


def upload_window(config: AppConfig, now: datetime) -> dict[str, Any] | None:
    """``[upload] window``: open or not at ``now`` (local time), and when it next opens/closes."""
    window = config.upload.window
    if window is None:
        return None
    closes = window.closes_at(now)
    return {
        "window": str(window),
        "open": closes is not None,
        "closes_at": None if closes is None else closes.isoformat(),
        "next_open": window.next_open(now).isoformat() if closes is None else None,
    }


def collect(config: AppConfig, now: datetime | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, from local state only (the ``--json`` document); ``now``
    is the local time the upload window is judged at."""
    store = config.store.name
    spool = Spool(config.backup.spool_dir)
    with Catalogue.in_state_dir(config.state_dir) as cat:
        archives = cat.archives(store=store)
        uploads = [u for u in cat.uploads() if u.store == store]
        parts = {u.id: cat.parts(u.id) for u in uploads}
        failure = last_event(cat, ("upload_failed", "marker_quarantined"))
        inventory = inventory_state(cat, store)
        flags = open_flags(cat, store)
        locked = [a.locked_until for a in prune_inputs(cat, store) if a.ours]
    archived = {a.cycle_id for a in archives}
    newest = max(archives, key=lambda a: a.uploaded_at, default=None)
    marker_dir = config.watch.marker_dir
    open_cycle = _open_cycle(spool)
    waiting = [_sealed(c) for c in spool.sealed_cycles() if c.cycle_id not in archived]
    return {
        "host": config.backup.host,
        "store": store,
        "open_cycle": open_cycle,
        "sealed_waiting": waiting,
        "uploads_in_progress": [_upload(u, parts[u.id]) for u in uploads],
        "last_success": None if newest is None else _success(newest),
        "last_failure": _failure(failure) if failure is not None else _last_failure(marker_dir),
        "store_usage": {"archives": len(archives), "bytes": sum(a.size for a in archives)},
        "jobs": [_job(j) for j in pending_jobs(inventory)],
        "last_inventory_date": _iso(inventory.last_inventory_date),
        "flags": [
            {"key": f.key, "kind": f.kind, "detail": f.detail, "first_seen": _iso(f.first_seen)}
            for f in flags
        ],
        "markers": {
            "pending": _count(marker_dir, lambda p: formats.is_marker_name(p.name)),
            "failed": _count(marker_dir / FAILED, _not_reason),
            "quarantined": _count(marker_dir / QUARANTINE, _not_reason),
        },
        "upload_window": upload_window(config, now or local_now()),
        "archives_locked": sum(1 for a in locked if a is not None and a > datetime.now(UTC)),
    }


def _open_cycle(spool: Spool) -> dict[str, Any] | None:
    state = spool.open_cycle_state()
    if state is None:
        return None
    oc = state[1]
    return {"cycle_id": oc.cycle_id, "increments": oc.increments, "created_at": _iso(oc.created_at)}


def _sealed(c: CycleDir) -> dict[str, Any]:
    sealed = formats.load_sealed_cycle(c.path)
    return {
        "cycle_id": c.cycle_id,
        "sealed_at": _iso(sealed.sealed_at),
        "size": sealed.data_size,
        "increments": len(sealed.increments),
    }


def _upload(u: UploadRecord, parts: list[PartInfo]) -> dict[str, Any]:
    return {
        "cycle_id": u.cycle_id,
        "key": u.key,
        "started_at": _iso(u.started_at),
        "total_size": u.total_size,
        "parts_done": len(parts),
        "bytes_done": sum(p.size for p in parts),
    }


def _success(a: ArchiveRecord) -> dict[str, Any]:
    return {
        "cycle_id": a.cycle_id,
        "key": a.key,
        "size": a.size,
        "uploaded_at": _iso(a.uploaded_at),
        "confirmed_at": _iso(a.confirmed_at),
    }


def _failure(e: Event) -> dict[str, Any]:
    return {"kind": e.kind, "cycle_id": e.cycle_id, "reason": e.detail, "at": _iso(e.at)}


def _job(j: InventoryJobState) -> dict[str, Any]:
    return {
        "kind": "inventory",
        "job_id": j.job_id,
        "status": j.status,
        "initiated_at": _iso(j.initiated_at),
        "completed_at": _iso(j.completed_at),
    }


def _not_reason(p: Path) -> bool:
    return not p.name.endswith(".reason")


def _count(d: Path, pred: Any) -> int:
    return sum(1 for p in d.iterdir() if p.is_file() and pred(p)) if d.is_dir() else 0


def _last_failure(marker_dir: Path) -> dict[str, Any] | None:
    reasons = list((marker_dir / FAILED).glob("*.reason")) if (marker_dir / FAILED).is_dir() else []
    if not reasons:
        return None
    newest = max(reasons, key=lambda p: p.stat().st_mtime)
    return {
        "marker": newest.name.removesuffix(".reason"),
        "reason": newest.read_text().strip(),
        "at": _iso(datetime.fromtimestamp(newest.stat().st_mtime, UTC)),
    }


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Print the status (or its JSON). With ``[store] object_lock``, the bucket is asked
    whether it has Object Lock (the one store request status makes): exit 3 when it has not."""
    s = collect(config)
    lock = check_object_lock(config.store)
    s["object_lock"] = None if lock is None else lock.as_json()
    code = WARNINGS if lock is not None and lock.problem else OK
    if args.json:
        print(json.dumps(s, indent=2))
        return code
    oc = s["open_cycle"]
    print(f"host {s['host']}, store {s['store']}")
    print("open cycle: " + (f"{oc['cycle_id']} ({oc['increments']} increments)" if oc else "none"))
    print(f"sealed, waiting for upload: {len(s['sealed_waiting'])}")
    for w in s["sealed_waiting"]:
        print(f"  {w['cycle_id']}  {format_size(w['size'])}")
    for u in s["uploads_in_progress"]:
        print(
            f"uploading {u['cycle_id']}: {format_size(u['bytes_done'])} of "
            f"{format_size(u['total_size'])} ({u['parts_done']} parts)"
        )
    ls = s["last_success"]
    print("last upload: " + (f"{ls['cycle_id']} at {ls['uploaded_at']}" if ls else "never"))
    lf = s["last_failure"]
    if lf:
        print(f"last failure at {lf['at']}: {lf['reason']}")
    usage = s["store_usage"]
    print(f"store usage: {usage['archives']} archives, {format_size(usage['bytes'])}")
    for j in s["jobs"]:
        print(f"{j['kind']} job {j['job_id'][:16]}: {j['status']} since {j['initiated_at']}")
    for f in s["flags"]:
        print(f"FLAG {f['kind'].upper()}: {f['key']}: {f['detail']}")
    m = s["markers"]
    print(f"markers: {m['pending']} pending, {m['failed']} failed, {m['quarantined']} quarantined")
    w = s["upload_window"]
    if w is not None:
        when = f"open until {w['closes_at']}" if w["open"] else f"closed; opens {w['next_open']}"
        print(f"upload window {w['window']}: {when}")
    if lock is not None:
        print("\n".join(lock.lines()))
        print(f"archives locked now: {s['archives_locked']}")
    return code
