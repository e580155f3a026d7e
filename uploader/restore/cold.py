"""Restore from cold storage: request a retrieval, wait or stop, resume, download, restore.

S3 objects in GLACIER / DEEP_ARCHIVE get a ``restore_object``; archives in a Glacier vault an
archive-retrieval job (:mod:`.retrieval`). The request is recorded in the catalogue, so the
command can exit while it runs (hours) and ``restore --resume`` later checks on it, downloads
(:mod:`.download`) and restores. Downloaded bytes that fail a restore's integrity checks are
discarded, so that the next ``--resume`` fetches them again instead of trusting them forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from localbackup.configkit import format_size
from localbackup.extract import ExtractOptions, ExtractStats
from localbackup.integrity import IntegrityError
from localbackup.staging import check_target
from uploader import catalogue as cr
from uploader.catalogue import Catalogue, FinishedRestore, RetrievalState, archive_id_of
from uploader.crypto import HeaderError, Identity, PayloadError
from uploader.restore import download as dl
from uploader.restore import retrieval as rt
from uploader.restore.request import RestoreRequest
from uploader.restore.stream import (
    ArchiveRef,
    CorruptArchive,
    OnPlan,
    RestoreError,
    RestoreResult,
)
from uploader.restore.ui import RestoreUI, RetrievalDeclined, consent
from uploader.stores import Store

__all__ = ["Sleep", "cold_class", "finished", "restore_cold"]

Sleep = Callable[[float], Awaitable[None]]

# Failures meaning the downloaded bytes are bad (not the key, the target or the disk): the
# download is discarded so that --resume fetches it again.
_BAD_DOWNLOAD = (HeaderError, PayloadError, IntegrityError, CorruptArchive)


async def cold_class(store: Store, key: str) -> str | None:
    """The cold class of ``key`` (``GLACIER``, ``DEEP_ARCHIVE``, a vault), or None if readable."""
    if rt.is_vault(store):
        return rt.VAULT
    if not store.capabilities.needs_retrieval:
        return None
    info = await store.head(key)
    return info.storage_class if info.storage_class in rt.COLD_CLASSES else None


async def restore_cold(
    store: Store,
    catalogue: Catalogue,
    archive: ArchiveRef,
    storage_class: str,
    request: RestoreRequest,
    *,
    identities: list[Identity] | None,
    ui: RestoreUI,
    on_plan: OnPlan,
    sleep: Sleep = asyncio.sleep,
    options: ExtractOptions | None = None,
) -> ExtractStats | None:
    """Restore once the archive is retrieved; None (after saying so) while it is not yet.

    The target's preconditions (empty unless ``force``, writable) are checked first: a
    retrieval is billed and a download may take hours, neither is wasted on a bad target.
    Raises :class:`RetrievalDeclined` when a retrieval it would request is not confirmed.
    """
    to = request.to
    check_target(to, force=request.force, download_dir=dl.download_path(to, archive.key).parent)
    cold = _ColdRestore(store, catalogue, archive, storage_class, request, ui, sleep)
    record = await cold.ready_retrieval()
    if record is None:
        return None
    path = await cold.download(record)
    try:
        result = await dl.restore_downloaded(
            path,
            to,
            identities=identities,
            at=request.at,
            force=request.force,
            options=options or request.extract_options,
            on_plan=on_plan,
        )
    except _BAD_DOWNLOAD as exc:
        await asyncio.to_thread(dl.forget_download, catalogue, record, path)
        raise type(exc)(
            f"{exc} (the downloaded copy of {archive.key} failed this check and was discarded: "
            "run the same command with --resume to download it again)"
        ) from exc
    dl.remove_download(path)
    done = finished(store, archive, result, to)
    await asyncio.to_thread(cr.record_restore, catalogue, done, retrieval=record.id)
    return result.stats


def finished(store: Store, archive: ArchiveRef, result: RestoreResult, to: Path) -> FinishedRestore:
    """What the catalogue remembers of a restore that finished (``restore --resume`` then
    says it is done)."""
    return FinishedRestore(
        store.name,
        archive.key,
        result.cycle.cycle_id,
        result.increment.number,
        to,
        datetime.now(UTC),
    )


@dataclass(frozen=True, slots=True)
class _ColdRestore:
    """The steps of one cold restore before the restore itself, sharing what they work on."""

    store: Store
    catalogue: Catalogue
    archive: ArchiveRef
    storage_class: str
    request: RestoreRequest
    ui: RestoreUI
    sleep: Sleep

    async def ready_retrieval(self) -> cr.RetrievalRecord | None:
        """The recorded retrieval once it is ready to download: requested first if none is
        recorded (or its staged copy expired), waited for with ``wait``; None (after saying
        when it is expected) while it is not ready."""
        options, key, ui = self.request.retrieval, self.archive.key, self.ui
        record = await asyncio.to_thread(cr.find_retrieval, self.catalogue, self.store.name, key)
        if record is None:
            if options.resume:
                ui.say(f"no retrieval of {key} is recorded: requesting one")
            record = await self.request_retrieval()
        try:
            status = await rt.status(self.store, record)
        except rt.RetrievalExpired as exc:
            ui.warn(str(exc))
            ui.say("requesting the retrieval again")
            record = await self.request_retrieval()
            status = await rt.status(self.store, record)
        if not status.ready and options.wait:
            status = await self.wait(record)
        if not status.ready:
            when = rt.format_when(status.expected_ready or rt.expected_ready(record))
            ui.say(
                f"waiting: retrieval of {key} ({record.tier} tier, requested "
                f"{rt.format_when(record.requested_at)}) is not ready yet ({status.detail}); "
                f"expected around {when}.\n"
                f"run the same command with --resume then (or --wait to wait here)"
            )
            return None
        if record.state is not RetrievalState.READY:
            await asyncio.to_thread(cr.mark_ready, self.catalogue, record.id)
        return record

    async def request_retrieval(self) -> cr.RetrievalRecord:
        """Request a retrieval after saying its tier, wait and estimated cost, with consent;
        an S3 restore already there or running is only recorded (nothing to pay)."""
        store, archive, storage_class = self.store, self.archive, self.storage_class
        archive_id = None
        if storage_class == rt.VAULT:
            archive_id = await asyncio.to_thread(
                archive_id_of, self.catalogue, store.name, archive.key
            )
            if not archive_id:
                raise RestoreError(
                    f"the catalogue has no Glacier ArchiveId for {archive.key}: run "
                    "'glacier-backup inventory' (it requests the vault inventory and records the "
                    "ids once it is ready), then restore again"
                )
        days = self.request.retrieval.days
        tier = self.request.retrieval.tier or rt.default_tier(storage_class)
        est = rt.estimate(storage_class, tier, archive.size)

        async def record(*, ask: bool = True) -> cr.RetrievalRecord:
            return await rt.request(
                store,
                self.catalogue,
                key=archive.key,
                archive_id=archive_id,
                size=archive.size,
                storage_class=storage_class,
                tier=tier,
                days=days,
                ask=ask,
            )

        if storage_class != rt.VAULT:
            under_way = await rt.s3_restore_under_way(store, archive.key)
            if under_way is not None:  # nothing to ask for (nor pay): just keep track of it
                what = "a restored copy is there" if under_way == "restored" else "a restore runs"
                self.ui.say(f"{archive.key}: {what} already: nothing to request")
                return await record(ask=False)
        where = "a Glacier vault" if storage_class == rt.VAULT else f"S3 {storage_class}"
        self.ui.say(
            f"{archive.key} ({format_size(archive.size)}) is in {where}: it must be retrieved "
            f"first.\n  tier {tier}: typically ready {est.wait_text} "
            f"(around {rt.format_when(datetime.now(UTC) + est.wait)})\n"
            f"  estimated retrieval cost: ${est.cost_usd:.4f} (list price estimate, without "
            "request fees and data transfer)"
        )
        consent(
            self.ui,
            "request this retrieval?",
            assume_yes=self.request.assume_yes,
            unattended="a retrieval is billed: add --yes to request it",
            declined="retrieval not requested",
            error=RetrievalDeclined,
        )
        return await record()

    async def wait(self, record: cr.RetrievalRecord) -> rt.Status:
        """Poll with backoff until ready, with a status line: ``poll_interval`` seconds (1 min
        by default) between the first checks, half as long again each time, up to ``poll_max``
        (30 min; never below ``poll_interval``)."""
        delay = self.request.retrieval.poll_interval
        maximum = max(self.request.retrieval.poll_max, delay)
        waited = 0
        while True:
            status = await rt.status(self.store, record)
            if status.ready:
                if waited:
                    self.ui.say(f"  ready after {waited} check{'s' if waited > 1 else ''}")
                return status
            when = rt.format_when(status.expected_ready or rt.expected_ready(record))
            shown = f"{delay:.0f}" if delay >= 10 else f"{delay:.2g}"
            self.ui.status(f"  {status.detail}; expected around {when}; next check in {shown}s")
            await self.sleep(delay)
            waited += 1
            delay = min(delay * 1.5, maximum)

    async def download(self, record: cr.RetrievalRecord) -> Path:
        """Download the ready retrieval (only the ranges not yet verified); where it is."""
        key, options = self.archive.key, self.request.retrieval
        path = dl.resume_path(self.request.to, key, record.download_path)
        self.ui.say(f"downloading {key} ({format_size(record.size)}) into {path.parent}")
        fetched = await dl.download(
            self.store,
            self.catalogue,
            record,
            path,
            range_size=options.range_size,
            parallel=options.parallel,
            on_range=self.ui.progress,
            max_rate=self.request.max_rate,
        )
        self.ui.progress_done()
        self.ui.say(f"  {fetched} ranges downloaded and verified")
        return path
