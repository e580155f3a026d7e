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

# Each module registers its subcommands with add_parser(subparsers) and runs them. The map from
# command to module lets a run import only its own command's module (start-up time matters for
# a backup run by a timer every hour); --help and unknown commands load them all.
COMMANDS = {
    "init": "watcher.commands.init",
    "keygen": "watcher.commands.keygen",
    "backup": "watcher.commands.backup",
    "seal": "watcher.commands.backup",
    "upload": "watcher.commands.upload",
    "watch": "watcher.commands.watch",
    "status": "watcher.commands.status",
    "service": "watcher.commands.service",
    "restore": "watcher.commands.restore",
    "files": "watcher.commands.files",
    "inventory": "watcher.commands.inventory",
    "prune": "watcher.commands.prune",
    "config": "watcher.commands.config_cmd",
    "restore-legacy": "watcher.commands.legacy",
    "migrate": "watcher.commands.migrate",
}
_GLOBAL_OPTIONS_WITH_VALUE = ("--config", "--log-level", "--log-format")


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not a global option)."""
    args = iter(argv)
    for word in args:
        if word in _GLOBAL_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser, with every command (or only ``command``'s, which is faster)."""
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
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command_of(argv))
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
    """The ``glacier-backup`` entry point."""
    sys.exit(main())
