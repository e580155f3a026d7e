"""``verify`` results: one row per archive and run (``status`` shows the last run)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from uploader.catalogue.db import Catalogue, db_time, to_db_time
from uploader.catalogue.records import Verification, VerifyMode


def record_verifications(catalogue: Catalogue, results: Iterable[Verification]) -> None:
    """Keep the results of one ``verify`` run (nothing else in the catalogue changes)."""
    with catalogue.transaction() as db:
        db.executemany(
            "INSERT INTO verifications (store, key, cycle_id, at, mode, ok, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (v.store, v.key, v.cycle_id, to_db_time(v.at), v.mode, int(v.ok), v.detail)
                for v in results
            ],
        )


def last_verifications(catalogue: Catalogue, store: str) -> list[Verification]:
    """The newest result of every archive of ``store`` that was ever verified, by key."""
    rows = catalogue.query(
        "SELECT store, key, cycle_id, at, mode, ok, detail FROM verifications v"
        " WHERE store = ? AND id = (SELECT MAX(id) FROM verifications w"
        " WHERE w.store = v.store AND w.key = v.key) ORDER BY key",
        (store,),
    )
    return [
        Verification(s, k, c, db_time(at), VerifyMode(m), bool(ok), d)
        for s, k, c, at, m, ok, d in rows
    ]


def last_verified_at(catalogue: Catalogue, store: str) -> datetime | None:
    """When ``verify`` last ran against ``store``."""
    rows = catalogue.query("SELECT MAX(at) FROM verifications WHERE store = ?", (store,))
    return db_time(rows[0][0]) if rows and rows[0][0] else None
