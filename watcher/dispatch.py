"""What the service does with one file in the marker directory.

- a marker (``cycle-<host>-<id>.json``): upload its cycle exactly once, then file the marker under
  ``done/``; a permanent failure files it under ``failed/`` with the reason next to it (and an
  ``upload_failed`` event), until ``upload --retry-failed`` or ``upload CYCLE`` puts it back; a
  transient one leaves it in place for a retry; a malformed one goes to ``quarantine/``.
- any other file: a force request — seal the open cycle now (its new marker follows), then the
  request file is removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from localbackup import formats
from localbackup.logevents import bound_fields, get_logger
from localbackup.spool import Spool
from localbackup.step import seal_open_cycle
from uploader.catalogue import (
    ArchiveRecord,
    Catalogue,
    clear_retry,
    metadata_object_of,
    note_retry,
    open_flags,
    prune_inputs,
    record_event,
    remember_cycle_indexes,
)
from uploader.config import metadata_object_options
from uploader.maintenance import PrunePolicy, may_upload, plan_prune, storage_class_for
from uploader.multipart import ProgressCallback
from uploader.pacing import UploadPaused, upload_pace
from uploader.stores import (
    CredentialsRejected,
    StoreError,
    TransientStoreError,
    UploadNotFound,
    open_store,
)
from uploader.upload import CYCLE_FAULTS, CycleBusy, CyclePruned, upload_cycle
from uploader.window import local_now
from watcher.config import AppConfig
from watcher.markerfiles import DONE, FAILED, QUARANTINE, file_away
from watcher.notify.events import NoticeEvent
from watcher.outcomes import Outcomes, upload_done

log = get_logger(__name__)


class RetryLater(Exception):
    """The marker stays where it is and is tried again after a pause: after a transient failure
    (``failing``: counted towards ``[notify] retrying_after``), or when the upload must wait
    (the window is closed, the budget is full). ``after``: the pause in seconds, if known."""

    def __init__(
        self,
        reason: str,
        *,
        after: float | None = None,
        failing: bool = True,
        cycle: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.after, self.failing, self.cycle = after, failing, cycle


OutcomeAction = Literal[
    "uploaded", "already_uploaded", "failed", "quarantined", "sealed", "ignored"
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one file of the marker directory."""

    action: OutcomeAction
    detail: str = ""


class Dispatcher:
    """Handles each file that appears in the marker directory (see the module docstring)."""

    def __init__(
        self,
        config: Callable[[], AppConfig],
        catalogue: Catalogue,
        progress: ProgressCallback | None = None,
        uploaded: asyncio.Event | None = None,
        *,
        outcomes: Outcomes | None = None,
        clock: Callable[[], datetime] = local_now,
    ) -> None:
        self._config = config
        self._catalogue = catalogue
        self._progress = progress
        self._uploaded = uploaded  # set after each upload: maintenance runs a pass then
        self._outcomes = outcomes or Outcomes(config)
        self._clock = clock  # local time, for [upload] window

    async def handle(self, path: Path) -> Outcome:
        """Handle one file of the marker directory: a marker, or a force request."""
        if not path.is_file():
            return Outcome("ignored", "gone")  # handled already (duplicate event)
        if formats.is_marker_name(path.name):
            outcome = await self._marker(path)
            await self._settled(path)
            return outcome
        return await self._force(path)

    async def retrying(self, path: Path, reason: str, next_at: datetime) -> None:
        """The marker's cycle is tried again at ``next_at``: recorded for ``status``."""
        m = formats.MARKER_NAME.match(path.name)
        if m is None:
            return
        await asyncio.to_thread(
            lambda: note_retry(
                self._catalogue,
                self._config().store.name,
                m["cycle"],
                reason,
                now=datetime.now(UTC),
                next_at=next_at,
            )
        )

    async def _settled(self, path: Path) -> None:
        """The marker was handled (uploaded, filed as failed...): no longer being retried."""
        m = formats.MARKER_NAME.match(path.name)
        if m is not None:
            store = self._config().store.name
            await asyncio.to_thread(clear_retry, self._catalogue, store, m["cycle"])

    async def _force(self, path: Path) -> Outcome:
        cfg = self._config()
        log.info("watch.force_requested", request=path.name)
        result = await asyncio.to_thread(seal_open_cycle, cfg.backup, cfg.watch.marker_dir)
        path.unlink(missing_ok=True)
        if result.sealed is None:
            log.info("watch.force_nothing_to_seal", reason=result.reason)
            return Outcome("ignored", result.reason)
        return Outcome("sealed", result.sealed.cycle_id)

    async def _marker(self, path: Path) -> Outcome:
        cfg = self._config()
        marker_dir = cfg.watch.marker_dir
        try:
            marker = formats.parse_marker(await asyncio.to_thread(path.read_bytes))
            if marker.file_name != path.name:
                raise formats.FormatError(
                    f"the marker describes {marker.file_name}, not {path.name}"
                )
        except formats.FormatError as exc:
            reason = f"malformed marker: {exc}"
            file_away(path, marker_dir, QUARANTINE, reason)
            log.warning("watch.marker_quarantined", marker=path.name, reason=reason)
            await asyncio.to_thread(
                record_event,
                self._catalogue,
                "marker_quarantined",
                f"{path.name}: {reason}",
            )
            return Outcome("quarantined", reason)
        with bound_fields(cycle=marker.cycle_id):
            problem = await asyncio.to_thread(self._check_cycle, marker)
            if problem == "archived":
                file_away(path, marker_dir, DONE)
                return Outcome("already_uploaded")
            if problem:
                return await self._failed(path, marker, problem)
            if cfg.retention.over_budget == "wait":
                blocked = await asyncio.to_thread(self._over_budget, marker.cycle_dir, cfg)
                if blocked:
                    log.warning("watch.upload_waits_for_budget", reason=blocked)
                    raise RetryLater(blocked, failing=False, cycle=marker.cycle_id)
            self._check_window(cfg, marker.cycle_id)
            started = time.monotonic()
            notice = self._outcomes.notice(NoticeEvent.UPLOAD_STARTED, cycle=marker.cycle_id)
            await asyncio.to_thread(self._outcomes.emit, notice, self._catalogue)
            record = await self._upload_marker(path, marker, cfg)
            if isinstance(record, Outcome):
                return record
            await asyncio.to_thread(
                record_event, self._catalogue, "uploaded", record.key, marker.cycle_id
            )
            done = upload_done(self._outcomes, record, time.monotonic() - started)
            await asyncio.to_thread(self._outcomes.emit, done, self._catalogue)
            file_away(path, marker_dir, DONE)
            log.info("watch.uploaded", key=record.key, size=record.size)
            if self._uploaded is not None:
                self._uploaded.set()
            await asyncio.to_thread(self.prune_local_cycles)
            return Outcome("uploaded", record.key)

    async def _upload_marker(
        self, path: Path, marker: formats.Marker, cfg: AppConfig
    ) -> ArchiveRecord | Outcome:
        """Upload the marker's cycle: its archive, what became of the marker, or
        :class:`RetryLater` (a transient failure, another process has the cycle, the window
        closed)."""
        marker_dir = cfg.watch.marker_dir
        try:
            return await self._upload(marker.cycle_dir, cfg)
        except CyclePruned as exc:
            file_away(path, marker_dir, DONE)
            log.warning("watch.upload_refused", reason=str(exc))
            return Outcome("already_uploaded", str(exc))
        except CycleBusy as exc:  # a CLI upload has it: look again once it is done
            log.info("watch.upload_left_to_other", reason=str(exc))
            raise RetryLater(str(exc), failing=False, cycle=marker.cycle_id) from exc
        except UploadPaused as exc:
            log.info("watch.upload_paused", resumes_at=exc.resumes_at.isoformat())
            wait = exc.window.seconds_until_open(self._clock())
            raise RetryLater(str(exc), after=wait, failing=False, cycle=marker.cycle_id) from exc
        except Exception as exc:
            retry = _retry_reason(exc, marker.cycle_dir)
            if retry is not None:
                log.warning("watch.upload_retry_later", error=str(exc), reason=retry)
                why = f"{retry}: {type(exc).__name__}: {exc}"
                raise RetryLater(why, cycle=marker.cycle_id) from exc
            return await self._failed(path, marker, _failure_reason(exc))

    async def _failed(self, path: Path, marker: formats.Marker, reason: str) -> Outcome:
        file_away(path, self._config().watch.marker_dir, FAILED, reason)
        log.error("watch.marker_failed", marker=path.name, reason=reason)
        await asyncio.to_thread(
            record_event,
            self._catalogue,
            "upload_failed",
            f"{path.name}: {reason}",
            marker.cycle_id,
        )
        notice = self._outcomes.notice(
            NoticeEvent.UPLOAD_FAILED, cycle=marker.cycle_id, error=reason
        )
        await asyncio.to_thread(self._outcomes.emit, notice, self._catalogue)
        return Outcome("failed", reason)

    def _check_window(self, cfg: AppConfig, cycle_id: str) -> None:
        """Raise :class:`RetryLater` until the upload window opens (``[upload] window``)."""
        window = cfg.upload.window
        now = self._clock()
        if window is not None and not window.is_open(now):
            opens = window.next_open(now)
            log.info("watch.upload_waits_for_window", window=str(window), opens=opens.isoformat())
            raise RetryLater(
                f"outside the upload window {window}; it opens at {opens:%Y-%m-%d %H:%M %Z}",
                after=window.seconds_until_open(now),
                failing=False,
                cycle=cycle_id,
            )

    def _over_budget(self, cycle_dir: Path, cfg: AppConfig) -> str | None:
        """With ``over_budget = "wait"``: why this upload must wait, or None (from the catalogue
        alone: pruning itself is the maintenance loop's job)."""
        store = cfg.store.name
        policy = PrunePolicy.from_config(cfg.retention, storage_class_for(cfg.store))
        size = formats.load_sealed_cycle(cycle_dir).data_size
        inputs = prune_inputs(self._catalogue, store, cfg.backup.host)
        plan = plan_prune(inputs, policy, datetime.now(UTC), size)
        if may_upload(plan, cfg.retention):
            return None
        return f"the store would exceed retention.max_store_size by {plan.shortfall} bytes"

    def _check_cycle(self, marker: formats.Marker) -> str | None:
        """None when the cycle can be uploaded; "archived" (with its metadata object), or the
        reason it cannot. An archive without its metadata object (a run killed in between) is
        uploaded again: the archive is found, the metadata object sent."""
        store_name = self._config().store.name
        cycle_json = marker.cycle_dir / formats.CYCLE_JSON
        found = self._catalogue.find_archive(store_name, marker.cycle_id)
        if found is not None and (
            metadata_object_of(self._catalogue, store_name, found.key) is not None
            or not cycle_json.is_file()  # a maintenance pass sends it from the catalogue
        ):
            return "archived"
        if found is None and not cycle_json.is_file():
            return f"the sealed cycle {marker.cycle_dir} is gone and was never uploaded"
        digest = hashlib.sha256(cycle_json.read_bytes()).hexdigest()
        if digest != marker.cycle_json_sha256:
            return f"{cycle_json} changed after the marker was written (sha256 {digest})"
        return None

    async def _upload(self, cycle_dir: Path, cfg: AppConfig) -> ArchiveRecord:
        pace = upload_pace(cfg.upload.max_rate, cfg.upload.window, clock=self._clock)
        async with open_store(cfg.store) as store:
            return await upload_cycle(
                cycle_dir,
                store,
                self._catalogue,
                cfg.encryption,
                cfg.upload,
                self._progress,
                metadata_options=metadata_object_options(cfg.store),
                pace=pace,
            )

    def prune_local_cycles(self) -> list[str]:
        """Delete uploaded cycles from the spool beyond the newest ``keep_local_cycles``.

        Only cycles whose archive is in the catalogue for the configured store are candidates;
        open and not-yet-uploaded cycles are never touched.
        """
        cfg = self._config()
        spool = Spool(cfg.backup.spool_dir)
        store = cfg.store.name
        # Safe means confirmed in the store and not flagged MISSING or mismatched since.
        flagged = {f.key for f in open_flags(self._catalogue, store)}
        safe = {
            a.cycle_id
            for a in self._catalogue.archives(store=store)
            if a.confirmed_at is not None and a.key not in flagged
        }
        removed: list[str] = []
        with spool.locked():
            uploaded = [c for c in spool.sealed_cycles() if c.cycle_id in safe]
            keep = cfg.watch.keep_local_cycles
            for c in uploaded[: max(0, len(uploaded) - keep)]:
                remember_cycle_indexes(self._catalogue, c.path)  # `files` keeps working
                spool.remove_cycle(c)
                removed.append(c.cycle_id)
                log.info("watch.local_cycle_removed", removed_cycle=c.cycle_id)
        return removed


def _retry_reason(exc: BaseException, cycle_dir: Path) -> str | None:
    """Why a failed upload should be tried again later, or None if the marker is failed.

    The cycle's own bytes or configuration (BundleError, FormatError, AgeError, a file of the
    cycle that cannot be read) and permanent store errors fail it; a transient store error, an
    upload the store forgot (a new one is started), a busy catalogue or an OS error outside the
    cycle (the state directory) are retried."""
    if isinstance(exc, TransientStoreError):
        return "transient store error"
    if isinstance(exc, UploadNotFound):
        return "the store no longer has the upload in progress; it starts again"
    if isinstance(exc, sqlite3.OperationalError):
        return "the catalogue is busy or unavailable"
    name = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
    outside = not isinstance(name, str | bytes) or not _inside(Path(str(name)), cycle_dir)
    # The cycle's own bytes or configuration, and permanent store errors, fail the marker.
    own = isinstance(exc, (*CYCLE_FAULTS, StoreError))
    if isinstance(exc, OSError) and outside and not own:
        return "an OS error outside the cycle (state directory?)"
    return None


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except (ValueError, OSError):
        return False
    return True


RETRY_FAILED = "glacier-backup upload --retry-failed"


def _failure_reason(exc: BaseException) -> str:
    text = f"upload failed: {type(exc).__name__}: {exc}"
    if isinstance(exc, CredentialsRejected):
        return (
            f"{text} -- the store refused the credentials or permissions: fix them, then run "
            f"'{RETRY_FAILED}' (the cycle is uploaded, and the service takes it again too)"
        )
    return f"{text} -- once the cause is fixed: '{RETRY_FAILED}'"
