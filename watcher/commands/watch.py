"""``watch``: run the service (systemd runs this)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from localbackup.logevents import get_logger
from watcher.commands.parsers import add_command

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

log = get_logger(__name__)


def add_parser(sub: Subparsers) -> None:
    """Register ``watch``."""
    p = add_command(
        sub,
        "watch",
        summary="the service: upload each sealed cycle as its marker appears",
        description="Run the service (systemd runs it: 'glacier-backup service install'). It "
        "uploads every sealed cycle as soon as its marker appears, resumes interrupted uploads "
        "first, seals the open cycle when any other file appears in the marker directory, and "
        "runs inventories and pruning every [watch] maintenance_every. SIGHUP re-reads the "
        "configuration; SIGTERM stops at a safe point.",
        examples=["glacier-backup watch", "glacier-backup --log-format json watch"],
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Run the service until it is stopped."""
    from watcher.service import serve

    config.encryption.require_key()  # a service that cannot upload should not start
    if config.encryption.mode == "none":
        log.warning(
            "encryption.disabled",
            message="encryption mode is 'none': archives leave this host unencrypted",
        )
    return asyncio.run(serve(config))
