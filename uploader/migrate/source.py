"""What the source vault holds: its latest inventory, fetched through the inventory state
machine of :mod:`uploader.maintenance.inventory_pass` into the old configuration's catalogue.

A vault cannot be listed at once: the inventory (the service's daily snapshot) is the list of
archives, their descriptions (what says an archive is ours, and its metadata), sizes and
creation dates. Archives the old catalogue knows but the latest inventory does not (uploaded
after it) need a newer inventory, which is requested; until one lists them they wait.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from localbackup.configkit import DAY
from uploader import catalogue as cm
from uploader.catalogue import Catalogue
from uploader.maintenance import InventorySettings, advance_inventory
from uploader.migrate.plan import VaultArchive
from uploader.stores import InventoryJobs

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SourceListing:
    """The vault as of its latest inventory, and what the old catalogue knows beyond it."""

    inventory_date: datetime | None  # None: no inventory fetched yet
    archives: tuple[VaultArchive, ...]
    newer: tuple[str, ...]  # keys of this host's archives uploaded after that inventory
    preferred: frozenset[str]  # ArchiveIds the old catalogue records for this host
    status: str  # the inventory state machine's status line
    # Keys the old catalogue knows that an inventory taken well after their upload does not
    # list (``inventory`` flags them MISSING): nothing to migrate.
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether the inventory lists everything the old catalogue knows of."""
        return self.inventory_date is not None and not self.newer


async def read_listing(
    store: InventoryJobs,
    name: str,
    catalogue: Catalogue,
    host: str,
    now: datetime,
    *,
    refresh: bool,
) -> SourceListing:
    """The vault's archives from the latest inventory in ``catalogue`` (the old
    configuration's). With ``refresh``, and when there is no inventory or the catalogue knows
    archives it does not list, the inventory state machine is advanced first, as a maintenance
    pass would (it polls the job in flight at once, fetches its output once ready, requests a
    first inventory, or a new one at most daily after the vault changed)."""
    listing = await asyncio.to_thread(_listing, catalogue, name, host, "")
    status = ""
    if refresh and not listing.complete:
        settings = InventorySettings(poll_every=0.0)  # one look per run: a person is waiting
        outcome = await advance_inventory(
            store, name, catalogue, settings, now, request=False, grace=DAY
        )
        log.info("migrate.inventory", status=outcome.status, jobs=outcome.jobs_in_flight)
        status = outcome.status
        listing = await asyncio.to_thread(_listing, catalogue, name, host, status)
    if listing.inventory_date is not None:
        status = f"inventory of {listing.inventory_date:%Y-%m-%d %H:%M} UTC"
    return replace(listing, status=status)


def _listing(catalogue: Catalogue, name: str, host: str, status: str) -> SourceListing:
    known = {
        a.store_id: a
        for a in cm.known_archives(catalogue, name)
        if a.store_id and a.key.split("/", 1)[0] == host
    }
    gone = {d.store_id for d in cm.pending_deletions(catalogue, name) if d.store_id}
    latest = cm.latest_inventory(catalogue, name)
    if latest is None:
        newer = tuple(sorted(a.key for i, a in known.items() if i not in gone))
        return SourceListing(None, (), newer, frozenset(known), status)
    date, items = latest
    archives = []
    for item in items:
        archive_id = str(item["store_id"])
        if archive_id in gone:
            continue  # deleted by this tool (prune, an earlier migration) after the inventory
        record = known.get(archive_id)
        archives.append(
            VaultArchive(
                archive_id=archive_id,
                size=int(str(item["size"])),
                created=datetime.fromisoformat(str(item["created"])),
                description=str(item.get("description") or ""),
                plaintext_sha256=record.plaintext_sha256 or "" if record else "",
            )
        )
    listed = {a.archive_id for a in archives}
    absent = [a for i, a in known.items() if i not in listed and i not in gone]
    lag = timedelta(seconds=DAY)
    newer = tuple(sorted(a.key for a in absent if a.uploaded_at > date - lag))
    missing = tuple(sorted(a.key for a in absent if a.uploaded_at <= date - lag))
    return SourceListing(date, tuple(archives), newer, frozenset(known), status, missing)
