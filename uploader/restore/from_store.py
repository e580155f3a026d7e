"""Restore from an archive in the configured store: choose it, then read it or retrieve it.

The catalogue says which archives of this host exist (when it knows none, the store is
listed). An archive that can be read is streamed straight into the restore
(:func:`.stream.restore_archive`); one in cold storage goes through a retrieval
(:func:`.cold.restore_cold`).
"""

from __future__ import annotations

from localbackup.configkit import format_size
from localbackup.extract import ExtractStats
from localbackup.formats import IncrementManifest, SealedCycle
from localbackup.pointintime import PointInTimeError, choose_cycle
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig
from uploader.restore.cold import cold_class, restore_cold
from uploader.restore.request import RestoreRequest
from uploader.restore.stream import ArchiveRef, find_archives, identities_for, restore_archive
from uploader.restore.ui import RestoreUI, describe_plan
from uploader.stores import Store

__all__ = ["choose_archive", "restore_from_store"]


async def choose_archive(store: Store, catalogue: Catalogue, host: str, cycle: str) -> ArchiveRef:
    """``host``'s archive of ``cycle`` (a cycle id or ``latest``). Raises
    :class:`~localbackup.pointintime.PointInTimeError` if there is none."""
    archives = {a.cycle_id: a for a in await find_archives(store, catalogue, host)}
    if not archives:
        raise PointInTimeError(f"no archive of host {host!r} in {store.name}")
    return archives[choose_cycle(list(archives), cycle)]


async def restore_from_store(
    request: RestoreRequest,
    store: Store,
    catalogue: Catalogue,
    *,
    host: str,
    encryption: EncryptionConfig,
    ui: RestoreUI,
) -> ExtractStats | None:
    """Restore ``request``'s point in time from ``host``'s archive in ``store`` (open), saying
    the plan first. None when the archive is in cold storage and its retrieval is not ready
    yet (the UI was told when it is expected)."""
    archive = await choose_archive(store, catalogue, host, request.cycle)
    identities = (
        identities_for(encryption, request.identity) if archive.key.endswith(".age") else None
    )

    def on_plan(cycle: SealedCycle, inc: IncrementManifest) -> None:
        where = (
            f"{cycle.cycle_id} (archive {archive.key} in {store.name}, {format_size(archive.size)})"
        )
        ui.say(describe_plan(where, cycle.increments, inc, cycle.mode), now=True)

    storage_class = await cold_class(store, archive.key)
    if storage_class is not None:
        return await restore_cold(
            store,
            catalogue,
            archive,
            storage_class,
            request,
            identities=identities,
            ui=ui,
            on_plan=on_plan,
        )
    result = await restore_archive(
        store,
        archive.key,
        request.to,
        identities=identities,
        at=request.at,
        force=request.force,
        options=request.extract_options,
        on_plan=on_plan,
        max_rate=request.max_rate,
    )
    return result.stats
