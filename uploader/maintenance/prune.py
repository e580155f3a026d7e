"""Which archives to prune: a pure plan of keep/delete decisions, each with its reason and fee.

No I/O and no clock: pass ``now``. The executor (:mod:`uploader.maintenance.executor`) carries
the plan out.

The rules, in order of strength:

1. foreign archives (not ours, or another host's) are never candidates; they still count
   towards the store's size, since they occupy it;
2. an archive not yet confirmed in the store is kept, and nothing is deleted unless a newer
   archive is confirmed: the newest confirmed archive always stays (``keep_last`` >= 1);
3. ``keep_last`` newest confirmed archives, then the calendar rules ``keep_daily`` / ``weekly`` /
   ``monthly`` / ``yearly`` (the newest archive of each of the last N periods, as borg and restic
   do) are kept;
4. nothing younger than the minimum age is deleted (``min_age = "auto"``: the storage class's
   minimum storage duration, so pruning never pays an early-deletion fee unless you configure a
   shorter age on purpose — the fee is then shown on the decision), and nothing whose S3 Object
   Lock retention or Vault Lock policy still holds ("locked until ..."): such a delete would
   only fail;
5. when a calendar rule is on, archives no rule keeps are deleted ("policy");
6. ``max_store_size`` is a cap: while the store (plus the next upload's expected size) is over
   it, the oldest remaining candidates are deleted, until it fits or no candidate is left. If it
   still does not fit (rules 2-4 protect the rest), the plan says ``over_budget`` with the
   shortfall and what blocks it, and :func:`may_upload` tells the uploader whether to go ahead
   anyway or wait.

Fees are ESTIMATES from a fixed price table (:data:`PRICE_PER_GB_MONTH`, us-east-1 list prices,
USD per GiB-month): AWS bills an archive deleted before its class's minimum storage duration for
the remaining days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from localbackup.configkit import DAY
from localbackup.formats import cycle_sequence
from uploader.archive import MIN_STORAGE_DAYS as _CLASS_MIN_DAYS
from uploader.archive import VAULT, parse_object_key
from uploader.catalogue import PruneArchive
from uploader.config import LocalStoreConfig, S3StoreConfig, StoreConfig
from uploader.maintenance.retention import RetentionConfig
from uploader.object_lock import locked_at
from uploader.stores import GiB

LOCAL = "LOCAL"

# The one price table. ESTIMATES: us-east-1 list prices in USD per GiB-month, checked 2025;
# real bills depend on region, contract and AWS's current prices.
PRICE_PER_GB_MONTH: dict[str, float] = {
    VAULT: 0.0036,
    "GLACIER": 0.0036,
    "GLACIER_IR": 0.004,
    "DEEP_ARCHIVE": 0.00099,
    "STANDARD_IA": 0.0125,
    "STANDARD": 0.023,
    LOCAL: 0.0,
}
# Minimum storage duration in days: deleting earlier is billed as if kept that long.
MIN_STORAGE_DAYS: dict[str, int] = {**_CLASS_MIN_DAYS, LOCAL: 0}


def storage_class_for(store: StoreConfig) -> str:
    """The price/minimum-duration class of a configured store."""
    if isinstance(store, LocalStoreConfig):
        return LOCAL
    if isinstance(store, S3StoreConfig):
        return store.storage_class
    return VAULT


def early_deletion_fee(size: int, age_days: float, storage_class: str) -> float:
    """Estimated USD charged for deleting an archive of ``size`` bytes at ``age_days``."""
    left = max(0.0, MIN_STORAGE_DAYS.get(storage_class, 0) - age_days)
    return size / GiB * PRICE_PER_GB_MONTH.get(storage_class, 0.0) * left / 30.0


@dataclass(frozen=True, slots=True)
class PrunePolicy:
    """The retention rules, resolved for one store (``min_age`` in seconds, never "auto")."""

    storage_class: str = LOCAL
    max_store_size: int | None = None
    min_age: float = 0.0
    keep_last: int = 2
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0

    @classmethod
    def from_config(cls, cfg: RetentionConfig, storage_class: str) -> PrunePolicy:
        """The ``[retention]`` rules for a store of ``storage_class`` (``min_age = "auto"``
        resolved)."""
        auto = MIN_STORAGE_DAYS.get(storage_class, 0) * DAY
        return cls(
            storage_class=storage_class,
            max_store_size=cfg.max_store_size,
            min_age=auto if cfg.min_age is None else cfg.min_age,
            keep_last=cfg.keep_last,
            keep_daily=cfg.keep_daily,
            keep_weekly=cfg.keep_weekly,
            keep_monthly=cfg.keep_monthly,
            keep_yearly=cfg.keep_yearly,
        )


PruneAction = Literal["keep", "delete"]
# Why an archive is kept or deleted: stable names, for scripts (see Decision).
PeriodRule = Literal["keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"]
PruneRule = (
    Literal[
        "foreign",
        "unconfirmed",
        "keep_last",
        "locked",
        "min_age",
        "within_budget",
        "policy",
        "budget",
    ]
    | PeriodRule
)
# Which rules an over-budget plan cannot break to fit ("" when it is not over budget).
BudgetBlock = Literal["", "min_age", "keep rules", "keep rules and object locks"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Keep or delete one archive, and why: ``rule`` is stable (for scripts), ``reason`` prose.

    Rules: foreign, unconfirmed, keep_last, keep_daily/weekly/monthly/yearly, locked, min_age,
    within_budget (kept), policy, budget (deleted).
    """

    key: str
    action: PruneAction
    rule: PruneRule
    reason: str
    size: int
    created: datetime
    age_days: float
    fee_if_deleted: float  # estimated USD early-deletion fee for deleting it now

    @property
    def delete(self) -> bool:
        """Whether the archive is to be deleted."""
        return self.action == "delete"

    @property
    def fee_incurred(self) -> float:
        """The estimated early-deletion fee this decision pays."""
        return self.fee_if_deleted if self.delete else 0.0

    @property
    def fee_avoided(self) -> float:
        """The estimated early-deletion fee keeping the archive avoids."""
        return 0.0 if self.delete else self.fee_if_deleted


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """The decisions for every archive of a store, and what the store's size becomes."""

    decisions: tuple[Decision, ...]  # oldest first
    total_size: int  # everything in the store now, foreign included
    size_after: int
    budget: int | None
    next_upload_size: int
    over_budget: bool  # the budget (with the next upload) cannot be met under the rules
    shortfall: int  # bytes still over budget after pruning (with the next upload)
    blocked_by: BudgetBlock = ""
    storage_class: str = LOCAL

    @property
    def deletions(self) -> tuple[Decision, ...]:
        """The decisions to delete."""
        return tuple(d for d in self.decisions if d.delete)

    @property
    def fee_incurred(self) -> float:
        """The estimated early-deletion fees of all deletions."""
        return sum(d.fee_incurred for d in self.decisions)

    def summary(self) -> str:
        """One line: how many deletions, the size before and after, the fee, and any shortfall."""
        budget = "no budget" if self.budget is None else f"budget {self.budget} B"
        text = (
            f"{len(self.deletions)} of {len(self.decisions)} archives to delete; "
            f"{self.total_size} B -> {self.size_after} B ({budget}); "
            f"estimated early-deletion fee ${self.fee_incurred:.2f}"
        )
        if self.over_budget:
            text += (
                f"; still OVER BUDGET by {self.shortfall} B including the next upload "
                f"({self.next_upload_size} B) after deleting every archive no rule protects: "
                f"the rest is kept by {self.blocked_by}"
            )
        return text


def may_upload(plan: PrunePlan, config: RetentionConfig) -> bool:
    """May the next upload go ahead? Yes, unless over budget and ``over_budget = "wait"``."""
    return not (plan.over_budget and config.over_budget == "wait")


_PERIODS: tuple[tuple[PeriodRule, Callable[[datetime], tuple[int, ...]]], ...] = (
    ("keep_daily", lambda t: (t.year, t.month, t.day)),
    ("keep_weekly", lambda t: tuple(t.isocalendar())[:2]),
    ("keep_monthly", lambda t: (t.year, t.month)),
    ("keep_yearly", lambda t: (t.year,)),
)


def _order(a: PruneArchive) -> tuple[datetime, int, str]:
    """Oldest first; two cycles started in the same second by their sequence, not by key text."""
    parsed = parse_object_key(a.key)
    return (a.point_in_time, 0 if parsed is None else cycle_sequence(parsed.cycle_id), a.key)


def _protected(
    ours: Sequence[PruneArchive], policy: PrunePolicy
) -> dict[str, tuple[PruneRule, str]]:
    """Archives kept by rules 2 and 3: key -> (rule, reason)."""
    kept: dict[str, tuple[PruneRule, str]] = {}
    for a in ours:
        if not a.confirmed:
            kept[a.key] = ("unconfirmed", "not confirmed in the store yet")
    newest_first = [a for a in reversed(ours) if a.confirmed]
    n = max(1, policy.keep_last)
    for i, a in enumerate(newest_first[:n]):
        kept.setdefault(a.key, ("keep_last", f"newest confirmed #{i + 1} of keep_last={n}"))
    for rule, period in _PERIODS:
        count: int = getattr(policy, rule)
        seen: set[tuple[int, ...]] = set()
        for a in newest_first:
            if len(seen) >= count:
                break
            p = period(a.point_in_time)
            if p in seen:
                continue
            seen.add(p)
            label = "-".join(f"{x:02d}" for x in p)
            kept.setdefault(a.key, (rule, f"{rule}={count}: newest archive of {label}"))
    return kept


def _locked(
    ours: Sequence[PruneArchive], kept: Mapping[str, tuple[PruneRule, str]], now: datetime
) -> dict[str, tuple[PruneRule, str]]:
    """Archives no keep rule holds whose S3 Object Lock retention (or Vault Lock) still runs."""
    return {
        a.key: ("locked", _lock_reason(a.locked_until))
        for a in ours
        if a.key not in kept and a.locked_until is not None and locked_at(a.locked_until, now)
    }


def _lock_reason(until: datetime) -> str:
    if until.year == datetime.max.year:
        return "locked for good (a Vault Lock policy denies deleting it at any age)"
    return (
        f"locked until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
        "(S3 Object Lock / Vault Lock: no delete can succeed before then)"
    )


def _fill(candidates: Sequence[PruneArchive], size: int, target: int) -> list[PruneArchive]:
    """The oldest candidates to delete to bring ``size`` down to ``target``: as many as that
    takes, all of them if that is not enough."""
    picked = []
    for a in candidates:
        if size <= target:
            break
        picked.append(a)
        size -= a.size
    return picked


def _budget_cut(
    rest: Sequence[PruneArchive],
    young: Sequence[PruneArchive],
    size: int,
    budget: int,
    next_upload_size: int,
    *,
    locks: bool = False,
) -> tuple[list[PruneArchive], BudgetBlock]:
    """The oldest of ``rest`` to delete while the store (``size``) and the next upload are over
    ``budget``: a cap, so all of them if that is not enough. Then, if it still does not fit,
    which rules keep the rest ("" when it fits); ``locks``: some archives are locked."""
    target = budget - next_upload_size
    picked = _fill(rest, size, target)
    left = size - sum(a.size for a in picked)
    if left <= target:
        return picked, ""
    if left - sum(a.size for a in young) <= target:
        return picked, "min_age"
    return picked, "keep rules and object locks" if locks else "keep rules"


def _decision(
    a: PruneArchive,
    age: float,
    policy: PrunePolicy,
    *,
    kept: Mapping[str, tuple[PruneRule, str]],
    deleted: Mapping[str, tuple[PruneRule, str]],
) -> Decision:
    """Keep or delete ``a`` (``age`` seconds old), by the rules that claimed it, or why not."""
    days = age / DAY
    fee = early_deletion_fee(a.size, days, policy.storage_class) if a.ours else 0.0
    rule: PruneRule
    action: PruneAction
    if not a.ours:
        rule, reason, action = "foreign", "foreign archive: never touched", "keep"
    elif a.key in kept:
        (rule, reason), action = kept[a.key], "keep"
    elif a.key in deleted:
        (rule, reason), action = deleted[a.key], "delete"
    elif age < policy.min_age:
        left = (policy.min_age - age) / DAY
        rule, action = "min_age", "keep"
        reason = f"younger than min_age ({days:.1f} d old, {left:.1f} d to go)"
    else:
        rule, reason, action = "within_budget", "the store is within its budget", "keep"
    return Decision(a.key, action, rule, reason, a.size, a.created, round(days, 6), fee)


def plan_prune(
    archives: Iterable[PruneArchive],
    policy: PrunePolicy,
    now: datetime,
    next_upload_size: int = 0,
) -> PrunePlan:
    """Decide, for every archive, keep or delete and why (see the module docstring)."""
    everything = sorted(archives, key=_order)
    ours = [a for a in everything if a.ours]
    total = sum(a.size for a in everything)
    kept = _protected(ours, policy)
    locks = _locked(ours, kept, now)
    kept.update(locks)

    def age(a: PruneArchive) -> float:
        return (now - a.created).total_seconds()

    eligible = [a for a in ours if a.key not in kept]
    old = [a for a in eligible if age(a) >= policy.min_age]
    young = [a for a in eligible if age(a) < policy.min_age]
    deleted: dict[str, tuple[PruneRule, str]] = {}
    if any(getattr(policy, rule) for rule, _ in _PERIODS):
        for a in old:
            deleted[a.key] = ("policy", "kept by no retention rule")
    after = total - sum(a.size for a in old if a.key in deleted)

    shortfall = 0
    blocked: BudgetBlock = ""
    budget = policy.max_store_size
    if budget is not None:
        rest = [a for a in old if a.key not in deleted]
        picked, blocked = _budget_cut(
            rest, young, after, budget, next_upload_size, locks=bool(locks)
        )
        why = (
            f"oldest that no rule protects; the store is over budget ({after} B + next "
            f"upload {next_upload_size} B > {budget} B)"
        )
        for a in picked:
            deleted[a.key] = ("budget", why)
        after -= sum(a.size for a in picked)
        shortfall = max(0, after + next_upload_size - budget)

    return PrunePlan(
        decisions=tuple(
            _decision(a, age(a), policy, kept=kept, deleted=deleted) for a in everything
        ),
        total_size=total,
        size_after=after,
        budget=budget,
        next_upload_size=next_upload_size,
        over_budget=bool(blocked),
        shortfall=shortfall,
        blocked_by=blocked,
        storage_class=policy.storage_class,
    )
