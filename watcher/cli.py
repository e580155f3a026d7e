"""``glacier-backup``: the command line, and the composition root that wires the packages."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from localbackup.configkit import ConfigError
from watcher import logs
from watcher.exitcodes import FAILURE, USAGE

# Each module registers its subcommands with add_parser(subparsers) and runs them.
COMMAND_MODULES = (
    "watcher.commands.init",
    "watcher.commands.keygen",
    "watcher.commands.backup",
    "watcher.commands.upload",
    "watcher.commands.watch",
    "watcher.commands.status",
    "watcher.commands.service",
    "watcher.commands.restore",
    "watcher.commands.files",
    "watcher.commands.inventory",
    "watcher.commands.prune",
    "watcher.commands.config_cmd",
    "watcher.commands.legacy",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glacier-backup",
        description="Incremental local backups, sealed into cycles and uploaded encrypted to "
        "cold storage.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="configuration file (default: $XDG_CONFIG_HOME/glacier-backup/config.toml)",
    )
    parser.add_argument("--log-level", choices=logs.LEVELS, default="info")
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="auto",
        help="console lines or JSON lines (default: console on a terminal, JSON otherwise)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    log = structlog.get_logger("glacier_backup")
    try:
        if getattr(args, "needs_config", True):
            from watcher.config import load_config

            return int(args.run(args, load_config(args.config)))
        return int(args.run(args))
    except ConfigError as exc:
        print(f"glacier-backup: configuration error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("glacier-backup: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        log.error("command.failed", command=args.command, error=str(exc), type=type(exc).__name__)
        print(f"glacier-backup: error: {exc}", file=sys.stderr)
        return FAILURE


def run() -> None:
    sys.exit(main())
