"""``migrate --from OLD_CONFIG [CYCLE...]``: move this host's archives out of a Glacier vault.

``--config`` (the new configuration) names the destination store; ``--from`` the configuration
whose ``[store]`` is the vault (usually the previous one). The command line only: the use case is
:mod:`uploader.migrate`; it talks with the user through a
:class:`~watcher.commands.terminal.TerminalUI`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from localbackup.configkit import ConfigError, parse_size
from uploader.catalogue import Catalogue
from uploader.maintenance import storage_class_for
from uploader.migrate import (
    MigrateOutcome,
    MigrateRefused,
    MigrateRequest,
    MigrateSetup,
    MigrationLocked,
    migrate,
    migration_lock,
)
from uploader.restore import POLL_FIRST, POLL_MAX, TIER_CHOICES, RestoreDeclined
from uploader.stores import StoreError, StoreNotAvailable, open_store
from watcher.commands.parsers import add_command
from watcher.commands.restore_cold import seconds
from watcher.commands.terminal import TerminalUI, declined
from watcher.exitcodes import FAILURE, OK, USAGE

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

log = structlog.get_logger(__name__)

SPOOL = "migrate-spool"  # under the state directory: verified ranges waiting for their part


def add_parser(sub: Subparsers) -> None:
    """The ``migrate`` command and its arguments."""
    p = add_command(
        sub,
        "migrate",
        summary="move this host's archives from a Glacier vault to the configured store",
        description="Copy this host's archives from the vault of --from's [store] into the "
        "[store] of --config, ciphertext unchanged and verified on both sides; resumable. A "
        "quote (archives, retrieval and storage costs, waits) comes before anything is "
        "requested.",
        examples=[
            "glacier-backup --config new.toml migrate --from old.toml --quote",
            "glacier-backup --config new.toml migrate --from old.toml --yes --max-per-day 50GiB",
            "glacier-backup --config new.toml migrate --from old.toml --resume",
            "glacier-backup --config new.toml migrate --from old.toml --resume "
            "--delete-source-after-min-age",
        ],
    )
    p.add_argument(
        "--from",
        dest="source_config",
        required=True,
        type=Path,
        metavar="OLD_CONFIG",
        help="the configuration whose [store] is the Glacier vault (usually your previous one)",
    )
    p.add_argument(
        "cycles",
        nargs="*",
        metavar="CYCLE",
        help="only these cycles (or, with --include-legacy, these GlacierBackup-<ts>.tar[.enc]"
        " archives); default: every archive of this host",
    )
    p.add_argument(
        "--tier",
        choices=TIER_CHOICES,
        default="Bulk",
        help="retrieval tier (default Bulk: the cheapest, typically 5-12 hours)",
    )
    p.add_argument(
        "--max-per-day",
        type=_size,
        metavar="SIZE",
        help="request at most this much per 24 hours (e.g. 50GiB); the rest in later batches",
    )
    p.add_argument("--quote", action="store_true", help="show the archives and costs, only")
    p.add_argument("--yes", action="store_true", help="request retrievals without asking")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--wait", action="store_true", help="wait for retrievals and batches until all is moved"
    )
    when.add_argument(
        "--resume",
        action="store_true",
        help="continue a migration: copy what is ready, request what is due, then stop",
    )
    p.add_argument(
        "--delete-source-after-min-age",
        dest="delete_source",
        action="store_true",
        help="delete each vault archive whose copy is verified, once it is past the vault's "
        "90-day minimum storage duration (no early-deletion fee)",
    )
    p.add_argument(
        "--include-legacy",
        action="store_true",
        help="also move the original tool's archives (GlacierBackup-<ts>.tar[.enc]), as they are",
    )
    p.add_argument(
        "--poll-interval",
        type=seconds,
        default=POLL_FIRST,
        metavar="SECONDS",
        help=f"--wait: first interval between checks (default {POLL_FIRST:.0f})",
    )
    p.add_argument(
        "--poll-max",
        type=seconds,
        default=POLL_MAX,
        metavar="SECONDS",
        help=f"--wait: longest interval between checks (default {POLL_MAX:.0f})",
    )
    p.set_defaults(run=run)


def _size(text: str) -> int:
    try:
        value = parse_size(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a size such as 50GiB: {text!r}")
    return value


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Move the archives; exit 1 if any copy failed, 2 for a refusal (nothing requested)."""
    from watcher.config import load_config

    old = load_config(args.source_config)  # a ConfigError names the file: exit 2
    request = MigrateRequest(
        cycles=tuple(args.cycles),
        tier=args.tier,
        max_per_day=args.max_per_day,
        quote_only=args.quote,
        assume_yes=args.yes,
        wait=args.wait,
        resume=args.resume,
        delete_source=args.delete_source,
        include_legacy=args.include_legacy,
        poll_interval=args.poll_interval,
        poll_max=args.poll_max,
    )
    if old.store.type != "glacier":
        return _usage(
            f"{args.source_config}: [store] is {old.store.type!r}: --from names the "
            'configuration of the Glacier vault (type = "glacier") to move archives out of'
        )
    try:
        with migration_lock(config.state_dir):
            outcome = asyncio.run(_migrate(config, old, request))
    except (MigrateRefused, StoreNotAvailable, ConfigError) as exc:
        return _usage(str(exc))
    except RestoreDeclined as exc:
        return declined(exc)
    except (MigrationLocked, StoreError, OSError) as exc:
        log.error("migrate.failed", error=str(exc), type=type(exc).__name__)
        print(f"glacier-backup: migrate failed: {exc}", file=sys.stderr)
        return FAILURE
    return FAILURE if outcome.failed else OK


async def _migrate(config: AppConfig, old: AppConfig, request: MigrateRequest) -> MigrateOutcome:
    source, dest = open_store(old.store), open_store(config.store)
    same = old.state_dir.absolute() == config.state_dir.absolute()
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        old_catalogue = catalogue if same else Catalogue.in_state_dir(old.state_dir)
        try:
            async with source as s, dest as d:
                setup = MigrateSetup(
                    source=s,
                    dest=d,
                    catalogue=catalogue,
                    old_catalogue=old_catalogue,
                    host=config.backup.host,
                    upload=config.upload,
                    spool_root=config.state_dir / SPOOL,
                    dest_class=storage_class_for(config.store),
                )
                ui = TerminalUI(unit="archives")
                return await migrate(setup, request, ui, clock=lambda: datetime.now(UTC))
        finally:
            if not same:
                old_catalogue.close()


def _usage(message: str) -> int:
    print(f"glacier-backup: {message}", file=sys.stderr)
    return USAGE
