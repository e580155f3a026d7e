"""What a migration will cost and how long it will wait: a pure quote, shown before anything is
requested (and alone with ``--quote``).

Prices are ESTIMATES from the project's tables: retrieval per GB and typical waits from
:data:`uploader.restore.retrieval.TIERS`, storage per GiB-month and minimum storage durations
from :mod:`uploader.maintenance.prune`. The few prices only a migration needs (requests, data
transfer out of AWS, the per-object overhead of the S3 Glacier classes) are in
:data:`REQUEST_USD_PER_1000` and beside it: us-east-1 list prices, checked 2025.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from localbackup.configkit import format_size
from uploader.archive import VAULT
from uploader.maintenance import MIN_STORAGE_DAYS, PRICE_PER_GB_MONTH, early_deletion_fee
from uploader.restore import retrieval as rt
from uploader.stores import GiB, Tier

# USD per 1,000 requests: Glacier vault retrieval requests by tier, S3 PUT/POST (a multipart
# upload is one create, one request per part and one complete) by destination class.
REQUEST_USD_PER_1000: dict[str, float] = {
    "Expedited": 10.0,
    "Standard": 0.05,
    "Bulk": 0.025,
    "STANDARD": 0.005,
    "STANDARD_IA": 0.01,
    "GLACIER_IR": 0.02,
    "GLACIER": 0.03,
    "DEEP_ARCHIVE": 0.05,
}
TRANSFER_OUT_USD_PER_GB = 0.09  # internet egress; the first 100 GB a month are free
# Each object in GLACIER / DEEP_ARCHIVE also bills 32 KiB at STANDARD and 8 KiB at its class.
OBJECT_OVERHEAD = {"GLACIER": (32 << 10, 8 << 10), "DEEP_ARCHIVE": (32 << 10, 8 << 10)}
GB = 1000**3


@dataclass(frozen=True, slots=True)
class QuoteItem:
    """One archive still to move: its size and its CreationDate in the vault."""

    size: int
    created: datetime


@dataclass(frozen=True, slots=True)
class TierQuote:
    """Retrieving every archive at one tier."""

    tier: Tier
    wait: timedelta
    wait_text: str
    retrieval_usd: float
    requests_usd: float

    @property
    def total_usd(self) -> float:
        """Retrieval and request fees together."""
        return self.retrieval_usd + self.requests_usd


@dataclass(frozen=True, slots=True)
class Quote:
    """The costs and waits of moving ``archives`` archives of ``total_size`` bytes."""

    archives: int
    total_size: int
    tier: Tier
    tiers: tuple[TierQuote, ...]
    batches: int  # days of requests under --max-per-day (1 without it)
    dest_class: str
    dest_requests: int
    dest_requests_usd: float
    first_month_usd: float
    vault_month_usd: float
    transfer_out_usd: float
    early: int  # archives younger than the vault's minimum storage duration
    early_deletion_usd: float  # their fee if the sources were deleted now
    free_from: datetime | None  # when the youngest becomes free to delete

    @property
    def chosen(self) -> TierQuote:
        """The quote of the tier that will be used."""
        return next(t for t in self.tiers if t.tier == self.tier)


def make_quote(
    items: Sequence[QuoteItem],
    *,
    tier: Tier,
    dest_class: str,
    parts_for: Callable[[int], int],
    now: datetime,
    max_per_day: int | None = None,
) -> Quote:
    """The quote for ``items``; ``parts_for(size)`` is how many parts a copy of ``size``
    bytes takes in the destination."""
    total = sum(i.size for i in items)
    tiers = tuple(_tier(t, items) for t in rt.tiers_for(VAULT))
    requests = sum(parts_for(i.size) + 2 for i in items)
    min_days = MIN_STORAGE_DAYS[VAULT]
    young = [i for i in items if now < i.created + timedelta(days=min_days)]
    return Quote(
        archives=len(items),
        total_size=total,
        tier=tier,
        tiers=tiers,
        batches=_batches([i.size for i in items], max_per_day),
        dest_class=dest_class,
        dest_requests=requests,
        dest_requests_usd=requests * REQUEST_USD_PER_1000.get(dest_class, 0.0) / 1000,
        first_month_usd=_month(items, dest_class),
        vault_month_usd=total / GiB * PRICE_PER_GB_MONTH[VAULT],
        transfer_out_usd=total / GB * TRANSFER_OUT_USD_PER_GB,
        early=len(young),
        early_deletion_usd=sum(
            early_deletion_fee(i.size, (now - i.created).total_seconds() / 86400, VAULT)
            for i in young
        ),
        free_from=max((i.created + timedelta(days=min_days) for i in young), default=None),
    )


def _tier(tier: Tier, items: Sequence[QuoteItem]) -> TierQuote:
    est = rt.estimate(VAULT, tier, sum(i.size for i in items))
    requests = len(items) * REQUEST_USD_PER_1000[tier] / 1000
    return TierQuote(tier, est.wait, est.wait_text, est.cost_usd, requests)


def _month(items: Sequence[QuoteItem], dest_class: str) -> float:
    price = PRICE_PER_GB_MONTH.get(dest_class, 0.0)
    standard, own = OBJECT_OVERHEAD.get(dest_class, (0, 0))
    data = sum(i.size + own for i in items) / GiB * price
    return float(data + len(items) * standard / GiB * PRICE_PER_GB_MONTH["STANDARD"])


def _batches(sizes: Sequence[int], max_per_day: int | None) -> int:
    """Days of requests: sizes taken in order, a day closed when the next does not fit."""
    if max_per_day is None or not sizes:
        return 1
    days, used = 1, 0
    for size in sizes:
        if used and used + size > max_per_day:
            days, used = days + 1, 0
        used += size
    return days


def quote_lines(q: Quote, *, dest: str, max_per_day: int | None, now: datetime) -> list[str]:
    """The quote as the command shows it."""
    lines = [f"to move: {q.archives} archives, {format_size(q.total_size)}"]
    lines.append("retrieval from the vault (tier: typical wait, retrieval + request fees):")
    for t in q.tiers:
        mark = "  <- --tier" if t.tier == q.tier else ""
        lines.append(
            f"  {t.tier:<9}  {t.wait_text:<16} ${t.retrieval_usd:.4f} + ${t.requests_usd:.4f}"
            f" = ${t.total_usd:.4f}{mark}"
        )
    if max_per_day is not None:
        last = now + timedelta(days=q.batches - 1) + q.chosen.wait
        lines.append(
            f"  --max-per-day {format_size(max_per_day)}: {q.batches} daily batch"
            f"{'es' if q.batches != 1 else ''}, the last ready around {last:%Y-%m-%d}"
        )
    lines += [
        f"into {dest} ({q.dest_class}):",
        f"  requests: {q.dest_requests} (a create, the parts and a complete per archive)"
        f" ${q.dest_requests_usd:.4f}",
        f"  storage, first month: ${q.first_month_usd:.4f} (in the vault today:"
        f" ${q.vault_month_usd:.4f} a month)",
        f"  data transfer out of AWS to this machine: up to ${q.transfer_out_usd:.4f}"
        f" (${TRANSFER_OUT_USD_PER_GB}/GB; the first 100 GB a month are free)",
    ]
    if q.early and q.free_from is not None:
        lines.append(
            f"deleting the sources: {q.early} archive{'s are' if q.early != 1 else ' is'} younger"
            f" than {MIN_STORAGE_DAYS[VAULT]} days; deleting them now would cost about"
            f" ${q.early_deletion_usd:.4f} in early-deletion fees."
            f" --delete-source-after-min-age waits (the last is free on {q.free_from:%Y-%m-%d})"
        )
    else:
        lines.append(
            f"deleting the sources: every archive is past the vault's {MIN_STORAGE_DAYS[VAULT]}"
            "-day minimum: no early-deletion fee"
        )
    lines.append(
        f"total for tier {q.tier}: about ${q.chosen.total_usd + q.dest_requests_usd:.4f} once"
        f" (data transfer out aside), then ${q.first_month_usd:.4f} a month instead of"
        f" ${q.vault_month_usd:.4f} (list-price estimates, us-east-1)"
    )
    return lines
