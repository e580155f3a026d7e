"""``glacier-backup``: the command line, and the composition root that wires the packages."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from localbackup.configkit import ConfigError
from watcher import hosts, logs, output
from watcher.exitcodes import FAILURE, OK, USAGE

if TYPE_CHECKING:
    from watcher.config import AppConfig

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
    "cycles": "watcher.commands.cycles",
    "restore-legacy": "watcher.commands.legacy",
    "migrate": "watcher.commands.migrate",
    "verify": "watcher.commands.verify",
}
INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C
_GLOBAL_OPTIONS_WITH_VALUE = ("--config", "--log-level", "--log-format", "--host")


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not a global option)."""
    args = iter(argv)
    for word in args:
        if word in _GLOBAL_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not word.startswith("-"):
            return word
    return None


def version() -> str:
    """The installed version of the suite."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("glacier-backup-suite")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked for (reading the
    package metadata costs more than the start-up of a whole command)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"glacier-backup {version()}")
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; only ``command``'s module is imported when it is known."""
    parser = argparse.ArgumentParser(
        prog="glacier-backup",
        description="Incremental local backups, sealed into cycles and uploaded encrypted to "
        "cold storage. 'glacier-backup COMMAND --help' describes each command, with examples.",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="configuration file (default: $XDG_CONFIG_HOME/glacier-backup/config.toml)",
    )
    parser.add_argument("--host", type=hosts.host_name, metavar="NAME", help=hosts.HELP)
    parser.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        default=None,
        help="log events shown (default: warning on a terminal, info otherwise)",
    )
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
    """Run one command; its exit code (0 ok, 1 failure, 2 usage or configuration, 3 warnings).

    A closed output pipe (``status | head -1``, ``upload | true``) does not stop the command:
    the console script (:func:`run`) discards what is printed after the reader has gone
    (:class:`ReaderGoneSafe`), so the work is finished and its own exit code returned."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command_of(argv))
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    config: AppConfig | None = None
    try:
        if getattr(args, "needs_config", True):
            from watcher.config import load_config, with_host

            config = with_host(load_config(args.config), args.host)
            return int(args.run(args, config))
        return int(args.run(args))
    except ConfigError as exc:
        print(f"glacier-backup: configuration error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("glacier-backup: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        raise
    except Exception as exc:
        while isinstance(exc, ExceptionGroup):  # what failed, never "errors in a TaskGroup"
            exc = exc.exceptions[0]
        from watcher.hints import fix_for

        fix = fix_for(exc, config) if config is not None else None
        output.error(
            str(exc), fix=fix, event="command.failed", command=args.command, type=type(exc).__name__
        )
        return FAILURE


class ReaderGoneSafe:
    """Standard output that outlives its reader: once a write or flush finds the pipe closed,
    the rest goes to /dev/null, so a command that works (``upload | head -1``) still does all
    of its work and exits with its own code, and a command that only prints ends quietly."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text``; after the reader has gone, into /dev/null."""
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _quiet_after_broken_pipe()
            return self._stream.write(text)

    def flush(self) -> None:
        """Flush; a pending write the reader will never read goes to /dev/null."""
        try:
            self._stream.flush()
        except BrokenPipeError:
            _quiet_after_broken_pipe()
            self._stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _quiet_after_broken_pipe() -> None:
    """The reader of stdout has gone: send what is left to /dev/null, so that the flush at exit
    does not fail again (and print "Exception ignored ... BrokenPipeError")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run() -> None:
    """The ``glacier-backup`` console script."""
    code = OK  # if the reader stops reading first: nothing failed
    sys.stdout = cast(TextIO, ReaderGoneSafe(sys.stdout))
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_after_broken_pipe()
    sys.exit(code)
