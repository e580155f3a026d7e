"""The ``[backup]`` section: what to back up and how cycles are formed."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from localbackup import paths
from localbackup.configkit import Section
from localbackup.formats import BackupMode

# Archive names and Glacier descriptions carry the host: keep it to a host name's alphabet.
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class HookFailure(StrEnum):
    """What a failing ``before`` hook does to the backup step: ``[backup] before_failure``."""

    FAIL = "fail"  # the step fails (exit 1) and writes nothing
    WARN = "warn"  # the step goes on; the failure is a warning (exit 3)


class ChangeDetection(StrEnum):
    """What makes a regular file changed since the base: ``[backup] change_detection``."""

    METADATA = "metadata"  # mode, owner, size, mtime, ctime or inode differ
    CONTENT = "content"  # mode, owner, size or the content hash differ


SPOOL_DIR_NAME = "spool"  # the default spool_dir, below paths.data_home()


@dataclass(frozen=True, slots=True)
class BackupConfig:
    """The ``[backup]`` section as read: sources, spool, cycle shape, compression."""

    sources: tuple[Path, ...]
    exclude: tuple[str, ...] = ()
    spool_dir: Path = paths.data_home() / SPOOL_DIR_NAME  # evaluated at import
    increments_per_cycle: int = 7
    full_every: float | None = None  # seconds
    mode: BackupMode = BackupMode.INCREMENTAL
    compression_level: int = 3
    compression_threads: int = 0
    one_file_system: bool = False
    exclude_caches: bool = True
    change_detection: ChangeDetection = ChangeDetection.METADATA
    host: str = ""
    # Commands run around each backup step (argv split with shlex, no shell): see
    # localbackup.hooks. hook_timeout in seconds.
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    hook_timeout: float = 300.0
    before_failure: HookFailure = HookFailure.FAIL

    @property
    def differential(self) -> bool:
        """Whether each increment is taken against the full (``mode = "differential"``)."""
        return self.mode == BackupMode.DIFFERENTIAL


_DEFAULT = BackupConfig(sources=())  # the default of every key (spool_dir: see backup_config)


def default_host() -> str:
    """The short host name, made to fit the host-name alphabet (it names archives)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", os.uname().nodename.split(".")[0])
    name = name.lstrip("._-")[:63]
    return name or "localhost"


def is_host_name(name: str) -> bool:
    """Whether ``name`` can be a ``[backup] host`` (it names archives and descriptions)."""
    return _HOST.match(name) is not None


def backup_config(section: Section) -> BackupConfig:
    """Read ``[backup]``; raises :class:`ConfigError` naming the key on any problem."""
    sources = tuple(section.resolve(s) for s in section.string_list("sources"))
    host = section.string("host", default_host())
    if not _HOST.match(host):
        raise section.error(
            "host",
            f"must be a host name (letters, digits, '.', '_', '-'; at most 63), got {host!r}",
        )
    d = _DEFAULT
    cfg = BackupConfig(
        sources=sources,
        exclude=section.string_list("exclude", d.exclude),
        spool_dir=section.path("spool_dir", paths.data_home() / SPOOL_DIR_NAME)
        or paths.data_home(),
        increments_per_cycle=section.integer(
            "increments_per_cycle", d.increments_per_cycle, minimum=0, maximum=10_000
        ),
        full_every=section.duration("full_every", d.full_every, zero="off"),
        mode=section.enum_choice("mode", d.mode),
        compression_level=section.integer(
            "compression_level", d.compression_level, minimum=1, maximum=22
        ),
        compression_threads=section.integer(
            "compression_threads", d.compression_threads, minimum=0, maximum=256
        ),
        one_file_system=section.boolean("one_file_system", d.one_file_system),
        exclude_caches=section.boolean("exclude_caches", d.exclude_caches),
        change_detection=section.enum_choice("change_detection", d.change_detection),
        host=host,
        before=_hooks(section, "before"),
        after=_hooks(section, "after"),
        hook_timeout=section.duration("hook_timeout", d.hook_timeout) or d.hook_timeout,
        before_failure=section.enum_choice("before_failure", d.before_failure),
    )
    section.finish()
    return cfg


def _hooks(section: Section, key: str) -> tuple[str, ...]:
    """``before`` / ``after``: command lines that shlex can split into a non-empty argv."""
    import shlex

    commands = section.string_list(key)
    for i, line in enumerate(commands):
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise section.error(f"{key}[{i}]", f"cannot be split into arguments: {exc}") from None
        if not argv:
            raise section.error(f"{key}[{i}]", "is empty; give a command and its arguments")
    return commands
