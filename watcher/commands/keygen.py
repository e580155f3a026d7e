"""``keygen [-o FILE]``: a new age identity (mode 0600, never overwritten); prints its recipient."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from localbackup import paths
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers


def add_parser(sub: Subparsers) -> None:
    """Register ``keygen``."""
    p = add_command(
        sub,
        "keygen",
        summary="new age identity (0600); prints the recipient",
        description="Write a new age identity (private key) with mode 0600, never replacing a "
        "file, and print its recipient (public key) for [encryption] recipients. Keep the "
        "identity offline: it is needed only to restore.",
        examples=["glacier-backup keygen -o key.txt"],
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="where to write it (default: ~/.config/glacier-backup/identity.txt)",
    )
    p.set_defaults(run=run, needs_config=False)


def run(args: argparse.Namespace) -> int:
    """Write a new age identity (never over an existing file) and print its recipient."""
    from uploader.crypto import write_identity_file

    target: Path = args.output or paths.config_home() / "identity.txt"
    if not args.output:
        paths.ensure_private_dir(target.parent)
    try:
        identity = write_identity_file(target)
    except FileExistsError:
        print(f"glacier-backup: {target} already exists; not overwriting it", file=sys.stderr)
        return FAILURE
    except OSError as exc:
        print(f"glacier-backup: cannot write {target}: {exc.strerror}", file=sys.stderr)
        return FAILURE
    recipient = identity.recipient().to_string()
    print(f"wrote the identity {target} (mode 0600)", file=sys.stderr)
    print(
        "put the recipient into [encryption] recipients; keep the identity offline and safe:",
        file=sys.stderr,
    )
    print(recipient)
    return OK
