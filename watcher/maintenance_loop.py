"""The service's maintenance coroutine: a pass every ``[watch] maintenance_every`` seconds.

Each pass opens the store, advances inventories / reconciles, and prunes
(:func:`uploader.maintenance.run_maintenance`). Every failure is caught and logged: the
service never dies of maintenance, the next pass simply tries again. :func:`maintenance_config`
is also what the ``inventory`` and ``prune`` commands use, so that the CLI and the service agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypedDict, Unpack

from localbackup.configkit import ConfigError
from localbackup.formats import load_sealed_cycle
from localbackup.logevents import get_logger
from uploader.catalogue import Catalogue
from uploader.config import metadata_object_options
from uploader.maintenance import (
    InventorySettings,
    MaintenanceConfig,
    MaintenanceReport,
    MetadataUpkeep,
    PrunePlan,
    run_maintenance,
    storage_class_for,
)
from uploader.pending import pending_cycle_dirs
from uploader.stores import open_store
from watcher.config import AppConfig
from watcher.maintenance_notices import announce_ready_retrievals, missing_keys, report_pass
from watcher.notify.events import NoticeEvent
from watcher.outcomes import Outcomes

log = get_logger(__name__)


def expected_next_upload(config: AppConfig, catalogue: Catalogue, store: str) -> int:
    """Bytes the next upload will add: the sealed cycles waiting, else the newest archive's size."""
    pending = pending_cycle_dirs(config.backup.spool_dir, catalogue, store)
    if pending:
        return sum(load_sealed_cycle(d).data_size for d in pending)
    archives = catalogue.archives(store=store)
    return max(archives, key=lambda a: a.uploaded_at).size if archives else 0


class PassOptions(TypedDict, total=False):
    """What the ``inventory`` and ``prune`` commands change in a pass (the service: nothing);
    the defaults are :class:`~uploader.maintenance.MaintenanceConfig`'s."""

    dry_run: bool  # plan and report, delete nothing
    prune: bool  # False: no pruning in this pass
    request_inventory: bool  # ask for an inventory now if no job is in flight
    # Called with the prune plan before any deletion (the ``prune`` command shows every
    # decision and its fee first).
    on_plan: Callable[[PrunePlan], None] | None


def maintenance_config(
    config: AppConfig,
    *,
    next_upload_size: int = 0,
    poll_every: float | None = None,
    **options: Unpack[PassOptions],
) -> MaintenanceConfig:
    """The pass's configuration: the rules of ``config``, changed by ``options``;
    ``poll_every``: poll an inventory job in progress at most this often (``inventory --wait``
    polls at its own interval)."""
    settings = InventorySettings()
    if poll_every is not None:
        settings = dataclasses.replace(settings, poll_every=poll_every)
    return MaintenanceConfig(
        metadata=metadata_upkeep(config),
        retention=config.retention,
        storage_class=storage_class_for(config.store),
        host=config.backup.host,
        inventory=settings,
        next_upload_size=next_upload_size,
        **options,
    )


def metadata_upkeep(config: AppConfig) -> MetadataUpkeep | None:
    """How missing metadata objects are sent again: to the configured recipients, with the
    configured object options; None (they are only flagged) without an encryption key."""
    try:
        config.encryption.require_key()
    except ConfigError:
        return None
    return MetadataUpkeep(config.encryption, metadata_object_options(config.store))


async def maintenance_pass(
    config: AppConfig,
    catalogue: Catalogue,
    now: datetime,
    *,
    poll_every: float | None = None,
    outcomes: Outcomes | None = None,
    **options: Unpack[PassOptions],
) -> MaintenanceReport:
    """One pass against the configured store (used by the loop and the CLI). With
    ``outcomes``, what changed (MISSING, over budget, retrievals ready) and the pass itself
    go to the outcome sink (notifications, metrics)."""
    started = time.monotonic()
    store = open_store(config.store)
    nxt = await asyncio.to_thread(expected_next_upload, config, catalogue, store.name)
    mcfg = maintenance_config(config, next_upload_size=nxt, poll_every=poll_every, **options)
    async with store as s:
        before = await asyncio.to_thread(missing_keys, catalogue, s.name)
        report = await run_maintenance(s, catalogue, mcfg, now)
        if outcomes is not None:
            await announce_ready_retrievals(s, catalogue, outcomes)
    if outcomes is not None:
        await asyncio.to_thread(
            lambda: report_pass(
                outcomes,
                catalogue,
                report,
                missing_before=before,
                seconds=time.monotonic() - started,
            )
        )
    return report


async def maintenance_loop(
    config: Callable[[], AppConfig],
    catalogue: Catalogue,
    wake: asyncio.Event | None = None,
    *,
    outcomes: Outcomes | None = None,
) -> None:
    """Run a maintenance pass now and every ``maintenance_every`` seconds, forever; setting
    ``wake`` (e.g. after an upload, where a listing is cheap) runs the next pass early."""
    while True:
        cfg = config()
        try:
            report = await maintenance_pass(cfg, catalogue, datetime.now(UTC), outcomes=outcomes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let maintenance take the service down
            log.exception("maintenance.pass_failed", error=str(exc), type=type(exc).__name__)
            if outcomes is not None:
                notice = outcomes.notice(
                    NoticeEvent.MAINTENANCE_FAILED, error=f"{type(exc).__name__}: {exc}"
                )
                await asyncio.to_thread(outcomes.emit, notice, catalogue)
        else:
            plan = report.plan
            log.info(
                "maintenance.pass_done",
                store=report.store,
                inventory=report.inventory_status,
                deleted=len(report.deleted),
                over_budget=bool(plan and plan.over_budget),
                problems=len(report.problems),
            )
        if wake is None:
            await asyncio.sleep(cfg.watch.maintenance_every)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), cfg.watch.maintenance_every)
        wake.clear()
