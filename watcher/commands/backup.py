"""``backup [--full]`` and ``seal``: the local backup stage.

Each run records how it ended in the spool (``status`` shows it): ok, with warnings (exit 3),
or failed (exit 1, e.g. when every source is missing and nothing was written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from localbackup.configkit import format_size
from localbackup.hooks import HookFailed
from localbackup.logevents import get_logger
from localbackup.sources import NothingToBackUp
from localbackup.spool import BackupRecord, Spool
from localbackup.step import StepResult, run_backup_step, seal_open_cycle
from watcher import logs, output
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.humanize import count

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

log = get_logger(__name__)

_SHOWN_WARNINGS = 50


def add_parser(sub: Subparsers) -> None:
    """Register ``backup`` and ``seal``."""
    p = add_command(
        sub,
        "backup",
        summary="one local backup step: plan, write the increment, seal if due",
        description="Take one local backup: a full when a cycle starts, otherwise an "
        "incremental (or differential) increment of what changed, written crash-safely into "
        "the spool. The cycle is sealed (and its marker written for the uploader) after its "
        "last increment. A source that is missing keeps its previous entries (exit 3, with a "
        "warning); when every source is missing nothing is written (exit 1).",
        examples=["glacier-backup backup", "glacier-backup backup --full"],
    )
    p.add_argument("--full", action="store_true", help="start a new cycle with a full backup")
    p.set_defaults(run=run_backup)
    s = add_command(
        sub,
        "seal",
        summary="seal the open cycle now so that it gets uploaded",
        description="Seal the open cycle now, whatever its number of increments: cycle.json "
        "and the marker are written and the service uploads it (touching a file in the marker "
        "directory does the same).",
        examples=["glacier-backup seal"],
    )
    s.set_defaults(run=run_seal)


def run_backup(args: argparse.Namespace, config: AppConfig) -> int:
    """One backup step; exit 0, 3 (warnings) or 1 (nothing backed up)."""
    if not config.backup.sources:
        print(
            f"glacier-backup: configuration error: {config.file}: backup.sources: "
            "no sources configured",
            file=sys.stderr,
        )
        return USAGE
    from watcher.notify.events import NoticeEvent
    from watcher.outcomes import Outcomes

    spool = Spool(config.backup.spool_dir)
    outcomes = Outcomes(config)
    outcomes.emit(outcomes.notice(NoticeEvent.BACKUP_STARTED))
    try:
        with _progress() as progress:
            result = run_backup_step(
                config.backup, config.watch.marker_dir, force_full=args.full, progress=progress
            )
    except Exception as exc:
        # Said first: recording the result can fail for the same reason (a full spool).
        outcomes.emit(outcomes.notice(NoticeEvent.BACKUP_FAILED, error=str(exc)))
        outcomes.close()
        try:
            spool.record_result(BackupRecord(datetime.now(UTC), "failed", message=str(exc)))
        except OSError as unrecorded:
            output.warning(f"the failure could not be recorded for status: {unrecorded}")
        if isinstance(exc, NothingToBackUp):
            output.error(str(exc), event="backup.failed", missing=[str(m) for m in exc.missing])
            return FAILURE
        if isinstance(exc, HookFailed):
            output.error(f"backup failed: {exc}", event="backup.failed")
            return FAILURE
        raise
    _record(spool, result)
    for w in result.increment.warnings:
        if w.kind == "missing_source":  # loud: a whole source was not backed up
            output.warning(f"WARNING: {w.path}: {w.message}")
    _print_summary(result)
    inc = result.increment
    outcomes.emit(
        outcomes.notice(
            NoticeEvent.BACKUP_DONE,
            cycle=result.cycle_id,
            sizes={"read": inc.bytes_in, "written": inc.bytes_out},
            duration=result.seconds,
            warnings=result.warnings,
            message=f"increment {result.plan.number} ({result.plan.kind})",
            details={"sealed": " ".join(c.cycle_id for c in result.sealed)},
        )
    )
    outcomes.close()
    return WARNINGS if result.warnings else OK


def _record(spool: Spool, result: StepResult) -> None:
    """How this run ended, for ``status``."""
    first = result.increment.warnings[0] if result.increment.warnings else None
    hooks = result.hook_warnings
    message = f"{first.path}: {first.message}" if first else (f"hook: {hooks[0]}" if hooks else "")
    spool.record_result(
        BackupRecord(
            result.manifest.finished_at,
            "warnings" if result.warnings else "ok",
            warnings=result.warnings,
            cycle_id=result.cycle_id,
            increment=result.plan.number,
            message=message,
        )
    )


def run_seal(args: argparse.Namespace, config: AppConfig) -> int:
    """Seal the open cycle now (nothing to seal is not an error)."""
    result = seal_open_cycle(config.backup, config.watch.marker_dir)
    if result.sealed is None:
        print(f"nothing to seal: {result.reason}")
    else:
        print(
            f"sealed cycle {result.sealed.cycle_id} "
            f"({count(len(result.sealed.increments), 'increment')}, "
            f"{format_size(result.sealed.data_size)})"
        )
    return OK


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A live files/bytes counter on a terminal; nothing otherwise (the log has the events)."""
    if not output.on_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]backup[/] {task.fields[files]:,} entries, {task.fields[size]} read"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("backup", files=0, size="0 B", total=None)

        def update(files: int, nbytes: int) -> None:
            # called every 1024 entries and every few MiB read: each call is worth a frame
            bar.update(task, files=files, size=format_size(nbytes), refresh=True)

        yield update


def _print_summary(r: StepResult) -> None:
    inc = r.increment
    skipped = ", ".join(f"{n:,} {k}" for k, n in sorted(inc.skipped.items()) if n) or "none"
    lines = [
        f"cycle {r.cycle_id}, increment {r.plan.number} ({r.plan.kind}): {r.plan.reason}",
        f"  files: {inc.files_scanned:,} scanned, {inc.files_written:,} written, "
        f"{inc.deleted:,} deleted since the base",
        f"  bytes: {format_size(inc.bytes_in)} read, {format_size(inc.bytes_out)} written "
        "(compressed)",
        f"  skipped: {skipped}",
        f"  warnings: {r.warnings}",
    ]
    lines += [f"    hook: {w}" for w in r.hook_warnings]
    lines += [f"    {w.kind}: {w.path}: {w.message}" for w in inc.warnings[:_SHOWN_WARNINGS]]
    if len(inc.warnings) > _SHOWN_WARNINGS:
        lines.append(f"    ... and {len(inc.warnings) - _SHOWN_WARNINGS} more (see the log)")
    lines += [
        f"  sealed cycle {s.cycle_id} ({count(len(s.increments), 'increment')})" for s in r.sealed
    ]
    lines.append(f"  duration: {r.seconds:.1f} s")
    print("\n".join(lines))
    if logs.is_json():  # the journal's record of every warning; a terminal has the summary
        for w in inc.warnings:
            log.warning("backup.file_warning", path=w.path, kind=w.kind, message=w.message)
    log.info(
        "backup.summary",
        cycle=r.cycle_id,
        number=r.plan.number,
        kind=r.plan.kind,
        files_scanned=inc.files_scanned,
        files_written=inc.files_written,
        bytes_in=inc.bytes_in,
        bytes_out=inc.bytes_out,
        skipped=dict(inc.skipped),
        warnings=len(inc.warnings),
        sealed=[s.cycle_id for s in r.sealed],
        seconds=round(r.seconds, 3),
    )
