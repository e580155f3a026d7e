"""The catalogue's hot copy of increment indexes, and of each cycle's ``cycle.json``.

A cycle's indexes are small next to its data; keeping them in the catalogue lets ``files`` list
and search every backed-up path, ``restore`` choose a point in time, and ``cycles`` show every
increment with its time and size, without a retrieval — also after the cycle has left the
spool. The ``cycle.json`` (as rendered: its SHA-256 is the archive's ``cycle-sha256``) is also
what a cycle's metadata object is made of again once the spool no longer has the cycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from localbackup import formats
from localbackup.indexstream import StreamedIndex
from uploader.catalogue.db import Catalogue
from uploader.catalogue.pathversions import remember_path_versions
from uploader.catalogue.records import StoredIndex


def remember_cycle_indexes(catalogue: Catalogue, cycle_dir: Path) -> int:
    """Copy the indexes and ``cycle.json`` of a sealed cycle into the catalogue, with their
    paths and versions indexed for search (:mod:`.pathversions`; idempotent); return how many
    indexes. ``cycle_dir`` needs ``cycle.json`` and the index files, not the increments' tars
    (a recovery passes a directory made from a metadata object)."""
    sealed = formats.load_sealed_cycle(cycle_dir)
    rows = [
        (
            sealed.host,
            sealed.cycle_id,
            m.number,
            m.kind,
            formats.utc_iso(m.finished_at),
            (cycle_dir / m.index.name).read_bytes(),
        )
        for m in sealed.increments
    ]
    streams = [StreamedIndex(cycle_dir / m.index.name).iter_records for m in sealed.increments]
    with catalogue.transaction() as db:
        db.executemany(
            "INSERT OR REPLACE INTO cycle_indexes (host, cycle_id, number, kind, finished_at,"
            " data) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute(
            "INSERT OR REPLACE INTO sealed_cycles (host, cycle_id, cycle_json) VALUES (?, ?, ?)",
            (sealed.host, sealed.cycle_id, sealed.render()),
        )
        remember_path_versions(db, sealed.host, sealed.cycle_id, streams)
    return len(rows)


def stored_cycles(catalogue: Catalogue, host: str) -> dict[str, formats.SealedCycle]:
    """The ``cycle.json`` of every cycle of ``host`` the catalogue keeps, by cycle id."""
    rows = catalogue.query(
        "SELECT cycle_id, cycle_json FROM sealed_cycles WHERE host = ? ORDER BY cycle_id",
        (host,),
    )
    return {cid: formats.SealedCycle.from_json(json.loads(data)) for cid, data in rows}


def stored_cycle(catalogue: Catalogue, host: str, cycle_id: str) -> formats.SealedCycle | None:
    """The ``cycle.json`` of ``host``'s cycle as the catalogue keeps it, if it does."""
    rows = catalogue.query(
        "SELECT cycle_json FROM sealed_cycles WHERE host = ? AND cycle_id = ?", (host, cycle_id)
    )
    return formats.SealedCycle.from_json(json.loads(rows[0][0])) if rows else None


def stored_indexes(catalogue: Catalogue, cycle_id: str | None = None) -> Iterator[StoredIndex]:
    """Indexes in the catalogue, by cycle then increment."""
    rows = catalogue.query(
        "SELECT host, cycle_id, number, kind, finished_at, data FROM cycle_indexes"
        " WHERE ? IS NULL OR cycle_id = ? ORDER BY cycle_id, number",
        (cycle_id, cycle_id),
    )
    for host, cid, number, kind, finished_at, data in rows:
        yield StoredIndex(host, cid, int(number), kind, formats.parse_iso(finished_at), bytes(data))


def stored_points(catalogue: Catalogue, host: str) -> dict[str, list[tuple[int, str, datetime]]]:
    """Cycle id -> (number, kind, finished_at) of each increment whose index the catalogue
    keeps, without reading the indexes themselves."""
    rows = catalogue.query(
        "SELECT cycle_id, number, kind, finished_at FROM cycle_indexes WHERE host = ?"
        " ORDER BY cycle_id, number",
        (host,),
    )
    out: dict[str, list[tuple[int, str, datetime]]] = {}
    for cid, number, kind, finished_at in rows:
        out.setdefault(cid, []).append((int(number), kind, formats.parse_iso(finished_at)))
    return out
