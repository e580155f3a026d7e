"""The catalogue's hot copy of increment indexes, and of the ``cycle.json`` they belong to.

A cycle's indexes are small next to its data; keeping them in the catalogue lets ``files`` list
and search every backed-up path, and ``restore`` choose a point in time, without a retrieval —
also after the cycle has left the spool. Its ``cycle.json`` (as rendered: its SHA-256 is the
archive's ``cycle-sha256``) is kept with them: what a cycle holds, and what its metadata object
is made of again once the spool no longer has the cycle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from localbackup import formats
from uploader.catalogue.db import Catalogue
from uploader.catalogue.records import StoredIndex


def remember_cycle_indexes(catalogue: Catalogue, cycle_dir: Path) -> int:
    """Copy the indexes of a sealed cycle (and its ``cycle.json``) into the catalogue
    (idempotent); return how many indexes. ``cycle_dir`` needs ``cycle.json`` and the index
    files, not the increments' tars (a recovery passes a directory made from a metadata
    object)."""
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
    rendered = sealed.render()
    manifest = (sealed.host, sealed.cycle_id, hashlib.sha256(rendered).hexdigest(), rendered)
    with catalogue.transaction() as db:
        db.executemany(
            "INSERT OR REPLACE INTO cycle_indexes (host, cycle_id, number, kind, finished_at,"
            " data) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute(
            "INSERT OR REPLACE INTO cycle_manifests (host, cycle_id, sha256, data)"
            " VALUES (?, ?, ?, ?)",
            manifest,
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
        yield StoredIndex(host, cid, int(number), kind, formats.parse_iso(finished_at), bytes(data))


def stored_cycle(catalogue: Catalogue, host: str, cycle_id: str) -> formats.SealedCycle | None:
    """The ``cycle.json`` of ``host``'s cycle as the catalogue keeps it, if it does."""
    rows = catalogue.query(
        "SELECT data FROM cycle_manifests WHERE host = ? AND cycle_id = ?", (host, cycle_id)
    )
    return formats.SealedCycle.from_json(json.loads(bytes(rows[0][0]))) if rows else None


def stored_cycles(catalogue: Catalogue, host: str | None = None) -> list[formats.SealedCycle]:
    """Every ``cycle.json`` the catalogue keeps (of ``host``, or of every host), oldest first."""
    rows = catalogue.query(
        "SELECT data FROM cycle_manifests WHERE ? IS NULL OR host = ? ORDER BY cycle_id",
        (host, host),
    )
    return [formats.SealedCycle.from_json(json.loads(bytes(r[0]))) for r in rows]
