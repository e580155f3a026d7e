"""The inventory state machine of a store without immediate listing (a Glacier vault).

One call of :func:`advance_inventory` carries out what :func:`plan_inventory` decides, step by
step, until nothing is left to do now: adopt the vault's jobs after a catalogue loss, poll a job
in progress, fetch a finished job's output (and record the inventory), forget a dead job, ask
for a new inventory. Store errors other than an expired job or a vault with no inventory yet
propagate to the maintenance pass, which reports them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime

from localbackup.logevents import get_logger
from uploader import catalogue as cm
from uploader.archive import ObjectKind
from uploader.catalogue import Catalogue, InventoryJobState, InventoryState, JobStatus
from uploader.maintenance.inventory_plan import (
    FetchOutput,
    ForgetJob,
    InventorySettings,
    PollJob,
    RequestJob,
    pending_jobs,
    plan_inventory,
)
from uploader.maintenance.reconcile import ListedArchive, Listing
from uploader.stores import InventoryJobs, StoreError
from uploader.stores.glacier import Inventory, JobOutputExpired, NoInventoryYet

log = get_logger("uploader.maintenance.inventory_pass")

_MAX_STEPS = 8  # state machine steps per pass (poll -> fetch -> request -> poll ...)


@dataclass(frozen=True, slots=True)
class InventoryOutcome:
    """What one pass of the inventory state machine ends with."""

    listing: Listing | None  # the inventory fetched in this pass, if one was
    status: str  # the plan's status line, for the report
    jobs_in_flight: int


async def advance_inventory(
    store: InventoryJobs,
    name: str,
    catalogue: Catalogue,
    settings: InventorySettings,
    now: datetime,
    *,
    request: bool = False,
    grace: float,
) -> InventoryOutcome:
    """Run the inventory state machine of the store called ``name`` until it has nothing left
    to do now; ``request`` asks for an inventory if no job is in flight, ``grace`` is the
    inventory lag the listing of a fetched inventory allows for."""
    return await _InventoryPass(store, name, catalogue, settings, now, request, grace).run()


def listed_from_inventory(inventory: Inventory) -> list[ListedArchive]:
    """The archives of a vault inventory as the reconciler sees them (ours by description)."""
    out = []
    for a in inventory.archives:
        d = a.description
        out.append(
            ListedArchive(
                store_id=a.archive_id,
                size=a.size,
                key=None if d is None else d.key,
                host=None if d is None else d.host,
                cycle_id=None if d is None else d.cycle_id,
                plaintext_sha256=None if d is None else d.plaintext_sha256,
                created=a.created,
                description=a.raw_description,
                kind=ObjectKind.ARCHIVE if d is None else d.kind,
                tree_hash=a.tree_hash,
            )
        )
    return out


@dataclass(slots=True)
class _InventoryPass:
    store: InventoryJobs
    name: str
    catalogue: Catalogue
    settings: InventorySettings
    now: datetime
    request: bool  # ask for an inventory now if no job is in flight
    grace: float
    requested: bool = False

    async def _state(self) -> InventoryState:
        return await asyncio.to_thread(cm.inventory_state, self.catalogue, self.name)

    async def run(self) -> InventoryOutcome:
        listing: Listing | None = None
        first = await self._state()
        if not first.jobs and first.last_requested_at is None and first.last_inventory_date is None:
            # Only a catalogue that never requested nor fetched an inventory (a lost one) adopts
            # the vault's jobs: otherwise the job we fetched (or dropped) would be adopted and
            # fetched again by every pass for as long as Glacier lists it.
            await self._adopt_jobs()
        for _ in range(_MAX_STEPS):
            state = await self._state()
            plan = plan_inventory(state, self.now, self.settings)
            actions = list(plan.actions)
            in_flight = pending_jobs(state)
            if (
                self.request
                and not (self.requested or in_flight)
                and not any(isinstance(a, RequestJob) for a in actions)
            ):
                actions.append(RequestJob("requested on the command line"))
            progressed = False
            for action in actions:
                if isinstance(action, PollJob):
                    progressed |= await self._poll(state, action.job_id)
                elif isinstance(action, ForgetJob):
                    log.warning(
                        "maintenance.inventory_job_dropped",
                        job_id=action.job_id,
                        reason=action.reason,
                    )
                    await asyncio.to_thread(cm.forget_job, self.catalogue, self.name, action.job_id)
                    progressed = True
                elif isinstance(action, FetchOutput):
                    listing = await self._fetch(state, action.job_id) or listing
                    progressed = True
                elif isinstance(action, RequestJob) and not self.requested:
                    self.requested = True
                    progressed |= await self._request(action.reason)
            if not progressed:
                break
        state = await self._state()
        status = plan_inventory(state, self.now, self.settings).status
        return InventoryOutcome(listing, status, len(state.jobs))

    async def _adopt_jobs(self) -> None:
        """After a catalogue loss, inventory jobs still running or finished are not wasted."""
        try:
            jobs = await self.store.list_jobs()
        except StoreError as exc:
            log.info("maintenance.list_jobs_failed", error=str(exc))
            return
        for j in jobs:
            if j.action == "InventoryRetrieval" and not j.failed:
                job = InventoryJobState(j.job_id, j.created, JobStatus(j.status), j.completed)
                await asyncio.to_thread(cm.save_job, self.catalogue, self.name, job)
                await asyncio.to_thread(cm.mark_requested, self.catalogue, self.name, j.created)
                log.info("maintenance.inventory_job_found", job_id=j.job_id, status=j.status)

    async def _poll(self, state: InventoryState, job_id: str) -> bool:
        old = next(j for j in state.jobs if j.job_id == job_id)
        try:
            info = await self.store.describe_job(job_id)
        except JobOutputExpired:
            new = replace(
                old, status=JobStatus.EXPIRED, checked_at=self.now, message="the job is gone"
            )
        else:
            new = replace(
                old,
                status=JobStatus(info.status),
                completed_at=info.completed,
                checked_at=self.now,
                message=info.status_message,
            )
        await asyncio.to_thread(cm.save_job, self.catalogue, self.name, new)
        if new.status != old.status:
            log.info("maintenance.inventory_job", job_id=job_id, status=new.status)
        return new.status != old.status

    async def _fetch(self, state: InventoryState, job_id: str) -> Listing | None:
        old = next(j for j in state.jobs if j.job_id == job_id)
        try:
            inventory = await self.store.get_inventory(job_id)
        except JobOutputExpired:
            log.warning("maintenance.inventory_output_expired", job_id=job_id)
            expired = replace(old, status=JobStatus.EXPIRED)
            await asyncio.to_thread(cm.save_job, self.catalogue, self.name, expired)
            return None
        items = listed_from_inventory(inventory)
        await asyncio.to_thread(
            cm.record_inventory,
            self.catalogue,
            self.name,
            inventory.date,
            items,
            now=self.now,
            job_id=job_id,
        )
        log.info(
            "maintenance.inventory_received",
            job_id=job_id,
            inventory_date=inventory.date.isoformat(),
            archives=len(items),
        )
        return Listing(tuple(items), inventory.date, self.grace)

    async def _request(self, reason: str) -> bool:
        log.info(
            "maintenance.inventory_requesting",
            reason=reason,
            expected_wait_hours=self.settings.expected_job_time / 3600,
            note="an inventory job takes hours; its output is kept about 24 h",
        )
        try:
            job_id = await self.store.initiate_inventory_job()
        except NoInventoryYet:
            log.info(
                "maintenance.no_inventory_yet",
                note="a vault's first inventory is made about a day after the first upload",
            )
            await asyncio.to_thread(cm.inventory_not_ready, self.catalogue, self.name, self.now)
            return False
        await asyncio.to_thread(cm.job_requested, self.catalogue, self.name, job_id, self.now)
        return True
