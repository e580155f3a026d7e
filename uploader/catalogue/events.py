"""The catalogue's event log: what happened when (last success, last failure, ...).

:func:`record_event` is the one way in: every command and the service record their upload
outcomes through it, so that whatever reacts to events (``status`` today, notifications
later) sees them all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from localbackup import formats
from uploader.catalogue.db import Catalogue
from uploader.catalogue.records import FAILURE_KINDS, Event, EventKind

__all__ = ["last_event", "open_failures", "record_event"]


def record_event(
    catalogue: Catalogue, kind: EventKind, detail: str, cycle_id: str | None = None
) -> None:
    """Add an entry to the event log (``kind``: uploaded, upload_failed, ...), stamped now."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO events (at, kind, cycle_id, detail) VALUES (?, ?, ?, ?)",
            (formats.utc_iso(datetime.now(UTC)), kind, cycle_id, detail),
        )


def _event(row: tuple[str, str, str | None, str]) -> Event:
    at, kind, cycle_id, detail = row
    return Event(formats.parse_iso(at), cast(EventKind, kind), cycle_id, detail)


def last_event(catalogue: Catalogue, kinds: tuple[EventKind, ...]) -> Event | None:
    """The newest event of one of ``kinds``, if any."""
    marks = ", ".join("?" * len(kinds))
    rows = catalogue.query(
        f"SELECT at, kind, cycle_id, detail FROM events WHERE kind IN ({marks})"  # noqa: S608
        " ORDER BY id DESC LIMIT 1",
        kinds,
    )
    return _event(rows[0]) if rows else None


def open_failures(catalogue: Catalogue) -> list[Event]:
    """Failures that still stand, newest first: the newest failure of each cycle, unless a
    later upload of that cycle succeeded; a failure about no cycle (a malformed marker)
    until any later upload succeeded."""
    marks = ", ".join("?" * len(FAILURE_KINDS))
    rows = catalogue.query(
        f"SELECT at, kind, cycle_id, detail FROM events AS f WHERE kind IN ({marks})"  # noqa: S608
        " AND NOT EXISTS (SELECT 1 FROM events AS later WHERE later.id > f.id AND ("
        " (later.cycle_id = f.cycle_id AND later.kind IN (?, ?))"
        " OR (f.cycle_id IS NULL AND later.kind = ?)))"
        " ORDER BY id DESC",
        (*FAILURE_KINDS, "uploaded", "upload_failed", "uploaded"),
    )
    return [_event(r) for r in rows]
