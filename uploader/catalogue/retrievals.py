"""The catalogue's retrieval requests: restores from cold storage that outlive one command.

A retrieval takes hours; ``restore`` records its request (tier, when, the Glacier job id or the
S3 restore) and then, while downloading, every byte range once it is written and verified, so
``restore --resume`` neither asks (and pays) twice nor downloads a verified range again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from uploader.catalogue.db import Catalogue
from uploader.catalogue.records import RetrievalRecord, RetrievalState
from uploader.stores import Tier

_COLUMNS = (
    "id, store, key, archive_id, size, storage_class, tier, days, requested_at, job_id, state,"
    " download_path, range_size"
)


def _record(r: tuple[object, ...]) -> RetrievalRecord:
    return RetrievalRecord(
        id=int(str(r[0])),
        store=str(r[1]),
        key=str(r[2]),
        archive_id=None if r[3] is None else str(r[3]),
        size=int(str(r[4])),
        storage_class=str(r[5]),
        tier=cast(Tier, str(r[6])),
        days=None if r[7] is None else int(str(r[7])),
        requested_at=datetime.fromisoformat(str(r[8])),
        job_id=None if r[9] is None else str(r[9]),
        state=RetrievalState(str(r[10])),
        download_path=None if r[11] is None else Path(str(r[11])),
        range_size=None if r[12] is None else int(str(r[12])),
    )


def find_retrieval(catalogue: Catalogue, store: str, key: str) -> RetrievalRecord | None:
    """The retrieval recorded for ``key`` in ``store``, if any."""
    rows = catalogue.query(
        f"SELECT {_COLUMNS} FROM retrievals WHERE store = ? AND key = ?",  # noqa: S608
        (store, key),
    )
    return _record(rows[0]) if rows else None


def record_request(
    catalogue: Catalogue,
    *,
    store: str,
    key: str,
    archive_id: str | None,
    size: int,
    storage_class: str,
    tier: Tier,
    days: int | None,
    job_id: str | None,
    now: datetime | None = None,
) -> RetrievalRecord:
    """A new request for ``key`` (replacing an older one, with its downloaded ranges)."""
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    with catalogue.transaction() as db:
        db.execute("DELETE FROM retrievals WHERE store = ? AND key = ?", (store, key))
        db.execute(
            "INSERT INTO retrievals (store, key, archive_id, size, storage_class, tier, days,"
            " requested_at, job_id, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                store,
                key,
                archive_id,
                size,
                storage_class,
                tier,
                days,
                at,
                job_id,
                RetrievalState.REQUESTED,
            ),
        )
    found = find_retrieval(catalogue, store, key)
    assert found is not None
    return found


def requested_retrievals(catalogue: Catalogue, store: str) -> list[RetrievalRecord]:
    """Retrievals of ``store`` asked for and not yet seen ready."""
    rows = catalogue.query(
        f"SELECT {_COLUMNS} FROM retrievals WHERE store = ? AND state = ?",  # noqa: S608
        (store, RetrievalState.REQUESTED),
    )
    return [_record(r) for r in rows]


def mark_ready(catalogue: Catalogue, retrieval: int) -> None:
    """The retrieval is ready: its staged copy can be downloaded."""
    with catalogue.transaction() as db:
        db.execute(
            "UPDATE retrievals SET state = ? WHERE id = ?", (RetrievalState.READY, retrieval)
        )


def set_download(catalogue: Catalogue, retrieval: int, path: Path, range_size: int) -> None:
    """Where the ciphertext goes and how it is cut; a change forgets the ranges done so far."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM retrieval_ranges WHERE retrieval = ?", (retrieval,))
        db.execute(
            "UPDATE retrievals SET download_path = ?, range_size = ? WHERE id = ?",
            (str(path), range_size, retrieval),
        )


def forget_download(catalogue: Catalogue, retrieval: int) -> None:
    """Forget the download of a retrieval (its file and ranges can no longer be trusted)."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM retrieval_ranges WHERE retrieval = ?", (retrieval,))
        db.execute(
            "UPDATE retrievals SET download_path = NULL, range_size = NULL WHERE id = ?",
            (retrieval,),
        )


def record_range(catalogue: Catalogue, retrieval: int, start: int, end: int) -> None:
    """A range ``[start, end)`` written to the download file and verified."""
    with catalogue.transaction() as db:
        db.execute(
            'INSERT OR REPLACE INTO retrieval_ranges (retrieval, start, "end") VALUES (?, ?, ?)',
            (retrieval, start, end),
        )


def done_ranges(catalogue: Catalogue, retrieval: int) -> set[tuple[int, int]]:
    """The byte ranges of the download already written and verified."""
    rows = catalogue.query(
        'SELECT start, "end" FROM retrieval_ranges WHERE retrieval = ?', (retrieval,)
    )
    return {(int(a), int(b)) for a, b in rows}


def drop_retrieval(catalogue: Catalogue, retrieval: int) -> None:
    """Forget a retrieval and its ranges (restored, or given up)."""
    with catalogue.transaction() as db:
        db.execute("DELETE FROM retrievals WHERE id = ?", (retrieval,))
