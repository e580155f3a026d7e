"""The catalogue's event log: what happened when (last success, last failure, ...)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from localbackup import formats
from uploader.catalogue.db import Catalogue
from uploader.catalogue.records import Event, EventKind


def record_event(
    catalogue: Catalogue, kind: EventKind, detail: str, cycle_id: str | None = None
) -> None:
    """Add an entry to the event log (``kind``: uploaded, upload_failed, ...), stamped now."""
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO events (at, kind, cycle_id, detail) VALUES (?, ?, ?, ?)",
            (formats.utc_iso(datetime.now(UTC)), kind, cycle_id, detail),
        )


def last_event(catalogue: Catalogue, kinds: tuple[EventKind, ...]) -> Event | None:
    """The newest event of one of ``kinds``, if any."""
    marks = ", ".join("?" * len(kinds))
    rows = catalogue.query(
        f"SELECT at, kind, cycle_id, detail FROM events WHERE kind IN ({marks})"  # noqa: S608
        " ORDER BY id DESC LIMIT 1",
        kinds,
    )
    if not rows:
        return None
    at, kind, cycle_id, detail = rows[0]
    return Event(formats.parse_iso(at), cast(EventKind, kind), cycle_id, detail)
