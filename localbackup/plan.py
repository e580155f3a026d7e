"""Which increment to write next: a pure decision, no I/O and no clock (``now`` is passed in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from localbackup.configkit import format_duration
from localbackup.formats import IncrementKind


@dataclass(frozen=True, slots=True)
class OpenCycle:
    """What the spool says about the cycle that is not sealed yet."""

    cycle_id: str
    created_at: datetime
    increments: int  # completed increments, the full included (0: the full never finished)


@dataclass(frozen=True, slots=True)
class CyclePolicy:
    """The shape of a cycle, from the config."""

    increments_per_cycle: int  # incrementals after each full
    full_every: float | None = None  # seconds; start a new cycle when the full is this old
    differential: bool = False  # each increment against the full instead of the previous one


@dataclass(frozen=True, slots=True)
class BackupPlan:
    """The decision for one backup step, with the reason it gives."""

    seal_open_cycle: bool  # seal the open cycle before writing anything
    new_cycle: bool  # the increment goes into a new cycle
    number: int  # increment number inside its cycle (0 = the full)
    kind: IncrementKind
    base: int | None  # increment whose index decides what changed
    seal_after: bool  # the cycle is complete once this increment is written
    reason: str


def plan_backup(
    open_cycle: OpenCycle | None, policy: CyclePolicy, now: datetime, *, force_full: bool = False
) -> BackupPlan:
    """Decide the next backup step.

    A cycle is one full plus ``increments_per_cycle`` incrementals; it is sealed right after its
    last increment. ``full_every`` and ``force_full`` seal a cycle early, at the next backup.
    A cycle whose full never finished (a crash) is continued by writing its full again.
    """
    n = policy.increments_per_cycle

    def fresh(seal_open: bool, reason: str) -> BackupPlan:
        return BackupPlan(seal_open, True, 0, IncrementKind.FULL, None, n == 0, reason)

    if open_cycle is None:
        return fresh(False, "no open cycle")
    if open_cycle.increments == 0:
        reason = "the open cycle has no full yet"
        return BackupPlan(False, False, 0, IncrementKind.FULL, None, n == 0, reason)
    if force_full:
        return fresh(True, "a full backup was requested")
    if open_cycle.increments > n:
        return fresh(True, f"the open cycle already holds {open_cycle.increments} increments")
    age = max(0.0, (now - open_cycle.created_at).total_seconds())
    if policy.full_every is not None and age >= policy.full_every:
        return fresh(
            True,
            f"the full is {format_duration(age)} old (full_every is "
            f"{format_duration(policy.full_every)})",
        )
    number = open_cycle.increments
    if policy.differential:
        kind, base = IncrementKind.DIFFERENTIAL, 0
    else:
        kind, base = IncrementKind.INCREMENTAL, number - 1
    return BackupPlan(False, False, number, kind, base, number >= n, f"increment {number} of {n}")
