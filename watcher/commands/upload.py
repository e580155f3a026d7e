"""``upload [CYCLE] [--retry-failed]``: upload sealed cycles now, without the service.

Every outcome is recorded in the catalogue's event log (``uploaded`` / ``upload_failed``, one
function for every command and the service), so that ``status`` shows the last failure until a
later upload of the same cycle succeeds. A successful upload files the cycle's marker under
``done/`` itself. Cycles whose marker the service filed under ``failed/`` are sent again once
the user asks: ``--retry-failed`` (all of them) or ``upload CYCLE``. This command uploads them
itself (so that it never races a running service for the same cycle); if that fails again, the
marker goes back into the marker directory, where the service takes it with its own retries.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from localbackup.configkit import format_size
from localbackup.formats import CYCLE_JSON
from localbackup.logevents import get_logger
from localbackup.spool import CYCLES
from uploader.catalogue import Catalogue, pruned_at, record_event
from uploader.config import metadata_object_options
from uploader.pacing import Pace, UploadPaused, upload_pace
from uploader.stores import Store, StoreError, StoreNotAvailable, open_store
from uploader.upload import (
    FLAGGED_MISSING,
    UPLOAD_FAILURES,
    CycleBusy,
    UploadReport,
    archive_doubt,
    metadata_pending_dirs,
    upload_cycle,
)
from uploader.window import local_now
from watcher import output
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.hints import AGAIN, fix_for
from watcher.humanize import count
from watcher.markerfiles import file_done, retry_failed
from watcher.notify.events import NoticeEvent
from watcher.outcomes import Outcomes, upload_done
from watcher.upload_queue import upload_queue

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

log = get_logger(__name__)

Progress = Callable[[int, int], None]
INTERRUPTED = 130


def add_parser(subparsers: Subparsers) -> None:
    """Register ``upload``."""
    p = add_command(
        subparsers,
        "upload",
        summary="upload sealed cycles now, without the service",
        description="Encrypt and upload every sealed cycle that is not in the store yet, "
        "resuming an interrupted upload where it stopped. Cycles whose upload the service "
        "gave up on (their marker is under failed/) are left for --retry-failed or an explicit "
        "CYCLE, once the cause is fixed. Ends with a summary: size, duration, throughput, "
        "parts resumed.",
        examples=[
            "glacier-backup upload",
            "glacier-backup upload --retry-failed",
            "glacier-backup upload 20261126T040000Z",
        ],
    )
    p.add_argument(
        "cycle", nargs="?", metavar="CYCLE", help="a cycle id (default: every sealed cycle)"
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="also upload the cycles whose marker was filed under failed/",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="upload CYCLE even if its archive was pruned from the store, or again if its"
        " archive is unconfirmed (one flagged MISSING is sent again by 'upload CYCLE' alone)",
    )
    p.add_argument(
        "--now",
        action="store_true",
        help="upload even outside [upload] window (the rate limit still applies)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Upload the named cycle, or every sealed cycle not yet archived in the configured store."""
    config.encryption.require_key()
    if not config.encryption.enabled:
        output.warning(
            'warning: [encryption] mode = "none": archives are uploaded UNENCRYPTED',
            event="encryption.disabled",
        )
    try:
        store = open_store(config.store)
    except StoreNotAvailable as exc:
        print(f"glacier-backup: configuration error: {config.file}: store: {exc}", file=sys.stderr)
        return USAGE
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        todo = _named(args, config, catalogue, store.name) if args.cycle else None
        if isinstance(todo, int):
            return todo
        left_out = 0
        if todo is None:
            todo, left_out = _queued(args, config, catalogue, store.name)
        if not todo:
            archived = "nothing to upload: every sealed cycle is archived"
            print("nothing else to upload" if left_out else archived)
            return OK
        force = bool(args.cycle and args.force)
        return _send(todo, _Run(store, catalogue, config, force), now=args.now)


def _named(
    args: argparse.Namespace, config: AppConfig, catalogue: Catalogue, store: str
) -> list[Path] | int:
    """``upload CYCLE``: the cycle, or the exit code of a refusal (said why and what can be
    done). An archive flagged MISSING is sent again without ``--force``."""
    cycles_root = config.backup.spool_dir / CYCLES
    cycle_dir = cycles_root / args.cycle
    found = None if "/" in args.cycle else catalogue.find_archive(store, args.cycle)
    doubt = None if found is None else archive_doubt(catalogue, found)
    if "/" in args.cycle or not (cycle_dir / CYCLE_JSON).is_file():
        if doubt == FLAGGED_MISSING:
            print(
                f"glacier-backup: the archive of cycle {args.cycle} is flagged MISSING in "
                f"{store}, and the cycle is no longer in {cycles_root}: it cannot be sent "
                "again. Run 'glacier-backup inventory' to look at the store again (a flag that "
                "clears was a late listing); if it is really gone, 'glacier-backup backup "
                "--full' starts a new cycle that protects everything as it is now",
                file=sys.stderr,
            )
            return FAILURE
        print(f"glacier-backup: no sealed cycle {args.cycle!r} in {cycles_root}", file=sys.stderr)
        return USAGE
    when = pruned_at(catalogue, store, args.cycle)
    if when is not None and not args.force and found is None:
        print(
            f"glacier-backup: cycle {args.cycle} was pruned from {store} on "
            f"{when:%Y-%m-%d %H:%M} UTC and is not uploaded again; to upload it anyway: "
            f"glacier-backup upload --force {args.cycle}",
            file=sys.stderr,
        )
        return FAILURE
    if found is not None and (doubt == FLAGGED_MISSING or (args.force and doubt is not None)):
        print(f"{args.cycle}: the archive in {store} is {doubt}: uploading again")
    elif found is not None and args.force:
        print(
            f"{args.cycle}: already archived in {store} and confirmed; "
            "--force uploads again only an unconfirmed or MISSING archive"
        )
    return [cycle_dir]


def _queued(
    args: argparse.Namespace, config: AppConfig, catalogue: Catalogue, store: str
) -> tuple[list[Path], int]:
    """Every waiting cycle, and with ``--retry-failed`` those the service gave up on; and how
    many of those were left out (said here)."""
    marker_dir = config.watch.marker_dir
    queue = upload_queue(config.backup.spool_dir, marker_dir, catalogue, store)
    todo = list(queue.waiting)
    # archived, but a run died before its metadata object was sent (or an earlier version)
    todo += metadata_pending_dirs(config.backup.spool_dir, catalogue, store)
    if args.retry_failed:
        todo += [f.cycle_dir for f in queue.failed]
    elif queue.failed:
        n = len(queue.failed)
        print(
            f"{n} cycle{'s' if n != 1 else ''} whose upload failed before "
            f"({', '.join(f.cycle_id for f in queue.failed)}) "
            f"{'are' if n != 1 else 'is'} left out: once the cause is fixed, run "
            "'glacier-backup upload --retry-failed' ('glacier-backup status' shows why)"
        )
        return sorted(todo), n
    return sorted(todo), 0


@dataclass(frozen=True, slots=True)
class _Run:
    """What every cycle of one ``upload`` run is uploaded with, and reported to."""

    store: Store
    catalogue: Catalogue
    config: AppConfig
    force: bool = False
    outcomes: Outcomes | None = None
    pace: Pace | None = None


def _send(todo: list[Path], run: _Run, *, now: bool) -> int:
    """Upload ``todo`` inside ``[upload] window`` (unless ``now``) at ``[upload] max_rate``,
    telling the outcome sink what happened."""
    config, catalogue = run.config, run.catalogue
    window = None if now else config.upload.window
    at = local_now()
    if window is not None and not window.is_open(at):
        print(
            f"outside the upload window {window}: {count(len(todo), 'cycle')} wait until it opens "
            f"at {window.next_open(at):%Y-%m-%d %H:%M %Z} (upload --now uploads anyway)"
        )
        return WARNINGS
    outcomes = Outcomes(config)
    try:
        pace = upload_pace(config.upload.max_rate, window)
        return asyncio.run(_upload_all(todo, replace(run, outcomes=outcomes, pace=pace)))
    except StoreError as exc:  # the store could not even be opened
        outcomes.emit(outcomes.notice(NoticeEvent.UPLOAD_FAILED, error=str(exc)), catalogue)
        raise
    finally:
        outcomes.close()


async def _upload_all(todo: list[Path], run: _Run) -> int:
    failed, sent, started = 0, 0, time.monotonic()
    async with run.store as s:
        run = replace(run, store=s)
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if main is not None:  # SIGTERM stops like Ctrl-C: acknowledged parts are kept
            loop.add_signal_handler(signal.SIGTERM, main.cancel)
        for cycle_dir in todo:
            report = UploadReport()
            try:
                ok = await _upload_one(cycle_dir, run, report)
            except UploadPaused as exc:
                print(f"upload of {cycle_dir.name} paused: {exc}")
                return WARNINGS
            except (asyncio.CancelledError, KeyboardInterrupt):
                print(
                    f"glacier-backup: upload of {cycle_dir.name} interrupted; the parts the "
                    f"store acknowledged are kept: {AGAIN}",
                    file=sys.stderr,
                )
                return INTERRUPTED
            failed += not ok
            sent += report.size - report.bytes_resumed if ok and not report.archived_already else 0
    if len(todo) > 1:
        seconds = time.monotonic() - started
        print(
            f"{len(todo) - failed} of {len(todo)} cycles uploaded, {format_size(sent)} sent in "
            f"{_duration(seconds)}{_rate(sent, seconds)}"
            + (f"; {failed} failed (see above)" if failed else "")
        )
    return FAILURE if failed else OK


async def _upload_one(cycle_dir: Path, run: _Run, report: UploadReport) -> bool:
    """Upload one cycle, record the outcome (the event log, the outcome sink) and say it;
    False if it failed."""
    cycle_id, config, catalogue = cycle_dir.name, run.config, run.catalogue
    outcomes = run.outcomes
    started = time.monotonic()
    if outcomes is not None:
        outcomes.emit(outcomes.notice(NoticeEvent.UPLOAD_STARTED, cycle=cycle_id), catalogue)
    with _progress(cycle_id) as progress:
        try:
            record = await upload_cycle(
                cycle_dir,
                run.store,
                catalogue,
                config.encryption,
                config.upload,
                progress,
                force=run.force,
                metadata_options=metadata_object_options(config.store),
                resend_missing=True,  # only named or waiting cycles come here
                pace=run.pace,
                report=report,
            )
        except CycleBusy as exc:  # the other process finishes it: not a failure
            log.info("upload.skipped", cycle=cycle_id, reason=str(exc))
            print(f"{cycle_id}: {exc}; left to it")
            return True
        except UPLOAD_FAILURES as exc:
            await _failed(cycle_dir, run, exc)
            return False
    seconds = time.monotonic() - started
    await asyncio.to_thread(record_event, catalogue, "uploaded", record.key, cycle_id)
    if outcomes is not None:
        await asyncio.to_thread(outcomes.emit, upload_done(outcomes, record, seconds), catalogue)
    file_done(config.watch.marker_dir, config.backup.host, cycle_id)
    if report.archived_already:
        print(f"{cycle_id}: already archived as {record.key} ({format_size(record.size)})")
        return True
    sent = report.size - report.bytes_resumed
    resumed = (
        f"; {report.parts_resumed} of {report.parts} parts resumed from an earlier attempt"
        if report.parts_resumed
        else ""
    )
    print(
        f"{cycle_id}: uploaded {record.key} to {run.store.name}: {format_size(record.size)}, "
        f"{format_size(sent)} sent in {_duration(seconds)}{_rate(sent, seconds)}{resumed}"
    )
    return True


async def _failed(cycle_dir: Path, run: _Run, exc: Exception) -> None:
    """Record, report and say a failed upload; a cycle the service had failed goes back to it."""
    cycle_id, config = cycle_dir.name, run.config
    detail = f"{type(exc).__name__}: {exc}"
    await asyncio.to_thread(record_event, run.catalogue, "upload_failed", detail, cycle_id)
    if run.outcomes is not None:
        failure = run.outcomes.notice(NoticeEvent.UPLOAD_FAILED, cycle=cycle_id, error=str(exc))
        await asyncio.to_thread(run.outcomes.emit, failure, run.catalogue)
    output.error(
        f"upload of {cycle_id} failed: {exc}",
        fix=fix_for(exc, config),
        event="upload.failed",
        cycle=cycle_id,
    )
    if retry_failed(config.watch.marker_dir, config.backup.host, cycle_id) is not None:
        print(
            f"glacier-backup: the marker of {cycle_id} is back in "
            f"{config.watch.marker_dir}: the service retries it",
            file=sys.stderr,
        )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _rate(nbytes: int, seconds: float) -> str:
    return f" ({format_size(nbytes / seconds)}/s)" if nbytes and seconds > 0 else ""


@contextmanager
def _progress(cycle_id: str) -> Iterator[Progress | None]:
    """A bytes / rate / ETA bar on a terminal; otherwise the structured log events suffice."""
    if not output.on_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    with Bar(
        TextColumn(f"[bold]upload[/] {cycle_id}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("upload", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
