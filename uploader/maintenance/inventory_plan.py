"""The Glacier inventory job state machine, as a pure function of the persisted state and ``now``.

A vault has no listing: the only truth is an inventory job. AWS refreshes a vault's inventory about
once a day (the first one can take a day after the first upload), a job takes hours, and its output
is kept about 24 hours after it completes. :func:`plan_inventory` says what to do next:

- no job in flight and one is due -> request one (never-requested vaults: at once; otherwise every
  ``max_interval``, or sooner after an upload or a deletion, but never more often than
  ``min_interval``);
- a job in progress -> poll it (at most every ``poll_every``);
- a finished job -> fetch its output while it is inside its window; only the newest one is
  fetched, older finished ones are superseded;
- output expired, job failed or gone -> forget it and request again;
- the service said there is no inventory yet (first-ever inventory) -> wait ``not_ready_retry``;
  that is a normal state, never an error;
- otherwise wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from localbackup.configkit import DAY
from uploader.catalogue import InventoryJobState, InventoryState, JobStatus


@dataclass(frozen=True, slots=True)
class InventorySettings:
    """How often inventories are requested and polled, and how long their output lives."""

    min_interval: float = DAY  # never request more often than this
    max_interval: float = 7 * DAY  # request at least this often even with no change
    output_ttl: float = DAY  # a finished job's output is kept this long after completion
    poll_every: float = 15 * 60.0
    not_ready_retry: float = 6 * 3600.0  # "no inventory yet": ask again after this
    expected_job_time: float = 5 * 3600.0  # for the logs: what a request will make us wait


@dataclass(frozen=True, slots=True)
class RequestJob:
    """Ask the vault for a new inventory job (``reason``: why now)."""

    reason: str


@dataclass(frozen=True, slots=True)
class PollJob:
    """Ask the service how the job stands."""

    job_id: str


@dataclass(frozen=True, slots=True)
class FetchOutput:
    """Read the output of a finished job before it expires."""

    job_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ForgetJob:
    """Stop tracking a job (its output expired, it failed, a newer one won, or it is gone)."""

    job_id: str
    reason: Literal["expired", "failed", "superseded", "gone"]


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do until ``until`` (None: until something changes)."""

    until: datetime | None
    reason: str


InventoryAction = RequestJob | PollJob | FetchOutput | ForgetJob | Wait


@dataclass(frozen=True, slots=True)
class InventoryPlan:
    """The next inventory actions and a status line for people."""

    actions: tuple[InventoryAction, ...]
    status: str  # one line for people: "no inventory yet", "job ... in progress", ...
    first_inventory: bool = field(default=False)

    def of(self, kind: type[InventoryAction]) -> list[InventoryAction]:
        """The actions of one kind."""
        return [a for a in self.actions if isinstance(a, kind)]


# Why a finished job is forgotten: its output expired, it failed, or the service forgot it.
_FORGET_BECAUSE: dict[JobStatus, Literal["expired", "failed", "gone"]] = {
    JobStatus.SUCCEEDED: "expired",
    JobStatus.FAILED: "failed",
    JobStatus.EXPIRED: "gone",
}


def _after(t: datetime | None, seconds: float) -> datetime | None:
    return None if t is None else t + timedelta(seconds=seconds)


def _due(
    state: InventoryState, s: InventorySettings, now: datetime, retry: bool
) -> RequestJob | Wait:
    """Whether a new job should be requested now (no job is in flight)."""
    last = state.last_requested_at
    if state.not_ready_at is not None and (last is None or state.not_ready_at >= last):
        ready = state.not_ready_at + timedelta(seconds=s.not_ready_retry)
        if now < ready:
            return Wait(ready, "no inventory yet: the vault's first inventory is not ready")
        return RequestJob("no inventory yet: asking again")
    if retry:
        return RequestJob("the last job's output expired, or the job failed: requesting again")
    if last is None:
        return RequestJob("no inventory yet: first request")
    earliest = last + timedelta(seconds=s.min_interval)
    latest = last + timedelta(seconds=s.max_interval)
    changed = state.last_change_at is not None and state.last_change_at > last
    if (changed and now >= earliest) or now >= latest:
        return RequestJob(
            "the store changed since the last inventory request"
            if changed
            else f"no inventory requested for {s.max_interval / DAY:g} days"
        )
    return Wait(
        earliest if changed else latest,
        "inventory up to date" if not changed else "min_interval not reached",
    )


def _triage(
    jobs: Sequence[InventoryJobState], s: InventorySettings, now: datetime
) -> tuple[list[InventoryAction], list[InventoryJobState], list[InventoryJobState], bool]:
    """Actions for known jobs, the jobs in progress, the fetchable ones, and whether to retry."""
    actions: list[InventoryAction] = []
    in_flight: list[InventoryJobState] = []
    fetchable: list[InventoryJobState] = []
    retry = False
    for job in sorted(jobs, key=lambda j: (j.initiated_at, j.job_id)):
        expires = _after(job.completed_at, s.output_ttl)
        if job.status == JobStatus.SUCCEEDED and (expires is None or now < expires):
            fetchable.append(job)
        elif job.status in _FORGET_BECAUSE:
            actions.append(ForgetJob(job.job_id, _FORGET_BECAUSE[job.status]))
            retry = True
        else:
            in_flight.append(job)
            if job.checked_at is None or now >= job.checked_at + timedelta(seconds=s.poll_every):
                actions.append(PollJob(job.job_id))
    return actions, in_flight, fetchable, retry


def plan_inventory(
    state: InventoryState, now: datetime, settings: InventorySettings | None = None
) -> InventoryPlan:
    """The next inventory actions for a vault (see the module docstring)."""
    s = settings or InventorySettings()
    actions, in_flight, fetchable, retry = _triage(state.jobs, s, now)
    first = state.last_inventory_date is None
    if fetchable:
        newest = fetchable[-1]
        actions += [ForgetJob(j.job_id, "superseded") for j in fetchable[:-1]]
        completed = newest.completed_at or now
        actions.append(FetchOutput(newest.job_id, completed + timedelta(seconds=s.output_ttl)))
        return InventoryPlan(
            tuple(actions), f"inventory job {newest.job_id[:12]}.. finished", first
        )
    if in_flight:
        job = in_flight[-1]
        since = job.initiated_at.isoformat(timespec="minutes")
        status = f"inventory job {job.job_id[:12]}.. in progress since {since}"
        if not any(isinstance(a, PollJob) for a in actions):
            poll = min((j.checked_at or now) for j in in_flight) + timedelta(seconds=s.poll_every)
            actions.append(Wait(poll, "job in progress"))
        return InventoryPlan(tuple(actions), status, first)
    step = _due(state, s, now, retry)
    actions.append(step)
    if state.last_inventory_date is None:
        status = "no inventory yet"
    else:
        status = f"inventory of {state.last_inventory_date.isoformat(timespec='minutes')}"
    if isinstance(step, Wait) and step.until is not None:
        status += f"; next request after {step.until.isoformat(timespec='minutes')}"
    return InventoryPlan(tuple(actions), status, first)


def pending_jobs(state: InventoryState) -> Sequence[InventoryJobState]:
    """Jobs still worth keeping (in progress or finished)."""
    return [j for j in state.jobs if j.status in (JobStatus.IN_PROGRESS, JobStatus.SUCCEEDED)]
