"""What a migration run says: the vault's archives and their state, the wait, the summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from localbackup.configkit import format_size
from uploader.archive import VAULT
from uploader.catalogue import MigrationKind, MigrationRecord, MigrationState
from uploader.maintenance import MIN_STORAGE_DAYS
from uploader.migrate.plan import Selection, plan_source_deletions
from uploader.migrate.source import SourceListing
from uploader.restore import retrieval as rt

_STATE = {
    MigrationState.PLANNED: "to request",
    MigrationState.REQUESTED: "retrieving",
    MigrationState.READY: "ready",
    MigrationState.COPIED: "copied",
    MigrationState.SOURCE_DELETED: "moved",
    MigrationState.FAILED: "FAILED",
}


def _when(t: datetime) -> str:
    return rt.format_when(t)


@dataclass(frozen=True, slots=True)
class Report:
    """The archives of a run as they stand, and when the next batch may be requested."""

    records: Sequence[MigrationRecord]
    now: datetime
    next_batch: datetime | None

    def of(self, *states: MigrationState) -> list[MigrationRecord]:
        """The archives in ``states``."""
        return [r for r in self.records if r.state in states]

    @property
    def requested(self) -> list[MigrationRecord]:
        """Archives whose retrieval job runs."""
        return self.of(MigrationState.REQUESTED)

    @property
    def waiting(self) -> bool:
        """Whether waiting moves the migration on (a job runs, or a batch is due later)."""
        planned = self.of(MigrationState.PLANNED)
        return bool(self.requested) or bool(planned and self.next_batch is not None)

    def wake_in(self, delay: float) -> float:
        """Seconds until the next check: ``delay`` while a job runs, the next batch's time."""
        options = [delay] if self.requested else []
        if self.next_batch is not None:
            options.append(max(1.0, (self.next_batch - self.now).total_seconds()))
        return min(options) if options else delay

    def status_line(self, wake: float) -> str:
        """The line shown while waiting."""
        parts = []
        if self.requested:
            parts.append(f"{len(self.requested)} retrievals in progress")
        if self.next_batch is not None:
            parts.append(f"next batch from {_when(self.next_batch)}")
        shown = f"{wake:.0f}" if wake >= 10 else f"{wake:.2g}"
        return f"  waiting: {', '.join(parts)}; next check in {shown}s"


def listing_lines(
    listing: SourceListing, selection: Selection, records: Sequence[MigrationRecord]
) -> list[str]:
    """The vault's archives this run works on, each with its state; what is left out, why."""
    lines = [f"vault archives to move ({listing.status}): {len(records)}"]
    for r in records:
        kind = "  (original tool)" if r.kind is MigrationKind.LEGACY else ""
        note = f"  [{r.error}]" if r.error and r.state is not MigrationState.COPIED else ""
        lines.append(f"  {_STATE[r.state]:<10} {format_size(r.size):>10}  {r.key}{kind}{note}")
    if selection.skipped:
        lines.append(f"left in the vault: {len(selection.skipped)}")
        lines += [f"  {format_size(s.size):>10}  {s.what}: {s.reason}" for s in selection.skipped]
    if listing.newer:
        lines.append(
            f"uploaded after that inventory, migrated once a newer one lists them "
            f"({len(listing.newer)}): {', '.join(listing.newer)}"
        )
    if listing.missing:
        lines.append(
            f"in the old catalogue but not in the vault's inventory (see 'inventory'): "
            f"{', '.join(listing.missing)}"
        )
    return lines


def summary_lines(
    report: Report, *, delete_source: bool, after_days: float = MIN_STORAGE_DAYS[VAULT]
) -> list[str]:
    """Where the migration stands at the end of a run, and what comes next; ``after_days``:
    the age from which a source may be deleted (:func:`.plan.deletable_after`)."""
    done = report.of(MigrationState.COPIED, MigrationState.SOURCE_DELETED)
    size = sum(r.size for r in done)
    lines = [f"copied and verified: {len(done)} of {len(report.records)} ({format_size(size)})"]
    if report.requested:
        lines.append(
            f"retrievals in progress: {len(report.requested)}; run migrate --resume once they "
            "are ready (or --wait)"
        )
    planned = report.of(MigrationState.PLANNED)
    if planned:
        when = f"from {_when(report.next_batch)}" if report.next_batch else "with the next run"
        lines.append(f"still to request: {len(planned)} ({when}, within --max-per-day)")
    for r in report.of(MigrationState.FAILED):
        lines.append(f"FAILED: {r.key}: {r.error} (migrate --resume tries again)")
    copied = report.of(MigrationState.COPIED)
    keep = plan_source_deletions(copied, report.now, after_days).keep
    if delete_source:
        for r, free in keep:
            lines.append(_kept(r, free, after_days))
    elif copied:
        lines.append(
            f"the {len(copied)} copied archives stay in the vault too: "
            "--delete-source-after-min-age deletes each once it is "
            f"{MIN_STORAGE_DAYS[VAULT]} days old"
        )
    return lines


def _kept(r: MigrationRecord, free: datetime | None, after_days: float) -> str:
    if free is None:
        return f"kept in the vault: {r.key}: the vault's lock policy denies deleting it"
    if after_days > MIN_STORAGE_DAYS[VAULT]:
        return (
            f"kept in the vault: {r.key}, younger than {after_days:g} days (the vault's lock "
            f"policy): free to delete on {free:%Y-%m-%d}"
        )
    return (
        f"kept in the vault: {r.key}, younger than {MIN_STORAGE_DAYS[VAULT]} days: free to "
        f"delete without an early-deletion fee on {free:%Y-%m-%d}"
    )
