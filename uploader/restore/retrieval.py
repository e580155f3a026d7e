"""Retrieval requests for cold archives: tiers, expected waits, cost estimates, status.

Two kinds of cold storage: S3 objects in ``GLACIER`` / ``DEEP_ARCHIVE`` (``restore_object``
makes a temporary readable copy for ``days``) and Glacier vaults (an archive-retrieval job
stages the archive as job output for about 24 h). Both take a tier that trades wait for price.
The request is recorded in the catalogue (:mod:`uploader.catalogue.retrievals`) so a later
``restore --resume`` checks on it instead of asking (and paying) again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from localbackup.logevents import get_logger
from uploader import catalogue as cr
from uploader.archive import COLD_CLASSES, VAULT
from uploader.catalogue import Catalogue
from uploader.restore.stream import RestoreError
from uploader.stores import (
    GiB,
    ObjectRestore,
    RetrievalJobs,
    Store,
    StoreError,
    Tier,
    TransientStoreError,
)
from uploader.stores.glacier import JobOutputExpired

__all__ = [
    "COLD_CLASSES",
    "TIERS",
    "TIER_CHOICES",
    "VAULT",
    "Estimate",
    "RetrievalError",
    "RetrievalExpired",
    "Status",
    "check_tier",
    "default_tier",
    "estimate",
    "expected_ready",
    "format_when",
    "is_vault",
    "object_restore",
    "reads_directly",
    "ready_since_requested",
    "request",
    "retrieval_jobs",
    "s3_restore_under_way",
    "status",
    "tiers_for",
]

log = get_logger(__name__)

# One table, documented in docs/restore.md: (class, tier) -> (typical wait, what the docs say,
# retrieval USD per GB). Prices are public us-east-1 list prices at the time of writing, an
# ESTIMATE only: per-request fees, data transfer out and other regions are not included.
TIERS: dict[tuple[str, Tier], tuple[timedelta, str, float]] = {
    ("GLACIER", "Expedited"): (timedelta(minutes=5), "1-5 minutes", 0.03),
    ("GLACIER", "Standard"): (timedelta(hours=5), "3-5 hours", 0.01),
    ("GLACIER", "Bulk"): (timedelta(hours=12), "5-12 hours", 0.0),
    ("DEEP_ARCHIVE", "Standard"): (timedelta(hours=12), "within 12 hours", 0.02),
    ("DEEP_ARCHIVE", "Bulk"): (timedelta(hours=48), "within 48 hours", 0.0025),
    (VAULT, "Expedited"): (timedelta(minutes=5), "1-5 minutes", 0.03),
    (VAULT, "Standard"): (timedelta(hours=5), "3-5 hours", 0.01),
    (VAULT, "Bulk"): (timedelta(hours=12), "5-12 hours", 0.0025),
}
PROBE_BYTES = 1024  # the ranged GET that asks whether a "cold" object reads directly
# Every tier some class offers, in the table's order (fastest first): ``restore --tier``.
TIER_CHOICES: tuple[Tier, ...] = tuple(dict.fromkeys(tier for _, tier in TIERS))


class RetrievalError(RestoreError):
    """A retrieval cannot be requested or has failed (unknown tier, failed job, no id...).

    A restore failure, not a store failure: errors of the store itself stay StoreErrors."""


class RetrievalExpired(RetrievalError):
    """The staged copy is gone (Glacier job output after ~24 h, or an S3 copy past its days)."""


def tiers_for(storage_class: str) -> list[Tier]:
    """The retrieval tiers ``storage_class`` offers."""
    return [t for (c, t) in TIERS if c == storage_class]


def default_tier(storage_class: str) -> Tier:
    """Bulk where it is the DEEP_ARCHIVE-style cheap choice, else Standard (Glacier's own)."""
    return "Bulk" if storage_class == "DEEP_ARCHIVE" else "Standard"


def check_tier(storage_class: str, tier: Tier) -> None:
    """Raise :class:`RetrievalError` unless ``tier`` exists for ``storage_class``."""
    if (storage_class, tier) not in TIERS:
        allowed = ", ".join(tiers_for(storage_class))
        raise RetrievalError(f"tier {tier} is not available for {storage_class} (use {allowed})")


@dataclass(frozen=True, slots=True)
class Estimate:
    """Expected wait (and its wording in the docs) and estimated USD fee of a retrieval."""

    wait: timedelta
    wait_text: str
    cost_usd: float


def estimate(storage_class: str, tier: Tier, size: int) -> Estimate:
    """Expected wait and retrieval fee (an estimate, see :data:`TIERS`)."""
    check_tier(storage_class, tier)
    wait, text, per_gb = TIERS[(storage_class, tier)]
    return Estimate(wait, text, per_gb * size / GiB)


@dataclass(frozen=True, slots=True)
class Status:
    """Whether a retrieval can be downloaded now, and what to say about it."""

    ready: bool
    detail: str
    expected_ready: datetime | None = None


def is_vault(store: Store) -> bool:
    """Whether ``store`` is a Glacier vault: its archives are read through retrieval jobs."""
    return isinstance(store, RetrievalJobs)


def retrieval_jobs(store: Store) -> RetrievalJobs:
    """``store`` as a vault that takes retrieval jobs (:class:`RetrievalError` if it is not)."""
    if not isinstance(store, RetrievalJobs):
        raise RetrievalError(f"{store.name} takes no retrieval jobs: it is not a Glacier vault")
    return store


def object_restore(store: Store) -> ObjectRestore:
    """``store`` as one that restores cold objects (:class:`RetrievalError` if it does not)."""
    if not isinstance(store, ObjectRestore):
        raise RetrievalError(f"{store.name} cannot restore cold objects")
    return store


def _copy_ready(restore_state: str) -> bool:
    """Whether S3's ``x-amz-restore`` says the restored copy is readable."""
    return 'ongoing-request="false"' in restore_state


async def request(
    store: Store,
    catalogue: Catalogue,
    *,
    key: str,
    archive_id: str | None,
    size: int,
    storage_class: str,
    tier: Tier,
    days: int,
    ask: bool = True,
) -> cr.RetrievalRecord:
    """Ask the store for a retrieval and record it (replacing an older record). ``ask=False``
    records an S3 restore that is already there or running (see :func:`s3_restore_under_way`)."""
    check_tier(storage_class, tier)
    job_id: str | None = None
    if not ask:
        pass
    elif storage_class == VAULT:
        if not archive_id:
            raise RetrievalError(f"{key}: no ArchiveId known")
        jobs = retrieval_jobs(store)
        job_id = await jobs.initiate_retrieval_job(archive_id, tier, archive_size=size)
    else:
        outcome = await object_restore(store).restore_object(key, tier, days)
        log.info("retrieval.s3_restore", key=key, outcome=outcome, tier=tier, days=days)
    record = await asyncio.to_thread(
        cr.record_request,
        catalogue,
        store=store.name,
        key=key,
        archive_id=archive_id,
        size=size,
        storage_class=storage_class,
        tier=tier,
        days=None if storage_class == VAULT else days,
        job_id=job_id,
    )
    log.info("retrieval.requested", key=key, tier=tier, job_id=job_id, cls=storage_class)
    return record


async def s3_restore_under_way(store: Store, key: str) -> Literal["restored", "in-progress"] | None:
    """For an S3 object: "restored" (a readable copy exists: ``ongoing-request="false"``),
    "in-progress" (``ongoing-request="true"``), or None (nothing requested, or expired)."""
    state = await object_restore(store).restore_state(key)
    if state is None:
        return None
    return "restored" if _copy_ready(state) else "in-progress"


async def reads_directly(store: Store, key: str) -> bool:
    """Whether ``key`` can be read without a retrieval: a small ranged GET (a store that has no
    restore API may still keep "cold" objects readable). A refusal (an archived object on AWS:
    ``InvalidObjectState``) is False; a transient failure is raised."""
    got = 0
    try:
        async for chunk in store.read(key, 0, PROBE_BYTES):  # a small range: read it whole
            got += len(chunk)
    except TransientStoreError:
        raise
    except StoreError as exc:
        log.info("retrieval.direct_read_refused", key=key, error=str(exc))
        return False
    return got > 0


def expected_ready(record: cr.RetrievalRecord) -> datetime:
    """When the retrieval is expected to be ready (its tier's typical wait)."""
    return record.requested_at + TIERS[(record.storage_class, record.tier)][0]


async def status(store: Store, record: cr.RetrievalRecord) -> Status:
    """Whether the staged copy can be downloaded now. Raises :class:`RetrievalExpired` when
    it is gone and :class:`RetrievalError` when the job failed."""
    when = expected_ready(record)
    if record.storage_class == VAULT:
        assert record.job_id is not None
        try:
            job = await retrieval_jobs(store).describe_job(record.job_id)
        except JobOutputExpired as exc:
            raise RetrievalExpired(
                f"the retrieval job for {record.key} (requested "
                f"{record.requested_at:%Y-%m-%d %H:%M} UTC) has expired: Glacier keeps job "
                f"output about 24 h after it completes ({exc})"
            ) from exc
        if job.failed:
            raise RetrievalError(f"the retrieval job for {record.key} failed: {job.status_message}")
        if job.succeeded:
            return Status(True, f"job {record.job_id[:12]}... succeeded")
        return Status(False, f"Glacier job {record.job_id[:12]}... in progress", when)
    restore = await object_restore(store).restore_state(record.key)
    if restore is None:
        raise RetrievalExpired(
            f"{record.key} has no restored copy (none requested, or it expired after "
            f"{record.days} days)"
        )
    if _copy_ready(restore):
        return Status(True, f"restored copy available ({restore})")
    return Status(False, "S3 restore in progress", when)


def format_when(t: datetime) -> str:
    """``t`` as shown to users: ``YYYY-MM-DD HH:MM UTC``."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


async def ready_since_requested(store: Store, catalogue: Catalogue) -> list[cr.RetrievalRecord]:
    """Every retrieval of ``store`` still waiting that the store now says is ready: recorded as
    ready (``restore --resume`` then downloads it) and returned. A retrieval that failed,
    expired or cannot be asked about now is left for ``restore --resume`` to report."""
    ready = []
    for record in await asyncio.to_thread(cr.requested_retrievals, catalogue, store.name):
        try:
            state = await status(store, record)
        except (StoreError, RetrievalError) as exc:
            log.info("retrieval.not_ready", key=record.key, error=str(exc))
            continue
        if state.ready:
            await asyncio.to_thread(cr.mark_ready, catalogue, record.id)
            ready.append(record)
    return ready
