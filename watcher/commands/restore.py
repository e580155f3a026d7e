"""``restore [CYCLE|latest] [--at N|TIME] --to DIR``: bring a point in time back.

From the local spool (``--from-spool``: sealed cycles and the complete increments of the open
one) or from an archive in the configured store, found in the catalogue or, when the catalogue
knows none, in the store's listing. The command line only: the arguments become a
:class:`~uploader.restore.RestoreRequest` for the use cases in :mod:`uploader.restore`, which
talk with the user through a :class:`~watcher.commands.terminal.TerminalUI`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from localbackup import testpoints
from localbackup.configkit import format_size
from localbackup.extract import ExtractError, ExtractStats
from localbackup.formats import FormatError
from localbackup.index import IndexFormatError
from localbackup.logevents import get_logger
from localbackup.pathmatch import NoPathMatch, roots_of_sources
from localbackup.pointintime import PointInTimeError, parse_at
from uploader.catalogue import Catalogue
from uploader.crypto import AgeError
from uploader.restore import (
    RestoreDeclined,
    RestoreError,
    RestoreRequest,
    already_restored,
    check_target_first,
    restore_from_spool,
    restore_from_store,
)
from uploader.stores import Store, StoreError, StoreNotAvailable, open_store
from watcher import output
from watcher.commands.parsers import add_command, add_identity_option
from watcher.commands.restore_cold import add_cold_arguments, retrieval_options
from watcher.commands.terminal import TerminalUI, declined
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.hints import fix_for
from watcher.hosts import add_host_option
from watcher.humanize import count

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

log = get_logger(__name__)

_FAILURES = (
    NoPathMatch,  # raised before anything is retrieved or written, when a local index is known
    ExtractError,
    RestoreError,
    AgeError,
    StoreError,
    FormatError,
    IndexFormatError,
    OSError,
)


def add_parser(sub: Subparsers) -> None:
    """The ``restore`` command and its arguments (the cold-storage ones: :mod:`.restore_cold`)."""
    p = add_command(
        sub,
        "restore",
        summary="bring a point in time back into a directory",
        description="Restore one point in time of a cycle (the last increment of the latest "
        "cycle by default) into a new or empty directory, from the store or, with "
        "--from-spool, from the local spool. An archive in cold storage is retrieved first: "
        "the expected wait and cost are shown and confirmed before anything is requested. "
        "--path restores only what a pattern selects, the same way 'files PATTERN' lists it; "
        "a pattern that selects nothing is an error before anything is retrieved.",
        examples=[
            "glacier-backup restore latest --to ~/restored",
            "glacier-backup restore latest --to ~/restored-docs --path 'docs/*'",
            "glacier-backup restore 20261126T040000Z --at 3 --to /tmp/r",
            "glacier-backup restore --from-spool latest --to /tmp/r",
            "glacier-backup restore latest --quote --path 'docs/*'",
        ],
    )
    p.add_argument(
        "cycle",
        nargs="?",
        default="latest",
        metavar="CYCLE",
        help="a cycle id, or 'latest' (the default)",
    )
    p.add_argument(
        "--at",
        metavar="N|TIME",
        help="increment number, or ISO date/time: the newest increment finished "
        "at or before it (default: the last increment)",
    )
    p.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="where to restore (must not exist or be empty, unless --force); required unless "
        "--quote",
    )
    p.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="PATTERN",
        help="restore only what this pattern selects, as 'files PATTERN' shows it: relative "
        "to each source root (docs/*, docs/ = the folder and all below), a name anywhere "
        "(*.txt, a.txt) or an absolute path; repeatable",
    )
    p.add_argument(
        "--force", action="store_true", help="replace the contents of a non-empty --to directory"
    )
    p.add_argument(
        "--allow-devices",
        action="store_true",
        help="create device nodes and FIFOs found in the archive",
    )
    p.add_argument(
        "--from-spool",
        action="store_true",
        help="restore from the local spool instead of the store",
    )
    add_identity_option(p)
    p.add_argument(
        "--yes",
        action="store_true",
        help="do not ask before replacing with --force, or before requesting a retrieval",
    )
    p.add_argument(
        "--quote",
        action="store_true",
        help="say which archive is needed, its size, and for each retrieval tier the expected "
        "wait and estimated cost (and what a --path restore reads); request and download "
        "nothing",
    )
    add_host_option(p)
    add_cold_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Restore one point in time; exit 1 (and leave no restored tree) on any failure."""
    try:
        request = _request(args, config)
    except (PointInTimeError, _NoTarget) as exc:
        return _usage(str(exc))
    ui = TerminalUI()
    settled = _done_already(request, config)
    if settled is None:
        settled = _target_refused(request, ui)
    if settled is not None:
        return settled
    try:
        stats = _restore(request, config, ui)
    except (PointInTimeError, StoreNotAvailable, RestoreDeclined) as exc:
        return _usage(str(exc))
    except _FAILURES as exc:
        output.error(
            f"restore failed: {exc}",
            fix=fix_for(exc, config),
            event="restore.failed",
            type=type(exc).__name__,
        )
        return FAILURE
    if stats is None:  # a retrieval is running: the command said so
        return OK
    print(
        f"restored into {request.to}: {count(stats.files, 'file')} ({format_size(stats.bytes)}), "
        f"{count(stats.dirs, 'directory', 'directories')}, {count(stats.symlinks, 'symlink')}"
    )
    for w in stats.warnings:
        print(f"  warning: {w}")
    log.info(
        "restore.done",
        to=str(request.to),
        files=stats.files,
        bytes=stats.bytes,
        dirs=stats.dirs,
        members_written=stats.members,
        deleted=stats.deleted,
        warnings=len(stats.warnings),
    )
    testpoints.pause("restore.after_done")
    return WARNINGS if stats.warnings else OK


def _done_already(request: RestoreRequest, config: AppConfig) -> int | None:
    """``--resume`` of a restore that finished (stopped right after its end): says so, OK."""
    if not request.retrieval.resume:
        return None
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        done = already_restored(catalogue, request)
    if done is None:
        return None
    print(
        f"the restore into {request.to} finished on {done.finished_at:%Y-%m-%d %H:%M} UTC "
        f"(cycle {done.cycle_id}, increment {done.increment}, from {done.key} in "
        f"{done.store}): nothing to resume"
    )
    return OK


def _target_refused(request: RestoreRequest, ui: TerminalUI) -> int | None:
    """The exit code if the target is refused before any work (a cold restore would otherwise
    pay for a retrieval and download it all, only to be refused). A quote has no target."""
    if request.quote:
        if request.from_spool:
            return _usage("--quote is for archives in the store; --from-spool costs nothing")
        return None
    try:
        check_target_first(request, ui)
    except ExtractError as exc:
        return _fail(str(exc))
    except RestoreDeclined as exc:
        return declined(exc)
    return None


def _restore(request: RestoreRequest, config: AppConfig, ui: TerminalUI) -> ExtractStats | None:
    if request.from_spool:
        return restore_from_spool(request, config.backup.spool_dir, ui)
    store = open_store(config.store)
    return asyncio.run(_from_store(store, config, request, ui))


class _NoTarget(Exception):
    """``--to`` is missing (only ``--quote`` does without it)."""


def _request(args: argparse.Namespace, config: AppConfig) -> RestoreRequest:
    """The parsed arguments as a request; ``--at`` is parsed here (PointInTimeError)."""
    if args.to is None and not args.quote:
        raise _NoTarget("restore: the following arguments are required: --to")
    return RestoreRequest(
        to=(args.to or Path()).expanduser().absolute(),
        cycle=args.cycle,
        at=parse_at(args.at) if args.at is not None else None,
        patterns=tuple(args.path),
        roots=roots_of_sources(config.backup.sources),
        allow_devices=args.allow_devices,
        force=args.force,
        assume_yes=args.yes,
        from_spool=args.from_spool,
        identity=args.identity,
        retrieval=retrieval_options(args),
        quote=args.quote,
        max_rate=config.restore.max_rate,
    )


async def _from_store(
    store: Store, config: AppConfig, request: RestoreRequest, ui: TerminalUI
) -> ExtractStats | None:
    async with store as s:
        with Catalogue.in_state_dir(config.state_dir) as catalogue:
            return await restore_from_store(
                request,
                s,
                catalogue,
                host=config.backup.host,
                encryption=config.encryption,
                ui=ui,
            )


def _usage(message: str) -> int:
    print(f"glacier-backup: {message}", file=sys.stderr)
    return USAGE


def _fail(message: str) -> int:
    print(f"glacier-backup: restore failed: {message}", file=sys.stderr)
    return FAILURE
