"""One backup step: plan, write the increment crash-safely, seal when the cycle is complete."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from localbackup import formats
from localbackup.atomic import atomic_write_bytes, fsync_dir, temp_name
from localbackup.config import BackupConfig, ChangeDetection, HookFailure
from localbackup.fileio import NoSpaceError, create_file, is_no_space
from localbackup.hooks import run_after, run_before
from localbackup.increment import IncrementOptions, IncrementResult, write_increment
from localbackup.index import Index, read_index
from localbackup.logevents import bound_fields, get_logger
from localbackup.plan import BackupPlan, CyclePolicy, plan_backup
from localbackup.scan import normalize_sources
from localbackup.seal import ensure_markers, seal_cycle
from localbackup.sources import MissingSource, NothingToBackUp, find_missing_sources
from localbackup.spool import CycleDir, Spool

log = get_logger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one backup step did: the plan, the increment written, the cycles sealed."""

    plan: BackupPlan
    cycle_id: str
    increment: IncrementResult
    manifest: formats.IncrementManifest
    sealed: tuple[formats.SealedCycle, ...]  # cycles sealed by this step (before and/or after)
    seconds: float
    hook_warnings: tuple[str, ...] = ()  # hooks that failed without failing the step

    @property
    def warnings(self) -> int:
        """Files that could not be read as they were, and hooks that failed."""
        return len(self.increment.warnings) + len(self.hook_warnings)


@dataclass(frozen=True, slots=True)
class SealResult:
    """What a seal request did: the cycle sealed (None if none was) and why."""

    sealed: formats.SealedCycle | None
    reason: str


class _HashingWriter:
    """Counts and hashes what passes through to the file (the manifest records both)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._f.closed


def policy_of(cfg: BackupConfig) -> CyclePolicy:
    """The planner's view of the config."""
    return CyclePolicy(cfg.increments_per_cycle, cfg.full_every, cfg.differential)


def options_of(cfg: BackupConfig) -> IncrementOptions:
    """The increment writer's view of the config."""
    return IncrementOptions(
        sources=cfg.sources,
        exclude=cfg.exclude,
        one_file_system=cfg.one_file_system,
        exclude_caches=cfg.exclude_caches,
        content_hash=cfg.change_detection == ChangeDetection.CONTENT,
        compression_level=cfg.compression_level,
        compression_threads=cfg.compression_threads,
    )


def run_backup_step(
    cfg: BackupConfig,
    marker_dir: Path,
    *,
    now: datetime | None = None,
    force_full: bool = False,
    progress: Progress | None = None,
) -> StepResult:
    """Take one backup: the whole of ``glacier-backup backup``.

    The ``before`` hooks run once the step is planned (they are told the cycle and increment)
    and before anything is written: a failing one raises :class:`~localbackup.hooks.HookFailed`
    (unless ``before_failure = "warn"``). The ``after`` hooks run whatever happened (a
    ``before`` hook that failed included: they may undo what it started).

    A missing source keeps its previous entries (see :mod:`localbackup.sources`); when every
    source is missing once the ``before`` hooks ran (one may mount a disk),
    :class:`~localbackup.sources.NothingToBackUp` is raised before anything is written.
    """
    started = time.monotonic()
    spool = Spool(cfg.spool_dir)
    with spool.locked():
        now = now or datetime.now(UTC)
        spool.recover()
        ensure_markers(spool, marker_dir)
        state = spool.open_cycle_state()
        plan = plan_backup(state[1] if state else None, policy_of(cfg), now, force_full=force_full)
        log.info("backup.planned", kind=plan.kind, number=plan.number, reason=plan.reason)
        new = plan.new_cycle or state is None
        cycle_id = state[0].cycle_id if state is not None and not new else spool.next_cycle_id(now)
        env = hook_env(cfg, cycle_id, plan)
        warn = cfg.before_failure == HookFailure.WARN
        try:
            hook_warnings = run_before(cfg.before, env, cfg.hook_timeout, warn=warn)
            base = _load_base(state[0], plan) if state is not None else None
            missing = find_missing_sources(cfg.sources, base or _newest_index(spool))
            if missing and len(missing) == len(normalize_sources(cfg.sources)):
                raise NothingToBackUp(missing)
            sealed: list[formats.SealedCycle] = []
            if plan.seal_open_cycle and state is not None:
                sealed.append(seal_cycle(state[0], cfg.host, cfg.mode, marker_dir, now))
            target = spool.create_cycle(now) if new or state is None else state[0]
            with bound_fields(cycle=target.cycle_id, increment=plan.number):
                result, manifest = _write_increment(
                    cfg, target, plan, now, progress, base=base, missing=missing
                )
                if plan.seal_after:
                    when = datetime.now(UTC)
                    sealed.append(seal_cycle(target, cfg.host, cfg.mode, marker_dir, when))
        except BaseException:
            run_after(cfg.after, env, cfg.hook_timeout, "failure")
            raise
    outcome = "warnings" if result.warnings or hook_warnings else "success"
    hook_warnings += run_after(cfg.after, env, cfg.hook_timeout, outcome)
    return StepResult(
        plan,
        target.cycle_id,
        result,
        manifest,
        tuple(sealed),
        time.monotonic() - started,
        tuple(hook_warnings),
    )


def hook_env(cfg: BackupConfig, cycle_id: str, plan: BackupPlan) -> dict[str, str]:
    """The variables that tell a hook what this step backs up (see :mod:`localbackup.hooks`)."""
    return {
        "GLACIER_BACKUP_HOST": cfg.host,
        "GLACIER_BACKUP_CYCLE": cycle_id,
        "GLACIER_BACKUP_INCREMENT": str(plan.number),
        "GLACIER_BACKUP_KIND": str(plan.kind),
        "GLACIER_BACKUP_SPOOL_DIR": str(cfg.spool_dir),
    }


def seal_open_cycle(
    cfg: BackupConfig, marker_dir: Path, *, now: datetime | None = None
) -> SealResult:
    """Seal the open cycle now (``glacier-backup seal`` and the watcher's force request)."""
    spool = Spool(cfg.spool_dir)
    with spool.locked():
        spool.recover()
        ensure_markers(spool, marker_dir)
        state = spool.open_cycle_state()
        if state is None:
            return SealResult(None, "there is no open cycle")
        if state[1].increments == 0:
            return SealResult(None, f"cycle {state[1].cycle_id} has no complete increment yet")
        sealed = seal_cycle(state[0], cfg.host, cfg.mode, marker_dir, now or datetime.now(UTC))
        return SealResult(sealed, "sealed on request")


def _load_base(cycle: CycleDir, plan: BackupPlan) -> Index | None:
    """The index the planned increment is compared with (None for a full)."""
    if plan.base is None or plan.new_cycle:
        return None
    with open(cycle.path / formats.index_name(plan.base), "rb") as f:
        return read_index(f)


@contextlib.contextmanager
def _partial_files_removed_on_error(
    tar_tmp: Path, index_tmp: Path, plan: BackupPlan
) -> Iterator[tuple[_HashingWriter, _HashingWriter]]:
    """The increment's two files under their temp names, fsynced at the end. If writing fails
    they are removed at once (a full disk stays full otherwise until the next run's recovery;
    a kill still leaves them to it), and a full filesystem is said as :class:`NoSpaceError`."""
    files: list[BinaryIO] = []
    writers: list[_HashingWriter] = []
    try:
        for path in (tar_tmp, index_tmp):
            files.append(create_file(path))
            writers.append(_HashingWriter(files[-1]))
        yield writers[0], writers[1]
        for f in files:
            f.flush()
            os.fsync(f.fileno())
            f.close()
    except BaseException as exc:
        for f in files:
            with contextlib.suppress(OSError):  # closing flushes: the disk may still be full
                f.close()
        for path in (tar_tmp, index_tmp):
            path.unlink(missing_ok=True)
        if is_no_space(exc):
            written = sum(w.size for w in writers)
            raise NoSpaceError(
                tar_tmp.parent,
                f"increment {plan.number} ({plan.kind})",
                written,
                "free some space, or move backup.spool_dir to a bigger disk, then run the "
                "backup again",
            ) from exc
        raise


def _newest_index(spool: Spool) -> Index | None:
    """The index of the newest increment in the spool (what a full's missing sources are
    checked against: a source that was a mount point then)."""
    for cycle in reversed(spool.cycles()):
        manifests = cycle.manifests()
        if manifests:
            with open(cycle.path / manifests[-1].index.name, "rb") as f:
                return read_index(f)
    return None


def _write_increment(
    cfg: BackupConfig,
    cycle: CycleDir,
    plan: BackupPlan,
    now: datetime,
    progress: Progress | None,
    *,
    base: Index | None,
    missing: tuple[MissingSource, ...],
) -> tuple[IncrementResult, formats.IncrementManifest]:
    tar_path = cycle.path / formats.tar_name(plan.number)
    index_path = cycle.path / formats.index_name(plan.number)
    tar_tmp, index_tmp = temp_name(tar_path), temp_name(index_path)
    log.info("backup.started", kind=plan.kind, base=plan.base)
    with _partial_files_removed_on_error(tar_tmp, index_tmp, plan) as (tar_w, index_w):
        result = write_increment(
            options_of(cfg),
            base,
            tar_w,  # type: ignore[arg-type]
            index_w,  # type: ignore[arg-type]
            progress,
            missing=missing,
        )
    os.rename(tar_tmp, tar_path)
    os.rename(index_tmp, index_path)
    fsync_dir(cycle.path)
    manifest = formats.IncrementManifest(
        number=plan.number,
        kind=plan.kind,
        base=plan.base,
        started_at=now,
        finished_at=datetime.now(UTC),
        tar=formats.CycleFile(tar_path.name, tar_w.size, tar_w.sha256.hexdigest()),
        index=formats.CycleFile(index_path.name, index_w.size, index_w.sha256.hexdigest()),
        stats={
            "files_scanned": result.files_scanned,
            "files_written": result.files_written,
            "bytes_in": result.bytes_in,
            "bytes_out": result.bytes_out,
            "deleted": result.deleted,
            "skipped": dict(result.skipped),
            "warnings": len(result.warnings),
        },
    )
    # The manifest is the commit point: written last, atomically.
    atomic_write_bytes(cycle.path / formats.manifest_name(plan.number), manifest.render())
    Spool(cycle.path.parent.parent).record_backup_time(manifest.finished_at)
    log.info(
        "backup.increment_written",
        files=result.files_written,
        bytes_in=result.bytes_in,
        bytes_out=result.bytes_out,
        warnings=len(result.warnings),
    )
    return result, manifest
