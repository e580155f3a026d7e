"""``restore [CYCLE|latest] [--at N|TIME] --to DIR``: bring a point in time back.

From the local spool (``--from-spool``: sealed cycles and the complete increments of the open
one) or from an archive in the configured store, found in the catalogue or, when the catalogue
knows none, in the store's listing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from localbackup import testpoints
from localbackup.configkit import format_size
from localbackup.extract import (
    ExtractError,
    ExtractOptions,
    ExtractStats,
    check_target,
    restore_from_cycle_dir,
)
from localbackup.formats import FormatError, IncrementManifest, SealedCycle, load_sealed_cycle
from localbackup.index import IndexFormatError
from localbackup.pointintime import (
    LATEST,
    PointInTimeError,
    choose_cycle,
    choose_increment,
    increment_chain,
    parse_at,
)
from localbackup.spool import Spool
from uploader.catalogue import Catalogue
from uploader.crypto import AgeError
from uploader.restore import RestoreError, find_archives, identities_for, restore_archive
from uploader.stores import Store, StoreError, StoreNotAvailable, open_store
from watcher.commands.restore_cold import (
    RetrievalDeclined,
    add_cold_arguments,
    cold_class,
    restore_cold,
)
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS

if TYPE_CHECKING:
    from watcher.config import AppConfig

log = structlog.get_logger(__name__)

_FAILURES = (
    ExtractError,
    RestoreError,
    AgeError,
    StoreError,
    FormatError,
    IndexFormatError,
    OSError,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("restore", help="bring a point in time back into a directory")
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
        required=True,
        type=Path,
        metavar="DIR",
        help="where to restore (must not exist or be empty, unless --force)",
    )
    p.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="PATTERN",
        help="restore only archive paths matching this fnmatch pattern "
        "(a directory means its whole subtree); repeatable",
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
    p.add_argument(
        "--identity",
        type=Path,
        metavar="FILE",
        help="age identity file (default: [encryption] identity_file)",
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="do not ask before replacing with --force, or before requesting a retrieval",
    )
    add_cold_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Restore one point in time; exit 1 (and leave no restored tree) on any failure."""
    try:
        at = parse_at(args.at) if args.at is not None else None
    except PointInTimeError as exc:
        return _usage(str(exc))
    to: Path = args.to.expanduser().absolute()
    refused = _target_refused(to, args)
    if refused is not None:
        return refused
    options = ExtractOptions(patterns=tuple(args.path), allow_devices=args.allow_devices)
    try:
        if args.from_spool:
            stats = _from_spool(
                config, wanted=args.cycle, at=at, to=to, force=args.force, options=options
            )
        else:
            store = open_store(config.store)
            found = asyncio.run(_from_store(store, config, args, at=at, to=to, options=options))
            if found is None:  # a retrieval is running: the command said so
                return OK
            stats = found
    except (PointInTimeError, StoreNotAvailable, RetrievalDeclined) as exc:
        return _usage(str(exc))
    except _FAILURES as exc:
        log.error("restore.failed", error=str(exc), type=type(exc).__name__)
        return _fail(str(exc))
    print(
        f"restored into {to}: {stats.files:,} files, {format_size(stats.bytes)}, "
        f"{stats.members:,} entries written, {stats.deleted:,} removed as deleted later"
    )
    for w in stats.warnings:
        print(f"  warning: {w}")
    log.info(
        "restore.done",
        to=str(to),
        files=stats.files,
        bytes=stats.bytes,
        deleted=stats.deleted,
        warnings=len(stats.warnings),
    )
    testpoints.pause("restore.after_done")
    return WARNINGS if stats.warnings else OK


def _from_spool(
    config: AppConfig,
    *,
    wanted: str,
    at: int | datetime | None,
    to: Path,
    force: bool,
    options: ExtractOptions,
) -> ExtractStats:
    cycles = {c.cycle_id: c for c in Spool(config.backup.spool_dir).cycles()}
    if wanted in (None, LATEST):
        # right after a rotation the new open cycle has no complete increment yet: "latest" is
        # the newest cycle that has one (an explicitly named cycle still fails below)
        restorable = {k: c for k, c in cycles.items() if c.sealed or c.manifests()}
        cycles = restorable or cycles
    cycle_dir = cycles[choose_cycle(list(cycles), wanted)]
    sealed = cycle_dir.sealed
    increments = list(
        load_sealed_cycle(cycle_dir.path).increments if sealed else cycle_dir.manifests()
    )
    inc = choose_increment(increments, at)
    state = "sealed" if sealed else "open"
    _print_plan(f"{cycle_dir.cycle_id} ({state}, in the spool)", increments, inc, None)
    return restore_from_cycle_dir(
        cycle_dir.path, increments, inc.number, to, force=force, options=options
    )


async def _from_store(
    store: Store,
    config: AppConfig,
    args: argparse.Namespace,
    *,
    at: int | datetime | None,
    to: Path,
    options: ExtractOptions,
) -> ExtractStats | None:
    async with store as s:
        with Catalogue.in_state_dir(config.state_dir) as catalogue:
            archives = {
                a.cycle_id: a for a in await find_archives(s, catalogue, config.backup.host)
            }
        if not archives:
            raise PointInTimeError(f"no archive of host {config.backup.host!r} in {s.name}")
        archive = archives[choose_cycle(list(archives), args.cycle)]
        identities = (
            identities_for(config.encryption, args.identity)
            if archive.key.endswith(".age")
            else None
        )

        def on_plan(cycle: SealedCycle, inc: IncrementManifest) -> None:
            where = (
                f"{cycle.cycle_id} (archive {archive.key} in {s.name}, {format_size(archive.size)})"
            )
            _print_plan(where, list(cycle.increments), inc, cycle.mode)

        storage_class = await cold_class(s, archive.key)
        if storage_class is not None:
            with Catalogue.in_state_dir(config.state_dir) as catalogue:
                return await restore_cold(
                    s,
                    catalogue,
                    archive,
                    storage_class,
                    args,
                    identities=identities,
                    at=at,
                    to=to,
                    options=options,
                    on_plan=on_plan,
                )
        result = await restore_archive(
            s,
            archive.key,
            to,
            identities=identities,
            at=at,
            force=args.force,
            options=options,
            on_plan=on_plan,
        )
        return result.stats


def _print_plan(
    where: str, increments: list[IncrementManifest], inc: IncrementManifest, mode: str | None
) -> None:
    chain = increment_chain(increments, inc.number)
    size = sum(m.tar.size for m in increments if m.number in chain)
    finished = inc.finished_at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"restoring cycle {where}")
    print(
        f"  increment {inc.number} ({inc.kind}), finished {finished}"
        f"{f', {mode} cycle' if mode else ''}"
    )
    print(f"  applying increments {', '.join(map(str, chain))} ({format_size(size)} compressed)")
    sys.stdout.flush()


def _target_refused(to: Path, args: argparse.Namespace) -> int | None:
    """Every precondition on the target, before any work (the exit code if one fails): a cold
    restore would otherwise pay for a retrieval and download it all, only to be refused."""
    try:
        check_target(to, force=args.force)
    except ExtractError as exc:
        return _fail(str(exc))
    return None if _may_replace(to, args) else USAGE


def _may_replace(to: Path, args: argparse.Namespace) -> bool:
    """--force on a non-empty directory: ask on a terminal, or require --yes."""
    if not (args.force and to.is_dir() and not to.is_symlink() and any(to.iterdir())):
        return True
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(
            f"glacier-backup: {to} is not empty: add --yes to replace its contents", file=sys.stderr
        )
        return False
    answer = input(f"replace everything in {to} with the restored tree? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _usage(message: str) -> int:
    print(f"glacier-backup: {message}", file=sys.stderr)
    return USAGE


def _fail(message: str) -> int:
    print(f"glacier-backup: restore failed: {message}", file=sys.stderr)
    return FAILURE
