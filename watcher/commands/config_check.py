"""``config check [--json]``: load and validate the configuration, show it resolved.

Every key is shown with the value in effect — the file's, or the default — with paths
expanded; secrets are never shown (a passphrase is only said to be set; credentials in an
endpoint URL are masked). A configuration error exits 2 naming the file and the key; what
would fail later without being a syntax error (no encryption key to upload with, a source that
does not exist) is reported as a problem (exit 2) or a warning (exit 3).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localbackup.configkit import ConfigError, format_duration, format_size
from uploader.config import PASSPHRASE_ENV
from uploader.object_lock import LockPolicy
from watcher.commands.parsers import add_command
from watcher.exitcodes import OK, USAGE, WARNINGS
from watcher.humanize import count

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

_DURATIONS = frozenset(
    {
        "full_every",
        "stop_timeout",
        "backup_every",
        "maintenance_every",
        "min_age",
        "hook_timeout",
        "retrying_after",
        "timeout",
    }
)
_RATES = frozenset({"max_rate"})  # bytes per second
_AUTO = frozenset({"min_age", "part_size"})  # None means "auto" for these keys
_SIZES = frozenset({"part_size", "max_store_size"})
_URL_USERINFO = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)
# Internal fields, not keys of the file (the passphrase comes from $GLACIER_BACKUP_PASSPHRASE).
_HIDDEN = frozenset({"source", "passphrase_env"})


def add_check(actions: Subparsers) -> None:
    """Register ``config check`` under ``config``."""
    p = add_command(
        actions,
        "check",
        summary="load and validate the configuration; show it resolved, secrets masked",
        description="Read the configuration file (--config, or the default path), check every "
        "key, and print the configuration in effect: every key with its value or its default, "
        "paths expanded, secrets masked. Exit 2 on a configuration error (named with its file "
        "and key), 3 when something will not work as configured (a missing source).",
        examples=[
            "glacier-backup config check",
            "glacier-backup --config ./backup.toml config check --json",
        ],
    )
    p.add_argument("--json", action="store_true", help="the resolved configuration as JSON")
    p.set_defaults(run=run_check, needs_config=False)


def run_check(args: argparse.Namespace) -> int:
    """Load, validate, show; the exit code says how it went."""
    from watcher.config import load_config

    try:
        config = load_config(args.config)
        config.encryption.require_key()
    except ConfigError as exc:
        print(f"glacier-backup: configuration error: {exc}", file=sys.stderr)
        return USAGE
    shown = resolved(config)
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        print(render_toml(shown))
    warnings = _warnings(config)
    for w in warnings:
        print(f"glacier-backup: warning: {w}", file=sys.stderr)
    if not args.json:
        said = f", {count(len(warnings), 'warning')}" if warnings else ""
        print(f"# {config.file}: valid{said}")
    return WARNINGS if warnings else OK


def _warnings(config: AppConfig) -> list[str]:
    out = [
        f"backup.sources: {s} does not exist (a backup would keep its previous entries and exit 3)"
        for s in config.backup.sources
        if not s.exists()
    ]
    if not config.backup.sources:
        out.append("backup.sources: no sources: 'glacier-backup backup' has nothing to do")
    return out


def _value(key: str, value: Any) -> Any:
    """A config value as the file would write it (paths as text, "7d", "64MiB", masked URL)."""
    if value is None and key in _AUTO:
        return "auto"
    if isinstance(value, tuple):
        return [_value(key, v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(str(_value(key, v)) for v in value)
    if isinstance(value, (Path, Enum)):
        return str(value.value if isinstance(value, Enum) else value)
    if key in _DURATIONS and isinstance(value, (int, float)):
        value = format_duration(value)
    elif key in _SIZES and isinstance(value, int):
        value = format_size(value).replace(" ", "")
    elif key in _RATES and isinstance(value, int):
        value = format_size(value).replace(" ", "") + "/s"
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        value = str(value)  # a value object (the upload window) in its written form
    elif key == "endpoint_url" and isinstance(value, str):
        value = _URL_USERINFO.sub(r"\g<scheme>***@", value)
    return value


def _section(obj: Any) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, LockPolicy):  # two keys of the file: object_lock and lock_for
            shown["object_lock"] = value.mode.value
            days = value.lock_for
            shown["lock_for"] = "auto" if days is None else format_duration(days)
        elif f.name not in _HIDDEN:
            shown[f.name] = _value(f.name, value)
    return shown


def resolved(config: AppConfig) -> dict[str, Any]:
    """The configuration in effect, as TOML-able values (secrets masked)."""
    encryption = _section(config.encryption)
    return {
        "passphrase_from_env": None if config.encryption.passphrase_env is None else PASSPHRASE_ENV,
        "config_file": str(config.file),
        "state_dir": str(config.state_dir),
        "backup": _section(config.backup),
        "watch": _section(config.watch),
        "encryption": encryption,
        "store": _section(config.store),
        "upload": _section(config.upload),
        "retention": _section(config.retention),
        "restore": _section(config.restore),
        "notify": _notify(config),
        "metrics": _section(config.metrics),
    }


def _notify(config: AppConfig) -> dict[str, Any]:
    """``[notify]``: a ping URL or a command line may hold a secret; only their shape shows."""
    from watcher.notify.delivery import mask_url

    shown = _section(config.notify)
    url, command = config.notify.url, config.notify.command
    shown["url"] = None if url is None else mask_url(url)
    shown["command"] = [command[0], *["***"] * (len(command) - 1)] if command else []
    return shown


def render_toml(shown: dict[str, Any]) -> str:
    """The resolved configuration as TOML-like text; a key with no value (off) is a comment."""
    lines = [
        f"# resolved from {shown['config_file']}",
        f"state_dir = {json.dumps(shown['state_dir'])}",
    ]
    from watcher.config import SECTIONS

    for name in SECTIONS:
        lines.append(f"\n[{name}]")
        for key, value in shown[name].items():
            if value is None:
                lines.append(f"# {key} = (not set)")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        if name == "encryption" and shown["passphrase_from_env"]:
            env = shown["passphrase_from_env"]
            lines.append(f"# passphrase: from ${env} (set; the value is not shown)")
    return "\n".join(lines)
