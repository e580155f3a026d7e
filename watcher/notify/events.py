"""What a notification says: one :class:`Notice` per event, and the JSON it is sent as.

Every event belongs to a :class:`Category`; ``[notify] on`` lists the categories that are sent.
The JSON document (``Notice.document``) is the public format of notifications (docs/notify.md):

    {"event": "upload_failed", "category": "failure", "result": "failure",
     "host": "laptop", "cycle": "20260101T000000Z", "time": "2026-01-01T03:00:00+00:00",
     "sizes": {"archive": 123}, "duration_seconds": 12.5, "error": "...", "message": "...",
     "details": {...}, "tool": "glacier-backup"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    """The groups ``[notify] on`` chooses from (``START`` goes with ``SUCCESS``: healthchecks
    pings of a job's start are only useful when its end is pinged too)."""

    FAILURE = "failure"
    MISSING = "missing"
    OVER_BUDGET = "over_budget"
    RETRIEVAL_READY = "retrieval_ready"
    SUCCESS = "success"
    START = "start"


class Operation(StrEnum):
    """The operations whose last success and failure are remembered (metrics)."""

    BACKUP = "backup"
    UPLOAD = "upload"
    MAINTENANCE = "maintenance"


class NoticeEvent(StrEnum):
    """Every event a notification can carry."""

    BACKUP_STARTED = "backup_started"
    BACKUP_DONE = "backup_done"
    BACKUP_FAILED = "backup_failed"
    UPLOAD_STARTED = "upload_started"
    UPLOAD_DONE = "upload_done"
    UPLOAD_FAILED = "upload_failed"
    UPLOAD_RETRYING = "upload_retrying"
    ARCHIVE_MISSING = "archive_missing"
    OVER_BUDGET = "over_budget"
    RETRIEVAL_READY = "retrieval_ready"
    VERIFY_FAILED = "verify_failed"
    MAINTENANCE_DONE = "maintenance_done"
    MAINTENANCE_FAILED = "maintenance_failed"


# None: recorded (metrics) but never sent: an hourly maintenance pass is not news.
CATEGORY: dict[NoticeEvent, Category | None] = {
    NoticeEvent.BACKUP_STARTED: Category.START,
    NoticeEvent.BACKUP_DONE: Category.SUCCESS,
    NoticeEvent.BACKUP_FAILED: Category.FAILURE,
    NoticeEvent.UPLOAD_STARTED: Category.START,
    NoticeEvent.UPLOAD_DONE: Category.SUCCESS,
    NoticeEvent.UPLOAD_FAILED: Category.FAILURE,
    NoticeEvent.UPLOAD_RETRYING: Category.FAILURE,
    NoticeEvent.ARCHIVE_MISSING: Category.MISSING,
    NoticeEvent.OVER_BUDGET: Category.OVER_BUDGET,
    NoticeEvent.RETRIEVAL_READY: Category.RETRIEVAL_READY,
    NoticeEvent.VERIFY_FAILED: Category.FAILURE,
    NoticeEvent.MAINTENANCE_DONE: None,
    NoticeEvent.MAINTENANCE_FAILED: None,
}
# The operation an event ends, and whether it ended well.
OUTCOME: dict[NoticeEvent, tuple[Operation, bool]] = {
    NoticeEvent.BACKUP_DONE: (Operation.BACKUP, True),
    NoticeEvent.BACKUP_FAILED: (Operation.BACKUP, False),
    NoticeEvent.UPLOAD_DONE: (Operation.UPLOAD, True),
    NoticeEvent.UPLOAD_FAILED: (Operation.UPLOAD, False),
    NoticeEvent.MAINTENANCE_DONE: (Operation.MAINTENANCE, True),
    NoticeEvent.MAINTENANCE_FAILED: (Operation.MAINTENANCE, False),
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One event: what happened, to which cycle, with which sizes and error."""

    event: NoticeEvent
    host: str
    time: datetime
    cycle: str | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)
    duration: float | None = None  # seconds
    error: str | None = None
    message: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    warnings: int = 0

    @property
    def category(self) -> Category | None:
        """The ``[notify] on`` group (None: never sent)."""
        return CATEGORY[self.event]

    @property
    def outcome(self) -> tuple[Operation, bool] | None:
        """The operation this event ends and whether it succeeded, or None."""
        return OUTCOME.get(self.event)

    @property
    def result(self) -> str:
        """``started``, ``success``, ``warnings``, ``failure`` or ``info``."""
        category = self.category
        if category is Category.START:
            return "started"
        if category is Category.SUCCESS or self.event is NoticeEvent.MAINTENANCE_DONE:
            return "warnings" if self.warnings else "success"
        if category is Category.RETRIEVAL_READY:
            return "info"
        return "failure"

    def document(self) -> dict[str, Any]:
        """The JSON object sent (HTTP body, the command's stdin)."""
        return {
            "event": self.event.value,
            "category": None if self.category is None else self.category.value,
            "result": self.result,
            "host": self.host,
            "cycle": self.cycle,
            "time": self.time.astimezone(UTC).isoformat(),
            "sizes": dict(self.sizes),
            "duration_seconds": None if self.duration is None else round(self.duration, 3),
            "warnings": self.warnings,
            "error": self.error,
            "message": self.message,
            "details": dict(self.details),
            "tool": "glacier-backup",
        }
