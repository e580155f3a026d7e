"""Glacier jobs as values: job descriptions, inventories, retrieval ranges, and their errors.

Glacier cannot list or read immediately: an inventory job produces (hours later) the vault's
last daily inventory, a retrieval job stages an archive (or a MiB-aligned range of it) for 24 h.
This module holds the pure part: parsing what the service returns, checking the fields we need
are there (botocore accepts a truncated JSON response without complaint), validating ranges.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast, get_args

from uploader.stores.base import MiB, PermanentStoreError, TransientStoreError
from uploader.stores.glacier.description import ArchiveDescription, parse_description

# A job's StatusCode as the service reports it.
JobState = Literal["InProgress", "Succeeded", "Failed"]
STATUSES: tuple[JobState, ...] = get_args(JobState)


class InventoryRequired(PermanentStoreError):
    """Finding archives by key needs a vault inventory (an inventory job), not a listing.

    The store refusing an operation a vault cannot do: a store error, which maintenance and the
    restore command report like any other."""


class RetrievalRequired(PermanentStoreError):
    """Reading an archive needs a retrieval job, then its output, not a direct read (a store
    error, like :class:`InventoryRequired`)."""


class JobOutputExpired(PermanentStoreError):
    """The job (and its output) is gone: outputs last about 24 h after the job completes."""


class BadByteRange(PermanentStoreError):
    """A retrieval range Glacier would refuse (it must be MiB-aligned)."""


class IncompleteResponse(TransientStoreError):
    """A response lacked fields it must have (e.g. a JSON body cut short): try again."""


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One job, as DescribeJob / ListJobs report it. Ranges are half-open ``(start, end)``."""

    job_id: str
    action: str  # "ArchiveRetrieval" | "InventoryRetrieval" | "Select"
    status: JobState
    created: datetime
    completed: datetime | None = None
    status_message: str | None = None
    tier: str | None = None
    archive_id: str | None = None
    archive_size: int | None = None
    archive_tree_hash: str | None = None
    byte_range: tuple[int, int] | None = None
    tree_hash: str | None = None  # of the retrieved range, when it is tree-hash aligned
    inventory_size: int | None = None
    description: str | None = None

    @property
    def succeeded(self) -> bool:
        """Whether the job finished and its output can be read."""
        return self.status == "Succeeded"

    @property
    def failed(self) -> bool:
        """Whether the job failed (``status_message`` says why)."""
        return self.status == "Failed"


@dataclass(frozen=True, slots=True)
class InventoryArchive:
    """One archive in an inventory; ``description`` is None for archives that are not ours."""

    archive_id: str
    raw_description: str
    description: ArchiveDescription | None
    size: int
    created: datetime
    tree_hash: str


@dataclass(frozen=True, slots=True)
class Inventory:
    """A vault inventory: the service's last daily snapshot, never live data."""

    vault_arn: str
    date: datetime
    archives: tuple[InventoryArchive, ...]

    def ours(self) -> list[InventoryArchive]:
        """The archives whose description says they were made by this tool."""
        return [a for a in self.archives if a.description is not None]


def parse_time(value: object, what: str) -> datetime:
    """ISO 8601 UTC as Glacier writes it, with or without milliseconds."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise IncompleteResponse(f"{what}: no date in the response ({value!r})")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise IncompleteResponse(f"{what}: not an ISO 8601 date: {value[:40]!r}") from None


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _range(text: object) -> tuple[int, int] | None:
    if not isinstance(text, str) or "-" not in text:
        return None
    first, _, last = text.partition("-")
    return int(first), int(last) + 1


def job_from_response(r: Mapping[str, Any], what: str) -> JobInfo:
    """A :class:`JobInfo` from a DescribeJob response or a ListJobs entry."""
    for name in ("JobId", "Action", "StatusCode", "CreationDate"):
        if r.get(name) is None:
            raise IncompleteResponse(f"{what}: the response has no {name}")
    status = cast(JobState, str(r["StatusCode"]))
    if status not in STATUSES:
        raise IncompleteResponse(f"{what}: unknown job status {status[:40]!r}")
    done = r.get("CompletionDate")
    try:
        return _job(r, status, done, what)
    except ValueError as exc:
        raise IncompleteResponse(f"{what}: malformed job description ({exc})") from None


def _job(r: Mapping[str, Any], status: JobState, done: object, what: str) -> JobInfo:
    return JobInfo(
        job_id=str(r["JobId"]),
        action=str(r["Action"]),
        status=status,
        created=parse_time(r["CreationDate"], what),
        completed=None if done is None else parse_time(done, what),
        status_message=r.get("StatusMessage"),
        tier=r.get("Tier"),
        archive_id=r.get("ArchiveId"),
        archive_size=_optional_int(r.get("ArchiveSizeInBytes")),
        archive_tree_hash=r.get("ArchiveSHA256TreeHash"),
        byte_range=_range(r.get("RetrievalByteRange")),
        tree_hash=r.get("SHA256TreeHash"),
        inventory_size=_optional_int(r.get("InventorySizeInBytes")),
        description=r.get("JobDescription"),
    )


def parse_inventory(raw: bytes, what: str) -> Inventory:
    """A JSON inventory; descriptions are parsed with :func:`parse_description`."""
    try:
        data = json.loads(raw)
        archives = tuple(
            InventoryArchive(
                archive_id=str(a["ArchiveId"]),
                raw_description=str(a.get("ArchiveDescription") or ""),
                description=parse_description(a.get("ArchiveDescription")),
                size=int(a["Size"]),
                created=parse_time(a["CreationDate"], what),
                tree_hash=str(a["SHA256TreeHash"]),
            )
            for a in data["ArchiveList"]
        )
        return Inventory(str(data["VaultARN"]), parse_time(data["InventoryDate"], what), archives)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise IncompleteResponse(f"{what}: not a complete JSON inventory ({exc})") from None


def retrieval_range(byte_range: tuple[int, int], archive_size: int | None = None) -> str:
    """``RetrievalByteRange`` for the half-open ``(start, end)``, checked the way Glacier does:
    the start a multiple of 1 MiB, the end a multiple of 1 MiB or the end of the archive."""
    start, end = byte_range
    if not 0 <= start < end:
        raise BadByteRange(f"byte range {start}-{end}: not a non-empty range")
    if archive_size is not None and end > archive_size:
        raise BadByteRange(f"byte range {start}-{end}: beyond the archive ({archive_size} bytes)")
    if start % MiB:
        raise BadByteRange(f"byte range {start}-{end}: the start must be a multiple of 1 MiB")
    if end % MiB and end != archive_size:
        raise BadByteRange(
            f"byte range {start}-{end}: the end must be a multiple of 1 MiB or the end of the "
            "archive (give archive_size to end a range there)"
        )
    return f"{start}-{end - 1}"


def tree_hash_ranges(size: int, chunk: int = 32 * MiB) -> list[tuple[int, int]]:
    """Cut ``size`` bytes of job output into half-open ranges for which Glacier returns a tree
    hash (``chunk`` must be 1 MiB x 2^n): aligned blocks of ``chunk`` bytes and the tail."""
    if chunk < MiB or chunk & (chunk - 1):
        raise ValueError(f"chunk {chunk} is not 1 MiB times a power of two")
    return [(a, min(a + chunk, size)) for a in range(0, size, chunk)]
