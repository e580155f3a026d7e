"""Where the suite keeps things by default (XDG base directories) and how it creates them."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from localbackup.fileio import PRIVATE_DIR_MODE

APP = "glacier-backup"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var, "")
    # The XDG spec says relative values are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def config_root() -> Path:
    """$XDG_CONFIG_HOME itself (systemd user units live below it)."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def config_home() -> Path:
    """Where the config file and the identity live by default."""
    return config_root() / APP


def data_home() -> Path:
    """Where the spool (and a ``local`` store's vault) live by default."""
    return _xdg("XDG_DATA_HOME", ".local/share") / APP


def state_home() -> Path:
    """Where the catalogue and other state live by default."""
    return _xdg("XDG_STATE_HOME", ".local/state") / APP


def default_config_file() -> Path:
    """``config.toml`` in :func:`config_home`."""
    return config_home() / "config.toml"


def ensure_private_dir(path: Path, *, ours: bool = True) -> Path:
    """Create ``path`` (and parents) if needed, 0700.

    Spool, state and key directories hold backups and secrets: no one else may read them, so a
    directory that is ``ours`` (dedicated to the suite) is also made 0700 if it already exists.
    A directory that is not ours (the folder a user chose for the config file, say) is only
    created when missing, never chmodded.
    """
    existed = path.is_dir()
    if not existed and (path.exists() or path.is_symlink()):
        # mkdir would say "File exists", which hides the problem: name it.
        raise NotADirectoryError(errno.ENOTDIR, "exists but is not a directory", str(path))
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if (ours or not existed) and path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path
