"""``glacier-backup watch``: the long-running service.

One TaskGroup owns every long-lived coroutine: the upload worker fed by the marker watcher, the
systemd watchdog pinger and, if configured, the built-in local backup schedule. One stop event
ends them all: SIGTERM/SIGINT set it, the tasks are cancelled, and an upload in flight simply
stops — its acknowledged parts are in the catalogue, so the next start resumes it. SIGHUP reloads
the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from localbackup.configkit import DAY
from localbackup.logevents import get_logger
from localbackup.spool import Spool
from uploader.catalogue import Catalogue
from watcher.config import AppConfig, load_config
from watcher.dispatch import Dispatcher, RetryLater
from watcher.maintenance_loop import maintenance_loop
from watcher.markers import MarkerWatcher
from watcher.notify.events import NoticeEvent
from watcher.outcomes import Outcomes
from watcher.sdnotify import Notifier, watchdog_interval

log = get_logger(__name__)

RETRY_FIRST, RETRY_MAX = 15.0, 3600.0


class Service:
    """The ``watch`` service: markers, dispatch, maintenance and signals in one TaskGroup."""

    def __init__(
        self,
        config: AppConfig,
        *,
        reload: Callable[[], AppConfig] | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock or (lambda: datetime.now(UTC))
        self._reload_config = reload or (lambda: load_config(config.file))
        self._notifier = notifier or Notifier()
        self._stop = asyncio.Event()
        self._retry_delay: dict[Path, float] = {}
        self._retrying_since: dict[Path, datetime] = {}  # first transient failure of a marker
        self._retry_notified: set[Path] = set()
        self.outcomes = Outcomes(lambda: self.config)
        self._stop_timer: asyncio.TimerHandle | None = None
        self._stop_deadline: float | None = None  # loop time at which a stop gives up waiting

    def request_stop(self, why: str = "requested") -> None:
        """Stop gracefully (SIGTERM, SIGINT); past ``stop_timeout`` the process simply ends."""
        if not self._stop.is_set():
            log.info("watch.stopping", reason=why, stop_timeout=self.config.watch.stop_timeout)
            self._notifier.stopping()
            self._stop.set()
            # Cancellation normally ends every task at once; a blocking step in a thread (a big
            # part being encrypted, SQLite) cannot be interrupted. Everything on disk is
            # crash-safe, so past the deadline the process simply ends.
            loop = asyncio.get_running_loop()
            self._stop_deadline = loop.time() + self.config.watch.stop_timeout
            self._stop_timer = loop.call_at(self._stop_deadline, _stop_now)

    def arm_exit_deadline(self) -> None:
        """Bound what still runs on this loop after :meth:`run` (asyncio.run then waits for worker
        threads, e.g. a part being encrypted) by what is left of the stop deadline."""
        if self._stop_deadline is not None:
            asyncio.get_running_loop().call_at(self._stop_deadline, _stop_now)

    def reload(self) -> None:
        """Read the configuration again (SIGHUP); a broken one is logged and ignored."""
        try:
            new = self._reload_config()
            new.encryption.require_key()
        except Exception as exc:  # a broken edit must not take the service down
            log.error("watch.reload_failed", error=str(exc))
            return
        if new.watch.marker_dir != self.config.watch.marker_dir:
            # The observer watches the old directory until a restart: keep using it, so that
            # seals (force requests) write their markers where they are seen and handled markers
            # are filed next to it, not into a directory nobody watches yet.
            log.warning(
                "watch.reload_needs_restart",
                key="watch.marker_dir",
                kept=str(self.config.watch.marker_dir),
            )
            new = dataclasses.replace(
                new, watch=dataclasses.replace(new.watch, marker_dir=self.config.watch.marker_dir)
            )
        self.config = new
        log.info("watch.reloaded", config=str(new.file))

    async def run(self) -> int:
        """Run until stopped; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        watcher = MarkerWatcher(self.config.watch.marker_dir)
        catalogue = await asyncio.to_thread(Catalogue.in_state_dir, self.config.state_dir)
        try:
            uploaded = asyncio.Event()
            dispatcher = Dispatcher(
                lambda: self.config, catalogue, uploaded=uploaded, outcomes=self.outcomes
            )
            self._post_interrupted_first(catalogue, watcher)
            watcher.start()
            self._notifier.ready(f"watching {self.config.watch.marker_dir}")
            log.info("watch.started", marker_dir=str(self.config.watch.marker_dir))
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._work(watcher, dispatcher))]
                tasks.append(
                    tg.create_task(
                        maintenance_loop(
                            lambda: self.config, catalogue, uploaded, outcomes=self.outcomes
                        )
                    )
                )
                interval = watchdog_interval()
                if interval:
                    tasks.append(tg.create_task(self._ping(interval)))
                if self.config.watch.backup_every:
                    tasks.append(tg.create_task(self._backup_schedule()))
                await self._stop.wait()
                for t in tasks:
                    t.cancel()
        finally:
            # A clean stop must not leave the stop_timeout deadline armed: it would end the
            # process (os._exit) later, wherever the event loop is still running. The ``watch``
            # command re-arms it (arm_exit_deadline) for asyncio.run's wait for worker threads.
            if self._stop_timer is not None:
                self._stop_timer.cancel()
                self._stop_timer = None
            watcher.stop()
            catalogue.close()
            await asyncio.to_thread(self.outcomes.close, min(10.0, self.config.watch.stop_timeout))
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        log.info("watch.stopped")
        return 0

    def _post_interrupted_first(self, catalogue: Catalogue, watcher: MarkerWatcher) -> None:
        """Markers of uploads a crash interrupted go to the head of the queue."""
        marker_dir = self.config.watch.marker_dir
        if not marker_dir.is_dir():
            return
        interrupted = {u.cycle_id for u in catalogue.uploads()}
        for p in sorted(marker_dir.iterdir()):
            if any(p.name.endswith(f"-{c}.json") for c in interrupted):
                log.info("watch.resuming_interrupted", marker=p.name)
                watcher.post(p)

    async def _work(self, watcher: MarkerWatcher, dispatcher: Dispatcher) -> None:
        loop = asyncio.get_running_loop()
        while True:
            path = await watcher.next()
            self._notifier.status(f"handling {path.name}")
            try:
                outcome = await dispatcher.handle(path)
            except RetryLater as exc:
                if exc.failing:
                    await self._still_retrying(path, exc)
                await self._schedule_retry(
                    loop, watcher, dispatcher, path, str(exc), after=exc.after, record=exc.failing
                )
            except Exception as exc:  # never let one marker take the service down
                log.exception("watch.handler_crashed", marker=path.name)
                why = f"{type(exc).__name__}: {exc}"
                await self._schedule_retry(loop, watcher, dispatcher, path, why)
            else:
                self._retry_delay.pop(path, None)
                self._retrying_since.pop(path, None)
                self._retry_notified.discard(path)
                log.info(
                    "watch.handled", marker=path.name, action=outcome.action, detail=outcome.detail
                )
            self._notifier.status(f"idle, watching {self.config.watch.marker_dir}")

    async def _schedule_retry(
        self,
        loop: asyncio.AbstractEventLoop,
        watcher: MarkerWatcher,
        dispatcher: Dispatcher,
        path: Path,
        why: str,
        *,
        after: float | None = None,
        record: bool = True,
    ) -> None:
        """Try ``path`` again later (the pause doubles, up to an hour; ``after``: a wait with a
        known end, the upload window, without backoff), said in the log with the reason and the
        time of the next attempt, and, for a failure (``record``), recorded for ``status``."""
        if after is None:
            delay = min(self._retry_delay.get(path, RETRY_FIRST / 2) * 2, RETRY_MAX)
            self._retry_delay[path] = delay
        else:
            delay = max(1.0, after)
        at = self._clock() + timedelta(seconds=delay)
        log.warning(
            "watch.retry_scheduled",
            marker=path.name,
            wait_for=delay,
            retry_at=at.isoformat(timespec="seconds"),
            error=why,
        )
        loop.call_later(delay, watcher.post, path)
        if not record:
            return
        try:
            await dispatcher.retrying(path, why, at)
        except Exception as exc:  # a busy catalogue must not stop the retry itself
            log.warning("watch.retry_not_recorded", marker=path.name, error=str(exc))

    async def _still_retrying(self, path: Path, exc: RetryLater) -> None:
        """Notify once when a marker's upload has been failing for ``[notify] retrying_after``."""
        now = self._clock()
        since = self._retrying_since.setdefault(path, now)
        if path in self._retry_notified:
            return
        if (now - since).total_seconds() < self.config.notify.retrying_after:
            return
        self._retry_notified.add(path)
        notice = self.outcomes.notice(
            NoticeEvent.UPLOAD_RETRYING,
            cycle=exc.cycle,
            error=str(exc),
            duration=(now - since).total_seconds(),
            message=f"the upload has been failing since {since.isoformat()}; still retrying",
        )
        await asyncio.to_thread(self.outcomes.emit, notice)

    async def _ping(self, interval: float) -> None:
        while True:
            self._notifier.watchdog()
            await asyncio.sleep(interval)

    async def _backup_schedule(self) -> None:
        """Run ``glacier-backup backup`` every ``backup_every`` (as a child process, so a stop
        can end it at once: the spool is crash-safe by construction)."""
        while True:
            every = self.config.watch.backup_every or DAY
            try:
                last = await asyncio.to_thread(_last_backup_time, self.config)
                wait = 0.0 if last is None else every - (datetime.now(UTC) - last).total_seconds()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                await self._run_backup_child()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the schedule take the service down
                log.exception("watch.scheduled_backup_failed", error=str(exc))
                await asyncio.sleep(min(every, 300.0))

    async def _run_backup_child(self) -> None:
        args = [sys.executable, "-m", "watcher"]
        if self.config.file is not None:
            args += ["--config", str(self.config.file)]
        proc = await asyncio.create_subprocess_exec(*args, "--log-format", "json", "backup")
        try:
            rc = await proc.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), 10)
            raise
        (log.info if rc in (0, 3) else log.error)("watch.scheduled_backup_done", exit_code=rc)
        if rc not in (0, 3):
            await asyncio.sleep(min(self.config.watch.backup_every or 3600.0, 3600.0))


async def serve(config: AppConfig) -> int:
    """The ``watch`` command's coroutine: the service, and a bounded wait for its threads."""
    service = Service(config)
    try:
        return await service.run()
    finally:
        service.arm_exit_deadline()


def _stop_now() -> None:
    log.warning("watch.stop_timeout", message="tasks did not end in time; exiting now")
    os._exit(0)


def _last_backup_time(config: AppConfig) -> datetime | None:
    return Spool(config.backup.spool_dir).last_backup_time()
