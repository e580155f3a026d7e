"""``service install [--dry-run] [--timer WHEN]``: write the systemd user units."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from localbackup.atomic import atomic_write_bytes
from watcher import systemd
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig


def add_parser(sub: Subparsers) -> None:
    """Register ``service install``."""
    p = add_command(
        sub,
        "service",
        summary="systemd user service",
        description="Set up the service with systemd (a user unit, and a timer for local backups).",
        examples=["glacier-backup service install --dry-run"],
    )
    ssub = p.add_subparsers(dest="service_command", metavar="ACTION", required=True)
    i = add_command(
        ssub,
        "install",
        summary="write the systemd user unit (and a backup timer)",
        description="Write glacier-backup.service (Type=notify, with a watchdog) and, unless "
        "--timer none, glacier-backup-backup.timer running 'glacier-backup backup' into "
        "$XDG_CONFIG_HOME/systemd/user, then print the systemctl commands that enable them.",
        examples=[
            "glacier-backup service install",
            "glacier-backup service install --dry-run",
            "glacier-backup service install --timer none",
        ],
    )
    i.add_argument("--dry-run", action="store_true", help="print the units instead of writing them")
    i.add_argument(
        "--timer",
        metavar="WHEN",
        default="daily",
        help="OnCalendar= for local backups (default: daily); 'none' for no timer "
        "(e.g. when [watch] backup_every runs them inside the service)",
    )
    i.set_defaults(run=run_install)


def _executable() -> str:
    found = shutil.which("glacier-backup")
    if found:
        return str(Path(found).resolve())
    # Running from a checkout (python -m watcher): the script next to this interpreter.
    return str(Path(sys.executable).with_name("glacier-backup"))


def run_install(args: argparse.Namespace, config: AppConfig) -> int:
    """Write the systemd user units (or print them with ``--dry-run``)."""
    timer = None if args.timer == "none" or config.watch.backup_every else args.timer
    units = systemd.render_units(
        _executable(), config.file, timer=timer, stop_timeout=config.watch.stop_timeout
    )
    target = systemd.user_unit_dir()
    if args.dry_run:
        for u in units:
            print(f"# {target / u.name}\n{u.text}")
        return OK
    try:
        target.mkdir(parents=True, exist_ok=True)
        for u in units:
            atomic_write_bytes(target / u.name, u.text.encode(), mode=0o644)
            print(f"wrote {target / u.name}")
    except OSError as exc:
        print(f"glacier-backup: cannot write the units into {target}: {exc}", file=sys.stderr)
        return FAILURE
    enable = " ".join(u.name for u in units if u.name != systemd.BACKUP_SERVICE)
    print("\nnext:")
    print("  systemctl --user daemon-reload")
    print(f"  systemctl --user enable --now {enable}")
    print('  loginctl enable-linger "$USER"   # keep it running while you are logged out')
    return OK
