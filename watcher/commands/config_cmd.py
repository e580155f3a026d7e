"""``config import-legacy [DIR]``: convert the original tool's JSON options into our TOML
(``config check`` is in :mod:`.config_check`).

Writes the configuration (``--config`` or the default path; never overwriting), a new age
identity next to it unless one is there, and the old encryption key in a 0600 file next to it
(only for reading old archives with ``restore-legacy``). ``--dry-run`` prints the TOML and
writes nothing. Either way every old setting is explained: mapped, changed or not carried over.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from localbackup import paths
from localbackup.atomic import atomic_create
from localbackup.configkit import ConfigError
from watcher.commands.config_check import add_check
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK, USAGE
from watcher.legacy_config import Conversion, convert, read_legacy

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers

IDENTITY_FILE = "identity.txt"


def add_parser(sub: Subparsers) -> None:
    """Register ``config check`` and ``config import-legacy``."""
    p = add_command(
        sub,
        "config",
        summary="configuration tools: check, import-legacy",
        description="Check the configuration ('config check'), or convert the original "
        "tool's settings into one ('config import-legacy').",
        examples=["glacier-backup config check", "glacier-backup config import-legacy --dry-run"],
    )
    actions = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    add_check(actions)
    imp = add_command(
        actions,
        "import-legacy",
        summary="convert the original tool's JSON options (~/.glacierclient)",
        description="Convert includeexclude.json, localbackupoptions.json and "
        "glacierbackupoptions.json into a glacier-backup configuration, explaining each setting.",
        examples=[
            "glacier-backup config import-legacy --dry-run",
            "glacier-backup config import-legacy ~/.glacierclient",
        ],
    )
    imp.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path("~/.glacierclient"),
        metavar="DIR",
        help="where the old JSON files are (default: ~/.glacierclient)",
    )
    imp.add_argument(
        "--dry-run",
        "--stdout",
        dest="dry_run",
        action="store_true",
        help="print the configuration instead of writing it (nothing is written)",
    )
    imp.set_defaults(run=run_import, needs_config=False)


def run_import(args: argparse.Namespace) -> int:
    """Convert, then write (or print) the configuration and explain every setting."""
    home = Path.home()
    directory: Path = args.directory.expanduser()
    config_file: Path = (args.config or paths.default_config_file()).expanduser().absolute()
    if not directory.is_dir():
        print(f"glacier-backup: {directory} is not a directory", file=sys.stderr)
        return USAGE
    if not args.dry_run and os.path.lexists(config_file):
        print(f"glacier-backup: {config_file} already exists; not overwriting it", file=sys.stderr)
        return FAILURE
    identity_file = config_file.parent / IDENTITY_FILE
    try:
        settings = read_legacy(directory, home)
        recipient = None if args.dry_run else _recipient(identity_file)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        conv = convert(
            settings, home=home, recipient=recipient, identity_file=identity_file, stamp=stamp
        )
        if args.dry_run:
            print(conv.toml)
        else:
            _write(config_file, conv)
    except ConfigError as exc:
        print(f"glacier-backup: {exc}", file=sys.stderr)
        return USAGE
    except OSError as exc:
        print(f"glacier-backup: cannot write: {exc}", file=sys.stderr)
        return FAILURE
    _explain(conv, config_file, written=not args.dry_run)
    return OK


def _recipient(identity_file: Path) -> str:
    """The age recipient of the identity next to the config; created (0600) when missing."""
    from uploader.crypto import load_identities, write_identity_file

    paths.ensure_private_dir(identity_file.parent)
    if identity_file.exists():
        identity = load_identities(identity_file)[0]
    else:
        identity = write_identity_file(identity_file)
        print(f"created the age identity {identity_file} (mode 0600): new archives are")
        print("  encrypted to its public key; keep a copy offline, it is needed to restore them.")
    return identity.recipient().to_string()  # type: ignore[attr-defined, no-any-return]


def _write(config_file: Path, conv: Conversion) -> None:
    """The old keys (0600, never replaced by different content), then the config (new file)."""
    paths.ensure_private_dir(config_file.parent)
    for name, secret in conv.secrets.items():
        target = config_file.parent / name
        if target.exists():
            if target.read_bytes().rstrip(b"\n") != secret:
                raise ConfigError(target, "(file)", "exists with another key; not overwriting it")
            continue
        atomic_create(target, secret + b"\n")
    atomic_create(config_file, conv.toml.encode())


def _explain(conv: Conversion, config_file: Path, *, written: bool) -> None:
    out = sys.stderr if not written else sys.stdout  # --dry-run: stdout holds only the TOML
    print("what became of each setting of the original tool:", file=out)
    for note in conv.notes:
        print(note.line(indent=2), file=out)
    if not written:
        print("dry run: nothing was written", file=out)
        return
    print(f"wrote {config_file}", file=out)
    for name in conv.secrets:
        print(
            f"wrote the old key to {config_file.parent / name} (0600): for restore-legacy", file=out
        )
    print("next: check [backup] sources, run 'glacier-backup backup', then", file=out)
    print("      'glacier-backup service install' for the schedule (instead of cron)", file=out)
