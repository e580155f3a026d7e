"""The whole configuration: one TOML file, each package reading its own section."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from localbackup import paths
from localbackup.config import BackupConfig, backup_config
from localbackup.configkit import ConfigError, Section
from uploader.config import (
    EncryptionConfig,
    RestoreConfig,
    StoreConfig,
    UploadConfig,
    encryption_config,
    restore_config,
    store_config,
    upload_config,
)
from uploader.maintenance import RetentionConfig, retention_config
from watcher.metrics import MetricsConfig, metrics_config
from watcher.notify.config import NotifyConfig, notify_config

SECTIONS = (
    "backup",
    "watch",
    "encryption",
    "store",
    "upload",
    "retention",
    "restore",
    "notify",
    "metrics",
)


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """The ``[watch]`` section: the marker directory and the service's timings."""

    marker_dir: Path
    keep_local_cycles: int = 1
    stop_timeout: float = 30.0  # seconds a graceful stop may take
    backup_every: float | None = None  # built-in local backup schedule; None: a timer does it
    maintenance_every: float = 3600.0


@dataclass(frozen=True, slots=True)
class AppConfig:
    """The whole configuration, one typed section per package."""

    file: Path | None
    state_dir: Path
    backup: BackupConfig
    watch: WatchConfig
    encryption: EncryptionConfig
    store: StoreConfig
    upload: UploadConfig
    retention: RetentionConfig
    restore: RestoreConfig = field(default_factory=RestoreConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


def watch_config(section: Section, backup: BackupConfig) -> WatchConfig:
    """Read ``[watch]`` (the marker directory defaults to ``markers/`` in the spool)."""
    cfg = WatchConfig(
        marker_dir=section.path("marker_dir", backup.spool_dir / "markers") or backup.spool_dir,
        keep_local_cycles=section.integer("keep_local_cycles", 1, minimum=0),
        stop_timeout=section.duration("stop_timeout", 30.0) or 30.0,
        backup_every=section.duration("backup_every", None, zero="off"),
        maintenance_every=section.duration("maintenance_every", 3600.0) or 3600.0,
    )
    section.finish()
    return cfg


def load_config(file: Path | None = None) -> AppConfig:
    """Read and validate the configuration; :class:`ConfigError` names file, key and problem."""
    explicit = file is not None
    path = (file if file is not None else paths.default_config_file()).absolute()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = "" if explicit else " (run 'glacier-backup init' to write a starter config)"
        raise ConfigError(path, "(file)", f"no such file{hint}") from None
    except OSError as exc:
        raise ConfigError(path, "(file)", f"cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "(file)", f"is not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(syntax)", f"is not valid TOML: {exc}") from None
    return config_from_dict(data, path)


def config_from_dict(data: dict[str, object], path: Path | None) -> AppConfig:
    """The configuration from parsed TOML (``path``: the file it came from, for errors)."""
    root = Section(data, "", path)
    state_dir = root.path("state_dir", paths.state_home()) or paths.state_home()
    tables = {name: root.table(name) for name in SECTIONS}
    root.finish()  # an unknown section is reported before anything inside the known ones
    backup = backup_config(tables["backup"])
    return AppConfig(
        file=path,
        state_dir=state_dir,
        backup=backup,
        watch=watch_config(tables["watch"], backup),
        encryption=encryption_config(tables["encryption"]),
        store=store_config(tables["store"]),
        upload=upload_config(tables["upload"]),
        retention=retention_config(tables["retention"]),
        restore=restore_config(tables["restore"]),
        notify=notify_config(tables["notify"]),
        metrics=metrics_config(tables["metrics"]),
    )
