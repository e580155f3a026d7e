"""plan_inventory: the Glacier inventory job state machine, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uploader.maintenance.inventory_plan import (
    FetchOutput,
    ForgetJob,
    InventoryAction,
    InventoryJobState,
    InventorySettings,
    InventoryState,
    PollJob,
    RequestJob,
    Wait,
    plan_inventory,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
S = InventorySettings()  # min 1 d, max 7 d, ttl 1 d, poll 15 min, not ready retry 6 h


def job(
    jid: str, ago: timedelta, status: str = "InProgress", done_ago: timedelta | None = None
) -> InventoryJobState:
    return InventoryJobState(
        jid, NOW - ago, status, None if done_ago is None else NOW - done_ago, None
    )


def kinds(actions: tuple[InventoryAction, ...]) -> list[tuple[str, str]]:
    out = []
    for a in actions:
        if isinstance(a, RequestJob):
            out.append(("request", ""))
        elif isinstance(a, PollJob):
            out.append(("poll", a.job_id))
        elif isinstance(a, FetchOutput):
            out.append(("fetch", a.job_id))
        elif isinstance(a, ForgetJob):
            out.append(("forget", f"{a.job_id}:{a.reason}"))
        else:
            assert isinstance(a, Wait)
            out.append(("wait", ""))
    return out


TABLE = [
    pytest.param(InventoryState(), [("request", "")], id="first-ever-request"),
    pytest.param(
        InventoryState(not_ready_at=NOW - H),
        [("wait", "")],
        id="no-inventory-yet-waits",
    ),
    pytest.param(
        InventoryState(not_ready_at=NOW - 7 * H),
        [("request", "")],
        id="no-inventory-yet-asks-again-later",
    ),
    pytest.param(
        InventoryState(jobs=(job("j1", 2 * H),), last_requested_at=NOW - 2 * H),
        [("poll", "j1")],
        id="poll-in-progress",
    ),
    pytest.param(
        InventoryState(
            jobs=(InventoryJobState("j1", NOW - 2 * H, checked_at=NOW - 5 * timedelta(minutes=1)),),
            last_requested_at=NOW - 2 * H,
        ),
        [("wait", "")],
        id="polled-recently-waits",
    ),
    pytest.param(
        InventoryState(jobs=(job("j1", 5 * H, "Succeeded", 1 * H),), last_requested_at=NOW - 5 * H),
        [("fetch", "j1")],
        id="fetch-inside-window",
    ),
    pytest.param(
        InventoryState(jobs=(job("j1", 30 * H, "Succeeded", 25 * H),), last_requested_at=NOW - D),
        [("forget", "j1:expired"), ("request", "")],
        id="expired-output-rerequested",
    ),
    pytest.param(
        InventoryState(jobs=(job("j1", 5 * H, "Failed", H),), last_requested_at=NOW - 5 * H),
        [("forget", "j1:failed"), ("request", "")],
        id="failed-job-rerequested",
    ),
    pytest.param(
        InventoryState(
            jobs=(
                job("j1", 50 * H, "Succeeded", 20 * H),
                job("j2", 26 * H, "Succeeded", 10 * H),
                job("j3", 25 * H, "Succeeded", 9 * H),
            ),
            last_requested_at=NOW - 25 * H,
        ),
        [("forget", "j1:superseded"), ("forget", "j2:superseded"), ("fetch", "j3")],
        id="several-finished-jobs-newest-fetched",
    ),
    pytest.param(
        InventoryState(last_requested_at=NOW - 2 * H, last_inventory_date=NOW - D),
        [("wait", "")],
        id="up-to-date-waits",
    ),
    pytest.param(
        InventoryState(
            last_requested_at=NOW - 2 * H,
            last_inventory_date=NOW - D,
            last_change_at=NOW - H,
        ),
        [("wait", "")],
        id="change-but-min-interval-not-reached",
    ),
    pytest.param(
        InventoryState(
            last_requested_at=NOW - 25 * H,
            last_inventory_date=NOW - 2 * D,
            last_change_at=NOW - H,
        ),
        [("request", "")],
        id="change-after-min-interval-requests",
    ),
    pytest.param(
        InventoryState(last_requested_at=NOW - 8 * D, last_inventory_date=NOW - 8 * D),
        [("request", "")],
        id="max-interval-requests",
    ),
]


@pytest.mark.parametrize(("state", "expected"), TABLE)
def test_table(state: InventoryState, expected: list[tuple[str, str]]) -> None:
    assert kinds(plan_inventory(state, NOW, S).actions) == expected


def test_first_run_with_no_inventory_yet_is_a_normal_state() -> None:
    plan = plan_inventory(InventoryState(), NOW)
    assert plan.status == "no inventory yet" and plan.first_inventory
    after_refusal = plan_inventory(InventoryState(not_ready_at=NOW), NOW)
    assert "no inventory yet" in after_refusal.status
    (wait,) = after_refusal.actions
    assert isinstance(wait, Wait) and wait.until == NOW + timedelta(seconds=S.not_ready_retry)


def test_expired_job_output_is_dropped_and_requested_again() -> None:
    state = InventoryState(jobs=(job("j1", 2 * D, "Succeeded", 25 * H),), last_requested_at=NOW)
    actions = plan_inventory(state, NOW).actions
    assert ForgetJob("j1", "expired") in actions
    assert any(isinstance(a, RequestJob) for a in actions)


def test_several_finished_jobs_in_one_pass() -> None:
    jobs = tuple(job(f"j{i}", (30 - i) * H, "Succeeded", (20 - i) * H) for i in range(4))
    plan = plan_inventory(InventoryState(jobs=jobs, last_requested_at=NOW - 27 * H), NOW)
    assert [a for a in plan.actions if isinstance(a, FetchOutput)] == [
        FetchOutput("j3", NOW - 17 * H + D)
    ]
    assert len([a for a in plan.actions if isinstance(a, ForgetJob)]) == 3


def test_gone_job_is_forgotten() -> None:
    state = InventoryState(jobs=(job("j1", 2 * D, "Expired"),), last_requested_at=NOW - 2 * D)
    assert kinds(plan_inventory(state, NOW).actions) == [("forget", "j1:gone"), ("request", "")]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 72),
            st.sampled_from(["InProgress", "Succeeded", "Failed", "Expired"]),
            st.integers(0, 72),
        ),
        max_size=4,
    ),
    st.one_of(st.none(), st.integers(0, 300)),
    st.one_of(st.none(), st.integers(0, 300)),
)
def test_invariants(
    specs: list[tuple[int, str, int]], requested: int | None, changed: int | None
) -> None:
    jobs = tuple(
        job(f"j{i}", (a + d) * H, s, d * H if s != "InProgress" else None)
        for i, (a, s, d) in enumerate(specs)
    )
    state = InventoryState(
        jobs=jobs,
        last_requested_at=None if requested is None else NOW - requested * H,
        last_change_at=None if changed is None else NOW - changed * H,
    )
    plan = plan_inventory(state, NOW)
    assert plan_inventory(state, NOW) == plan  # deterministic
    fetches = [a for a in plan.actions if isinstance(a, FetchOutput)]
    requests = [a for a in plan.actions if isinstance(a, RequestJob)]
    assert len(fetches) <= 1 and len(requests) <= 1
    # never request while a job is in progress or an output is waiting
    live = [j for j in jobs if j.status == "InProgress"]
    if live or fetches:
        assert not requests
    # a fetched job is inside its output window
    for f in fetches:
        assert f.expires_at > NOW
    assert plan.actions  # always says something, even if only "wait"
