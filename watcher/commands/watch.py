"""``watch``: run the service (systemd runs this)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from watcher.config import AppConfig

log = structlog.get_logger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``watch``."""
    p = sub.add_parser("watch", help="the service: upload each sealed cycle as its marker appears")
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
