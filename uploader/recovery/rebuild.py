"""Recovery of a lost host's catalogue: read the metadata objects reconciliation adopted.

A maintenance pass (``inventory``) lists the store, or fetches a vault inventory, and adopts
this host's archives and their metadata objects into an empty catalogue. What is left is
reading each metadata object, with the identity, into the catalogue (:mod:`.fetch`): then
``files``, ``cycles``, ``status`` and ``restore --path`` answer as they did on the lost host,
and no archive was retrieved for it.

In S3 and local stores the metadata objects are read at once (S3: they are in a hot storage
class, even when the archives are in DEEP_ARCHIVE). In a Glacier vault each is a small archive
that needs a retrieval job first: the jobs are requested after saying what they cost and how
long they take (consent: ``assume_yes`` or a yes from the user), recorded in the catalogue like
a restore's, and read once finished (this call again, or ``wait``).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from localbackup.configkit import format_size
from uploader import catalogue as cm
from uploader.catalogue import Catalogue, MetadataRecord, RetrievalRecord
from uploader.recovery.fetch import MetadataDamaged, Unlock, ingest, read_metadata_object
from uploader.restore import retrieval as rt
from uploader.restore.request import RetrievalOptions
from uploader.restore.ui import RestoreUI, RetrievalDeclined, consent
from uploader.stores.base import Store

log = structlog.get_logger(__name__)

__all__ = ["RecoveryReport", "recover_metadata"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class RecoveryReport:
    """What one recovery call did, and what is left."""

    read: list[str] = field(default_factory=list)  # metadata objects read into the catalogue
    damaged: list[str] = field(default_factory=list)  # why each untrusted one was skipped
    waiting: list[str] = field(default_factory=list)  # vault retrievals not finished yet
    needs_key: list[str] = field(default_factory=list)  # unread: no identity was given
    requested: int = 0  # vault retrieval jobs requested by this call

    @property
    def complete(self) -> bool:
        """Whether every metadata object of the host is in the catalogue now."""
        return not (self.damaged or self.waiting or self.needs_key)


async def recover_metadata(
    store: Store,
    catalogue: Catalogue,
    *,
    host: str,
    unlock: Callable[[], Unlock | None],
    ui: RestoreUI,
    retrieval: RetrievalOptions | None = None,
    assume_yes: bool = False,
    reread: bool = False,
    sleep: Sleep = asyncio.sleep,
) -> RecoveryReport:
    """Read ``host``'s unread metadata objects (``reread``: all of them) into the catalogue.

    ``unlock`` gives the key, and is only called when there is something to read (a backup
    host whose identity is kept offline never needs it). Raises
    :class:`~uploader.recovery.fetch.WrongKey` (naming the key and the archive) when the key
    opens none of them, and :class:`~uploader.restore.RetrievalDeclined` when vault retrievals
    are needed and were not confirmed; a damaged metadata object is reported and skipped."""
    report = RecoveryReport()
    todo = await asyncio.to_thread(_unread, catalogue, store.name, host, reread)
    if not todo:
        return report
    key = unlock()
    if key is None and any(m.key.endswith(".age") for m, _ in todo):
        report.needs_key = [m.key for m, _ in todo]
        return report
    options = retrieval or RetrievalOptions()
    with tempfile.TemporaryDirectory(dir=catalogue.path.parent, prefix=".recovery-") as tmp:
        job = _Recovery(store, catalogue, key, ui, options, assume_yes, sleep, Path(tmp))
        if rt.is_vault(store):
            await job.through_retrievals(todo, report)
        else:
            for record, size in todo:
                await job.read(record, size, store.read(record.key), report)
    return report


def _unread(
    catalogue: Catalogue, store: str, host: str, reread: bool
) -> list[tuple[MetadataRecord, int]]:
    """``host``'s metadata objects to read, with their archive's size (those whose archive
    the catalogue does not hold are not: nothing could be restored with them)."""
    sizes = {a.key: a.size for a in catalogue.archives(store=store)}
    return [
        (m, sizes[m.archive_key])
        for m in cm.metadata_objects(catalogue, store)
        if m.host == host and m.archive_key in sizes and (reread or m.read_at is None)
    ]


@dataclass(frozen=True, slots=True)
class _Recovery:
    store: Store
    catalogue: Catalogue
    unlock: Unlock | None
    ui: RestoreUI
    options: RetrievalOptions
    assume_yes: bool
    sleep: Sleep
    work: Path

    async def read(
        self,
        record: MetadataRecord,
        size: int,
        chunks: AsyncIterator[bytes],
        report: RecoveryReport,
    ) -> None:
        """Read one metadata object into the catalogue (a damaged one is reported)."""
        try:
            content, into = await read_metadata_object(
                record, chunks, self.unlock, work=self.work, archive_size=size
            )
        except MetadataDamaged as exc:
            self.ui.warn(str(exc))
            log.error("recovery.metadata_damaged", key=record.key, error=str(exc))
            report.damaged.append(str(exc))
            return
        await asyncio.to_thread(ingest, self.catalogue, record, content, into)
        report.read.append(record.key)

    async def through_retrievals(
        self, todo: list[tuple[MetadataRecord, int]], report: RecoveryReport
    ) -> None:
        """Vault: request the jobs not requested yet, then read those that have finished."""
        jobs = {}
        missing = []
        for record, _ in todo:
            found = await asyncio.to_thread(
                cm.find_retrieval, self.catalogue, self.store.name, record.key
            )
            if found is not None and await self._usable(found):
                jobs[record.key] = found
            else:
                missing.append(record)
        if missing:
            for record, retrieval in zip(missing, await self._request(missing), strict=True):
                jobs[record.key] = retrieval
            report.requested = len(missing)
        ready = await self._ready(list(jobs.values()))
        for record, size in todo:
            job = jobs[record.key]
            if job.key not in ready:
                when = rt.format_when(rt.expected_ready(job))
                report.waiting.append(f"{record.key} (expected around {when})")
                continue
            assert job.job_id is not None
            chunks = rt.retrieval_jobs(self.store).read_job_output(job.job_id)
            await self.read(record, size, chunks, report)
            await asyncio.to_thread(cm.drop_retrieval, self.catalogue, job.id)

    async def _usable(self, record: RetrievalRecord) -> bool:
        """Whether a recorded job can still be waited for or read (not expired, not failed)."""
        try:
            await rt.status(self.store, record)
        except rt.RetrievalError as exc:
            self.ui.warn(f"{record.key}: {exc}; requesting it again")
            return False
        return True

    async def _request(self, records: list[MetadataRecord]) -> list[RetrievalRecord]:
        """Say what the retrieval jobs cost and take, ask, then request them."""
        tier = self.options.tier or rt.default_tier(rt.VAULT)
        total = sum(m.expected.size for m in records)
        est = rt.estimate(rt.VAULT, tier, total)
        self.ui.say(
            f"{len(records)} metadata object(s) ({format_size(total)} in all) are archives in "
            f"a Glacier vault: each needs a retrieval job before it can be read (a small, cheap "
            f"job).\n  tier {tier}: typically ready {est.wait_text} (around "
            f"{rt.format_when(datetime.now(UTC) + est.wait)})\n"
            f"  estimated retrieval cost: ${est.cost_usd:.4f} (list price estimate, without "
            "the per-request fees and data transfer)"
        )
        consent(
            self.ui,
            "request these retrieval jobs?",
            assume_yes=self.assume_yes,
            unattended="a retrieval is billed: add --yes to request the metadata objects",
            declined="retrievals not requested",
            error=RetrievalDeclined,
        )
        out = []
        for m in records:
            if not m.expected.archive_id:
                raise rt.RetrievalError(f"{m.key}: its ArchiveId is not known")
            out.append(
                await rt.request(
                    self.store,
                    self.catalogue,
                    key=m.key,
                    archive_id=m.expected.archive_id,
                    size=m.expected.size,
                    storage_class=rt.VAULT,
                    tier=tier,
                    days=self.options.days,
                )
            )
        return out

    async def _ready(self, records: list[RetrievalRecord]) -> set[str]:
        """The keys whose job has finished; with ``wait``, after waiting for all of them."""
        delay = self.options.poll_interval
        while True:
            ready = set()
            for r in records:
                if (await rt.status(self.store, r)).ready:
                    ready.add(r.key)
            if len(ready) == len(records) or not self.options.wait:
                return ready
            left = len(records) - len(ready)
            self.ui.status(f"  {left} retrieval job(s) in progress; next check in {delay:.0f}s")
            await self.sleep(delay)
            delay = min(delay * 1.5, max(self.options.poll_max, self.options.poll_interval))
