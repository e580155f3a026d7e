"""``upload [CYCLE]``: upload sealed cycles now, without the service."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from localbackup.configkit import format_size
from localbackup.formats import CYCLE_JSON
from localbackup.spool import CYCLES
from uploader.catalogue import Catalogue, pruned_at, remember_cycle_indexes
from uploader.pacing import Pace, UploadPaused, upload_pace
from uploader.stores import Store, StoreError, StoreNotAvailable, open_store
from uploader.upload import UPLOAD_FAILURES, archive_doubt, pending_cycle_dirs, upload_cycle
from uploader.window import local_now
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.notify.events import NoticeEvent
from watcher.outcomes import Outcomes, upload_done

if TYPE_CHECKING:
    from watcher.config import AppConfig

log = structlog.get_logger(__name__)

Progress = Callable[[int, int], None]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``upload``."""
    p = subparsers.add_parser("upload", help="upload sealed cycles now, without the service")
    p.add_argument(
        "cycle", nargs="?", metavar="CYCLE", help="a cycle id (default: every sealed cycle)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="upload CYCLE even if its archive was pruned from the store, or again if its"
        " archive is unconfirmed or flagged MISSING",
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
        log.warning(
            "encryption.disabled",
            message='[encryption] mode = "none": archives are uploaded UNENCRYPTED',
        )
    try:
        store = open_store(config.store)
    except StoreNotAvailable as exc:
        print(f"glacier-backup: configuration error: {config.file}: store: {exc}", file=sys.stderr)
        return USAGE
    cycles_root = config.backup.spool_dir / CYCLES
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        if args.cycle:
            cycle_dir = cycles_root / args.cycle
            if "/" in args.cycle or not (cycle_dir / CYCLE_JSON).is_file():
                print(
                    f"glacier-backup: no sealed cycle {args.cycle!r} in {cycles_root}",
                    file=sys.stderr,
                )
                return USAGE
            when = pruned_at(catalogue, store.name, args.cycle)
            force = bool(getattr(args, "force", False))
            if (
                when is not None
                and not force
                and catalogue.find_archive(store.name, args.cycle) is None
            ):
                print(
                    f"glacier-backup: cycle {args.cycle} was pruned from {store.name} on "
                    f"{when:%Y-%m-%d %H:%M} UTC and is not uploaded again; to upload it anyway: "
                    f"glacier-backup upload --force {args.cycle}",
                    file=sys.stderr,
                )
                return FAILURE
            if force and (found := catalogue.find_archive(store.name, args.cycle)) is not None:
                doubt = archive_doubt(catalogue, found)
                if doubt is None:
                    print(
                        f"{args.cycle}: already archived in {store.name} and confirmed; "
                        "--force uploads again only an unconfirmed or MISSING archive"
                    )
                else:
                    print(f"{args.cycle}: the archive in {store.name} is {doubt}: uploading again")
            todo = [cycle_dir]
        else:
            todo = pending_cycle_dirs(config.backup.spool_dir, catalogue, store.name)
        if not todo:
            print("nothing to upload: every sealed cycle is archived")
            return OK
        force = bool(args.cycle and getattr(args, "force", False))
        return _send(todo, store, catalogue, config, force=force, now=getattr(args, "now", False))


def _send(
    todo: list[Path],
    store: Store,
    catalogue: Catalogue,
    config: AppConfig,
    *,
    force: bool,
    now: bool,
) -> int:
    """Upload ``todo`` inside ``[upload] window`` (unless ``now``) at ``[upload] max_rate``,
    telling the outcome sink what happened."""
    window = None if now else config.upload.window
    at = local_now()
    if window is not None and not window.is_open(at):
        print(
            f"outside the upload window {window}: {len(todo)} cycle(s) wait until it opens "
            f"at {window.next_open(at):%Y-%m-%d %H:%M %Z} (upload --now uploads anyway)"
        )
        return WARNINGS
    outcomes = Outcomes(config)
    try:
        pace = upload_pace(config.upload.max_rate, window)
        return asyncio.run(
            _upload_all(todo, store, catalogue, config, outcomes, force=force, pace=pace)
        )
    except StoreError as exc:  # the store could not even be opened
        outcomes.emit(outcomes.notice(NoticeEvent.UPLOAD_FAILED, error=str(exc)), catalogue)
        raise
    finally:
        outcomes.close()


async def _upload_all(
    todo: list[Path],
    store: Store,
    catalogue: Catalogue,
    config: AppConfig,
    outcomes: Outcomes,
    *,
    force: bool = False,
    pace: Pace | None = None,
) -> int:
    failed = 0
    async with store as s:
        for cycle_dir in todo:
            cycle = cycle_dir.name
            started = time.monotonic()
            outcomes.emit(outcomes.notice(NoticeEvent.UPLOAD_STARTED, cycle=cycle), catalogue)
            with _progress(cycle) as progress:
                try:
                    record = await upload_cycle(
                        cycle_dir,
                        s,
                        catalogue,
                        config.encryption,
                        config.upload,
                        progress,
                        force=force,
                        pace=pace,
                    )
                except UploadPaused as exc:
                    print(f"upload of {cycle} paused: {exc}")
                    return WARNINGS
                except UPLOAD_FAILURES as exc:
                    failed += 1
                    log.error("upload.failed", cycle=cycle, error=str(exc))
                    print(f"upload of {cycle} failed: {exc}", file=sys.stderr)
                    failure = outcomes.notice(
                        NoticeEvent.UPLOAD_FAILED, cycle=cycle, error=str(exc)
                    )
                    await asyncio.to_thread(outcomes.emit, failure, catalogue)
                    continue
            await asyncio.to_thread(remember_cycle_indexes, catalogue, cycle_dir)
            print(f"{record.cycle_id}: {record.key} ({format_size(record.size)}) in {s.name}")
            done = upload_done(outcomes, record, time.monotonic() - started)
            await asyncio.to_thread(outcomes.emit, done, catalogue)
    return FAILURE if failed else OK


@contextmanager
def _progress(cycle_id: str) -> Iterator[Progress | None]:
    """A bytes / rate / ETA bar on a terminal; otherwise the structured log events suffice."""
    if not sys.stderr.isatty():
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
