"""``init``: write a starter configuration (never overwriting one) and create the directories."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from localbackup import paths
from localbackup.atomic import atomic_create
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK, WARNINGS

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers


DEFAULT_EXCLUDES = ("*.tmp", "*.swp", ".cache/", "node_modules/", "__pycache__/")


def add_parser(sub: Subparsers) -> None:
    """Register ``init``."""
    p = add_command(
        sub,
        "init",
        summary="write a starter config (never overwrites) and create directories",
        description="Write a starter configuration (never replacing one) with the sources "
        "given, create the spool, state and local store directories (0700), and a new age "
        "identity (0600) whose recipient the configuration encrypts to, unless --recipient "
        "names one. Warns about a source that does not exist.",
        examples=[
            "glacier-backup init --source ~/Documents --source /etc/hosts",
            "glacier-backup --config ./backup.toml init --source ~/Pictures --recipient age1...",
        ],
    )
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PATH",
        help="a directory or file to back up (repeatable; default: ~/Documents)",
    )
    p.add_argument(
        "--recipient",
        action="append",
        default=[],
        metavar="AGE1...",
        help="age recipient to encrypt to (default: a new identity is generated)",
    )
    p.set_defaults(run=run, needs_config=False)


def run(args: argparse.Namespace) -> int:
    """Write a starter configuration (never over an existing one) and create the directories."""
    config_file: Path = args.config or paths.default_config_file()
    if config_file.exists():
        print(f"glacier-backup: {config_file} already exists; not overwriting it")
        _check_existing(config_file)
        return FAILURE
    # The default folder is ours; a folder the user named (/etc, ~) is never chmodded.
    paths.ensure_private_dir(config_file.parent, ours=args.config is None)
    data, state = paths.data_home(), paths.state_home()
    spool, vault = data / "spool", data / "vault"
    identity_file = paths.config_home() / "identity.txt"
    recipients = list(args.recipient) or [_recipient_for(identity_file)]
    sources = [str(Path(s).expanduser().absolute()) for s in args.source] or ["~/Documents"]
    text = render_starter(sources, recipients, identity_file, spool, state, vault)
    atomic_create(config_file, text.encode())
    for d in (spool, spool / "markers", state, vault):
        paths.ensure_private_dir(d)
    print(f"wrote {config_file}")
    print(f"spool {spool}, state {state}, local store {vault}")
    missing = [s for s in sources if not Path(s).expanduser().exists()]
    for s in missing if args.source else []:
        print(
            f"glacier-backup: warning: the source {s} does not exist (yet): a backup skips it, "
            "keeping what an earlier backup had of it, and exits 3",
            file=sys.stderr,
        )
    if not args.source and missing:
        print(
            f"glacier-backup: warning: the default source {missing[0]} does not exist: set "
            f"[backup] sources in {config_file} (or run init again with --source DIR)",
            file=sys.stderr,
        )
    if args.source:
        print("next: run 'glacier-backup backup' (and 'glacier-backup service install')")
    else:
        print(f"next: set [backup] sources in {config_file}, then run 'glacier-backup backup'")
    return WARNINGS if missing else OK


def _check_existing(config_file: Path) -> None:
    """Say whether an existing configuration's bucket can lock archives (``object_lock``)."""
    from localbackup.configkit import ConfigError
    from watcher.config import load_config
    from watcher.lock_check import check_object_lock

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        print(f"glacier-backup: it does not load: {exc}")
        return
    check = check_object_lock(config.store)
    if check is not None:
        print("\n".join(check.lines()))


def _recipient_for(identity_file: Path) -> str:
    from uploader.crypto import load_identities, write_identity_file

    if identity_file.exists():
        identity = load_identities(identity_file)[0]
        return identity.recipient().to_string()  # type: ignore[attr-defined, no-any-return]
    paths.ensure_private_dir(identity_file.parent)
    new = write_identity_file(identity_file)
    print(f"created the age identity {identity_file} (mode 0600).")
    print("  Keep a copy of it somewhere safe and offline: without it no backup can be restored.")
    print(
        "  The backup host needs only the recipient in the config; you may move the identity away."
    )
    return new.recipient().to_string()


def _q(s: str | Path) -> str:
    return json.dumps(str(s))  # a JSON string is a valid TOML basic string


def render_starter(  # noqa: PLR0917 - one value per placeholder of the template
    sources: list[str],
    recipients: list[str],
    identity_file: Path,
    spool: Path,
    state: Path,
    vault: Path,
) -> str:
    """The starter configuration ``init`` writes."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    return f"""# Written by 'glacier-backup init' on {stamp}. Every key, with its default, is
# documented in config.example.toml.
state_dir = {_q(state)}

[backup]
sources = [{", ".join(map(_q, sources))}]
exclude = [{", ".join(map(_q, DEFAULT_EXCLUDES))}]
spool_dir = {_q(spool)}
increments_per_cycle = 7
mode = "incremental"
compression_level = 3

[watch]
marker_dir = {_q(spool / "markers")}
keep_local_cycles = 1

[encryption]
recipients = [{", ".join(map(_q, recipients))}]
identity_file = {_q(identity_file)}

[store]
type = "local"
path = {_q(vault)}

[upload]
part_size = "auto"
concurrency = 4
"""
