"""``restore-legacy ARCHIVE --to DIR``: restore an archive made by the original tool.

ARCHIVE is a local file, as downloaded from the old vault (``GlacierBackup-<ts>.tar`` or
``.tar.enc``). No configuration is needed. The passphrase (the old ``localEncryptionKey``) comes
from ``--passphrase-file`` or ``GLACIER_BACKUP_LEGACY_PASSPHRASE``, never the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from localbackup.configkit import format_size
from localbackup.extract import ExtractOptions
from localbackup.logevents import get_logger
from localbackup.pathmatch import NoPathMatch
from localbackup.pointintime import PointInTimeError
from localbackup.safepath import ExtractError
from uploader.crypto import PassphraseError, read_passphrase
from uploader.restore import (
    LEGACY_PASSPHRASE_ENV,
    LegacyPlan,
    RestoreDeclined,
    confirm_replace,
    list_legacy,
    parse_legacy_at,
    restore_legacy,
)
from watcher import output
from watcher.commands.parsers import add_command
from watcher.commands.terminal import TerminalUI, declined
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.humanize import count

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers


log = get_logger(__name__)


def add_parser(sub: Subparsers) -> None:
    """Register ``restore-legacy``."""
    p = add_command(
        sub,
        "restore-legacy",
        summary="restore an archive made by the original tool (glacierclient)",
        description="Restore a GlacierBackup-<ts>.tar[.enc] archive of the original tool. It "
        "recorded no deletions: files deleted before the chosen time come back too.",
        examples=[
            "glacier-backup restore-legacy GlacierBackup-20200101.tar.enc --list",
            "glacier-backup restore-legacy GlacierBackup-20200101.tar.enc --to /tmp/old",
        ],
    )
    p.add_argument("archive", type=Path, metavar="ARCHIVE", help="the archive file (local)")
    p.add_argument("--to", type=Path, metavar="DIR", help="where to restore")
    p.add_argument(
        "--at",
        metavar="N|TIMESTAMP|TIME",
        help="backup number (0 = the oldest in the archive), the old tool's timestamp "
        "(20210510033700) or an ISO date/time: the newest backup at or before it "
        "(default: the last backup)",
    )
    p.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help=f"the old localEncryptionKey, for .enc archives (or ${LEGACY_PASSPHRASE_ENV})",
    )
    p.add_argument(
        "--inner-passphrase-file",
        type=Path,
        metavar="FILE",
        help="passphrase of .enc backups inside the archive, if it differs from the archive's",
    )
    p.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="PATTERN",
        help="restore only the paths this pattern selects (gitignore-like, as for restore "
        "--path; the old archives name no source roots, so a pattern with a '/' starts at /); "
        "repeatable",
    )
    p.add_argument("--list", action="store_true", help="list the backups in the archive, only")
    p.add_argument(
        "--force", action="store_true", help="replace the contents of a non-empty --to directory"
    )
    p.add_argument("--yes", action="store_true", help="do not ask before replacing with --force")
    p.set_defaults(run=run, needs_config=False)


def run(args: argparse.Namespace) -> int:
    """Restore one point in time of a legacy archive; exit 1 (and leave nothing) on failure."""
    try:
        at = parse_legacy_at(args.at) if args.at is not None else None
        passphrase = _passphrase(args.passphrase_file)
        inner = (
            read_passphrase(file=args.inner_passphrase_file) if args.inner_passphrase_file else None
        )
    except (PointInTimeError, PassphraseError) as exc:
        return _usage(str(exc))
    archive: Path = args.archive.expanduser()
    if args.list:
        return _list(archive, passphrase)
    if args.to is None:
        return _usage("restore-legacy: --to DIR is required (or --list)")
    return _restore(args, archive, at, passphrase, inner)


def _restore(
    args: argparse.Namespace,
    archive: Path,
    at: int | str | datetime | None,
    passphrase: bytes | None,
    inner: bytes | None,
) -> int:
    to: Path = args.to.expanduser().absolute()
    try:  # the same --force/--yes rule as restore
        confirm_replace(to, force=args.force, assume_yes=args.yes, ui=TerminalUI())
    except RestoreDeclined as exc:
        return declined(exc)
    try:
        result = restore_legacy(
            archive,
            to,
            passphrase=passphrase,
            inner_passphrase=inner,
            at=at,
            force=args.force,
            options=ExtractOptions(patterns=tuple(args.path)),
            on_plan=lambda plan: _print_plan(archive, plan, listing=False),
        )
    except PointInTimeError as exc:
        return _usage(str(exc))
    except NoPathMatch as exc:
        print(f"glacier-backup: {exc}", file=sys.stderr)
        return FAILURE
    except (ExtractError, OSError) as exc:
        output.error(
            f"restore failed: {exc}", event="legacy.restore_failed", type=type(exc).__name__
        )
        return FAILURE
    stats = result.stats
    print(
        f"restored into {to}: {count(stats.files, 'file')}, {format_size(stats.bytes)}, "
        f"{count(stats.members, 'entry', 'entries')} written (the original tool recorded no "
        "deletions: files deleted before this point in time are back too)"
    )
    for w in stats.warnings:
        print(f"  warning: {w}")
    return WARNINGS if stats.warnings else OK


def _list(archive: Path, passphrase: bytes | None) -> int:
    try:
        _print_plan(archive, list_legacy(archive, passphrase), listing=True)
    except (PointInTimeError, ExtractError, OSError) as exc:
        print(f"glacier-backup: {exc}", file=sys.stderr)
        return FAILURE
    return OK


def _passphrase(file: Path | None) -> bytes | None:
    if file is not None:
        return read_passphrase(file=file)
    if os.environ.get(LEGACY_PASSPHRASE_ENV):
        return read_passphrase(env=LEGACY_PASSPHRASE_ENV)
    return None


def _print_plan(archive: Path, plan: LegacyPlan, *, listing: bool) -> None:
    print(f"legacy archive {archive}: {len(plan.points)} backups")
    chain = {p.number for p in plan.chain}
    for p in plan.points:
        mark = "*" if p.number in chain and not listing else " "
        when = datetime.strptime(p.timestamp, "%Y%m%d%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
        print(f" {mark}{p.number:3d}  {when}  {p.kind:<11}  {format_size(p.size):>10}  {p.member}")
    for name in plan.ignored:
        print(f"  ignored: {name} (not a backup of the original tool)")
    if not listing:
        numbers = ", ".join(str(p.number) for p in plan.chain)
        print(
            f"  restoring backup {plan.target.number} ({plan.target.timestamp}): applying {numbers}"
        )
    sys.stdout.flush()


def _usage(message: str) -> int:
    print(f"glacier-backup: {message}", file=sys.stderr)
    return USAGE
