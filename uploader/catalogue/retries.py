"""The catalogue's uploads being retried: since when, why, and when the next attempt is.

The service retries an upload that failed for a reason that may pass (a store that does not
answer, throttling, a full disk elsewhere) with a growing pause, for as long as it takes. Each
retry is recorded here and the record is cleared when the cycle is uploaded (or fails for good),
so that ``status`` can say "retrying since T: reason" while the service rides out an outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from uploader.catalogue.db import Catalogue, db_time, from_db_time, to_db_time

__all__ = ["UploadRetry", "clear_retry", "note_retry", "upload_retries"]


@dataclass(frozen=True, slots=True)
class UploadRetry:
    """An upload being retried: the first failure of the streak, the latest reason, the next
    attempt (None: not scheduled) and how many attempts failed so far."""

    store: str
    cycle_id: str
    since: datetime
    reason: str
    next_at: datetime | None
    attempts: int


def note_retry(
    catalogue: Catalogue,
    store: str,
    cycle_id: str,
    reason: str,
    *,
    now: datetime,
    next_at: datetime | None,
) -> UploadRetry:
    """One more failed attempt of ``cycle_id`` to be retried; returns the whole streak."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO upload_retries (store, cycle_id, since, reason, next_at, attempts)"
            " VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (store, cycle_id) DO UPDATE SET"
            " reason = excluded.reason, next_at = excluded.next_at, attempts = attempts + 1",
            (store, cycle_id, to_db_time(now), reason, next_at and to_db_time(next_at)),
        )
    (retry,) = [r for r in upload_retries(catalogue) if (r.store, r.cycle_id) == (store, cycle_id)]
    return retry


def clear_retry(catalogue: Catalogue, store: str, cycle_id: str) -> None:
    """The cycle is uploaded (or failed for good): no longer being retried."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM upload_retries WHERE store = ? AND cycle_id = ?", (store, cycle_id))


def upload_retries(catalogue: Catalogue) -> list[UploadRetry]:
    """Every upload being retried, the longest-running first."""
    rows = catalogue.query(
        "SELECT store, cycle_id, since, reason, next_at, attempts FROM upload_retries"
        " ORDER BY since, cycle_id"
    )
    return [
        UploadRetry(str(s), str(c), db_time(str(since)), str(r), from_db_time(n), int(a))
        for s, c, since, r, n, a in rows
    ]
