"""Restore from an archive in the configured store: choose it, then read it or retrieve it.

The catalogue says which archives of this host exist (when it knows none, the store is
listed). An archive that can be read is streamed straight into the restore
(:func:`.stream.restore_archive`); one in cold storage goes through a retrieval
(:func:`.cold.restore_cold`), unless the store refuses restore requests as an operation it does
not have and the object reads directly (S3-compatible servers such as SeaweedFS).
"""

from __future__ import annotations

import asyncio

from localbackup.configkit import format_size
from localbackup.extract import ExtractOptions, ExtractStats
from localbackup.formats import IncrementManifest, SealedCycle
from localbackup.pointintime import PointInTimeError, choose_cycle
from uploader.catalogue import Catalogue, record_restore
from uploader.config import EncryptionConfig
from uploader.crypto import Identity, NoIdentityMatchError
from uploader.restore.cold import cold_class, finished, restore_cold
from uploader.restore.paths import check_paths_in_catalogue
from uploader.restore.request import RestoreRequest
from uploader.restore.retrieval import RetrievalError, reads_directly
from uploader.restore.stream import (
    ArchiveRef,
    OnPlan,
    RestoreError,
    find_archives,
    identities_for,
    identity_source,
    restore_archive,
)
from uploader.restore.ui import RestoreUI, chain_size, describe_plan, with_progress
from uploader.stores import RestoreNotSupported, Store

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
    yet (the UI was told when it is expected). A ``--path`` that selects nothing in the
    catalogue's copy of the cycle's index raises :class:`~localbackup.pathmatch.NoPathMatch`
    before anything is requested or downloaded."""
    archive = await choose_archive(store, catalogue, host, request.cycle)
    request = await asyncio.to_thread(
        check_paths_in_catalogue, request, catalogue, archive.cycle_id, ui
    )
    identities = (
        identities_for(encryption, request.identity) if archive.key.endswith(".age") else None
    )

    total = [0]
    options = with_progress(request.extract_options, ui, total)

    def on_plan(cycle: SealedCycle, inc: IncrementManifest) -> None:
        where = (
            f"{cycle.cycle_id} (archive {archive.key} in {store.name}, {format_size(archive.size)})"
        )
        total[0] = chain_size(cycle.increments, inc)
        ui.say(describe_plan(where, cycle.increments, inc, cycle.mode), now=True)

    try:
        return await _restore(store, catalogue, archive, request, identities, ui, on_plan, options)
    except NoIdentityMatchError as exc:
        raise RestoreError(
            f"archive {archive.key}: {identity_source(encryption, request.identity)} cannot "
            f"decrypt it ({exc}): it was encrypted to other recipients; pass --identity FILE "
            "with the identity whose public key was in [encryption] recipients when it was "
            "uploaded"
        ) from None
    finally:
        ui.restoring_done()


async def _restore(  # noqa: PLR0917 - the steps of restore_from_store, passed on as they are
    store: Store,
    catalogue: Catalogue,
    archive: ArchiveRef,
    request: RestoreRequest,
    identities: list[Identity] | None,
    ui: RestoreUI,
    on_plan: OnPlan,
    options: ExtractOptions,
) -> ExtractStats | None:
    storage_class = await cold_class(store, archive.key)
    probed = False
    if storage_class is not None:
        try:
            return await restore_cold(
                store,
                catalogue,
                archive,
                storage_class,
                request,
                identities=identities,
                ui=ui,
                on_plan=on_plan,
                options=options,
            )
        except RestoreNotSupported as exc:
            # An S3-compatible server without the restore API may keep the object readable.
            if not await reads_directly(store, archive.key):
                raise RetrievalError(
                    f"{exc}: the store has no restore requests, and {archive.key} cannot be "
                    "read directly either"
                ) from exc
            ui.say(
                f"{store.name} takes no restore requests ({exc}), but {archive.key} reads "
                "directly: restoring from it without a retrieval"
            )
            probed = True
    result = await restore_archive(
        store,
        archive.key,
        request.to,
        probed=probed,
        identities=identities,
        at=request.at,
        force=request.force,
        options=options,
        on_plan=on_plan,
        max_rate=request.max_rate,
    )
    done = finished(store, archive, result, request.to)
    await asyncio.to_thread(record_restore, catalogue, done)
    return result.stats
