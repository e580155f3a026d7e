"""``keygen [-o FILE]``: a new age identity (mode 0600, never overwritten); prints its recipient."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from localbackup import paths
from watcher.exitcodes import FAILURE, OK


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``keygen``."""
    p = sub.add_parser("keygen", help="new age identity (0600); prints the recipient")
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
