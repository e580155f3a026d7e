"""The catalogue's hot copy of increment indexes, and its event log.

A cycle's indexes are small next to its data; keeping them in the catalogue lets ``files`` list
and search every backed-up path, and ``restore`` choose a point in time, without a retrieval —
also after the cycle has left the spool.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from localbackup import cycle as fmt
from localbackup.index import Index, read_index
from uploader.catalogue import Catalogue


@dataclass(frozen=True, slots=True)
class StoredIndex:
    host: str
    cycle_id: str
    number: int
    kind: str
    finished_at: datetime
    data: bytes

    def load(self) -> Index:
        return read_index(io.BytesIO(self.data))


def remember_cycle_indexes(catalogue: Catalogue, cycle_dir: Path) -> int:
    """Copy the indexes of a sealed cycle into the catalogue (idempotent); return how many."""
    sealed = fmt.load_sealed_cycle(cycle_dir)
    rows = [
        (
            sealed.host,
            sealed.cycle_id,
            m.number,
            m.kind,
            fmt.utc_iso(m.finished_at),
            (cycle_dir / m.index.name).read_bytes(),
        )
        for m in sealed.increments
    ]
    with catalogue.transaction() as db:
        db.executemany(
            "INSERT OR REPLACE INTO cycle_indexes (host, cycle_id, number, kind, finished_at,"
            " data) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def stored_indexes(catalogue: Catalogue, cycle_id: str | None = None) -> Iterator[StoredIndex]:
    """Indexes in the catalogue, by cycle then increment."""
    rows = catalogue.query(
        "SELECT host, cycle_id, number, kind, finished_at, data FROM cycle_indexes"
        " WHERE ? IS NULL OR cycle_id = ? ORDER BY cycle_id, number",
        (cycle_id, cycle_id),
    )
    for host, cid, number, kind, finished_at, data in rows:
        yield StoredIndex(host, cid, int(number), kind, fmt.parse_iso(finished_at), bytes(data))


def record_event(catalogue: Catalogue, kind: str, detail: str, cycle_id: str | None = None) -> None:
    with catalogue.transaction() as db:
        db.execute(
            "INSERT INTO events (at, kind, cycle_id, detail) VALUES (?, ?, ?, ?)",
            (fmt.utc_iso(datetime.now(UTC)), kind, cycle_id, detail),
        )


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    kind: str
    cycle_id: str | None
    detail: str


def last_event(catalogue: Catalogue, kinds: tuple[str, ...]) -> Event | None:
    marks = ", ".join("?" * len(kinds))
    rows = catalogue.query(
        f"SELECT at, kind, cycle_id, detail FROM events WHERE kind IN ({marks})"  # noqa: S608
        " ORDER BY id DESC LIMIT 1",
        kinds,
    )
    if not rows:
        return None
    at, kind, cycle_id, detail = rows[0]
    return Event(fmt.parse_iso(at), kind, cycle_id, detail)
