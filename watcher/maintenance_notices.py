"""What a maintenance pass tells the outcome sink: new MISSING archives, the budget crossing
over (or back), the pass itself, and retrievals that became ready.

Only changes are announced, so that an hourly pass does not repeat itself: an archive is
announced MISSING when it is newly flagged; "over budget" when a pass finds the store over its
budget and the previous one did not (the catalogue's event log remembers which it was); a
retrieval when the store first says it is ready (``restore --resume`` then downloads it).
"""

from __future__ import annotations

import asyncio

from localbackup.logevents import get_logger
from uploader import catalogue as cm
from uploader.catalogue import Catalogue, EventKind, FlagKind
from uploader.maintenance import MaintenanceReport
from uploader.stores import Store
from watcher.notify.events import NoticeEvent
from watcher.outcomes import Outcomes

log = get_logger(__name__)

OVER: EventKind = "over_budget"  # catalogue events: the budget's state in the last pass
WITHIN: EventKind = "within_budget"


def missing_keys(catalogue: Catalogue, store: str) -> set[str]:
    """Keys of this store's archives flagged MISSING now."""
    return {f.key for f in cm.open_flags(catalogue, store) if f.kind is FlagKind.MISSING}


def report_pass(
    outcomes: Outcomes,
    catalogue: Catalogue,
    report: MaintenanceReport,
    *,
    missing_before: set[str],
    seconds: float,
) -> None:
    """Announce what changed in this pass, then the pass itself (blocking: run in a thread)."""
    flags = {f.key: f for f in cm.open_flags(catalogue, report.store)}
    for key in sorted(missing_keys(catalogue, report.store) - missing_before):
        outcomes.emit(
            outcomes.notice(
                NoticeEvent.ARCHIVE_MISSING,
                cycle=_cycle_of(key),
                error=flags[key].detail,
                message=f"{key} is not in {report.store}: see docs/retention.md (MISSING)",
                details={"key": key, "store": report.store},
            ),
            catalogue,
        )
    plan = report.plan
    if plan is not None:
        last = cm.last_event(catalogue, (OVER, WITHIN))
        was_over = last is not None and last.kind == OVER
        if plan.over_budget != was_over:
            cm.record_event(catalogue, OVER if plan.over_budget else WITHIN, plan.summary())
            if plan.over_budget:
                outcomes.emit(
                    outcomes.notice(
                        NoticeEvent.OVER_BUDGET,
                        sizes={
                            "store": plan.total_size,
                            "budget": plan.budget or 0,
                            "shortfall": plan.shortfall,
                            "next_upload": plan.next_upload_size,
                        },
                        message=plan.summary(),
                        details={"blocked_by": plan.blocked_by, "store": report.store},
                    ),
                    catalogue,
                )
    if report.failure is not None:  # the store could not be asked: not a success
        outcomes.emit(
            outcomes.notice(
                NoticeEvent.MAINTENANCE_FAILED,
                duration=seconds,
                error=str(report.failure),
                details={"store": report.store},
            ),
            catalogue,
        )
        return
    outcomes.emit(
        outcomes.notice(
            NoticeEvent.MAINTENANCE_DONE,
            duration=seconds,
            warnings=len(report.problems),
            message="; ".join(report.problems),
            details={"store": report.store, "inventory": report.inventory_status},
        ),
        catalogue,
    )


async def announce_ready_retrievals(
    store: Store, catalogue: Catalogue, outcomes: Outcomes
) -> list[str]:
    """Announce every retrieval that became ready since it was requested (see
    :func:`uploader.restore.ready_since_requested`); the keys announced."""
    from uploader.restore import ready_since_requested

    ready = await ready_since_requested(store, catalogue)
    for record in ready:
        notice = outcomes.notice(
            NoticeEvent.RETRIEVAL_READY,
            cycle=_cycle_of(record.key),
            sizes={"archive": record.size},
            message=(
                f"{record.key} can be downloaded now: run the same 'glacier-backup restore' "
                "command with --resume"
            ),
            details={"key": record.key, "tier": record.tier, "store": store.name},
        )
        await asyncio.to_thread(outcomes.emit, notice, catalogue)
    return [r.key for r in ready]


def _cycle_of(key: str) -> str | None:
    from uploader.archive import parse_object_key

    parsed = parse_object_key(key)
    return None if parsed is None else parsed.cycle_id
