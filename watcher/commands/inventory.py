"""``inventory [--request] [--wait]``: reconcile the catalogue with what the store holds.

S3 and local stores are listed at once. A Glacier vault only knows its inventory jobs: this
advances them (polls, fetches a finished job's output); ``--request`` asks for a new inventory
(it takes hours), ``--wait`` polls until the job has finished and reconciles.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from localbackup.configkit import format_size
from uploader.catalogue import Catalogue
from uploader.maintenance import MaintenanceReport, ReconcileKind
from uploader.stores import StoreNotAvailable
from watcher import output
from watcher.commands.parsers import add_command
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.hints import fix_for
from watcher.maintenance_loop import maintenance_pass
from watcher.outcomes import Outcomes

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

LABELS: dict[ReconcileKind, str] = {
    "adopt": "adopted (ours, rebuilt into the catalogue)",
    "foreign": "foreign (left alone)",
    "missing": "MISSING (in the catalogue, absent from the store)",
    "mismatch": "MISMATCH (size or checksum differs)",
    "deletion_confirmed": "deletion confirmed",
    "deletion_failed": "still listed after its deletion",
    "not_judged": "too recent for this listing (not judged)",
}


def add_parser(sub: Subparsers) -> None:
    """Register ``inventory``."""
    p = add_command(
        sub,
        "inventory",
        summary="reconcile the catalogue with the store",
        description="Compare the catalogue with what the store holds: archives confirmed, "
        "flagged MISSING or MISMATCH, foreign archives noted, deletions confirmed. S3 and the "
        "local store are listed at once; a Glacier vault needs an inventory job (hours): "
        "--request asks for one, --wait waits for it.",
        examples=[
            "glacier-backup inventory",
            "glacier-backup inventory --request",
            "glacier-backup inventory --request --wait",
        ],
    )
    p.add_argument(
        "--request", action="store_true", help="Glacier: ask for a new inventory (takes hours)"
    )
    p.add_argument(
        "--wait", action="store_true", help="Glacier: poll until the job finishes, then reconcile"
    )
    p.add_argument(
        "--poll-interval",
        "--poll-every",
        dest="poll_every",
        type=_seconds,
        default=POLL_EVERY,
        metavar="SECONDS",
        help=f"--wait: seconds between checks of the job (default {POLL_EVERY:.0f})",
    )
    p.set_defaults(run=run)


POLL_EVERY = 900.0  # the state machine's own poll interval (InventorySettings.poll_every)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Reconcile the catalogue with the store (Glacier: through inventory jobs)."""
    outcomes = Outcomes(config)
    try:
        with Catalogue.in_state_dir(config.state_dir) as catalogue:
            report = asyncio.run(_run(args, config, catalogue, outcomes))
    except StoreNotAvailable as exc:
        print(f"glacier-backup: configuration error: store: {exc}", file=sys.stderr)
        return USAGE
    finally:
        outcomes.close()
    code = print_report(report)
    return could_not_reach(report, config) or code


def could_not_reach(report: MaintenanceReport, config: AppConfig) -> int | None:
    """FAILURE (said, with how to fix it) when the pass could not learn what the store holds:
    the command did not do its job. None otherwise."""
    if report.failure is None:
        return None
    output.error(
        str(report.failure), fix=fix_for(report.failure, config), event="maintenance.unreachable"
    )
    return FAILURE


async def _run(
    args: argparse.Namespace, config: AppConfig, catalogue: Catalogue, outcomes: Outcomes
) -> MaintenanceReport:
    # --wait polls the job at its own interval: the state machine would otherwise poll a job
    # in progress at most every 15 minutes, whatever the interval of this loop.
    poll = args.poll_every if args.wait else None
    report = await maintenance_pass(
        config,
        catalogue,
        datetime.now(UTC),
        prune=False,
        request_inventory=args.request,
        poll_every=poll,
        outcomes=outcomes,
    )
    while args.wait and report.reconciliation is None and report.jobs_in_flight:
        print(f"{report.inventory_status}; checking again in {args.poll_every:g} s", flush=True)
        await asyncio.sleep(args.poll_every)
        report = await maintenance_pass(
            config, catalogue, datetime.now(UTC), prune=False, poll_every=poll, outcomes=outcomes
        )
    return report


def print_report(report: MaintenanceReport) -> int:
    """Print what a pass found; returns the exit code (3 for problems, MISSING or mismatched
    archives, and deletions that did not take effect even when asked again)."""
    print(f"store {report.store}: {report.inventory_status}")
    rec = report.reconciliation
    warn = bool(report.problems)
    if rec is None:
        print("no listing or inventory to reconcile with in this pass")
    else:
        print(f"reconciled with the store's state as of {rec.as_of.isoformat(timespec='seconds')}")
        counts = rec.counts()
        print(f"  confirmed: {counts.get('confirmed', 0)}")
        for kind, label in LABELS.items():
            items = rec.of(kind)
            if not items:
                continue
            print(f"  {label}: {len(items)}")
            for a in items:
                size = f" ({format_size(a.listed.size)})" if a.listed else ""
                name = a.key or (a.listed.store_id if a.listed else "?")
                again = "; deleted again" if a.key in report.deleted_again else ""
                print(f"    {name}{size}: {a.detail}{again}")
        not_deleted = [a for a in rec.of("deletion_failed") if a.key not in report.deleted_again]
        warn = warn or bool(rec.of("missing") or rec.of("mismatch") or not_deleted)
        if rec.of("missing"):
            print(
                "  MISSING archives were uploaded before this listing but are not in it: "
                "see docs/retention.md (what MISSING means and what to do)"
            )
    for p in report.problems:
        print(f"problem: {p}", file=sys.stderr)
    return WARNINGS if warn else OK
