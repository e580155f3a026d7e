"""The last success and failure of each operation (backup, upload, maintenance).

What the metrics file reports as ``glacier_backup_last_success_timestamp_seconds`` and its
siblings: one row per operation, updated when one ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from uploader.catalogue.db import Catalogue, from_db_time, to_db_time


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """When an operation last succeeded and failed; size and duration of its last success."""

    operation: str
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_bytes: int | None  # of the last success
    last_seconds: float | None  # of the last success
    last_error: str | None  # of the last failure


def record_operation(
    catalogue: Catalogue,
    operation: str,
    *,
    ok: bool,
    at: datetime,
    nbytes: int | None = None,
    seconds: float | None = None,
    error: str | None = None,
) -> None:
    """Remember that ``operation`` ended at ``at``, well (with its size and duration) or not."""
    when = to_db_time(at)
    with catalogue.transaction() as db:
        db.execute("INSERT OR IGNORE INTO operations (operation) VALUES (?)", (operation,))
        if ok:
            db.execute(
                "UPDATE operations SET last_success_at = ?, last_bytes = ?, last_seconds = ?"
                " WHERE operation = ?",
                (when, nbytes, seconds, operation),
            )
        else:
            db.execute(
                "UPDATE operations SET last_failure_at = ?, last_error = ? WHERE operation = ?",
                (when, error, operation),
            )


def operations(catalogue: Catalogue) -> dict[str, OperationRecord]:
    """Every operation recorded, by name."""
    rows = catalogue.query(
        "SELECT operation, last_success_at, last_failure_at, last_bytes, last_seconds,"
        " last_error FROM operations"
    )
    return {
        str(r[0]): OperationRecord(
            str(r[0]),
            from_db_time(r[1]),
            from_db_time(r[2]),
            None if r[3] is None else int(r[3]),
            None if r[4] is None else float(r[4]),
            None if r[5] is None else str(r[5]),
        )
        for r in rows
    }
