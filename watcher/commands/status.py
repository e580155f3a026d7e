"""``status [--json]``: the last backup, the open cycle, uploads, store usage, failures.

Everything comes from local state (spool, marker directory, catalogue): no store request, so it
is instant and free, and it works while the service runs (the catalogue is SQLite in WAL mode).
:func:`collect` builds the whole answer as one JSON-friendly structure (ISO times in UTC, bytes
as integers); the text form is rendered from it (local times with their zone, binary sizes).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localbackup import formats
from localbackup.configkit import format_duration
from localbackup.spool import Spool
from uploader.catalogue import (
    Catalogue,
    FlagKind,
    UploadRetry,
    Verification,
    inventory_state,
    last_verifications,
    open_failures,
    open_flags,
    prune_inputs,
    upload_retries,
)
from uploader.maintenance import pending_jobs
from uploader.window import local_now
from watcher.commands.parsers import add_command
from watcher.exitcodes import OK, WARNINGS
from watcher.humanize import ago, count, iso, size, when
from watcher.lock_check import check_object_lock
from watcher.markerfiles import FAILED, QUARANTINE
from watcher.upload_queue import upload_queue

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig


def add_parser(sub: Subparsers) -> None:
    """Register ``status``."""
    p = add_command(
        sub,
        "status",
        summary="last backup, open cycle, uploads, store usage, last success/failure",
        description="Show how the last local backup went, how far the open cycle is from "
        "being sealed, the cycles waiting for upload (and those whose upload failed, with "
        "why), uploads in progress, the last upload and the last failure, store usage, "
        "inventory jobs and findings, the last verification. Reads local state only: no "
        "store request.",
        examples=["glacier-backup status", "glacier-backup status --json"],
    )
    p.add_argument("--json", action="store_true", help="machine-readable output (ISO times, bytes)")
    p.set_defaults(run=run)


def _last_backup(spool: Spool) -> dict[str, Any] | None:
    record = spool.last_result()
    if record is not None:
        return {
            "at": iso(record.at),
            "result": record.result,
            "warnings": record.warnings,
            "cycle_id": record.cycle_id,
            "increment": record.increment,
            "message": record.message,
        }
    at = spool.last_backup_time()  # a spool from before the result was recorded
    return None if at is None else {"at": iso(at), "result": None, "warnings": None}


def _open_cycle(spool: Spool, config: AppConfig) -> dict[str, Any] | None:
    state = spool.open_cycle_state()
    if state is None:
        return None
    cycle_dir, oc = state
    manifests = cycle_dir.manifests()
    every = config.backup.full_every
    return {
        "cycle_id": oc.cycle_id,
        "created_at": iso(oc.created_at),
        "increments": oc.increments,  # complete ones, the full included
        "last_increment": manifests[-1].number if manifests else None,
        "size": sum(m.tar.size + m.index.size for m in manifests),
        "seals_after_increment": config.backup.increments_per_cycle,
        "full_every": None if every is None else int(every),  # seconds
        # the first backup after this time seals the cycle (full_every)
        "full_expires_at": iso(oc.created_at + timedelta(seconds=every)) if every else None,
    }


def _waiting(config: AppConfig, catalogue: Catalogue) -> dict[str, list[dict[str, Any]]]:
    """The cycles ``upload`` would send, and those it leaves for ``--retry-failed``."""
    queue = upload_queue(
        config.backup.spool_dir, config.watch.marker_dir, catalogue, config.store.name
    )

    def describe(cycle_dir: Path) -> dict[str, Any]:
        sealed = formats.load_sealed_cycle(cycle_dir)
        return {
            "cycle_id": sealed.cycle_id,
            "sealed_at": iso(sealed.sealed_at),
            "size": sealed.data_size,
            "increments": len(sealed.increments),
        }

    return {
        "waiting": [describe(d) for d in queue.waiting],
        "failed": [describe(f.cycle_dir) | {"reason": f.reason} for f in queue.failed],
    }


def _retry(r: UploadRetry) -> dict[str, Any]:
    return {
        "cycle_id": r.cycle_id,
        "since": iso(r.since),
        "reason": r.reason,
        "next_at": iso(r.next_at),
        "attempts": r.attempts,
    }


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
        archives = [a for a in cat.archives(store=store) if a.host == config.backup.host]
        uploads = [u for u in cat.uploads() if u.store == store]
        parts = {u.id: cat.parts(u.id) for u in uploads}
        failures = open_failures(cat)
        inventory = inventory_state(cat, store)
        flags = open_flags(cat, store)
        queue = _waiting(config, cat)
        locked = [a.locked_until for a in prune_inputs(cat, store) if a.ours]
        retries = [r for r in upload_retries(cat) if r.store == store]
        keys = {a.key for a in archives}
        verified = [v for v in last_verifications(cat, store) if v.key in keys]
    # ties (a listing's whole seconds after a recovery) go to the newer cycle
    newest = max(archives, key=lambda a: (a.uploaded_at, a.cycle_id), default=None)
    failure = failures[0] if failures else None
    missing = {f.key for f in flags if f.kind is FlagKind.MISSING}
    stored = [a for a in archives if a.key not in missing]  # what the store holds
    return {
        "host": config.backup.host,
        "store": store,
        "last_backup": _last_backup(spool),
        "open_cycle": _open_cycle(spool, config),
        "sealed_waiting": queue["waiting"],
        "upload_failed": queue["failed"],
        "uploads_in_progress": [
            {
                "cycle_id": u.cycle_id,
                "key": u.key,
                "started_at": iso(u.started_at),
                "total_size": u.total_size,
                "parts_done": len(parts[u.id]),
                "bytes_done": sum(p.size for p in parts[u.id]),
            }
            for u in uploads
        ],
        "retrying": [_retry(r) for r in retries],
        "last_success": None
        if newest is None
        else {
            "cycle_id": newest.cycle_id,
            "key": newest.key,
            "size": newest.size,
            "uploaded_at": iso(newest.uploaded_at),
            "confirmed_at": iso(newest.confirmed_at),
        },
        "last_failure": None
        if failure is None
        else {
            "kind": failure.kind,
            "cycle_id": failure.cycle_id,
            "reason": failure.detail,
            "at": iso(failure.at),
        },
        "store_usage": {"archives": len(stored), "bytes": sum(a.size for a in stored)},
        "last_verified": _verified(verified),
        "jobs": [
            {
                "kind": "inventory",
                "job_id": j.job_id,
                "status": j.status,
                "initiated_at": iso(j.initiated_at),
                "completed_at": iso(j.completed_at),
            }
            for j in pending_jobs(inventory)
        ],
        "last_inventory_date": iso(inventory.last_inventory_date),
        "flags": [
            {"key": f.key, "kind": f.kind, "detail": f.detail, "first_seen": iso(f.first_seen)}
            for f in flags
        ],
        "markers": {
            "pending": _count(config.watch.marker_dir, lambda p: formats.is_marker_name(p.name)),
            "failed": _count(config.watch.marker_dir / FAILED, _not_reason),
            "quarantined": _count(config.watch.marker_dir / QUARANTINE, _not_reason),
        },
        "upload_window": upload_window(config, now or local_now()),
        "archives_locked": sum(1 for a in locked if a is not None and a > datetime.now(UTC)),
    }


def _verified(results: list[Verification]) -> dict[str, Any] | None:
    """The newest ``verify`` result of each archive: when, how many, which failed."""
    if not results:
        return None
    return {
        "at": iso(max(v.at for v in results)),
        "archives": len(results),
        "read_data": sum(v.mode == "data" for v in results),
        "failed": [
            {"key": v.key, "at": iso(v.at), "mode": str(v.mode), "detail": v.detail}
            for v in results
            if not v.ok
        ],
    }


def _not_reason(p: Path) -> bool:
    return not p.name.endswith(".reason")


def _count(d: Path, pred: Any) -> int:
    return sum(1 for p in d.iterdir() if p.is_file() and pred(p)) if d.is_dir() else 0


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value)


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
    now = datetime.now(UTC)
    print(f"host {s['host']}, store {s['store']}")
    print(_backup_line(s["last_backup"], now))
    print(_open_line(s["open_cycle"]))
    waiting = s["sealed_waiting"]
    print(f"waiting for upload: {count(len(waiting), 'sealed cycle')}")
    for w in waiting:
        print(f"  {w['cycle_id']}  {size(w['size'])}, sealed {when(_t(w['sealed_at']))}")
    for f in s["upload_failed"]:
        print(f"upload FAILED: {f['cycle_id']} ({size(f['size'])}): {f['reason']}")
        if "--retry-failed" not in f["reason"]:  # the service's reason already says it
            print("  once the cause is fixed: glacier-backup upload --retry-failed")
    for u in s["uploads_in_progress"]:
        print(
            f"uploading {u['cycle_id']}: {size(u['bytes_done'])} of {size(u['total_size'])} "
            f"({count(u['parts_done'], 'part')} done), started {when(_t(u['started_at']))}"
        )
    for r in s["retrying"]:
        nxt = f"; next at {when(_t(r['next_at']))}" if r["next_at"] else ""
        print(
            f"retrying {r['cycle_id']} since {when(_t(r['since']))}: {r['reason']} "
            f"({count(r['attempts'], 'attempt')}{nxt})"
        )
    ls = s["last_success"]
    print(
        "last upload: "
        + (
            f"{ls['cycle_id']}, {size(ls['size'])}, {when(_t(ls['uploaded_at']))} "
            f"({ago(_t(ls['uploaded_at']), now)})"
            if ls
            else "never"
        )
    )
    lf = s["last_failure"]
    if lf:
        print(f"last failure: {when(_t(lf['at']))} ({ago(_t(lf['at']), now)}): {lf['reason']}")
    usage = s["store_usage"]
    print(f"store usage: {count(usage['archives'], 'archive')}, {size(usage['bytes'])}")
    for line in _verified_lines(s["last_verified"], now):
        print(line)
    for j in s["jobs"]:
        print(
            f"{j['kind']} job {j['job_id'][:16]}: {j['status']} since {when(_t(j['initiated_at']))}"
        )
    for f in s["flags"]:
        print(f"FLAG {f['kind'].upper()}: {f['key']}: {f['detail']}")
    m = s["markers"]
    print(f"markers: {m['pending']} pending, {m['failed']} failed, {m['quarantined']} quarantined")
    w = s["upload_window"]
    if w is not None:
        state = (
            f"open until {when(_t(w['closes_at']))}"
            if w["open"]
            else f"closed; opens {when(_t(w['next_open']))}"
        )
        print(f"upload window {w['window']}: {state}")
    if lock is not None:
        print("\n".join(lock.lines()))
        print(f"archives locked now: {s['archives_locked']}")
    return code


def _verified_lines(lv: dict[str, Any] | None, now: datetime) -> list[str]:
    """The last ``verify`` run, and each archive whose newest verification failed."""
    if not lv:
        return []
    return [
        f"last verified: {when(_t(lv['at']))} ({ago(_t(lv['at']), now)}): "
        f"{count(lv['archives'], 'archive')}, {lv['read_data']} read whole; "
        f"{len(lv['failed'])} failed",
        *(f"VERIFY FAILED: {f['key']} ({when(_t(f['at']))}): {f['detail']}" for f in lv["failed"]),
    ]


def _backup_line(b: dict[str, Any] | None, now: datetime) -> str:
    if b is None:
        return "last backup: never ('glacier-backup backup' takes one)"
    at = _t(b["at"])
    text = f"last backup: {when(at)} ({ago(at, now)})"
    if b["result"] == "failed":
        return f"{text}: FAILED: {b['message']}"
    if b["result"] == "warnings":
        return f"{text}: completed with {count(b['warnings'], 'warning')} ({b['message']})"
    if b["result"] == "ok":
        where = f", cycle {b['cycle_id']} increment {b['increment']}" if b["cycle_id"] else ""
        return f"{text}: ok{where}"
    return text


def _open_line(oc: dict[str, Any] | None) -> str:
    if oc is None:
        return "open cycle: none (the next backup starts one with a full)"
    n = oc["seals_after_increment"]
    last = oc["last_increment"]
    done = "no complete increment yet" if last is None else f"increment {last} of {n} done"
    seals = f"seals after increment {n}"
    if oc["full_expires_at"] is not None:
        seals += (
            f" or at the first backup after {when(_t(oc['full_expires_at']))}, when the full "
            f"is {format_duration(oc['full_every'])} old"
        )
    return f"open cycle: {oc['cycle_id']}, {done} ({size(oc['size'])}); {seals}"
