"""The catalogue's finished restores: the newest restore into each target directory.

A restore is recorded once its tree is in place (for a retrieval, in the same transaction that
forgets the retrieval), so that ``restore --resume`` after a kill at its very end answers that
the restore is done instead of refusing a target that is, rightly, not empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from uploader.catalogue.db import Catalogue, db_time, to_db_time

__all__ = ["FinishedRestore", "last_restore_into", "record_restore"]


@dataclass(frozen=True, slots=True)
class FinishedRestore:
    """A restore that finished: which archive, cycle and increment went into ``target``."""

    store: str
    key: str
    cycle_id: str
    increment: int
    target: Path
    finished_at: datetime


def record_restore(
    catalogue: Catalogue, done: FinishedRestore, *, retrieval: int | None = None
) -> None:
    """Record ``done`` (replacing the target's earlier one); the retrieval it used, if any, is
    forgotten in the same transaction."""
    with catalogue.transaction() as db:
        if retrieval is not None:
            db.execute("DELETE FROM retrievals WHERE id = ?", (retrieval,))
        db.execute(
            "INSERT OR REPLACE INTO restores (store, key, cycle_id, increment, target,"
            " finished_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                done.store,
                done.key,
                done.cycle_id,
                done.increment,
                str(done.target),
                to_db_time(done.finished_at),
            ),
        )


def last_restore_into(catalogue: Catalogue, target: Path) -> FinishedRestore | None:
    """The newest restore that finished into ``target`` (an absolute path), if any."""
    rows = catalogue.query(
        "SELECT store, key, cycle_id, increment, target, finished_at FROM restores"
        " WHERE target = ?",
        (str(target),),
    )
    if not rows:
        return None
    store, key, cycle_id, increment, where, at = rows[0]
    return FinishedRestore(
        str(store), str(key), str(cycle_id), int(increment), Path(str(where)), db_time(str(at))
    )
