"""The migration use case: from a Glacier vault to another store, resumable at any point.

One run: read the vault's latest inventory (requesting one if needed), choose the archives
(:mod:`.plan`), show what they will cost (:mod:`.quote`), then, step by step and recording each
step in the catalogue before the next: check the retrieval jobs requested earlier; request the
next batch (within ``--max-per-day``, after consent); copy every ready archive into the
destination (:mod:`.transfer`); with ``delete_source``, delete the vault archives whose copy is
verified and that are past the vault's minimum storage duration. Without ``wait`` the run ends
when nothing more can be done now and says what is next; with it, it sleeps (an injected
``sleep``) until the next retrieval is ready or the next batch is due. Time comes from an
injected ``clock``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog

from localbackup.configkit import format_size
from uploader import catalogue as cm
from uploader.archive import VAULT
from uploader.catalogue import Catalogue, MigrationKind, MigrationRecord, MigrationState
from uploader.config import UploadConfig
from uploader.maintenance import MIN_STORAGE_DAYS
from uploader.migrate.plan import (
    SelectOptions,
    deletable_after,
    plan_source_deletions,
    select_archives,
)
from uploader.migrate.quote import QuoteItem, make_quote, quote_lines
from uploader.migrate.report import Report, listing_lines, summary_lines
from uploader.migrate.retrievals import Requester, RequestOptions, check_requested
from uploader.migrate.source import SourceListing, read_listing
from uploader.migrate.stream import clear_stale
from uploader.migrate.transfer import (
    CopyContext,
    CopyFailed,
    RetrievalAgain,
    copy_archive,
    part_size_for,
)
from uploader.multipart import MultipartOptions
from uploader.object_lock import vault_lock_days
from uploader.pacing import Pace, upload_pace
from uploader.payload import PartPlan
from uploader.restore import POLL_FIRST, POLL_MAX, RestoreUI
from uploader.restore import retrieval as rt
from uploader.stores import (
    InventoryJobs,
    PermanentStoreError,
    RetrievalJobs,
    Store,
    StoreError,
    Tier,
    VaultLocking,
)

log = structlog.get_logger(__name__)

MIN_DAYS = float(MIN_STORAGE_DAYS[VAULT])
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


class MigrateRefused(Exception):
    """The migration cannot be done as asked (wrong kind of store, unknown cycle, a part size
    that cannot work): a usage or configuration problem, nothing was requested."""


@dataclass(frozen=True, slots=True)
class MigrateRequest:
    """What ``migrate`` was asked to do."""

    cycles: tuple[str, ...] = ()  # cycle ids or legacy archive names; empty: every archive
    tier: Tier = "Bulk"
    max_per_day: int | None = None  # bytes of retrievals requested per rolling 24 hours
    quote_only: bool = False
    assume_yes: bool = False
    wait: bool = False
    resume: bool = False
    delete_source: bool = False
    include_legacy: bool = False
    poll_interval: float = POLL_FIRST
    poll_max: float = POLL_MAX


@dataclass(frozen=True, slots=True)
class MigrateSetup:
    """The stores, catalogues and settings one run works with."""

    source: Store  # a Glacier vault (InventoryJobs and RetrievalJobs)
    dest: Store
    catalogue: Catalogue  # the destination configuration's: migration state, new archives
    old_catalogue: Catalogue  # the source configuration's: inventories, old archives
    host: str
    upload: UploadConfig
    spool_root: Path  # where verified ranges wait for their part (0700)
    dest_class: str  # the destination's price class (uploader.maintenance.storage_class_for)


@dataclass(slots=True)
class MigrateOutcome:
    """How a run ended."""

    copied: int = 0  # in this run
    deleted: int = 0  # sources deleted in this run
    failed: list[str] = field(default_factory=list)
    pending: bool = False  # something is left for a later run (retrievals, batches, inventory)


async def migrate(
    setup: MigrateSetup,
    request: MigrateRequest,
    ui: RestoreUI,
    *,
    clock: Clock,
    sleep: Sleep = asyncio.sleep,
) -> MigrateOutcome:
    """Run the migration (see the module docstring). Raises :class:`MigrateRefused` before
    anything is requested, and ``RetrievalDeclined`` when a retrieval is not consented to."""
    jobs, inventories = _abilities(setup)
    requester = Requester(
        jobs,
        inventories,
        setup.catalogue,
        setup.source.name,
        options=RequestOptions(request.tier, request.max_per_day, request.assume_yes),
        ui=ui,
    )
    pace = upload_pace(setup.upload.max_rate, None)
    return await _Run(setup, request, ui, clock, sleep, jobs, inventories, requester, pace).go()


def _abilities(setup: MigrateSetup) -> tuple[RetrievalJobs, InventoryJobs]:
    source, dest = setup.source, setup.dest
    if not (isinstance(source, RetrievalJobs) and isinstance(source, InventoryJobs)):
        raise MigrateRefused(
            f"--from: the source store {source.name} is not a Glacier vault ([store] type = "
            '"glacier"): migrate moves archives out of a vault'
        )
    if isinstance(dest, RetrievalJobs):
        raise MigrateRefused(
            f"the destination {dest.name} is a Glacier vault too: set [store] of --config to "
            'the new store (type = "s3", with a storage_class such as DEEP_ARCHIVE)'
        )
    if setup.upload.part_size is not None:
        try:
            part_size_for(setup.upload.part_size, dest, setup.upload.part_size)
        except PermanentStoreError as exc:
            raise MigrateRefused(str(exc)) from None
    return source, source


@dataclass(slots=True)
class _Run:
    setup: MigrateSetup
    request: MigrateRequest
    ui: RestoreUI
    clock: Clock
    sleep: Sleep
    jobs: RetrievalJobs
    inventories: InventoryJobs
    requester: Requester
    # [upload] max_rate, one limit for every part of the run ([upload] window is for the
    # service: a migration is started by hand, like `upload --now`)
    pace: Pace | None
    outcome: MigrateOutcome = field(default_factory=MigrateOutcome)
    ids: frozenset[int] = frozenset()  # the archives this run works on
    after_days: float | None = None  # see _deletable_after

    def _failed(self, failures: Sequence[tuple[MigrationRecord, str]]) -> None:
        for r, why in failures:
            self.ui.warn(f"{r.key}: {why}")
            self.outcome.failed.append(f"{r.key}: {why}")

    @property
    def names(self) -> tuple[str, str]:
        return self.setup.source.name, self.setup.dest.name

    async def go(self) -> MigrateOutcome:
        listing = await self._listing()
        if listing is None:
            self.outcome.pending = True
            return self.outcome
        await self._select(listing)
        records = await self._records()
        live = {r.id for r in records if r.upload_id is not None}
        await asyncio.to_thread(clear_stale, self.setup.spool_root, live)
        self._show_quote(records)
        if self.request.quote_only:
            return self.outcome
        planned = [r for r in await self._records() if r.state is MigrationState.PLANNED]
        if planned:
            await self.requester.adopt_jobs(planned)
        delay = self.request.poll_interval
        while True:
            failed = await check_requested(self.jobs, self.setup.catalogue, await self._records())
            self._failed(failed)
            await self._copy_ready()
            if self.request.delete_source:
                await self._delete_sources()
            planned = [r for r in await self._records() if r.state is MigrationState.PLANNED]
            self._failed(await self.requester.request_due(planned, self.clock()))
            report = Report(await self._records(), self.clock(), self.requester.next_batch)
            if not self.request.wait or not report.waiting:
                break
            wake = report.wake_in(delay)
            log.info("migrate.waiting", retrievals=len(report.requested), next_check_s=wake)
            self.ui.status(report.status_line(wake))
            await self.sleep(wake)
            delay = min(delay * 1.5, max(self.request.poll_max, self.request.poll_interval))
        after = await self._deletable_after() if self.request.delete_source else None
        for line in summary_lines(
            report, delete_source=self.request.delete_source, after_days=after or MIN_DAYS
        ):
            self.ui.say(line)
        self.outcome.pending = bool(report.waiting)
        return self.outcome

    async def _listing(self) -> SourceListing | None:
        """The vault's listing; None (after saying so) while no inventory exists yet."""
        source = self.setup.source
        while True:
            listing = await read_listing(
                self.inventories,
                source.name,
                self.setup.old_catalogue,
                self.setup.host,
                self.clock(),
                refresh=True,
            )
            if listing.inventory_date is not None:
                return listing
            self.ui.say(
                f"no inventory of {source.name} yet ({listing.status}): a vault lists its "
                "archives only through an inventory job, which takes hours"
            )
            if not self.request.wait:
                self.ui.say("run the same command again later (or add --wait to wait here)")
                return None
            log.info("migrate.waiting", inventory=True)
            await self.sleep(self.request.poll_interval)

    async def _select(self, listing: SourceListing) -> None:
        source, dest = self.names
        taken = await asyncio.to_thread(cm.migration_keys, self.setup.catalogue, dest)
        archived = await asyncio.to_thread(self.setup.catalogue.archives, dest)
        options = SelectOptions(
            host=self.setup.host,
            cycles=self.request.cycles,
            include_legacy=self.request.include_legacy,
            taken=taken,
            in_destination=frozenset(a.key for a in archived),
            preferred=listing.preferred,
        )
        selection = select_archives(listing.archives, options)
        if selection.unmatched:
            raise MigrateRefused(
                f"no archive of {', '.join(selection.unmatched)} in the inventory of {source} "
                f"({listing.status}); the vault's archives are listed by migrate --quote"
            )
        await asyncio.to_thread(
            cm.add_migrations, self.setup.catalogue, source, dest, selection.archives
        )
        if not self.request.quote_only:
            await asyncio.to_thread(cm.retry_failed_migrations, self.setup.catalogue, source, dest)
        wanted = {p.archive_id for p in selection.archives}
        records = await asyncio.to_thread(cm.migrations_between, self.setup.catalogue, source, dest)
        self.ids = frozenset(
            r.id
            for r in records
            if (not self.request.cycles or r.archive_id in wanted)
            and (self.request.include_legacy or r.kind is not MigrationKind.LEGACY)
        )
        for line in listing_lines(listing, selection, [r for r in records if r.id in self.ids]):
            self.ui.say(line)

    async def _records(self) -> list[MigrationRecord]:
        source, dest = self.names
        records = await asyncio.to_thread(cm.migrations_between, self.setup.catalogue, source, dest)
        return [r for r in records if r.id in self.ids]

    def _show_quote(self, records: Sequence[MigrationRecord]) -> None:
        todo = [r for r in records if not r.done]
        if not todo:
            return
        to_request = [r for r in todo if r.state is MigrationState.PLANNED]
        if self.request.resume and not self.request.quote_only:
            if to_request:
                est = rt.estimate(VAULT, self.request.tier, sum(r.size for r in to_request))
                self.ui.say(
                    f"{len(to_request)} archives ({format_size(sum(r.size for r in to_request))})"
                    f" still to request, tier {self.request.tier}: about ${est.cost_usd:.4f}"
                )
            return
        part_size = self.setup.upload.part_size
        quote = make_quote(
            [QuoteItem(r.size, r.created) for r in todo],
            tier=self.request.tier,
            dest_class=self.setup.dest_class,
            parts_for=lambda size: (
                PartPlan(size, part_size_for(size, self.setup.dest, part_size)).count
            ),
            now=self.clock(),
            max_per_day=self.request.max_per_day,
        )
        lines = quote_lines(
            quote, dest=self.setup.dest.name, max_per_day=self.request.max_per_day, now=self.clock()
        )
        for line in lines:
            self.ui.say(line)

    # -- copies and deletions ------------------------------------------------------------------

    async def _copy_ready(self) -> None:
        ready = [r for r in await self._records() if r.state is MigrationState.READY]
        if not ready:
            return
        total, base = sum(r.size for r in ready), [0]
        started = time.monotonic()

        def progress(done: int, _total: int, left: int) -> None:
            so_far = base[0] + done
            rate = so_far / max(time.monotonic() - started, 1e-6)
            eta = (total - so_far) / rate if rate else None
            self.ui.progress(so_far, total, left)
            eta_s = None if eta is None else round(eta)
            log.info("migrate.progress", bytes=so_far, total=total, eta_s=eta_s)

        for n, r in enumerate(ready):
            left = len(ready) - n
            ctx = CopyContext(
                self.jobs,
                self.setup.dest,
                self.setup.catalogue,
                self.setup.spool_root,
                MultipartOptions(
                    concurrency=self.setup.upload.concurrency,
                    retries=self.setup.upload.retries,
                    pace=self.pace,
                ),
                self.setup.upload.part_size,
                self.clock,
                progress=functools.partial(progress, left=left),
            )
            self.ui.say(f"copying {r.key} ({format_size(r.size)}) into {self.setup.dest.name}")
            try:
                copied = await copy_archive(ctx, r)
            except (CopyFailed, RetrievalAgain) as exc:
                self.ui.progress_done()
                self.ui.warn(str(exc))
                if isinstance(exc, CopyFailed):
                    self.outcome.failed.append(str(exc))
            except StoreError as exc:
                self.ui.progress_done()
                why = f"copying {r.key} failed: {exc}; the source archive is untouched"
                await asyncio.to_thread(cm.mark_migration_failed, self.setup.catalogue, r.id, why)
                self.ui.warn(why)
                self.outcome.failed.append(why)
            else:
                self.ui.progress_done()
                self.outcome.copied += 1
                self.ui.say(f"  copied and verified ({copied.checksum or 'size and metadata'})")
            base[0] += r.size

    async def _deletable_after(self) -> float:
        """The age in days from which sources go: the vault's minimum storage duration, or
        more under a Vault Lock policy that denies younger deletes (read once per run; one
        that cannot be read is reported, and a delete it denies is refused and reported)."""
        if self.after_days is None:
            lock_days = None
            source = self.setup.source
            if isinstance(source, VaultLocking):
                try:
                    lock = await source.vault_lock()
                except StoreError as exc:
                    self.ui.warn(f"the vault's lock policy cannot be read: {exc}")
                    lock = None
                lock_days = None if lock is None else vault_lock_days(lock.policy)
            self.after_days = deletable_after(MIN_STORAGE_DAYS[VAULT], lock_days)
        return self.after_days

    async def _delete_sources(self) -> None:
        """Delete the sources of verified copies old enough to go (:meth:`_deletable_after`)."""
        now = self.clock()
        after = await self._deletable_after()
        plan = plan_source_deletions(await self._records(), now, after)
        for r in plan.delete:
            try:
                await self.setup.source.delete(r.archive_id)
            except StoreError as exc:
                self.ui.warn(f"deleting the source of {r.key} failed: {exc}; tried again next run")
                continue
            await asyncio.to_thread(cm.mark_source_deleted, self.setup.catalogue, r.id, now)
            if r.cycle_id is not None:
                await asyncio.to_thread(
                    cm.record_deletion,
                    self.setup.old_catalogue,
                    self.names[0],
                    r.key,
                    r.archive_id,
                    now,
                )
            self.outcome.deleted += 1
            age = (now - r.created).days
            self.ui.say(f"deleted the source of {r.key} from the vault ({age} days old)")
            log.info("migrate.source_deleted", key=r.key, archive_id=r.archive_id, age_days=age)
