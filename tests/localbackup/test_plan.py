from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localbackup.plan import CyclePolicy, OpenCycle, plan_backup

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = 86400.0


# (open cycle increments or None, age in days, policy, force) ->
#   (seal_open, new_cycle, number, kind, base, seal_after)
TABLE = [
    ("first backup ever", None, 0, CyclePolicy(7), False, (False, True, 0, "full", None, False)),
    ("full only policy", None, 0, CyclePolicy(0), False, (False, True, 0, "full", None, True)),
    ("crashed full is redone", 0, 0, CyclePolicy(7), False, (False, False, 0, "full", None, False)),
    ("crashed full, forced", 0, 0, CyclePolicy(7), True, (False, False, 0, "full", None, False)),
    ("first incremental", 1, 1, CyclePolicy(7), False, (False, False, 1, "incremental", 0, False)),
    ("chained", 4, 4, CyclePolicy(7), False, (False, False, 4, "incremental", 3, False)),
    (
        "last increment seals",
        7,
        7,
        CyclePolicy(7),
        False,
        (False, False, 7, "incremental", 6, True),
    ),
    (
        "differential base is the full",
        4,
        1,
        CyclePolicy(7, differential=True),
        False,
        (False, False, 4, "differential", 0, False),
    ),
    (
        "forced full seals the open cycle",
        3,
        1,
        CyclePolicy(7),
        True,
        (True, True, 0, "full", None, False),
    ),
    (
        "full too old",
        3,
        7,
        CyclePolicy(7, full_every=7 * DAY),
        False,
        (True, True, 0, "full", None, False),
    ),
    (
        "full not yet too old",
        3,
        6.9,
        CyclePolicy(7, full_every=7 * DAY),
        False,
        (False, False, 3, "incremental", 2, False),
    ),
    (
        "complete cycle left unsealed by a crash",
        8,
        1,
        CyclePolicy(7),
        False,
        (True, True, 0, "full", None, False),
    ),
    (
        "policy shrank below the open cycle",
        5,
        1,
        CyclePolicy(2),
        False,
        (True, True, 0, "full", None, False),
    ),
    (
        "one increment per cycle",
        1,
        1,
        CyclePolicy(1),
        False,
        (False, False, 1, "incremental", 0, True),
    ),
]


@pytest.mark.parametrize(
    ("name", "incs", "age", "policy", "force", "expected"), TABLE, ids=[row[0] for row in TABLE]
)
def test_plan_table(name, incs, age, policy, force, expected) -> None:
    open_cycle = None if incs is None else OpenCycle("c", T0, incs)
    plan = plan_backup(open_cycle, policy, T0 + timedelta(days=age), force_full=force)
    got = (plan.seal_open_cycle, plan.new_cycle, plan.number, plan.kind, plan.base, plan.seal_after)
    assert got == expected, plan.reason
    assert plan.reason


def test_clock_going_backwards_is_not_an_old_full() -> None:
    plan = plan_backup(
        OpenCycle("c", T0, 2), CyclePolicy(7, full_every=DAY), T0 - timedelta(days=3)
    )
    assert (plan.new_cycle, plan.number) == (False, 2)


@given(
    n=st.integers(0, 20),
    full_every=st.one_of(st.none(), st.floats(1, 30 * DAY)),
    differential=st.booleans(),
    steps=st.lists(st.tuples(st.floats(0, 3 * DAY), st.booleans()), min_size=1, max_size=60),
)
def test_simulated_cycles_never_exceed_policy(n, full_every, differential, steps) -> None:
    """Running the planner like the executor does: cycles hold 1..n+1 increments, start with a
    full, bases point at an existing earlier increment, and a sealed cycle is never written to."""
    policy = CyclePolicy(n, full_every, differential)
    now = T0
    cycles: list[list[str]] = []
    sealed: list[bool] = []
    created: list[datetime] = []
    for dt, force in steps:
        now += timedelta(seconds=dt)
        open_cycle = None
        if cycles and not sealed[-1]:
            open_cycle = OpenCycle("c", created[-1], len(cycles[-1]))
        plan = plan_backup(open_cycle, policy, now, force_full=force)
        if plan.seal_open_cycle:
            assert open_cycle is not None and open_cycle.increments > 0
            sealed[-1] = True
        if plan.new_cycle:
            assert not cycles or sealed[-1]
            cycles.append([])
            sealed.append(False)
            created.append(now)
        current = cycles[-1]
        assert plan.number == len(current)
        assert (plan.kind == "full") == (plan.number == 0)
        if plan.base is not None:
            assert 0 <= plan.base < plan.number
            if differential:
                assert plan.base == 0
        current.append(plan.kind)
        if plan.seal_after:
            sealed[-1] = True
    for c in cycles:
        assert 1 <= len(c) <= n + 1
        assert c[0] == "full" and all(k != "full" for k in c[1:])
