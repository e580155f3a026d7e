"""The systemd user units: the service (Type=notify) and an optional timer for local backups."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from localbackup.paths import config_root

SERVICE = "glacier-backup.service"
BACKUP_SERVICE = "glacier-backup-backup.service"
BACKUP_TIMER = "glacier-backup-backup.timer"


def user_unit_dir() -> Path:
    """Where systemd looks for user units."""
    return config_root() / "systemd" / "user"


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit file: its name and text."""

    name: str
    text: str


def render_units(
    executable: str, config: Path | None, *, timer: str | None, stop_timeout: float
) -> list[Unit]:
    """The unit files for ``executable`` (an absolute path to ``glacier-backup``)."""
    base = [executable] + (["--config", str(config)] if config else [])
    cmd = shlex.join(base)
    units = [
        Unit(
            SERVICE,
            f"""[Unit]
Description=Glacier Backup Suite: upload sealed backup cycles to cold storage
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={cmd} --log-format json watch
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=30s
WatchdogSec=120s
TimeoutStopSec={int(stop_timeout) + 15}s
# The service encrypts before anything leaves the host; keep its files private too.
UMask=0077
Nice=10
IOSchedulingClass=idle

[Install]
WantedBy=default.target
""",
        )
    ]
    if timer:
        units += [
            Unit(
                BACKUP_SERVICE,
                f"""[Unit]
Description=Glacier Backup Suite: one local backup step

[Service]
Type=oneshot
ExecStart={cmd} --log-format json backup
# Exit code 3 means "completed with warnings" (e.g. a file vanished): not a failure.
SuccessExitStatus=3
UMask=0077
Nice=10
IOSchedulingClass=idle
""",
            ),
            Unit(
                BACKUP_TIMER,
                f"""[Unit]
Description=Glacier Backup Suite: local backups ({timer})

[Timer]
OnCalendar={timer}
Persistent=true
RandomizedDelaySec=10m

[Install]
WantedBy=timers.target
""",
            ),
        ]
    return units
