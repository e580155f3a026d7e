"""plan_prune: golden tables, the original tool's failures, and hypothesis invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uploader.config import GlacierStoreConfig, LocalStoreConfig, S3StoreConfig
from uploader.maintenance.prune import (
    DAY,
    PRICE_PER_GB_MONTH,
    PruneArchive,
    PrunePlan,
    PrunePolicy,
    early_deletion_fee,
    may_upload,
    plan_prune,
    storage_class_for,
)
from uploader.maintenance.retention import RetentionConfig
from uploader.stores.base import GiB as GIB

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def arc(key: str, days_old: float, size: int = 10, **kw: bool) -> PruneArchive:
    return PruneArchive(key, size, NOW - timedelta(days=days_old), **kw)


def locked(key: str, days_old: float, for_days: float, size: int = 10) -> PruneArchive:
    """An archive whose S3 Object Lock retention ends ``for_days`` from NOW (< 0: ended)."""
    created = NOW - timedelta(days=days_old)
    return PruneArchive(key, size, created, locked_until=NOW + timedelta(days=for_days))


def table(plan: PrunePlan) -> list[tuple[str, str, str]]:
    return [(d.key, d.action, d.rule) for d in plan.decisions]


# Each row: archives, policy, next upload size -> expected (key, action, rule) oldest first.
GOLDEN = [
    pytest.param(
        [arc("a", 300), arc("b", 200), arc("c", 100), arc("d", 1)],
        PrunePolicy(max_store_size=25, keep_last=1),
        0,
        [
            ("a", "delete", "budget"),
            ("b", "delete", "budget"),
            ("c", "keep", "within_budget"),
            ("d", "keep", "keep_last"),
        ],
        id="budget-oldest-first",
    ),
    pytest.param(
        [arc("a", 300), arc("b", 200), arc("c", 100), arc("d", 1)],
        PrunePolicy(max_store_size=40, keep_last=1),
        10,
        [
            ("a", "delete", "budget"),
            ("b", "keep", "within_budget"),
            ("c", "keep", "within_budget"),
            ("d", "keep", "keep_last"),
        ],
        id="budget-counts-next-upload",
    ),
    pytest.param(
        [arc("a", 300), arc("b", 200), arc("c", 100)],
        PrunePolicy(max_store_size=None, keep_last=1),
        0,
        [
            ("a", "keep", "within_budget"),
            ("b", "keep", "within_budget"),
            ("c", "keep", "keep_last"),
        ],
        id="no-budget-no-rules-nothing-pruned",
    ),
    pytest.param(
        # The budget is a cap (issue 13): "a" is past min_age and kept by no rule, so it goes
        # even though min_age keeps the store over budget. This row used to expect nothing
        # deleted ("min-age-blocks-budget-nothing-deleted", a kept as "over_budget").
        [arc("a", 100), arc("b", 50), arc("c", 20), arc("d", 1)],
        PrunePolicy(storage_class="GLACIER", max_store_size=20, min_age=90 * DAY, keep_last=1),
        0,
        [
            ("a", "delete", "budget"),
            ("b", "keep", "min_age"),
            ("c", "keep", "min_age"),
            ("d", "keep", "keep_last"),
        ],
        id="min-age-limits-the-cap-the-unprotected-rest-is-deleted",
    ),
    pytest.param(
        [arc("a", 300), arc("b", 200), arc("c", 100), arc("d", 1)],
        PrunePolicy(max_store_size=5, keep_last=2),
        0,
        [
            ("a", "delete", "budget"),
            ("b", "delete", "budget"),
            ("c", "keep", "keep_last"),
            ("d", "keep", "keep_last"),
        ],
        id="cap-below-what-the-keep-rules-leave-deletes-every-unprotected-archive",
    ),
    pytest.param(
        [arc("a", 300), arc("b", 200), arc("c", 100), arc("d", 1)],
        PrunePolicy(max_store_size=0, min_age=0, keep_last=1),
        0,
        [
            ("a", "delete", "budget"),
            ("b", "delete", "budget"),
            ("c", "delete", "budget"),
            ("d", "keep", "keep_last"),
        ],
        id="zero-cap-and-zero-min-age-keep-only-the-newest",
    ),
    pytest.param(
        [arc("a", 100), arc("b", 50, confirmed=False), arc("c", 20, confirmed=False)],
        PrunePolicy(max_store_size=10, keep_last=1),
        0,
        [
            ("a", "keep", "keep_last"),
            ("b", "keep", "unconfirmed"),
            ("c", "keep", "unconfirmed"),
        ],
        id="newest-confirmed-kept-even-if-newer-unconfirmed",
    ),
    pytest.param(
        [arc("f1", 400, ours=False), arc("a", 300), arc("b", 200), arc("c", 100)],
        PrunePolicy(max_store_size=25, keep_last=1),
        0,
        [
            ("f1", "keep", "foreign"),
            ("a", "delete", "budget"),
            ("b", "delete", "budget"),
            ("c", "keep", "keep_last"),
        ],
        id="foreign-counted-never-candidate",
    ),
    pytest.param(
        [
            PruneArchive("d1a", 1, datetime(2026, 5, 30, 1, tzinfo=UTC)),
            PruneArchive("d1b", 1, datetime(2026, 5, 30, 9, tzinfo=UTC)),
            PruneArchive("d2", 1, datetime(2026, 5, 31, 9, tzinfo=UTC)),
            PruneArchive("m4", 1, datetime(2026, 4, 10, tzinfo=UTC)),
            PruneArchive("m3", 1, datetime(2026, 3, 10, tzinfo=UTC)),
        ],
        PrunePolicy(keep_last=1, keep_daily=2, keep_monthly=2),
        0,
        [
            ("m3", "delete", "policy"),
            ("m4", "keep", "keep_monthly"),
            ("d1a", "delete", "policy"),
            ("d1b", "keep", "keep_daily"),
            ("d2", "keep", "keep_last"),
        ],
        id="calendar-rules",
    ),
    pytest.param(
        [locked("a", 300, 10), arc("b", 200), arc("c", 100), arc("d", 1)],
        PrunePolicy(max_store_size=25, keep_last=1),
        0,
        [
            ("a", "keep", "locked"),
            ("b", "delete", "budget"),
            ("c", "delete", "budget"),
            ("d", "keep", "keep_last"),
        ],
        id="locked-archive-kept-the-next-oldest-go",
    ),
    pytest.param(
        [locked("a", 300, -1), arc("b", 200), arc("d", 1)],
        PrunePolicy(max_store_size=20, keep_last=1),
        0,
        [("a", "delete", "budget"), ("b", "keep", "within_budget"), ("d", "keep", "keep_last")],
        id="an-ended-lock-is-no-lock",
    ),
    pytest.param(
        [locked("a", 300, 10), locked("b", 200, 50), locked("d", 1, 179)],
        PrunePolicy(max_store_size=10, keep_last=1),
        0,
        [("a", "keep", "locked"), ("b", "keep", "locked"), ("d", "keep", "keep_last")],
        id="locks-block-the-budget-keep-rules-named-first",
    ),
    pytest.param(
        [locked("m3", 90, 5, size=1), arc("m4", 60, size=1), arc("d1", 1, size=1)],
        PrunePolicy(keep_last=1, keep_monthly=1),
        0,
        [("m3", "keep", "locked"), ("m4", "delete", "policy"), ("d1", "keep", "keep_last")],
        id="policy-deletes-around-a-lock",
    ),
]


@pytest.mark.parametrize(("archives", "policy", "next_size", "expected"), GOLDEN)
def test_golden_table(
    archives: list[PruneArchive],
    policy: PrunePolicy,
    next_size: int,
    expected: list[tuple[str, str, str]],
) -> None:
    assert table(plan_prune(archives, policy, NOW, next_size)) == expected


def test_min_age_blocking_is_reported_with_shortfall() -> None:
    plan = plan_prune(
        [arc("a", 100), arc("b", 50), arc("c", 20), arc("d", 1)],
        PrunePolicy(storage_class="GLACIER", max_store_size=20, min_age=90 * DAY, keep_last=1),
        NOW,
        next_upload_size=10,
    )
    assert plan.over_budget and plan.blocked_by == "min_age"
    assert [d.key for d in plan.deletions] == ["a"]  # a cap: what can go, goes
    assert plan.shortfall == 30 + 10 - 20
    assert "OVER BUDGET" in plan.summary() and "kept by min_age" in plan.summary()
    assert may_upload(plan, RetentionConfig(over_budget="upload"))
    assert not may_upload(plan, RetentionConfig(over_budget="wait"))


def test_a_locked_archive_says_until_when_and_blocks_the_budget() -> None:
    plan = plan_prune(
        [locked("a", 300, 10), locked("b", 200, 50), arc("d", 1)],
        PrunePolicy(max_store_size=10, keep_last=1),
        NOW,
    )
    a = plan.decisions[0]
    assert a.reason.startswith("locked until 2026-06-11 00:00 UTC (S3 Object Lock")
    assert plan.over_budget and plan.blocked_by == "keep rules and object locks"
    assert not plan.deletions


def test_pruning_that_never_pruned() -> None:
    """The original tool planned deletions and never made any: over budget with old archives
    past their minimum age, the plan must delete."""
    archives = [arc(f"k{i:02d}", 400 - i * 30, size=100) for i in range(10)]
    plan = plan_prune(archives, PrunePolicy(max_store_size=350, keep_last=2), NOW)
    assert [d.key for d in plan.deletions] == [f"k{i:02d}" for i in range(7)]
    assert plan.size_after == 300 and not plan.over_budget


def test_youngest_first_ordering_is_not_what_we_do() -> None:
    """The original tool deleted the youngest archives first; input order must not matter and
    the oldest go first."""
    archives = [arc("new", 95), arc("old", 500), arc("mid", 200), arc("newest", 1)]
    plan = plan_prune(archives, PrunePolicy(max_store_size=25, keep_last=1), NOW)
    assert [d.key for d in plan.deletions] == ["old", "mid"]
    assert [d.key for d in plan.decisions] == ["old", "mid", "new", "newest"]


def test_a_budget_smaller_than_one_backup() -> None:
    archives = [arc("a", 400, size=100), arc("b", 300, size=100), arc("c", 200, size=100)]
    plan = plan_prune(archives, PrunePolicy(max_store_size=50, keep_last=1), NOW, 100)
    assert plan.over_budget and plan.blocked_by == "keep rules"
    # The budget can never be met, yet it is a cap: everything no rule protects is deleted
    # (before issue 13 nothing was), the newest confirmed stays.
    assert [d.key for d in plan.deletions] == ["a", "b"]
    assert plan.shortfall == 100 + 100 - 50
    assert not may_upload(plan, RetentionConfig(over_budget="wait"))


def test_budget_met_for_the_store_but_not_the_next_upload() -> None:
    archives = [arc("a", 400), arc("b", 300), arc("c", 200)]
    plan = plan_prune(archives, PrunePolicy(max_store_size=20, keep_last=2), NOW, 15)
    assert [d.key for d in plan.deletions] == ["a"]
    assert plan.size_after == 20 and plan.over_budget and plan.shortfall == 15


def test_fees_come_from_one_price_table() -> None:
    size = 10 * GIB
    fee = early_deletion_fee(size, 30, "DEEP_ARCHIVE")
    assert fee == pytest.approx(10 * PRICE_PER_GB_MONTH["DEEP_ARCHIVE"] * 150 / 30)
    assert early_deletion_fee(size, 200, "DEEP_ARCHIVE") == 0
    assert early_deletion_fee(size, 1, "STANDARD") == 0
    # A configured min_age below the class's minimum: the deletion shows what it costs.
    plan = plan_prune(
        [arc("a", 30, size=size), arc("b", 1, size=size)],
        PrunePolicy(storage_class="GLACIER", max_store_size=size, min_age=7 * DAY, keep_last=1),
        NOW,
    )
    (d,) = plan.deletions
    assert d.fee_incurred == pytest.approx(10 * 0.0036 * 60 / 30)
    kept = plan.decisions[1]
    assert kept.fee_avoided > 0 and kept.fee_incurred == 0


def test_auto_min_age_by_storage_class() -> None:
    cfg = RetentionConfig()
    assert PrunePolicy.from_config(cfg, "DEEP_ARCHIVE").min_age == 180 * DAY
    assert PrunePolicy.from_config(cfg, "GLACIER").min_age == 90 * DAY
    assert PrunePolicy.from_config(cfg, "GLACIER_IR").min_age == 90 * DAY
    assert PrunePolicy.from_config(cfg, "STANDARD").min_age == 0
    assert PrunePolicy.from_config(RetentionConfig(min_age=5.0), "GLACIER").min_age == 5.0
    assert storage_class_for(GlacierStoreConfig("v")) == "GLACIER_VAULT"
    assert PrunePolicy.from_config(cfg, storage_class_for(GlacierStoreConfig("v"))).min_age == (
        90 * DAY
    )
    assert storage_class_for(LocalStoreConfig(path=Path("/x"))) == "LOCAL"
    assert storage_class_for(S3StoreConfig("b", storage_class="GLACIER_IR")) == "GLACIER_IR"


# -- invariants ------------------------------------------------------------------------------

archive_lists = st.lists(
    st.builds(
        PruneArchive,
        key=st.text("abcdef", min_size=1, max_size=4),
        size=st.integers(1, 100),
        created=st.integers(0, 400 * 24).map(lambda h: NOW - timedelta(hours=h)),
        confirmed=st.booleans(),
        ours=st.sampled_from([True, True, True, False]),
        locked_until=st.one_of(
            st.none(), st.integers(-30, 200).map(lambda d: NOW + timedelta(days=d))
        ),
    ),
    max_size=12,
    unique_by=lambda a: a.key,
)
policies = st.builds(
    PrunePolicy,
    storage_class=st.sampled_from(sorted(PRICE_PER_GB_MONTH)),
    max_store_size=st.one_of(st.none(), st.integers(0, 800)),
    min_age=st.sampled_from([0.0, 30 * DAY, 90 * DAY, 180 * DAY]),
    keep_last=st.integers(1, 4),
    keep_daily=st.integers(0, 3),
    keep_weekly=st.integers(0, 2),
    keep_monthly=st.integers(0, 2),
    keep_yearly=st.integers(0, 1),
)


def _order(a: PruneArchive) -> tuple[datetime, str]:
    return (a.created, a.key)


@settings(max_examples=300, deadline=None)
@given(archive_lists, policies, st.integers(0, 100))
def test_invariants(archives: list[PruneArchive], policy: PrunePolicy, nxt: int) -> None:
    plan = plan_prune(archives, policy, NOW, nxt)
    deleted = {d.key for d in plan.deletions}
    by_key = {a.key: a for a in archives}
    confirmed = sorted((a for a in archives if a.ours and a.confirmed), key=_order)
    # never deletes the newest confirmed archive; nothing foreign or unconfirmed
    if confirmed:
        assert confirmed[-1].key not in deleted
    for key in deleted:
        a = by_key[key]
        assert a.ours and a.confirmed
        # never under the minimum age
        assert (NOW - a.created).total_seconds() >= policy.min_age
        # a newer archive is confirmed
        assert any(_order(c) > _order(a) for c in confirmed)
        # no delete that S3 Object Lock would refuse
        assert a.locked_until is None or a.locked_until <= NOW
    # sizes add up
    assert plan.size_after == sum(a.size for a in archives if a.key not in deleted)
    # within budget whenever the rules allow it
    if policy.max_store_size is not None:
        deletable = sum(
            d.size
            for d in plan.decisions
            if d.rule in ("budget", "within_budget", "over_budget", "policy")
        )
        possible = plan.total_size - deletable <= policy.max_store_size
        if possible:
            assert plan.size_after <= policy.max_store_size
        if not plan.over_budget:
            assert plan.size_after + nxt <= policy.max_store_size
    # a cap: over budget only once every archive no rule protects is deleted
    if plan.over_budget:
        assert not [d for d in plan.decisions if d.rule == "within_budget"]
    # deterministic, whatever the input order
    assert plan_prune(list(reversed(archives)), policy, NOW, nxt) == plan
    # one decision per archive, oldest first
    assert [d.key for d in plan.decisions] == [a.key for a in sorted(archives, key=_order)]


def test_a_cycle_uploaded_late_is_not_the_newest_backup() -> None:
    """Newest means the backup's time: an old cycle uploaded last must not push out the newest."""
    late = PruneArchive(
        "old-cycle", 10, NOW - timedelta(days=1), taken_at=NOW - timedelta(days=300)
    )
    recent = PruneArchive(
        "new-cycle", 10, NOW - timedelta(days=5), taken_at=NOW - timedelta(days=5)
    )
    plan = plan_prune([late, recent], PrunePolicy(max_store_size=15, keep_last=1), NOW)
    assert table(plan) == [("old-cycle", "delete", "budget"), ("new-cycle", "keep", "keep_last")]


def test_cycles_started_in_the_same_second_go_by_their_sequence() -> None:
    """``...Z-2.tar.age`` sorts before ``...Z.tar.age`` as text: the second cycle of that second
    is still the newer one (and ``-10`` newer than ``-2``)."""
    taken = NOW - timedelta(days=100)
    keys = [f"h/20260101T000000Z{s}.tar.age" for s in ("", "-2", "-10")]
    archives = [PruneArchive(k, 10, NOW - timedelta(days=99), taken_at=taken) for k in keys]
    plan = plan_prune(archives, PrunePolicy(max_store_size=15, keep_last=1), NOW)
    assert table(plan) == [
        (keys[0], "delete", "budget"),
        (keys[1], "delete", "budget"),
        (keys[2], "keep", "keep_last"),
    ]
