"""``prune [--dry-run]``: apply the retention policy, printing every decision and its reason.

Each decision shows the estimated early-deletion fee: incurred if the archive is deleted before
its storage class's minimum duration, avoided if it is kept. Fees are estimates from the price
table in ``uploader/prune.py``. Deletions are confirmed by a later listing or inventory.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from localbackup.configkit import format_size
from uploader.catalogue import Catalogue
from uploader.maintenance import PrunePlan, may_upload
from uploader.stores import StoreNotAvailable
from watcher.commands.inventory import could_not_reach
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.humanize import count
from watcher.maintenance_loop import maintenance_pass
from watcher.outcomes import Outcomes

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig


def add_parser(sub: Subparsers) -> None:
    """Register ``prune``."""
    p = add_command(
        sub,
        "prune",
        summary="apply the retention policy",
        description="Apply [retention]: keep what keep_last and the calendar rules protect and "
        "what is younger than min_age, and delete the oldest other archives while the store is "
        "over max_store_size (a cap). Every decision is printed with its reason and its "
        "estimated early-deletion fee; --dry-run deletes nothing.",
        examples=["glacier-backup prune --dry-run", "glacier-backup prune"],
    )
    p.add_argument("--dry-run", action="store_true", help="print the decisions, delete nothing")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Apply the retention policy, printing every decision and its fee first."""
    printed: list[PrunePlan] = []

    def show(plan: PrunePlan) -> None:
        # Before anything is deleted: every decision with its estimated early-deletion fee.
        print_plan(plan, dry_run=args.dry_run)
        sys.stdout.flush()
        printed.append(plan)

    outcomes = Outcomes(config)
    try:
        with Catalogue.in_state_dir(config.state_dir) as catalogue:
            report = asyncio.run(
                maintenance_pass(
                    config,
                    catalogue,
                    datetime.now(UTC),
                    dry_run=args.dry_run,
                    on_plan=show,
                    outcomes=outcomes,
                )
            )
    except StoreNotAvailable as exc:
        print(f"glacier-backup: configuration error: store: {exc}", file=sys.stderr)
        return USAGE
    finally:
        outcomes.close()
    for p in report.problems:
        print(f"problem: {p}", file=sys.stderr)
    failed = could_not_reach(report, config)
    if report.plan is None or failed is not None:
        return FAILURE
    if not printed:
        print_plan(report.plan, dry_run=args.dry_run)
    if not args.dry_run:
        print(
            f"deleted {count(len(report.deleted), 'archive')}; "
            "confirmed by the next listing/inventory"
        )
    if not may_upload(report.plan, config.retention):
        print('uploads wait until pruning makes room ([retention] over_budget = "wait")')
    return WARNINGS if report.problems or report.plan.over_budget else OK


def usd(amount: float) -> str:
    """A fee as shown: dollars and cents, ``<$0.01`` below a cent."""
    return f"${amount:.2f}" if amount >= 0.01 else "<$0.01"


def print_plan(plan: PrunePlan, *, dry_run: bool) -> None:
    """Print every decision of ``plan``, then its summary."""
    verb = "would delete" if dry_run else "delete"
    print(f"storage class {plan.storage_class}; fees are ESTIMATES from a fixed price table")
    for d in plan.decisions:
        action = verb if d.delete else "keep"
        fee = d.fee_incurred if d.delete else d.fee_avoided
        fee_text = (
            f"est. early-deletion fee {usd(fee)} {'incurred' if d.delete else 'avoided'}"
            if fee
            else "est. early-deletion fee $0"
        )
        print(
            f"{action:12} {d.key}  {format_size(d.size)}, {d.age_days:.0f} d old  "
            f"[{d.rule}] {d.reason}; {fee_text}"
        )
    print(plan.summary())
