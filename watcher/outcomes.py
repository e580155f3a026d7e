"""The one sink for what happened: every command and the service hand their events to it.

:meth:`Outcomes.emit` takes a :class:`~watcher.notify.events.Notice` and

1. hands the notice to the :class:`~watcher.notify.delivery.Notifier` (``[notify]``), which
   delivers it from its own thread: nothing here waits for a network;
2. when it ends an operation (backup, upload, maintenance) and ``[metrics]`` is on, remembers
   that in the catalogue, with its size and duration, and rewrites the metrics file.

None of it ever raises: a sink that fails is logged, and the operation it reports stands.
The composition root (the command, the service) builds one from the configuration and closes
it at the end, which waits a bounded time for deliveries still under way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from localbackup.logevents import get_logger
from watcher.notify.config import NotifyConfig
from watcher.notify.delivery import CLOSE_TIMEOUT, Notifier
from watcher.notify.events import Notice, NoticeEvent, Operation

if TYPE_CHECKING:
    from uploader.catalogue import ArchiveRecord, Catalogue
    from watcher.config import AppConfig

log = get_logger(__name__)

# The size an operation's metrics report: what a backup wrote, the archive an upload made.
_SIZE_OF = {Operation.BACKUP: "written", Operation.UPLOAD: "archive"}


class Outcomes:
    """Events in, notifications / operation records / metrics out (see the module doc)."""

    def __init__(
        self,
        config: AppConfig | Callable[[], AppConfig],
        *,
        notifier: Callable[[AppConfig], Notifier | None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._config = config if callable(config) else (lambda: config)
        self._make_notifier = notifier or _notifier_for
        self._clock = clock or (lambda: datetime.now(UTC))
        self._notifier: Notifier | None = None
        self._notify_cfg: NotifyConfig | None = None

    @property
    def config(self) -> AppConfig:
        """The configuration now (the service's changes on reload)."""
        return self._config()

    def notice(
        self,
        event: NoticeEvent,
        *,
        cycle: str | None = None,
        sizes: Mapping[str, int] | None = None,
        duration: float | None = None,
        error: str | None = None,
        message: str = "",
        details: Mapping[str, str] | None = None,
        warnings: int = 0,
    ) -> Notice:
        """A notice of this host, now."""
        return Notice(
            event,
            self.config.backup.host,
            self._clock(),
            cycle=cycle,
            sizes=dict(sizes or {}),
            duration=duration,
            error=error,
            message=message,
            details=dict(details or {}),
            warnings=warnings,
        )

    def emit(self, notice: Notice, catalogue: Catalogue | None = None) -> None:
        """Record, send and report ``notice`` (see the module doc); never raises."""
        cfg = self.config
        log.info(
            "outcome.event",
            notify_event=notice.event.value,
            result=notice.result,
            cycle=notice.cycle,
        )
        try:
            self._notifier_now(cfg)
            if self._notifier is not None:
                self._notifier.send(notice)
        except Exception as exc:
            log.error("notify.failed", notify_event=notice.event.value, error=str(exc))
        if cfg.metrics.textfile is None or notice.outcome is None:
            return  # the metrics change when an operation ends
        try:
            if catalogue is None:
                from uploader.catalogue import Catalogue

                with Catalogue.in_state_dir(cfg.state_dir) as own:
                    self._record(cfg, notice, own)
            else:
                self._record(cfg, notice, catalogue)
        except Exception as exc:  # the operation happened; its record is secondary
            log.error("metrics.record_failed", notify_event=notice.event.value, error=str(exc))

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Wait (at most ``timeout``) for notifications still being delivered."""
        if self._notifier is not None:
            self._notifier.close(timeout)
            self._notifier = None

    def _notifier_now(self, cfg: AppConfig) -> None:
        """The notifier for the current ``[notify]`` (a reload may have changed it)."""
        if self._notify_cfg != cfg.notify:
            if self._notifier is not None:
                self._notifier.close()
            self._notifier = self._make_notifier(cfg)
            self._notify_cfg = cfg.notify

    def _record(self, cfg: AppConfig, notice: Notice, catalogue: Catalogue) -> None:
        from uploader.catalogue import record_operation
        from watcher.metrics import write_metrics

        assert notice.outcome is not None
        operation, ok = notice.outcome
        key = _SIZE_OF.get(operation)
        record_operation(
            catalogue,
            operation.value,
            ok=ok,
            at=notice.time,
            nbytes=notice.sizes.get(key) if key else None,
            seconds=notice.duration,
            error=notice.error,
        )
        write_metrics(cfg, catalogue)


def upload_done(outcomes: Outcomes, record: ArchiveRecord, seconds: float) -> Notice:
    """The notice of a finished upload (the ``upload`` command's and the service's)."""
    return outcomes.notice(
        NoticeEvent.UPLOAD_DONE,
        cycle=record.cycle_id,
        sizes={"archive": record.size},
        duration=seconds,
        details={"key": record.key, "store": record.store},
    )


def _notifier_for(cfg: AppConfig) -> Notifier | None:
    return Notifier(cfg.notify) if cfg.notify.enabled else None
