"""``backup [--full]`` and ``seal``: the local backup stage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import structlog

from localbackup.configkit import format_size
from localbackup.hooks import HookFailed
from localbackup.step import StepResult, run_backup_step, seal_open_cycle
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS

if TYPE_CHECKING:
    from watcher.config import AppConfig

log = structlog.get_logger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``backup`` and ``seal``."""
    p = sub.add_parser(
        "backup", help="one local backup step: plan, write the increment, seal if due"
    )
    p.add_argument("--full", action="store_true", help="start a new cycle with a full backup")
    p.set_defaults(run=run_backup)
    s = sub.add_parser("seal", help="seal the open cycle now so that it gets uploaded")
    s.set_defaults(run=run_seal)


def run_backup(args: argparse.Namespace, config: AppConfig) -> int:
    """One local backup step."""
    if not config.backup.sources:
        print(
            f"glacier-backup: configuration error: {config.file}: backup.sources: "
            "no sources configured",
            file=sys.stderr,
        )
        return USAGE
    from watcher.notify.events import NoticeEvent
    from watcher.outcomes import Outcomes

    outcomes = Outcomes(config)
    outcomes.emit(outcomes.notice(NoticeEvent.BACKUP_STARTED))
    try:
        with _progress() as progress:
            result = run_backup_step(
                config.backup, config.watch.marker_dir, force_full=args.full, progress=progress
            )
    except Exception as exc:
        outcomes.emit(outcomes.notice(NoticeEvent.BACKUP_FAILED, error=str(exc)))
        outcomes.close()
        if isinstance(exc, HookFailed):
            print(f"glacier-backup: backup failed: {exc}", file=sys.stderr)
            return FAILURE
        raise
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


def run_seal(args: argparse.Namespace, config: AppConfig) -> int:
    """Seal the open cycle now."""
    result = seal_open_cycle(config.backup, config.watch.marker_dir)
    if result.sealed is None:
        print(f"nothing to seal: {result.reason}")
    else:
        print(
            f"sealed cycle {result.sealed.cycle_id} "
            f"({len(result.sealed.increments)} increments, {format_size(result.sealed.data_size)})"
        )
    return OK


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A live files/bytes counter on a terminal; nothing otherwise (the log has the events)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]backup[/] {task.fields[files]:,} files, {task.fields[size]}"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("backup", files=0, size="0 B", total=None)

        def update(files: int, nbytes: int) -> None:
            bar.update(task, files=files, size=format_size(nbytes))

        yield update


def _print_summary(r: StepResult) -> None:
    inc = r.increment
    skipped = ", ".join(f"{n} {k}" for k, n in sorted(inc.skipped.items()) if n) or "none"
    lines = [
        f"cycle {r.cycle_id}, increment {r.plan.number} ({r.plan.kind}): {r.plan.reason}",
        f"  files: {inc.files_scanned:,} scanned, {inc.files_written:,} written, "
        f"{inc.deleted:,} deleted since the base",
        f"  bytes: {format_size(inc.bytes_in)} in, {format_size(inc.bytes_out)} out",
        f"  skipped: {skipped}",
        f"  warnings: {r.warnings}",
    ]
    lines += [f"    hook: {w}" for w in r.hook_warnings]
    lines += [f"    {w.kind}: {w.path}: {w.message}" for w in inc.warnings[:50]]
    if len(inc.warnings) > 50:
        lines.append(f"    ... and {len(inc.warnings) - 50} more (see the log)")
    lines += [f"  sealed cycle {s.cycle_id} ({len(s.increments)} increments)" for s in r.sealed]
    lines.append(f"  duration: {r.seconds:.1f} s")
    print("\n".join(lines))
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
