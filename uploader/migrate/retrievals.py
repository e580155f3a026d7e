"""The retrieval jobs of a migration: checking those requested, requesting the next batch.

A job is recorded in the catalogue right after Glacier accepts it; a run killed in between
leaves a job nobody recorded, which the next run finds in the vault's job list and adopts
instead of paying for another. A job that expired or failed sends its archive back to be
requested again; one that succeeded makes the archive ready, with Glacier's tree hash of it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from localbackup import testpoints
from localbackup.configkit import format_size
from uploader import catalogue as cm
from uploader.archive import VAULT
from uploader.catalogue import Catalogue, MigrationRecord, MigrationState
from uploader.migrate.plan import DAY, plan_requests
from uploader.restore import RestoreUI, RetrievalDeclined, consent
from uploader.restore import retrieval as rt
from uploader.stores import InventoryJobs, RetrievalJobs, StoreError, Tier
from uploader.stores.glacier import JobOutputExpired

log = structlog.get_logger(__name__)

Failure = tuple[MigrationRecord, str]


async def check_requested(
    jobs: RetrievalJobs, catalogue: Catalogue, records: Sequence[MigrationRecord]
) -> list[Failure]:
    """Poll the jobs requested earlier: ready (with the archive's tree hash), still running,
    or gone (the archive is requested again). Returns the archives that cannot be copied."""
    failed: list[Failure] = []
    for r in records:
        if r.state is not MigrationState.REQUESTED or r.job_id is None:
            continue
        try:
            job = await jobs.describe_job(r.job_id)
        except JobOutputExpired:
            why = "its retrieval job expired before the copy finished: it is requested again"
            await asyncio.to_thread(cm.mark_migration_planned, catalogue, r.id, why)
            log.warning("migrate.job_expired", key=r.key, job_id=r.job_id)
            continue
        if job.failed:
            why = f"the retrieval job failed ({job.status_message}): it is requested again"
            await asyncio.to_thread(cm.mark_migration_planned, catalogue, r.id, why)
            log.warning("migrate.job_failed", key=r.key, job_id=r.job_id, why=job.status_message)
        elif job.succeeded:
            if job.archive_size != r.size or not job.archive_tree_hash:
                why = (
                    f"the vault's archive is {job.archive_size} bytes (the inventory says "
                    f"{r.size}) or has no tree hash: not copied"
                )
                await asyncio.to_thread(cm.mark_migration_failed, catalogue, r.id, why)
                failed.append((r, why))
                continue
            await asyncio.to_thread(cm.mark_migration_ready, catalogue, r.id, job.archive_tree_hash)
    return failed


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """How retrievals are requested: tier, daily limit, consent given in advance."""

    tier: Tier
    max_per_day: int | None
    assume_yes: bool


class Requester:
    """Requests the due retrievals of one run: adopting unrecorded jobs first, within the
    daily limit, after consent (asked once per run)."""

    def __init__(
        self,
        jobs: RetrievalJobs,
        listing: InventoryJobs,
        catalogue: Catalogue,
        source: str,
        *,
        options: RequestOptions,
        ui: RestoreUI,
    ) -> None:
        self._jobs, self._listing, self._catalogue = jobs, listing, catalogue
        self._source, self._options, self._ui = source, options, ui
        self._consented = False
        self.next_batch: datetime | None = None  # when the next batch may be requested

    async def request_due(self, planned: Sequence[MigrationRecord], now: datetime) -> list[Failure]:
        """Request what the daily limit allows of ``planned`` (archives without a job);
        returns those whose request failed. Raises ``RetrievalDeclined`` without consent."""
        if not planned:
            self.next_batch = None
            return []
        recent = await asyncio.to_thread(
            cm.migration_requests_since, self._catalogue, self._source, now - DAY
        )
        limit = self._options.max_per_day
        plan = plan_requests([(r.id, r.size) for r in planned], recent, now, limit)
        self.next_batch = plan.next_at
        batch = [r for r in planned if r.id in plan.now]
        if batch:
            self._consent(batch)
        failed: list[Failure] = []
        tier = self._options.tier
        for r in batch:
            if r.id in plan.oversized:
                self._ui.warn(f"{r.key} is bigger than --max-per-day: requested alone today")
            try:
                job_id = await self._jobs.initiate_retrieval_job(r.archive_id, tier)
            except StoreError as exc:
                why = f"requesting its retrieval failed: {exc}"
                await asyncio.to_thread(cm.mark_migration_failed, self._catalogue, r.id, why)
                failed.append((r, why))
                continue
            testpoints.pause("migrate.job_requested")
            await self._record(r, job_id, tier, now)
            log.info("migrate.requested", key=r.key, job_id=job_id, tier=tier)
        return failed

    async def adopt_jobs(self, planned: Sequence[MigrationRecord]) -> set[int]:
        """Jobs requested by a run killed before it recorded them are not requested again:
        the vault's job list is read, and a whole-archive retrieval of an archive in
        ``planned`` is recorded as its request. Returns the ids of the adopted archives."""
        by_archive = {r.archive_id: r for r in planned}
        adopted: set[int] = set()
        for job in await self._listing.list_jobs():
            r = by_archive.get(job.archive_id or "")
            if r is None or r.id in adopted or job.failed or job.action != "ArchiveRetrieval":
                continue
            if job.byte_range not in (None, (0, r.size)):
                continue  # a range of it (a restore's): not the whole archive
            tier = next((t for t in rt.TIER_CHOICES if t == job.tier), self._options.tier)
            await self._record(r, job.job_id, tier, job.created)
            adopted.add(r.id)
            log.info("migrate.job_adopted", key=r.key, job_id=job.job_id, status=job.status)
        return adopted

    async def _record(self, r: MigrationRecord, job_id: str, tier: Tier, at: datetime) -> None:
        record = functools.partial(cm.record_migration_request, tier=tier, size=r.size, now=at)
        await asyncio.to_thread(record, self._catalogue, r.id, job_id)

    def _consent(self, batch: Sequence[MigrationRecord]) -> None:
        if self._consented:
            return
        size, tier = sum(r.size for r in batch), self._options.tier
        est = rt.estimate(VAULT, tier, size)
        self._ui.say(
            f"requesting the retrieval of {len(batch)} archive{'s' if len(batch) != 1 else ''}"
            f" ({format_size(size)}), tier {tier}: typically ready {est.wait_text};"
            f" about ${est.cost_usd:.4f}"
        )
        consent(
            self._ui,
            "request these retrievals?",
            assume_yes=self._options.assume_yes,
            unattended="a retrieval is billed: add --yes to request it (migrate --quote shows "
            "the costs)",
            declined="nothing requested",
            error=RetrievalDeclined,
        )
        self._consented = True
